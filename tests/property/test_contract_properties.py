"""Contract placement invariants under Hypothesis: every clause of every bound contract holds
on the fleet, no GPU, MIG slice or CPU is given twice, isolation is never broken, and a
contract found never satisfiable is infeasible on the empty fleet (checked exactly with
CP-SAT on small whole-GPU gangs)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.contracts import (
    TIERS,
    ContractDecision,
    FleetNode,
    FleetState,
    WorkloadAsk,
    place_contract,
)
from stratum.scheduling.devices import parse_mig_instance
from stratum.testing.fleets import Gang, exact_placed_gpus, fleet_node, tier_domain

PROFILES = ("hgx-h100-80gb", "hgx-a100-80gb", "pcie-l40s-8gpu", "gb200-nvl72-tray")


@st.composite
def fleets(draw: st.DrawFn) -> list[FleetNode]:
    count = draw(st.integers(1, 6))
    return [
        fleet_node(
            f"n{i}",
            draw(st.sampled_from(PROFILES)),
            rack=f"r{draw(st.integers(0, 1))}",
            site=f"s{draw(st.integers(0, 1))}",
        )
        for i in range(count)
    ]


@st.composite
def contracts(draw: st.DrawFn) -> tuple[str, int, dict[str, Any]]:
    kind = draw(st.sampled_from(["whole", "share", "mig", "cpu"]))
    compute: dict[str, Any] = {
        "cpuCores": draw(st.sampled_from([1, 4, 16])),
        "memoryGiB": draw(st.sampled_from([1, 64])),
    }
    topology: dict[str, Any] = {}
    if kind == "whole":
        compute["gpus"] = draw(st.sampled_from([1, 2, 4, 8]))
        topology["withinReplica"] = draw(st.sampled_from(["any", "nvlink", "pcie-switch", "numa"]))
        topology["numaAligned"] = draw(st.booleans())
    elif kind == "share":
        compute["gpuMilli"] = draw(st.sampled_from([250, 500]))
    elif kind == "mig":
        compute["migProfile"] = draw(st.sampled_from(["1g.10gb", "3g.40gb", "4g.40gb"]))
    topology["acrossReplicas"] = draw(st.sampled_from(TIERS))
    contract = {
        "compute": compute,
        "topology": topology,
        "isolation": draw(st.sampled_from(["shared", "shared", "dedicated-node"])),
    }
    return draw(st.sampled_from(["a", "b"])), draw(st.integers(1, 4)), contract


def _check(nodes: list[FleetNode], bound: list[tuple[str, Contract, ContractDecision]]) -> None:
    by_name = {n.name: n for n in nodes}
    gpu_use: dict[tuple[str, int], int] = {}
    mig_use: dict[tuple[str, int], int] = {}
    cpu_use: set[tuple[str, int]] = set()
    tenants_on: dict[str, set[str]] = {}
    for tenant, contract, d in bound:
        t = contract.topology
        for b in d.bindings:
            node = by_name[b.node]
            lay = node.layout
            assert lay is not None
            tenants_on.setdefault(b.node, set()).add(tenant)
            for cpu in b.cpu_set:
                assert (b.node, cpu) not in cpu_use, "a CPU given twice"
                cpu_use.add((b.node, cpu))
            if b.mig_instance:
                g = b.gpus[0]
                mask = parse_mig_instance(b.mig_instance)
                assert mask and not mig_use.get((b.node, g), 0) & mask, "a MIG slice twice"
                assert contract.compute.mig_profile in lay.mig[g]
                mig_use[(b.node, g)] = mig_use.get((b.node, g), 0) | mask
            else:
                for g in b.gpus:
                    gpu_use[(b.node, g)] = gpu_use.get((b.node, g), 0) + (b.milli or 1000)
            if contract.compute.gpus:
                assert len(b.gpus) == contract.compute.gpus
                if t.within_replica != "any" and len(b.gpus) > 1:
                    key = {"nvlink": lay.domain, "pcie-switch": lay.switch, "numa": lay.numa}[
                        t.within_replica
                    ]
                    assert len({key[g] for g in b.gpus}) == 1
                if t.numa_aligned:
                    assert {lay.numa[g] for g in b.gpus} == {b.numa_node}
                    assert b.numa_node is not None
                    assert all(c in lay.numa_cpus[b.numa_node] for c in b.cpu_set)
        if len(d.bindings) > 1 or d.tier:
            tier = d.tier or "any"
            assert TIERS.index(tier) <= TIERS.index(t.across_replicas)
            labels = {tier_domain(by_name[b.node], tier) for b in d.bindings}
            assert len(labels) == 1
    for (name, g), used in gpu_use.items():
        assert used <= 1000, "a GPU over-allocated"
        assert (name, g) not in mig_use, "a GPU both partitioned and given out"
    for tenant, contract, d in bound:
        if contract.isolation == "dedicated-node":
            for b in d.bindings:
                assert tenants_on[b.node] == {tenant}, "isolation broken"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), st.lists(contracts(), min_size=1, max_size=10))
def test_every_bound_contract_holds_and_no_device_is_given_twice(
    nodes: list[FleetNode], asks: list[tuple[str, int, dict[str, Any]]]
) -> None:
    state = FleetState.build(nodes)
    bound: list[tuple[str, Contract, ContractDecision]] = []
    for tenant, replicas, body in asks:
        contract = Contract.model_validate(body)
        d = place_contract(state, WorkloadAsk(tenant, replicas, contract))
        if d.placed:
            state = state.bind(tenant, d.bindings, dedicated=d.dedicated)
            bound.append((tenant, contract, d))
    _check(nodes, bound)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), st.integers(1, 6), st.sampled_from([1, 2, 4, 8]), st.sampled_from(TIERS))
def test_a_rejected_gang_is_infeasible_on_the_empty_fleet(
    nodes: list[FleetNode], replicas: int, gpus: int, across: str
) -> None:
    contract = Contract.model_validate(
        {"compute": {"gpus": gpus}, "topology": {"acrossReplicas": across}}
    )
    empty = FleetState.build(nodes, pristine=True)
    d = place_contract(
        FleetState.build(nodes), WorkloadAsk("t", replicas, contract), pristine=empty
    )
    best, proved = exact_placed_gpus(nodes, [Gang(replicas, gpus, across)], seconds=5)
    assert proved
    if not d.placed:
        assert not d.ever_possible
        assert best == 0, "Rejected, yet an exact solver places it"
    else:
        assert best == replicas * gpus
