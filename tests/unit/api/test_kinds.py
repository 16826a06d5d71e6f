"""The wire types: every kind validates its realistic example and refuses bad input."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stratum.api.v1alpha1 import BY_KIND, KINDS, resolve_kind
from stratum.core.errors import Invalid
from stratum.core.manifests import load_documents
from stratum.core.validation import parse_object, to_wire
from tests import EXAMPLES


def example_documents() -> list[Any]:
    """Every object in examples/ (FleetChange plans are client-side documents, not kinds)."""
    docs = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        docs += [
            d.data
            for d in load_documents(path.read_text(), str(path))
            if d.data.get("kind") != "FleetChange"
        ]
    return docs


def test_the_example_fleet_change_is_a_valid_plan() -> None:
    from stratum.scheduling.planning import FleetChange

    path = EXAMPLES / "reference" / "fleet-change.yaml"
    change = FleetChange.model_validate(load_documents(path.read_text(), str(path))[0].data)
    assert change.add[0].count == 16 and change.remove.sites == ["us-east-1"]


def test_examples_hold_a_manifest_of_every_kind() -> None:
    kinds = {d["kind"] for d in example_documents()}
    assert kinds == set(BY_KIND), f"missing examples for {set(BY_KIND) - kinds}"


@pytest.mark.parametrize(
    "doc", example_documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_every_example_validates_and_round_trips(doc: dict[str, Any]) -> None:
    obj = parse_object(doc)
    again = parse_object(to_wire(obj))
    assert again == obj


def workload(**contract: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "w", "namespace": "t"},
        "spec": {"type": "training", "contract": contract},
    }


def fields_of(err: pytest.ExceptionInfo[Invalid]) -> list[str]:
    return [c.field for c in err.value.causes]


def test_contract_accepts_each_gpu_form() -> None:
    for compute in (
        {"gpus": 8},
        {"gpuMilli": 250},
        {"migProfile": "1g.10gb"},
        {"migProfile": "3g.40gb"},
        {},
    ):
        parse_object(workload(compute=compute))


def test_contract_refuses_two_gpu_forms_and_names_the_clause() -> None:
    with pytest.raises(Invalid) as err:
        parse_object(workload(compute={"gpus": 2, "migProfile": "1g.10gb"}))
    assert fields_of(err) == ["spec.contract.compute"]
    assert "gpus and migProfile" in err.value.message


@pytest.mark.parametrize(
    ("contract", "field"),
    [
        ({"compute": {"gpuMilli": 1000}}, "spec.contract.compute.gpuMilli"),
        ({"compute": {"gpus": 0}}, "spec.contract.compute.gpus"),
        ({"compute": {"migProfile": "half-a-gpu"}}, "spec.contract.compute.migProfile"),
        ({"topology": {"withinReplica": "nvswitch"}}, "spec.contract.topology.withinReplica"),
        ({"topology": {"acrossReplicas": "galaxy"}}, "spec.contract.topology.acrossReplicas"),
        ({"sovereignty": {"countries": ["Germany"]}}, "spec.contract.sovereignty"),
        ({"isolation": "private"}, "spec.contract.isolation"),
        ({"availability": {"minDomains": 0}}, "spec.contract.availability.minDomains"),
        ({"lifecycle": {"priority": 5000}}, "spec.contract.lifecycle.priority"),
        ({"lifecycle": {"onViolation": "panic"}}, "spec.contract.lifecycle.onViolation"),
        ({"serviceLevel": {"p99LatencyMs": -1}}, "spec.contract.serviceLevel.p99LatencyMs"),
        ({"compute": {"gpus": "eight"}}, "spec.contract.compute.gpus"),
        ({"compute": {"gpuMilli": 500}, "topology": {"withinReplica": "nvlink"}}, "spec.contract"),
        ({"unknownClause": {}}, "spec.contract.unknownClause"),
    ],
)
def test_bad_contract_clauses_name_the_field(contract: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_object(workload(**contract))
    assert field in fields_of(err), err.value.message


@pytest.mark.parametrize(
    "name",
    [
        "Upper",
        "under_score",
        "-lead",
        "trail-",
        "a" * 254,
        "",
        "sp ace",
        "ünï",
        "x;drop table objects",
    ],
)
def test_names_must_be_dns1123(name: str) -> None:
    doc = workload()
    doc["metadata"]["name"] = name
    with pytest.raises(Invalid) as err:
        parse_object(doc)
    assert "metadata.name" in fields_of(err)


@pytest.mark.parametrize(
    ("labels", "ok"),
    [
        ({"app": "x"}, True),
        ({"stratum.dev/rack": "r1"}, True),
        ({"bad key": "x"}, False),
        ({"k": "v" * 64}, False),
        ({"k": "-bad"}, False),
        ({"Not_A_Domain!/k": "v"}, False),
    ],
)
def test_labels_follow_kubernetes_rules(labels: dict[str, str], ok: bool) -> None:
    doc = workload()
    doc["metadata"]["labels"] = labels
    if ok:
        parse_object(doc)
    else:
        with pytest.raises(Invalid) as err:
            parse_object(doc)
        assert "metadata.labels" in fields_of(err)


def test_missing_and_unknown_fields_are_named() -> None:
    doc = workload()
    del doc["spec"]["type"]
    doc["spec"]["replica"] = 3
    with pytest.raises(Invalid) as err:
        parse_object(doc)
    causes = {c.field: c.message for c in err.value.causes}
    assert causes["spec.type"] == "required field is missing"
    assert causes["spec.replica"] == "unknown field"


def test_wrong_api_version_and_unknown_kind() -> None:
    doc = workload()
    with pytest.raises(Invalid, match="apiVersion: expected 'stratum.dev/v1alpha1'"):
        parse_object({**doc, "apiVersion": "v1"})
    with pytest.raises(Invalid, match="'Deployment' is not a Stratum kind"):
        parse_object({**doc, "kind": "Deployment"})
    with pytest.raises(Invalid, match="expected an object"):
        parse_object(["not", "an", "object"])


def test_site_country_and_pricing_are_checked() -> None:
    site = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Site",
        "metadata": {"name": "s"},
        "spec": {
            "kind": "edge",
            "provider": "p",
            "country": "de",
            "pricing": {"currency": "euro", "gpuHour": -1},
        },
    }
    with pytest.raises(Invalid) as err:
        parse_object(copy.deepcopy(site))
    assert set(fields_of(err)) == {"spec.country", "spec.pricing.currency", "spec.pricing.gpuHour"}


def test_template_parameters_must_be_an_object_schema() -> None:
    tmpl = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "ClusterTemplate",
        "metadata": {"name": "t"},
        "spec": {"version": "1.0", "parameters": {"type": "array"}, "body": {}},
    }
    with pytest.raises(Invalid) as err:
        parse_object(tmpl)
    assert set(fields_of(err)) == {"spec.version", "spec.parameters"}


def test_kinds_resolve_from_what_people_type() -> None:
    assert resolve_kind("workloads") is BY_KIND["Workload"]
    assert resolve_kind("wl") is BY_KIND["Workload"]
    assert resolve_kind("HardwareProfile") is BY_KIND["HardwareProfile"]
    assert resolve_kind("nope") is None
    assert len({k.PLURAL for k in KINDS}) == len(KINDS)
