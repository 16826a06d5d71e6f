"""Manifest factories for tests and benchmarks: the documents a user would apply, as
plain dicts, with only what the test is about spelled out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stratum.core.manifests import load_documents
from stratum.core.profiles import builtin_profiles
from stratum.core.validation import to_wire

API = "stratum.dev/v1alpha1"


def examples(folder: Path) -> list[dict[str, Any]]:
    """Every document of the *.yaml files in `folder`, files in name order."""
    docs = []
    for path in sorted(folder.glob("*.yaml")):
        docs += [d.data for d in load_documents(path.read_text(), str(path))]
    return docs


def profiles() -> list[dict[str, Any]]:
    return [to_wire(p) for p in builtin_profiles()]


def site(
    name: str, *, country: str = "DE", jurisdictions: Iterable[str] = ("EU",)
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Site",
        "metadata": {"name": name},
        "spec": {
            "kind": "datacenter",
            "provider": "own",
            "country": country,
            "jurisdictions": list(jurisdictions),
        },
    }


def cluster(name: str, site: str, pools: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"site": site, "backend": "simulated", "nodePools": [dict(p) for p in pools]},
    }


def tenant(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}


def workload(
    name: str,
    ns: str = "team-a",
    contract: Mapping[str, Any] | None = None,
    *,
    type: str = "training",
    **spec: Any,
) -> dict[str, Any]:
    """A Workload of `type`; `spec` adds fields (replicas=2), `contract` the contract."""
    body: dict[str, Any] = {"type": type, **spec}
    if contract is not None:
        body["contract"] = dict(contract)
    return {
        "apiVersion": API,
        "kind": "Workload",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }
