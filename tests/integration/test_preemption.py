"""Preemption and starvation through the controllers on a real store (SQLite and
PostgreSQL), with a fake clock: a higher-priority contract evicts the cheapest set of
lower-priority preemptible work that frees the topology it needs (never a non-preemptible
one); the victim is Pending with the reason and an Event and binds again when capacity
returns; a gang waiting behind a stream of small jobs binds within a bounded number of
passes because the devices it waits on are kept from work ranked after it."""

from __future__ import annotations

from typing import Any

import pytest

from stratum.core.profiles import builtin_profiles
from stratum.core.validation import to_wire
from stratum.reconcile.world import World
from stratum.scheduling.contracts import ContractDecision, place_contract
from stratum.server.security import system_context
from stratum.store.objects import ObjectStore
from stratum.testing.controlled import ControlledFleet

V1 = "stratum.dev/v1alpha1"


def fleet_docs(*pools: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        to_wire(p)
        for p in builtin_profiles()
        if p.metadata.name in {"hgx-h100-80gb", "pcie-l40s-8gpu"}
    ] + [
        {
            "apiVersion": V1,
            "kind": "Site",
            "metadata": {"name": "fra-9"},
            "spec": {
                "kind": "datacenter",
                "provider": "own",
                "country": "DE",
                "jurisdictions": ["EU"],
            },
        },
        {
            "apiVersion": V1,
            "kind": "Cluster",
            "metadata": {"name": "fra-9-dgx"},
            "spec": {"site": "fra-9", "backend": "simulated", "nodePools": list(pools)},
        },
        *[
            {
                "apiVersion": V1,
                "kind": "Tenant",
                "metadata": {"name": t},
                "spec": {"quota": {"gpus": 200}},
            }
            for t in ("lab", "svc")
        ],
    ]


def workload(
    name: str,
    gpus: int,
    *,
    tenant: str = "lab",
    replicas: int = 1,
    priority: int = 0,
    preemptible: bool = False,
    models: tuple[str, ...] = (),
    across: str = "any",
    seconds: int | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": tenant}
    if seconds is not None:
        meta["annotations"] = {"sim.stratum.dev/duration-seconds": str(seconds)}
    return {
        "apiVersion": V1,
        "kind": "Workload",
        "metadata": meta,
        "spec": {
            "type": "training",
            "replicas": replicas,
            "run": {"image": "example/train:1"},
            "contract": {
                "compute": {"gpus": gpus, "models": list(models)},
                "topology": {"acrossReplicas": across},
                "lifecycle": {"priority": priority, "preemptible": preemptible},
            },
        },
    }


def events_of(fleet: ControlledFleet, tenant: str, name: str) -> list[dict[str, Any]]:
    with fleet.store.read() as tx:
        items = tx.list("Event", namespace=tenant).items
    return [e["spec"] for e in items if e["spec"]["involvedObject"]["name"] == name]


def preemptions(fleet: ControlledFleet) -> float:
    """stratum_scheduler_preemptions as /metrics would expose it."""
    value = fleet.manager.metrics.registry.get_sample_value("stratum_scheduler_preemptions_total")
    return value or 0.0


def phases(world: World) -> dict[str, str | None]:
    return {k.split("/")[1]: w.status.phase for k, w in world.workloads.items()}


def test_preemption_evicts_the_cheapest_victim_that_frees_the_topology(store: ObjectStore) -> None:
    fleet = ControlledFleet(store, scheduler_seed=0)
    fleet.apply(
        fleet_docs(
            {
                "name": "h100",
                "profile": "hgx-h100-80gb",
                "count": 3,
                "rackPrefix": "r",
                "nodesPerRack": 3,
            }
        )
    )
    fleet.settle(passes=2)
    # One node shared by a non-preemptible 4-GPU job (the lowest priority of all) and the
    # cheapest preemptible one; two nodes each held whole by a preemptible 8-GPU job.
    fleet.apply([workload("keep", 4, priority=-10)])
    fleet.settle(passes=1)
    fleet.apply([workload("half", 4, priority=-5, preemptible=True)])
    fleet.settle(passes=1)
    fleet.apply(
        [
            workload("whole-a", 8, priority=0, preemptible=True),
            workload("whole-b", 8, priority=-1, preemptible=True, tenant="svc"),
        ]
    )
    world = fleet.settle(passes=2)
    assert set(phases(world).values()) == {"Running"}
    nodes = {
        k.split("/")[1]: {r.node for r in p.spec.replicas} for k, p in world.placements.items()
    }
    assert nodes["keep"] == nodes["half"], "best fit puts the two halves on one node"
    assert len(nodes["keep"] | nodes["whole-a"] | nodes["whole-b"]) == 3
    before = preemptions(fleet)

    # A whole NVLink node for a priority-100 contract: evicting "half" (cheapest) frees
    # only 4 GPUs beside "keep", which is never evicted; of the two whole nodes the
    # lower-priority "whole-b" is the cheaper victim.
    fleet.apply([workload("urgent", 8, priority=100, tenant="lab")])
    fleet.manager.run_once()
    world = World.read(fleet.store)
    assert phases(world) == {
        "keep": "Running",
        "half": "Running",
        "whole-a": "Running",
        "whole-b": "Pending",
        "urgent": "Bound",
    }
    assert {r.node for r in world.placements["lab/urgent"].spec.replicas} == nodes["whole-b"]
    assert world.placements["svc/whole-b"].status.phase == "Released"
    victim = world.workloads["svc/whole-b"]
    assert (
        victim.status.message
        # The victim is another tenant's: it learns the priority that won, never its name.
        == "preempted by work of another tenant (priority 100) to free the devices it needs"
    )
    assert [r.clause for r in victim.status.reasons] == ["lifecycle.preemptible"]
    preempted = [e for e in events_of(fleet, "svc", "whole-b") if e["reason"] == "Preempted"]
    assert len(preempted) == 1 and preempted[0]["type"] == "Warning"
    assert [
        e["message"] for e in events_of(fleet, "lab", "urgent") if e["reason"] == "Preempting"
    ] == ["evicted 1 of other tenants"]
    assert preemptions(fleet) == before + 1
    assert "whole-b" not in {k.split("/")[1] for k in fleet.backend._runs}

    # No room now: the victim waits (it may not evict "half": that frees too little, and
    # "keep" is not preemptible) ...
    world = fleet.settle(passes=3)
    assert phases(world)["whole-b"] == "Pending" and phases(world)["keep"] == "Running"
    assert phases(world)["half"] == "Running"
    assert preemptions(fleet) == before + 1
    # ... and binds again, on the node it lost, when the capacity returns.
    fleet.service.delete("Workload", "lab", "urgent", ctx=system_context("test"))
    world = fleet.settle(passes=3)
    assert phases(world)["whole-b"] == "Running"
    assert world.workloads["svc/whole-b"].status.attempt == 2
    assert {r.node for r in world.placements["svc/whole-b"].spec.replicas} == nodes["whole-b"]


def test_a_non_preemptible_contract_is_never_evicted(store: ObjectStore) -> None:
    fleet = ControlledFleet(store, scheduler_seed=0)
    fleet.apply(fleet_docs({"name": "h100", "profile": "hgx-h100-80gb", "count": 1}))
    fleet.settle(passes=2)
    fleet.apply([workload("steady", 8, priority=-100)])
    fleet.settle(passes=2)
    fleet.apply([workload("urgent", 8, priority=1000)])
    world = fleet.settle(passes=3)
    assert phases(world) == {"steady": "Running", "urgent": "Pending"}
    assert preemptions(fleet) == 0
    assert not [e for e in events_of(fleet, "lab", "steady") if e["reason"] == "Preempted"]


def _stream(fleet: ControlledFleet, passes: int) -> int | None:
    """16 one-GPU jobs fill a rack of two HGX servers (ending one after another), then a
    16-GPU gang arrives, and every pass two more one-GPU jobs; an L40S server in another
    rack is where backfill may go. The pass the gang binds in, or None."""
    fleet.apply(
        fleet_docs(
            {
                "name": "h100",
                "profile": "hgx-h100-80gb",
                "count": 2,
                "rackPrefix": "gang-r",
                "nodesPerRack": 2,
            },
            {"name": "l40s", "profile": "pcie-l40s-8gpu", "count": 1, "rackPrefix": "side-r"},
        )
    )
    fleet.settle(passes=2)
    fleet.apply(
        [
            workload(
                f"fill-{i:02d}", 1, tenant="svc", models=("H100-SXM5-80GB",), seconds=10 * (i + 1)
            )
            for i in range(16)
        ]
    )
    world = fleet.settle(passes=1, seconds=1)
    assert sum(p == "Running" or p == "Bound" for p in phases(world).values()) == 16
    fleet.apply([workload("gang", 8, replicas=2, across="rack", models=("H100-SXM5-80GB",))])
    for n in range(passes):
        fleet.apply(
            [workload(f"small-{n:02d}-{j}", 1, tenant="svc", seconds=100) for j in range(2)]
        )
        world = fleet.settle(passes=1, seconds=10)
        if world.workloads["lab/gang"].status.phase in ("Bound", "Running"):
            return n + 1
    return None


PASSES = 20  # the fill jobs end within 16 passes


def test_a_gang_behind_a_stream_of_small_jobs_binds_within_bounded_passes(
    store: ObjectStore,
) -> None:
    fleet = ControlledFleet(store, scheduler_seed=0)
    bound_at = _stream(fleet, PASSES)
    assert bound_at is not None and bound_at <= 18, "starved"
    world = World.read(fleet.store)
    gang = world.placements["lab/gang"]
    assert gang.spec.tier == "rack" and len({r.node for r in gang.spec.replicas}) == 2
    # While it waited, small work went to the side rack (backfill), never onto the rack
    # the gang was draining.
    side = {n for n, node in world.nodes.items() if node.spec.profile == "pcie-l40s-8gpu"}
    gang_at = gang.metadata.creation_timestamp
    assert gang_at is not None
    before = [
        p
        for k, p in world.placements.items()
        if "/small-" in k
        and p.metadata.creation_timestamp
        and p.metadata.creation_timestamp < gang_at
    ]
    assert len(before) >= 8 and all(r.node in side for p in before for r in p.spec.replicas)


def test_without_the_reservation_the_same_stream_starves_the_gang(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterfactual: with the reservation rule off, freed GPUs go to the small jobs
    that arrive after the gang, and it is still waiting after the same passes."""

    def no_reservation(*args: Any, **kwargs: Any) -> ContractDecision:
        decision = place_contract(*args, **kwargs)
        return ContractDecision(
            decision.placed,
            decision.bindings,
            decision.evidence,
            decision.reasons,
            decision.ever_possible,
            decision.summary,
            decision.tier,
            (),
            decision.dedicated,
        )

    monkeypatch.setattr("stratum.scheduling.cycle.place_contract", no_reservation)
    fleet = ControlledFleet(store, scheduler_seed=0)
    assert _stream(fleet, PASSES) is None
