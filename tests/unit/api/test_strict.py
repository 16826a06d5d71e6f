"""Untrusted input is taken as it is typed, or refused naming the field: no coercion, no
number JSON cannot carry, no name with a trailing newline, no time without a zone."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from stratum.core.errors import Invalid
from stratum.core.manifests import load_documents
from stratum.core.validation import MAX_DEPTH, parse_object, to_wire


def workload(**contract: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "w1", "namespace": "t1"},
        "spec": {"type": "training", "contract": contract},
    }


def refused(data: Any) -> Invalid:
    with pytest.raises(Invalid) as caught:
        parse_object(data)
    return caught.value


def fields(err: Invalid) -> set[str]:
    return {c.field for c in err.causes}


@pytest.mark.parametrize("value", [True, "8", 8.0, "eight"])
def test_gpus_must_be_an_integer_not_something_that_converts(value: Any) -> None:
    err = refused(workload(compute={"gpus": value}))
    assert fields(err) == {"spec.contract.compute.gpus"}
    assert "valid integer" in err.message


@pytest.mark.parametrize(
    ("clause", "value"),
    [
        ({"lifecycle": {"preemptible": "yes"}}, "spec.contract.lifecycle.preemptible"),
        ({"compute": {"cpuCores": "4"}}, "spec.contract.compute.cpuCores"),
        ({"compute": {"cpuCores": True}}, "spec.contract.compute.cpuCores"),
    ],
)
def test_bools_and_numbers_are_not_coerced_from_strings(clause: dict[str, Any], value: str) -> None:
    assert fields(refused(workload(**clause))) == {value}


def test_an_integer_is_a_valid_float() -> None:
    obj = parse_object(workload(compute={"gpus": 8, "cpuCores": 16, "memoryGiB": 64}))
    assert to_wire(obj)["spec"]["contract"]["compute"]["cpuCores"] == 16.0


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused_naming_the_field(value: float) -> None:
    err = refused(workload(serviceLevel={"p99LatencyMs": value}))
    assert fields(err) == {"spec.contract.serviceLevel.p99LatencyMs"}
    assert "finite" in err.message


@pytest.mark.parametrize("text", ["Infinity", "1e309", "NaN", "-Infinity"])
def test_non_finite_numbers_as_json_decodes_them_are_refused(text: str) -> None:
    body = json.dumps(workload(serviceLevel={"p99LatencyMs": 1})).replace(
        '"p99LatencyMs": 1', f'"p99LatencyMs": {text}'
    )
    err = refused(json.loads(body))
    assert fields(err) == {"spec.contract.serviceLevel.p99LatencyMs"}


@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan"])
def test_non_finite_numbers_as_yaml_decodes_them_are_refused(text: str) -> None:
    manifest = (
        "apiVersion: stratum.dev/v1alpha1\nkind: Workload\n"
        "metadata: {name: w1, namespace: t1}\n"
        f"spec:\n  type: inference\n  contract:\n    serviceLevel: {{p99LatencyMs: {text}}}\n"
    )
    err = refused(load_documents(manifest)[0].data)
    assert fields(err) == {"spec.contract.serviceLevel.p99LatencyMs"}


def test_non_finite_numbers_in_free_form_fields_are_refused() -> None:
    cluster = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "c1"},
        "spec": {"site": "s1", "backendConfig": {"limits": [1, math.nan]}},
    }
    assert fields(refused(cluster)) == {"spec.backendConfig.limits[1]"}


@pytest.mark.parametrize(
    ("clause", "field"),
    [
        (
            {"lifecycle": {"maxDurationSeconds": 10**30}},
            "spec.contract.lifecycle.maxDurationSeconds",
        ),
        (
            {"lifecycle": {"maxDurationSeconds": 2**62}},
            "spec.contract.lifecycle.maxDurationSeconds",
        ),
        ({"lifecycle": {"priority": -(10**30)}}, "spec.contract.lifecycle.priority"),
    ],
)
def test_huge_integers_are_refused_naming_the_field(clause: dict[str, Any], field: str) -> None:
    assert fields(refused(workload(**clause))) == {field}


def test_huge_integers_in_free_form_fields_are_refused() -> None:
    cluster = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "c1"},
        "spec": {"site": "s1", "backendConfig": {"replicas": 10**30}},
    }
    err = refused(cluster)
    assert fields(err) == {"spec.backendConfig.replicas"}
    assert "64 bits" in err.message


def test_deep_nesting_is_refused_naming_where_it_got_too_deep() -> None:
    nested: Any = 1
    for _ in range(5000):
        nested = {"a": nested}
    cluster = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "c1"},
        "spec": {"site": "s1", "backendConfig": nested},
    }
    err = refused(cluster)
    [cause] = err.causes
    assert cause.field.startswith("spec.backendConfig.a.a.")
    assert f"nested more than {MAX_DEPTH} levels deep" in err.message


def test_nesting_a_real_manifest_uses_is_fine() -> None:
    nested: Any = {"leaf": 1}
    for _ in range(20):
        nested = {"a": nested}
    cluster = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "c1"},
        "spec": {"site": "s1", "backendConfig": nested},
    }
    assert parse_object(cluster).spec.backend_config == nested


@pytest.mark.parametrize("name", ["foo\n", "foo\r\n", "\nfoo", "foo\n\n"])
def test_names_may_not_carry_newlines(name: str) -> None:
    data = workload()
    data["metadata"]["name"] = name
    assert fields(refused(data)) == {"metadata.name"}


def test_namespaces_may_not_end_in_a_newline() -> None:
    data = workload()
    data["metadata"]["namespace"] = "t1\n"
    assert fields(refused(data)) == {"metadata.namespace"}


@pytest.mark.parametrize(
    "labels", [{"team": "bar\n"}, {"team\n": "bar"}, {"example.com\n/team": "bar"}]
)
def test_label_keys_and_values_may_not_end_in_a_newline(labels: dict[str, str]) -> None:
    data = workload()
    data["metadata"]["labels"] = labels
    assert fields(refused(data)) == {"metadata.labels"}


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", "2026-01-01", 1767225600, "soon"])
def test_times_need_a_time_zone(value: Any) -> None:
    data = workload()
    data["metadata"]["creationTimestamp"] = value
    err = refused(data)
    assert fields(err) == {"metadata.creationTimestamp"}
    assert "time zone" in err.message


def test_status_times_need_a_time_zone() -> None:
    data = workload()
    data["status"] = {"boundAt": "2026-01-01T00:00:00"}
    assert fields(refused(data)) == {"status.boundAt"}


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"])
def test_times_with_a_zone_are_taken_from_strings(value: str) -> None:
    data = workload()
    data["status"] = {"boundAt": value}
    obj = parse_object(data)
    assert to_wire(obj)["status"]["boundAt"] == "2026-01-01T00:00:00Z" or value.endswith("+01:00")
    assert obj.status.bound_at is not None and obj.status.bound_at.utcoffset() is not None


def test_yaml_timestamps_with_a_zone_are_taken() -> None:
    manifest = (
        "apiVersion: stratum.dev/v1alpha1\nkind: Workload\n"
        "metadata: {name: w1, namespace: t1}\n"
        "spec: {type: inference}\n"
        "status: {boundAt: 2026-01-01T00:00:00Z}\n"
    )
    obj = parse_object(load_documents(manifest)[0].data)
    assert obj.status.bound_at is not None and obj.status.bound_at.year == 2026


def test_what_the_server_writes_validates_again() -> None:
    """The wire form is its own valid input: strictness never refuses what we serve."""
    data = workload(compute={"gpus": 8, "cpuCores": 2}, lifecycle={"maxDurationSeconds": 3600})
    data["status"] = {"boundAt": "2026-01-01T00:00:00Z", "p99LatencyMs": 12.5}
    wire = to_wire(parse_object(copy.deepcopy(data)))
    assert to_wire(parse_object(wire)) == wire
