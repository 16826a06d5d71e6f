"""An impossible request is named at apply, not discovered later as "Rejected": an
unknown GPU model gets the nearest known ones, too many GPUs per replica the fleet's most."""

from __future__ import annotations

from typing import Any

from stratum.core.profiles import builtin_profiles
from stratum.core.validation import to_wire


def _workload(compute: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "w", "namespace": "team"},
        "spec": {"type": "training", "contract": {"compute": compute}},
    }


def test_unknown_model_and_oversized_replica_warn_at_apply(client: Any) -> None:
    profiles = [to_wire(p) for p in builtin_profiles() if p.metadata.name == "hgx-h100-80gb"]
    tenant = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "team"},
        "spec": {},
    }
    client.apply_list([*profiles, tenant])

    client.apply(_workload({"gpus": 8, "models": ["H100"]}))
    [warning] = client.warnings
    assert warning.startswith("spec.contract.compute.models: unknown GPU model 'H100'")
    assert "did you mean 'H100-SXM5-80GB'" in warning
    assert "the fleet has: H100-SXM5-80GB" in warning

    client.apply(_workload({"gpus": 9}))
    [warning] = client.warnings
    assert "spec.contract.compute.gpus: 9 GPUs per replica" in warning
    assert "has more than 8" in warning

    client.apply(_workload({"gpus": 8, "models": ["H100-SXM5-80GB"]}))
    assert client.warnings == []  # a request the fleet can meet: nothing to say
