"""Backends by name: a Cluster is routed to the backend its spec.backend names, a backend
plugs in through the registry without touching the controllers, and a Cluster naming one
the server does not run says so; a lost run names only the nodes that are really gone."""

from __future__ import annotations

from typing import Any

from stratum.backends.base import BackendContext
from stratum.backends.registry import build_backends, register_backend
from stratum.backends.simulated.backend import SimulatedBackend
from stratum.reconcile.manager import ControllerManager, ManagerSettings
from stratum.reconcile.world import World
from stratum.server.demo import demo_manifests
from stratum.server.security import system_context
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore
from stratum.testing import manifests
from stratum.testing.clock import FakeClock
from stratum.testing.controlled import ControlledFleet


def _edge_backend(context: BackendContext) -> SimulatedBackend:
    return SimulatedBackend(clock=context.clock, seed=context.seed)


def _pool(name: str, profile: str, count: int) -> dict[str, Any]:
    return {"name": name, "profile": profile, "count": count, "nodesPerRack": 4}


def test_clusters_are_routed_to_the_backend_they_name_and_plug_ins_need_no_controller_change(
    store: ObjectStore,
) -> None:
    register_backend("edge-sim", _edge_backend)
    clock = FakeClock()
    store.clock = clock
    backends = build_backends(["simulated", "edge-sim"], BackendContext(clock=clock, seed=3))
    manager = ControllerManager(store, backends, settings=ManagerSettings(seed=3))
    lyon = manifests.site("lyon", country="FR")
    edge = manifests.cluster("lyon-edge", "lyon", [_pool("l4", "edge-l4-1gpu", 2)])
    edge["spec"]["backend"] = "edge-sim"
    docs = [
        *manifests.profiles(),
        manifests.site("fra", country="DE"),
        lyon,
        manifests.tenant("team"),
        manifests.cluster("fra-hgx", "fra", [_pool("h100", "hgx-h100-80gb", 2)]),
        edge,
        manifests.cluster("k8s", "fra", [_pool("h100", "hgx-h100-80gb", 1)]),
    ]
    docs[-1]["spec"]["backend"] = "kubernetes"  # a backend this server does not run
    ObjectService(store).apply_documents(docs, ctx=system_context("test"))
    for _ in range(2):
        manager.run_once()
        clock.advance(5)
    ObjectService(store).apply_documents(
        [
            manifests.workload(
                "in-lyon", "team", {"compute": {"gpus": 1}, "sovereignty": {"countries": ["FR"]}}
            )
        ],
        ctx=system_context("test"),
    )
    for _ in range(3):
        manager.run_once()
        clock.advance(5)
    world = World.read(store)
    assert world.workloads["team/in-lyon"].status.phase == "Running"
    edge_runs = backends["edge-sim"].observe().runs
    main_runs = backends["simulated"].observe().runs
    assert [r.key for r in edge_runs] == ["team/in-lyon"]
    assert "team/in-lyon" not in {r.key for r in main_runs}
    nodes = {n.metadata.name: n.spec.cluster for n in world.nodes.values()}
    assert sorted(c for c in nodes.values() if c == "lyon-edge") == ["lyon-edge", "lyon-edge"]
    k8s = world.clusters["k8s"]
    assert k8s.status.phase == "Pending"
    condition = k8s.status.conditions[0]
    assert condition.reason == "BackendUnavailable"
    assert condition.message == "this server runs no 'kubernetes' backend"


def test_a_lost_node_is_named_lost_and_its_healthy_partner_is_not(store: ObjectStore) -> None:
    fleet = ControlledFleet(store)
    fleet.apply(demo_manifests())
    fleet.settle()
    placement = fleet.placement("research/llama-finetune")
    down, healthy = (r.node for r in placement.spec.replicas)
    assert down != healthy
    fleet.backend.inject({"kind": "node-down", "node": down})
    fleet.settle(passes=2)
    broken = [
        e.message
        for e in World.read(store).placements["research/llama-finetune"].spec.evidence
        if not e.holds
    ] or [v.message for v in fleet.workload("research/llama-finetune").status.violations]
    assert broken, "the lost node broke no clause"
    assert any(down in m for m in broken)
    assert not any(healthy in m and "lost" in m for m in broken), broken
