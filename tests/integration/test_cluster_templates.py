"""Cluster.spec.template: the ClusterTemplate, rendered with the Cluster's parameters, fills
what the Cluster leaves out; a missing or invalid template is a Pending status that names
the field and what was expected. On SQLite and PostgreSQL, through the live controllers."""

from __future__ import annotations

from typing import Any

from stratum.reconcile.world import World
from stratum.store.objects import ObjectStore
from stratum.testing.controlled import ControlledFleet
from stratum.testing.manifests import API, profiles, site

POD_2 = {"site": "fra-1", "nodes": 2}
POD = {
    "apiVersion": API,
    "kind": "ClusterTemplate",
    "metadata": {"name": "h100-pod-1.0.0", "labels": {"catalog.stratum.dev/family": "h100-pod"}},
    "spec": {
        "version": "1.0.0",
        "published": True,
        "parameters": {
            "type": "object",
            "required": ["site"],
            "properties": {
                "site": {"type": "string"},
                "nodes": {"type": "integer", "minimum": 1, "maximum": 64, "default": 3},
            },
        },
        "body": {
            "site": "{{ site }}",
            "nodePools": [
                {"name": "h100", "profile": "hgx-h100-80gb", "count": "{{ nodes }}"},
            ],
        },
    },
}


def from_template(name: str, ref: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"site": "fra-1", "template": ref, **spec},
    }


def nodes_of(world: World, cluster: str) -> list[str]:
    return sorted(n for n, node in world.nodes.items() if node.spec.cluster == cluster)


def test_a_cluster_gets_its_node_pools_from_its_template(store: ObjectStore) -> None:
    fleet = ControlledFleet(store)
    fleet.apply([*profiles(), site("fra-1"), POD])
    fleet.apply(
        [
            from_template("by-family", {"name": "h100-pod", "parameters": {"site": "fra-1"}}),
            from_template(
                "by-version",
                {"name": "h100-pod", "version": "1.0.0", "parameters": POD_2},
            ),
            # What the Cluster states itself wins over the template.
            from_template(
                "own-pools",
                {"name": "h100-pod-1.0.0", "parameters": {"site": "fra-1"}},
                nodePools=[{"name": "l40s", "profile": "pcie-l40s-8gpu", "count": 1}],
            ),
        ]
    )
    world = fleet.settle(passes=2)
    assert len(nodes_of(world, "by-family")) == 3  # the template's default
    assert len(nodes_of(world, "by-version")) == 2
    assert world.clusters["by-version"].status.phase == "Ready"
    assert world.clusters["by-version"].status.gpus == 16
    own = nodes_of(world, "own-pools")
    assert len(own) == 1 and world.nodes[own[0]].spec.profile == "pcie-l40s-8gpu"
    # The Cluster keeps its own spec: the template's pools are not written into it.
    assert world.clusters["by-family"].spec.node_pools == []


def test_a_missing_or_invalid_template_is_a_status_that_says_what_is_wrong(
    store: ObjectStore,
) -> None:
    fleet = ControlledFleet(store)
    fleet.apply([*profiles(), site("fra-1")])
    fleet.apply(
        [
            from_template("typo", {"name": "h100-pdo", "parameters": {"site": "fra-1"}}),
            from_template("waits", {"name": "h100-pod", "parameters": {"site": "fra-1"}}),
        ]
    )
    world = fleet.settle(passes=2)
    waits = world.clusters["waits"].status
    assert waits.phase == "Pending"
    assert waits.conditions[0].reason == "TemplateNotFound"
    assert "spec.template: no template 'h100-pod' in the catalog" in waits.conditions[0].message
    assert nodes_of(world, "waits") == []

    fleet.apply(
        [
            POD,
            from_template(
                "too-big", {"name": "h100-pod", "parameters": {"site": "fra-1", "nodes": 500}}
            ),
            from_template(
                "unknown-param", {"name": "h100-pod", "parameters": {"site": "fra-1", "nodez": 2}}
            ),
            from_template("no-version", {"name": "h100-pod", "version": "9.9.9"}),
        ]
    )
    world = fleet.settle(passes=2)
    # The template now exists: the cluster that waited for it is built.
    assert world.clusters["waits"].status.phase == "Ready"
    assert len(nodes_of(world, "waits")) == 3
    typo = world.clusters["typo"].status.conditions[0]
    assert typo.reason == "TemplateNotFound"
    assert 'did you mean "h100-pod"?' in typo.message
    too_big = world.clusters["too-big"].status
    assert too_big.phase == "Pending" and too_big.conditions[0].reason == "TemplateInvalid"
    message = too_big.conditions[0].message
    assert message.startswith("spec.template.parameters for ClusterTemplate h100-pod-1.0.0")
    assert "nodes: 500 is greater than the maximum of 64" in message
    unknown = world.clusters["unknown-param"].status.conditions[0].message
    assert 'nodez: unknown parameter; did you mean "nodes"?' in unknown
    no_version = world.clusters["no-version"].status.conditions[0].message
    assert "has no version 9.9.9; versions: 1.0.0" in no_version
    assert nodes_of(world, "too-big") == nodes_of(world, "unknown-param") == []
