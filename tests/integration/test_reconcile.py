"""Controllers and the simulated fleet on a real store (SQLite and PostgreSQL): contracts
bind, run, break under faults and heal; the clock is a fake one that tests move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from stratum.backends.simulated.backend import SimulatedBackend
from stratum.core.demand import bound_milli
from stratum.reconcile.manager import ControllerManager, ManagerSettings
from stratum.reconcile.world import World
from stratum.server.demo import demo_manifests
from stratum.server.security import system_context
from stratum.store import leases
from stratum.store.objects import ObjectStore
from stratum.testing.clock import FakeClock
from stratum.testing.controlled import ControlledFleet


@pytest.fixture
def fleet(store: ObjectStore) -> Iterator[ControlledFleet]:
    f = ControlledFleet(store, scheduler_seed=0)
    f.apply(demo_manifests())
    f.settle()
    yield f


def test_the_demo_fleet_binds_every_contract_with_evidence(fleet: ControlledFleet) -> None:
    world = World.read(fleet.store)
    assert {k: w.status.phase for k, w in world.workloads.items()} == {
        "research/llama-finetune": "Running",
        "research/embeddings-batch": "Running",
        "research/chat-us": "Running",
        "health-eu/triage-assistant": "Running",
        "research/edge-vision": "Running",
    }
    assert len(world.nodes) == 20
    assert all(n.status.phase == "Ready" for n in world.nodes.values())
    train = world.placements["research/llama-finetune"]
    assert len({r.node for r in train.spec.replicas}) == 2
    for r in train.spec.replicas:
        assert r.gpus == list(range(8))
        assert world.nodes[r.node].spec.profile == "hgx-h100-80gb"
        # Each GPU says how much of it bound work holds (here all of it).
        assert {g.allocated_milli for g in world.nodes[r.node].status.gpus} == {1000}
    evidence = {e.clause: e.message for e in train.spec.evidence}
    assert "site fra-1 in DE, jurisdictions EU/GDPR" in evidence["sovereignty"]
    assert "NVLink" in evidence["topology.withinReplica"]
    triage = world.placements["health-eu/triage-assistant"]
    nodes = [r.node for r in triage.spec.replicas]
    assert len(set(nodes)) == 2, "spreadAcross: node"
    for node in nodes:
        assert world.sites[world.nodes[node].spec.site].spec.jurisdictions[0] == "EU"
        tenants = {a.namespace for a in world.nodes[node].status.allocations}
        assert tenants == {"health-eu"}, "dedicated-node isolation"
    us = world.placements["research/chat-us"]
    assert all(world.nodes[r.node].spec.site == "us-east-1" for r in us.spec.replicas)
    assert world.sites["fra-1"].status.nodes == 12 and world.sites["fra-1"].status.power_draw_kw > 0
    assert "Bound" in fleet.events("llama-finetune") and "Running" in fleet.events("llama-finetune")


def test_a_failed_gpu_violates_the_contract_and_it_is_replaced_on_healthy_devices(
    fleet: ControlledFleet,
) -> None:
    before = fleet.placement("research/llama-finetune")
    victim = before.spec.replicas[0].node
    with fleet.store.read() as tx:
        mark = tx.current_resource_version()
    fleet.backend.inject({"kind": "gpu-fail", "node": victim, "gpu": 3})
    fleet.manager.run_once()
    wl = fleet.workload("research/llama-finetune")
    assert wl.status.violations[-1].clause == "compute"
    assert f"GPU 3 on {victim}" in wl.status.violations[-1].message
    # Within the one pass: Violated (seen by watchers), released, and bound again.
    with fleet.store.read() as tx:
        phases = [c.object["status"].get("phase") for c in tx.changes_since(mark, kind="Workload")]
    assert phases == ["Violated", "Pending", "Bound"]
    assert wl.status.phase == "Bound" and wl.status.attempt == 2
    fleet.clock.advance(2)
    after_world = fleet.settle(passes=3, seconds=2)
    wl = after_world.workloads["research/llama-finetune"]
    assert wl.status.phase == "Running" and wl.status.attempt == 2
    placement = after_world.placements["research/llama-finetune"]
    assert victim not in {r.node for r in placement.spec.replicas}
    assert wl.status.last_remediation_seconds is not None
    assert 0 < wl.status.last_remediation_seconds <= 10
    assert after_world.nodes[victim].status.gpus[3].health == "Failed"
    assert {"ContractViolated", "Remediating"} <= set(fleet.events("llama-finetune"))


def test_report_only_contract_stays_violated_until_the_fault_clears(fleet: ControlledFleet) -> None:
    node = fleet.placement("research/edge-vision").spec.replicas[0].node
    fault = fleet.backend.inject({"kind": "power-cap", "site": "edge-lyon", "kw": 0.05})
    world = fleet.settle(passes=2)
    wl = world.workloads["research/edge-vision"]
    assert wl.status.phase == "Violated"
    assert wl.status.violations[-1].clause == "compute.power"
    broken = world.placements["research/edge-vision"]
    assert broken.spec.replicas[0].node == node
    assert broken.status.phase == "Violated"
    assert [e.clause for e in broken.spec.evidence if not e.holds] == ["compute.power"]
    fleet.backend.clear(fault.id)
    healed_world = fleet.settle(passes=2)
    assert healed_world.workloads["research/edge-vision"].status.phase == "Running"
    assert "ViolationCleared" in fleet.events("edge-vision")
    # The evidence says what holds now; the breach stays in the workload's history.
    healed = healed_world.placements["research/edge-vision"]
    assert healed.status.phase == "Running"
    assert all(e.holds for e in healed.spec.evidence), healed.spec.evidence
    assert healed_world.workloads["research/edge-vision"].status.violations[-1].clause == (
        "compute.power"
    )


def test_a_lost_node_moves_its_work_to_another_node_that_keeps_every_clause(
    fleet: ControlledFleet,
) -> None:
    before = fleet.placement("health-eu/triage-assistant")
    lost = before.spec.replicas[0].node
    fleet.backend.inject({"kind": "node-down", "node": lost})
    world = fleet.settle(passes=5)
    wl = world.workloads["health-eu/triage-assistant"]
    assert wl.status.phase == "Running" and wl.status.attempt == 2
    nodes = [r.node for r in world.placements["health-eu/triage-assistant"].spec.replicas]
    assert lost not in nodes and len(set(nodes)) == 2
    assert world.nodes[lost].status.phase == "NotReady"
    for node in nodes:
        assert "EU" in world.sites[world.nodes[node].spec.site].spec.jurisdictions


def test_a_missed_latency_target_is_a_violation(fleet: ControlledFleet) -> None:
    node = fleet.placement("research/chat-us").spec.replicas[0].node
    fleet.backend.inject({"kind": "link-degrade", "node": node, "gpu": 0})
    fleet.manager.run_once()
    wl = fleet.workload("research/chat-us")
    assert wl.status.phase == "Bound" and wl.status.attempt == 2, "re-placed at once"
    moved = fleet.placement("research/chat-us")
    assert (node, [0]) not in [(r.node, r.gpus) for r in moved.spec.replicas]
    breaches = {v.clause: v.message for v in wl.status.violations}
    assert "> target 200 ms" in breaches["serviceLevel.p99LatencyMs"]
    # The same degradation halves throughput below the 50 rps the contract asks for too.
    assert "< target 50 rps" in breaches["serviceLevel.minThroughputRps"]


def test_a_partition_never_stops_running_work(fleet: ControlledFleet) -> None:
    fleet.backend.inject({"kind": "partition", "cluster": "us-east-1-l40s"})
    world = fleet.settle(passes=3)
    assert world.workloads["research/chat-us"].status.phase == "Running"
    assert world.workloads["research/chat-us"].status.attempt == 1
    assert all(
        n.status.phase == "NotReady"
        for n in world.nodes.values()
        if n.spec.cluster == "us-east-1-l40s"
    )
    assert "research/chat-us" in {k for k in fleet.backend._runs}  # still running out there


def test_finished_work_succeeds_and_frees_its_devices(fleet: ControlledFleet) -> None:
    node = fleet.placement("research/embeddings-batch").spec.replicas[0].node
    fleet.clock.advance(7200)
    world = fleet.settle(passes=2)
    assert world.workloads["research/embeddings-batch"].status.phase == "Succeeded"
    assert world.placements["research/embeddings-batch"].status.phase == "Succeeded"
    assert "embeddings-batch" not in {a.workload for a in world.nodes[node].status.allocations}


def test_added_capacity_binds_a_contract_the_fleet_could_not_hold(fleet: ControlledFleet) -> None:
    fleet.apply(
        [
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "h200-train", "namespace": "research"},
                "spec": {
                    "type": "training",
                    "contract": {"compute": {"gpus": 8, "models": ["H200-SXM-141GB"]}},
                },
            }
        ]
    )
    world = fleet.settle(passes=2)
    wl = world.workloads["research/h200-train"]
    assert wl.status.phase == "Rejected"
    assert any(r.clause.startswith("compute") for r in wl.status.reasons)
    fleet.apply(
        [
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Cluster",
                "metadata": {"name": "fra-1-h200"},
                "spec": {
                    "site": "fra-1",
                    "nodePools": [{"name": "h200", "profile": "hgx-h200-141gb", "count": 2}],
                },
            }
        ]
    )
    assert fleet.settle(passes=3).workloads["research/h200-train"].status.phase == "Running"


def test_a_settled_fleet_writes_nothing(fleet: ControlledFleet) -> None:
    with fleet.store.read() as tx:
        before = tx.current_resource_version()
    fleet.settle(passes=3)
    with fleet.store.read() as tx:
        assert tx.current_resource_version() == before


def test_deleting_a_workload_stops_it_and_drops_its_placement(fleet: ControlledFleet) -> None:
    fleet.service.delete("Workload", "research", "chat-us", ctx=system_context("test"))
    world = fleet.settle(passes=2)
    assert "research/chat-us" not in world.placements
    assert "research/chat-us" not in fleet.backend._runs


def test_one_lease_holder_at_a_time(store: ObjectStore) -> None:
    clock = FakeClock()
    store.clock = clock
    hold = timedelta(seconds=15)
    assert leases.try_acquire(store, name="m", holder="a", duration=hold)
    assert not leases.try_acquire(store, name="m", holder="b", duration=hold)
    clock.advance(10)
    assert leases.try_acquire(store, name="m", holder="a", duration=hold)  # renewal
    clock.advance(10)
    assert not leases.try_acquire(store, name="m", holder="b", duration=hold)
    clock.advance(6)
    assert leases.try_acquire(store, name="m", holder="b", duration=hold)  # a went silent
    lease = leases.find(store, "m")
    assert lease is not None and lease.holder == "b" and lease.transitions == 2


def test_a_plan_answers_what_if_on_a_copy_of_the_fleet(fleet: ControlledFleet) -> None:
    from stratum.scheduling.planning import FleetChange, plan

    change = FleetChange.model_validate(
        {
            "kind": "FleetChange",
            "add": [
                {"site": "fra-1", "profile": "hgx-h200-141gb", "count": 16, "cluster": "fra-1-h200"}
            ],
            "remove": {"sites": ["us-east-1"]},
            "workloads": [
                {
                    "apiVersion": "stratum.dev/v1alpha1",
                    "kind": "Workload",
                    "metadata": {"name": "h200-pretrain", "namespace": "research"},
                    "spec": {
                        "type": "training",
                        "replicas": 4,
                        "contract": {
                            "compute": {"gpus": 8, "models": ["H200-SXM-141GB"]},
                            "sovereignty": {"jurisdictions": ["EU"]},
                        },
                    },
                }
            ],
        }
    )
    world = World.read(fleet.store)
    with fleet.store.read() as tx:
        version = tx.current_resource_version()
    result = plan(
        change,
        nodes=world.nodes.values(),
        sites=world.sites,
        profiles=world.profiles,
        tenants=world.tenants,
        workloads=world.workloads.values(),
        placements=world.placements.values(),
    )
    outcomes = {o.workload: o for o in result.outcomes}
    assert outcomes["research/h200-pretrain"].after == "binds"
    assert outcomes["research/h200-pretrain"].before != "binds"
    assert len(set(outcomes["research/h200-pretrain"].nodes_after)) == 4
    assert result.displaced == ("research/chat-us",)
    assert "outside US" in outcomes["research/chat-us"].after
    assert result.newly_bound == ["research/h200-pretrain"]
    assert (result.before.nodes, result.after.nodes) == (20, 20 - 6 + 16)
    assert result.after.gpus == result.before.gpus - 48 + 128
    assert 0 < result.before.allocated_gpu_pct < 100
    with fleet.store.read() as tx:
        assert tx.current_resource_version() == version, "a plan must change nothing"


def test_one_broken_cluster_backs_off_without_holding_up_the_others(store: ObjectStore) -> None:
    from stratum.backends.base import ClusterRequest, InventoryNode
    from stratum.core.errors import BackendError

    class FlakyBackend(SimulatedBackend):
        calls = 0

        def inventory(self, cluster: ClusterRequest) -> list[InventoryNode]:
            if cluster.name == "edge-lyon":
                FlakyBackend.calls += 1
                raise BackendError("edge gateway unreachable")
            return super().inventory(cluster)

    fleet = ControlledFleet(store, scheduler_seed=0)
    fleet.backend = FlakyBackend(clock=fleet.clock, seed=7)
    fleet.manager = ControllerManager(store, {"simulated": fleet.backend}, clock=fleet.clock)
    fleet.apply(demo_manifests())
    world = fleet.settle(passes=4, seconds=0.1)
    assert world.clusters["fra-1-hgx"].status.phase == "Ready"
    edge = world.clusters["edge-lyon"]
    assert edge.status.phase == "Degraded"
    assert "edge gateway unreachable" in edge.status.conditions[0].message
    assert world.workloads["research/llama-finetune"].status.phase == "Running"
    assert FlakyBackend.calls == 1, "backing off: no retry within the first half second"
    fleet.settle(passes=1, seconds=1.0)
    fleet.settle(passes=1, seconds=0.1)
    assert FlakyBackend.calls == 2


def test_deny_policies_hold_at_placement_not_only_at_admission(fleet: ControlledFleet) -> None:
    """The demo's policy keeps personal data in EU jurisdictions: admission lets such a
    workload in (EU sites exist), and the scheduler must never bind it elsewhere."""
    personal = {"sovereignty": {"dataClassification": "personal"}}
    fleet.apply(
        [
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "notes-anywhere", "namespace": "research"},
                "spec": {
                    "type": "inference",
                    "replicas": 3,
                    "contract": {**personal, "compute": {"gpuMilli": 300}},
                },
            },
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "notes-on-l40s", "namespace": "research"},
                "spec": {
                    "type": "inference",
                    "contract": {**personal, "compute": {"gpus": 1, "models": ["L40S-48GB"]}},
                },
            },
        ]
    )
    world = fleet.settle(passes=3)
    anywhere = world.placements["research/notes-anywhere"]
    for r in anywhere.spec.replicas:
        site = world.sites[world.nodes[r.node].spec.site]
        assert "EU" in site.spec.jurisdictions, f"{r.node} is at {site.metadata.name}"
    l40s = world.workloads["research/notes-on-l40s"]
    assert l40s.status.phase in ("Pending", "Rejected")
    policy = [r for r in l40s.status.reasons if r.clause == "policy"]
    assert policy and policy[0].excluded == 6, l40s.status.reasons
    assert "personal-data-stays-in-eu" in policy[0].message


def test_bindings_and_releases_join_the_audit_chain(fleet: ControlledFleet) -> None:
    from stratum.core.audit import verify
    from stratum.store import audit

    node = fleet.placement("research/llama-finetune").spec.replicas[0].node
    fleet.backend.inject({"kind": "gpu-fail", "node": node, "gpu": 0})
    fleet.settle(passes=2)
    with fleet.store.read() as tx:
        records = audit.records(tx)
        result = verify(records, expected=audit.appended(tx))
    assert result.ok, result
    by_controller = [
        (r["spec"]["action"], r["spec"]["object"]["name"])
        for r in records
        if r["spec"]["actor"] == "system:controller-manager"
    ]
    assert by_controller.count(("create", "llama-finetune")) == 2  # bound, then re-bound
    assert ("status", "llama-finetune") in by_controller  # released after the violation


def test_tenants_accrue_gpu_hours_and_cost_from_what_ran(store: ObjectStore) -> None:
    fleet = ControlledFleet(store, scheduler_seed=0)
    fleet.manager = ControllerManager(
        store,
        {"simulated": fleet.backend},
        clock=fleet.clock,
        settings=ManagerSettings(usage_flush_seconds=60),
    )
    fleet.apply(demo_manifests())
    fleet.settle(passes=3, seconds=1)
    before = World.read(store).tenants["research"].status.usage
    fleet.settle(passes=4, seconds=1200)  # three intervals: an hour of simulated running
    world = World.read(store)
    usage = world.tenants["research"].status.usage
    running = [
        p
        for k, p in world.placements.items()
        if k.startswith("research/") and p.status.phase == "Running"
    ]
    gpus = sum(
        len(r.gpus) * bound_milli(r.gpu_milli, r.mig_instance) / 1000
        for p in running
        for r in p.spec.replicas
    )
    assert usage.gpu_hours - before.gpu_hours == pytest.approx(gpus * 1.0, rel=0.02)
    assert usage.currency is None or usage.currency == "EUR"
    # research pays EUR in Frankfurt (H100 2.40/h) and USD in us-east-1: kept apart.
    assert usage.cost > before.cost
    assert usage.cost_other_currencies.get("USD", 0) > 0
    assert usage.period_start is not None and usage.period_start.day == 1
    assert usage.gpus > 0


def _eu(world: World, node: str) -> bool:
    return "EU" in world.sites[world.nodes[node].spec.site].spec.jurisdictions


def test_personal_data_never_leaves_the_eu_under_faults(fleet: ControlledFleet) -> None:
    """Only the tenant-wide policy keeps it in the EU (the contract names no jurisdiction):
    losing its nodes moves it to other EU nodes; losing every EU node leaves it Pending
    rather than placed in the US, where capacity is free."""
    fleet.apply(
        [
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "patient-notes", "namespace": "research"},
                "spec": {
                    "type": "inference",
                    "replicas": 2,
                    "contract": {
                        "sovereignty": {"dataClassification": "personal"},
                        "compute": {"gpus": 1},
                        "lifecycle": {"onViolation": "replace"},
                    },
                },
            }
        ]
    )
    world = fleet.settle(passes=3)
    first = [r.node for r in world.placements["research/patient-notes"].spec.replicas]
    assert all(_eu(world, n) for n in first)
    for node in first:
        fleet.backend.inject({"kind": "node-down", "node": node})
    world = fleet.settle(passes=4)
    again = [r.node for r in world.placements["research/patient-notes"].spec.replicas]
    assert world.workloads["research/patient-notes"].status.attempt >= 2
    assert not set(again) & set(first) and all(_eu(world, n) for n in again)
    for other in world.nodes.values():  # now every EU node goes down
        if _eu(world, other.metadata.name) and other.metadata.name not in first:
            fleet.backend.inject({"kind": "node-down", "node": other.metadata.name})
    world = fleet.settle(passes=4)
    wl = world.workloads["research/patient-notes"]
    assert wl.status.phase == "Pending"
    live = world.placements["research/patient-notes"]
    assert live.status.phase not in ("Bound", "Running") or all(
        _eu(world, r.node) for r in live.spec.replicas
    )
    assert any(r.clause == "policy" and r.excluded == 6 for r in wl.status.reasons)


def test_personal_data_preempts_in_the_eu_rather_than_moving_to_the_us(store: ObjectStore) -> None:
    fleet = ControlledFleet(store, scheduler_seed=0)
    docs = [d for d in demo_manifests() if d["kind"] != "Workload"]
    # Fill every EU GPU with preemptible low-priority work; the US stays empty.
    filler = [
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": f"filler-{i:02d}", "namespace": "health-eu"},
            "spec": {
                "type": "batch",
                "contract": {
                    "compute": {"gpus": 8},
                    "sovereignty": {"jurisdictions": ["EU"], "siteKinds": ["datacenter"]},
                    "lifecycle": {"priority": -100, "preemptible": True},
                },
            },
        }
        for i in range(12)
    ]
    fleet.apply(docs)
    fleet.settle(passes=2)
    store_tenant = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "health-eu"},
        "spec": {"quota": {"gpus": 200}, "allowedJurisdictions": ["EU"]},
    }
    fleet.apply([store_tenant, *filler])
    world = fleet.settle(passes=3)
    assert sum(w.status.phase == "Running" for w in world.workloads.values()) == 12
    fleet.apply(
        [
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "urgent-notes", "namespace": "research"},
                "spec": {
                    "type": "inference",
                    "contract": {
                        "sovereignty": {"dataClassification": "personal"},
                        "compute": {"gpus": 2, "models": ["H100-SXM5-80GB"]},
                        "lifecycle": {"priority": 500},
                    },
                },
            }
        ]
    )
    world = fleet.settle(passes=4)
    urgent = world.workloads["research/urgent-notes"]
    assert urgent.status.phase == "Running", urgent.status.message
    assert all(_eu(world, r.node) for r in world.placements["research/urgent-notes"].spec.replicas)
    victims = [
        k
        for k, w in world.workloads.items()
        if k.startswith("health-eu/filler") and w.status.phase == "Pending"
    ]
    assert victims, "an EU filler made room"
    assert all("Preempted" in fleet.events(k.split("/")[1]) for k in victims)


def test_a_workload_whose_launch_keeps_failing_backs_off_alone(store: ObjectStore) -> None:
    from stratum.backends.base import LaunchSpec
    from stratum.core.errors import BackendError

    class FlakyBackend(SimulatedBackend):
        calls = 0

        def launch(self, spec: LaunchSpec) -> None:
            if spec.key == "research/chat-us":
                FlakyBackend.calls += 1
                raise BackendError("image pull failed")
            super().launch(spec)

    fleet = ControlledFleet(store, scheduler_seed=0)
    fleet.backend = FlakyBackend(clock=fleet.clock, seed=7)
    fleet.manager = ControllerManager(store, {"simulated": fleet.backend}, clock=fleet.clock)
    fleet.apply(demo_manifests())
    world = fleet.settle(passes=6, seconds=0.2)
    phases = {k: w.status.phase for k, w in world.workloads.items()}
    assert phases.pop("research/chat-us") == "Bound"  # bound and recorded, not running
    assert set(phases.values()) == {"Running"}, "the others went on"
    assert 2 <= FlakyBackend.calls <= 3, "retried with growing delays, not every pass"


def test_a_rejected_workload_is_decided_again_when_its_spec_changes(fleet: ControlledFleet) -> None:
    """A corrected spec is never ignored: Rejected is re-checked on edit, not only when the
    fleet changes (it once stayed Rejected at observedGeneration 1, generation 3)."""
    job: dict[str, Any] = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "too-big", "namespace": "research"},
        # No GPU in the fleet has 4 TiB of memory: never satisfiable.
        "spec": {"type": "batch", "contract": {"compute": {"gpus": 1, "minGpuMemoryGiB": 4096}}},
    }
    fleet.apply([job])
    fleet.settle(passes=2)
    rejected = fleet.workload("research/too-big")
    assert rejected.status.phase == "Rejected"
    job["spec"]["contract"]["compute"]["minGpuMemoryGiB"] = 40
    fleet.apply([job])
    fleet.settle(passes=2)
    fixed = fleet.workload("research/too-big")
    assert fixed.status.phase in ("Bound", "Running"), fixed.status.message
    assert fixed.status.observed_generation == fixed.metadata.generation == 2
