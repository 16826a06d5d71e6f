"""examples/reference/contracts-demo.yaml applied through the API's service and placed by
the controllers (SQLite and PostgreSQL): every bound contract's clauses are checked against
the hardware itself (nodes, GPU indices, tier, CPU set and NUMA node, NICs, MIG slots), not
against the engine's own evidence; the infeasible ones carry per-clause counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum.api.v1alpha1 import Placement, Workload
from stratum.core.manifests import load_documents
from stratum.core.profiles import builtin_profiles
from stratum.core.validation import to_wire
from stratum.reconcile.world import World
from stratum.scheduling.devices import NodeLayout, parse_cpus
from stratum.server.security import system_context
from stratum.store.objects import ObjectStore
from stratum.testing.controlled import ControlledFleet

DEMO = Path(__file__).resolve().parents[2] / "examples" / "reference" / "contracts-demo.yaml"
# The slots NVIDIA's placement rules allow for a profile on a 7-slice, 8-memory-slice GPU.
MIG_STARTS = {"1g.10gb": (1, range(0, 7)), "3g.40gb": (4, (0, 4))}


def demo_documents() -> list[dict[str, Any]]:
    docs = [d.data for d in load_documents(DEMO.read_text(), DEMO.name)]
    return [to_wire(p) for p in builtin_profiles()] + docs


@pytest.fixture
def demo(store: ObjectStore) -> Iterator[ControlledFleet]:
    fleet = ControlledFleet(store, scheduler_seed=0)
    fleet.apply(demo_documents())
    fleet.settle(passes=4)
    yield fleet


def events_of(fleet: ControlledFleet, namespace: str, name: str) -> list[str]:
    with fleet.store.read() as tx:
        items = tx.list("Event", namespace=namespace).items
    return [e["spec"]["reason"] for e in items if e["spec"]["involvedObject"]["name"] == name]


class Hardware:
    """What the store says each node is: its layout (from its profile), site and rack."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.layouts = {name: NodeLayout.from_spec(p.spec) for name, p in world.profiles.items()}

    def layout(self, node: str) -> NodeLayout:
        return self.layouts[self.world.nodes[node].spec.profile or ""]

    def model(self, node: str, gpu: int) -> str:
        profile = self.world.profiles[self.world.nodes[node].spec.profile or ""]
        return next(g.model for g in profile.spec.gpus if g.index == gpu)

    def site(self, node: str) -> Any:
        return self.world.sites[self.world.nodes[node].spec.site]

    def rack(self, node: str) -> str:
        return f"{self.world.nodes[node].spec.site}/{self.world.nodes[node].spec.rack}"


def check_replica_devices(hw: Hardware, wl: Workload, placement: Placement) -> None:
    """Every per-replica clause, from the hardware."""
    c = wl.spec.contract
    assert len(placement.spec.replicas) == wl.spec.replicas
    for r in placement.spec.replicas:
        lay = hw.layout(r.node)
        assert all(0 <= g < lay.gpus for g in r.gpus), (wl.metadata.name, r)
        if c.compute.gpus:
            assert len(set(r.gpus)) == c.compute.gpus and r.gpu_milli is None
            assert r.mig_instance is None
        if c.compute.gpu_milli:
            assert len(r.gpus) == 1 and r.gpu_milli == c.compute.gpu_milli
        if c.compute.models:
            assert {hw.model(r.node, g) for g in r.gpus} <= set(c.compute.models)
        within = c.topology.within_replica
        if within != "any":
            keys = {"nvlink": lay.domain, "pcie-switch": lay.switch, "numa": lay.numa}[within]
            assert len({keys[g] for g in r.gpus}) == 1, (wl.metadata.name, within, r.gpus)
            assert keys[r.gpus[0]] not in ("", -1)
        # The CPU set: as many logical CPUs as cores asked for, all on the NUMA node named.
        cpus = parse_cpus(r.cpu_set)
        assert len(cpus) == round(c.compute.cpu_cores), (wl.metadata.name, r.cpu_set)
        assert r.numa_node is not None and cpus <= set(lay.numa_cpus[r.numa_node])
        assert r.cpu_milli == round(c.compute.cpu_cores * 1000)
        assert r.memory_mib == round(c.compute.memory_gib * 1024)
        nics = {n.name: n for n in lay.nics}
        named = (r.nic or "").split(",")
        assert all(n in nics for n in named), (r.nic, sorted(nics))
        if c.topology.numa_aligned:
            assert {lay.numa[g] for g in r.gpus} == {r.numa_node}
            assert {nics[n].numa for n in named} == {r.numa_node}
        if c.topology.min_rdma_gbps_per_gpu:
            for g in r.gpus:
                rail = lay.nics[lay.rail[g]]
                sharing = sum(1 for x in lay.rail if x == lay.rail[g])
                assert rail.rdma and rail.speed_gbps / sharing >= c.topology.min_rdma_gbps_per_gpu
                assert rail.name in named, "the GPU's rail NIC is bound with it"
        if c.compute.mig_profile:
            profile = c.compute.mig_profile
            assert r.mig_instance is not None and r.mig_instance.startswith(
                f"{profile} on GPU {r.gpus[0]} slots "
            )
            first, last = (int(x) for x in r.mig_instance.rsplit(" ", 1)[1].split("-"))
            size, starts = MIG_STARTS[profile]
            assert last - first + 1 == size and first in starts, r.mig_instance
            assert profile in lay.mig[r.gpus[0]]


def check_sovereignty(hw: Hardware, wl: Workload, placement: Placement) -> None:
    sov = wl.spec.contract.sovereignty
    tenant = hw.world.tenants[wl.metadata.namespace or ""]
    for r in placement.spec.replicas:
        site = hw.site(r.node).spec
        if sov.jurisdictions:
            assert set(site.jurisdictions) & set(sov.jurisdictions)
        if tenant.spec.allowed_jurisdictions:
            assert set(site.jurisdictions) & set(tenant.spec.allowed_jurisdictions)
        if sov.countries:
            assert site.country in sov.countries
        if sov.site_kinds:
            assert site.kind in sov.site_kinds
        assert site.provider not in sov.deny_providers


def check_across(hw: Hardware, wl: Workload, placement: Placement) -> None:
    nodes = [r.node for r in placement.spec.replicas]
    tier = placement.spec.tier
    if tier == "nvlink-domain":
        # One rack-scale NVLink domain (GB200 NVL72) or one server.
        domains = {
            (hw.rack(n), hw.layout(n).domain[0])
            if hw.layout(n).nvlink_scope == "rack"
            else (n, hw.layout(n).domain[0])
            for n in nodes
        }
        assert len(domains) == 1, domains
    elif tier == "rack":
        assert len({hw.rack(n) for n in nodes}) == 1
    elif tier == "rdma":
        assert len({hw.world.nodes[n].spec.site for n in nodes}) == 1
        assert all(any(nic.rdma for nic in hw.layout(n).nics) for n in nodes)
    spread = wl.spec.contract.availability
    if spread.spread_across == "rack":
        assert len({hw.rack(n) for n in nodes}) >= spread.min_domains
    elif spread.spread_across == "node":
        assert len(set(nodes)) >= max(spread.min_domains, len(nodes))


def check_no_device_twice(hw: Hardware, placements: list[Placement]) -> None:
    whole: dict[tuple[str, int], str] = {}
    shared: dict[tuple[str, int], int] = {}
    mig: dict[tuple[str, int], int] = {}
    cpus: dict[str, set[int]] = {}
    for p in placements:
        for r in p.spec.replicas:
            for g in r.gpus:
                key = (r.node, g)
                if r.mig_instance:
                    first, last = (int(x) for x in r.mig_instance.rsplit(" ", 1)[1].split("-"))
                    run = ((1 << (last - first + 1)) - 1) << first
                    assert not mig.get(key, 0) & run, f"MIG slots given twice on {key}"
                    mig[key] = mig.get(key, 0) | run
                elif r.gpu_milli:
                    shared[key] = shared.get(key, 0) + r.gpu_milli
                    assert shared[key] <= 1000
                else:
                    assert key not in whole, (
                        f"GPU {key} given to {whole[key]} and {p.metadata.name}"
                    )
                    whole[key] = p.metadata.name
            taken = parse_cpus(r.cpu_set)
            assert not cpus.get(r.node, set()) & taken, f"CPUs given twice on {r.node}"
            cpus.setdefault(r.node, set()).update(taken)
    for key in whole:
        assert key not in shared and key not in mig, f"GPU {key} whole and shared"
    for key in shared:
        assert key not in mig


BOUND = {  # workload -> tier its placement reports (None: one replica, no tier)
    "lab/nvl-gang": "nvlink-domain",
    "lab/rack-train": "rack",
    "lab/rdma-train": "rdma",
    "web/numa-infer": None,
    "web/pcie-pair": None,
    "web/frac-chat": "rack",
    "lab/mig-embed": None,
    "lab/mig-tiny": "nvlink-domain",
    "clinic/dedicated-triage": None,
    "clinic/sovereign-nl": None,
    "lab/spread-serve": "rdma",
}


def test_every_bound_contract_holds_on_the_hardware(demo: ControlledFleet) -> None:
    world = World.read(demo.store)
    assert len(world.nodes) == 40 and all(n.status.phase == "Ready" for n in world.nodes.values())
    phases = {k: w.status.phase for k, w in world.workloads.items()}
    assert phases == {
        **{k: "Running" for k in BOUND},
        "lab/never-eu-l40s": "Rejected",
        "lab/nvl-full-rack": "Pending",
    }
    hw = Hardware(world)
    live = [world.placements[k] for k in BOUND]
    for key, tier in BOUND.items():
        wl, placement = world.workloads[key], world.placements[key]
        assert placement.spec.tier == tier, key
        check_replica_devices(hw, wl, placement)
        check_sovereignty(hw, wl, placement)
        check_across(hw, wl, placement)
        evidence = {e.clause for e in placement.spec.evidence}
        assert all(e.holds for e in placement.spec.evidence)
        assert {"compute", "sovereignty"} <= evidence, key
    check_no_device_twice(hw, live)

    # The NVLink gang is in the GB200 rack, one 4-GPU tray per replica.
    gang = world.placements["lab/nvl-gang"]
    assert {world.nodes[r.node].spec.profile for r in gang.spec.replicas} == {"gb200-nvl72-tray"}
    assert len({r.node for r in gang.spec.replicas}) == 8
    # The rack tier was reachable, so the rdma-tier gang shows it really needed rdma: its
    # 5 servers span racks of 4.
    rdma = world.placements["lab/rdma-train"]
    assert len({hw.rack(r.node) for r in rdma.spec.replicas}) >= 2
    # Dedicated node: nobody else's work on it.
    node = world.placements["clinic/dedicated-triage"].spec.replicas[0].node
    holders = {p.metadata.namespace for p in live for r in p.spec.replicas if r.node == node}
    assert holders == {"clinic"}
    # Sovereignty: the NL-only contract is at ams-1; the US ones at iad-1.
    assert {
        world.nodes[r.node].spec.site for r in world.placements["clinic/sovereign-nl"].spec.replicas
    } == {"ams-1"}
    for key in ("web/numa-infer", "web/pcie-pair", "web/frac-chat"):
        assert {world.nodes[r.node].spec.site for r in world.placements[key].spec.replicas} == {
            "iad-1"
        }
    # Evidence says the same thing in words.
    words = {e.clause: e.message for e in gang.spec.evidence}
    assert "share NVLink/NVSwitch domain fra-2/fra2-nvl1/nvl72" in words["topology.withinReplica"]
    assert words["topology.acrossReplicas"].startswith(
        "tier nvlink-domain (clause allows up to nvlink-domain): all 8 replicas in NVLink "
        "domain fra-2/fra2-nvl1/nvl72"
    )
    assert "site fra-2 in DE, jurisdictions EU/GDPR" in words["sovereignty"]
    assert "of 900 kW" in words["site.powerBudgetKW"]
    numa = {e.clause: e.message for e in world.placements["web/numa-infer"].spec.evidence}
    r = world.placements["web/numa-infer"].spec.replicas[0]
    assert numa["topology.numaAligned"] == (
        f"replica 0: CPUs {r.cpu_set}, 131072 MiB and NIC {r.nic} on NUMA {r.numa_node} with "
        f"its GPUs {r.gpus[0]}-{r.gpus[1]}"
    )
    assert "Bound" in events_of(demo, "lab", "nvl-gang")


def test_infeasible_contracts_carry_per_clause_counts(demo: ControlledFleet) -> None:
    world = World.read(demo.store)
    never = world.workloads["lab/never-eu-l40s"]
    assert never.status.phase == "Rejected"
    assert never.status.message.startswith("never satisfiable by the fleet the tenant may use")
    # 40 nodes: the 4 L40S servers are outside the EU, the other 36 have no L40S.
    assert {r.clause: r.excluded for r in never.status.reasons} == {
        "sovereignty.jurisdictions": 4,
        "compute.models": 36,
    }
    assert "Rejected" in events_of(demo, "lab", "never-eu-l40s")

    later = world.workloads["lab/nvl-full-rack"]
    assert later.status.phase == "Pending"
    # 22 nodes have no GB200, the 8 trays nvl-gang holds have no 4 free GPUs, and the one
    # NVLink domain left has room for 10 of the 18 replicas.
    assert {r.clause: r.excluded for r in later.status.reasons} == {
        "compute.models": 22,
        "compute": 8,
        "topology.acrossReplicas[nvlink-domain]": 1,
    }
    assert "0 of 1 nvlink-domain domain(s) have room for 18 replicas" in later.status.message
    assert "Unschedulable" in events_of(demo, "lab", "nvl-full-rack")
    assert "lab/nvl-full-rack" not in world.placements

    # Only not now: once the gang that holds part of the rack is gone, it binds, whole rack.
    demo.service.delete("Workload", "lab", "nvl-gang", ctx=system_context("test"))
    world = demo.settle(passes=3)
    assert world.workloads["lab/nvl-full-rack"].status.phase == "Running"
    placement = world.placements["lab/nvl-full-rack"]
    assert placement.spec.tier == "nvlink-domain"
    assert len({r.node for r in placement.spec.replicas}) == 18
    assert world.workloads["lab/never-eu-l40s"].status.phase == "Rejected"
