"""The contract engine on built-in machines: exact devices per clause, MIG rules, tiers,
spread, power, quota, and Pending against Rejected with counts."""

from __future__ import annotations

from typing import Any

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.contracts import FleetState, WorkloadAsk, place_contract
from stratum.testing.fleets import fleet_node, training_fleet


def ask(replicas: int = 1, tenant: str = "t", **contract: Any) -> WorkloadAsk:
    return WorkloadAsk(tenant, replicas, Contract.model_validate(contract))


def test_pcie_switch_clause_takes_four_gpus_behind_one_switch() -> None:
    state = FleetState.build([fleet_node("l40s", "pcie-l40s-8gpu")])
    d = place_contract(state, ask(compute={"gpus": 4}, topology={"withinReplica": "pcie-switch"}))
    assert d.placed and d.bindings[0].gpus in ((0, 1, 2, 3), (4, 5, 6, 7))
    assert any("share PCIe switch pcie-sw" in e.message for e in d.evidence)
    five = ask(compute={"gpus": 5}, topology={"withinReplica": "pcie-switch"})
    never = place_contract(
        state,
        five,
        pristine=FleetState.build([fleet_node("l40s", "pcie-l40s-8gpu")], pristine=True),
    )
    assert not never.placed and not never.ever_possible
    assert never.reasons[-1].clause == "topology.withinReplica" and never.reasons[-1].excluded == 1


def test_numa_alignment_puts_cores_memory_and_nic_on_the_gpus_numa_node() -> None:
    state = FleetState.build([fleet_node("h", "hgx-h100-80gb")])
    d = place_contract(
        state,
        ask(
            compute={"gpus": 2, "cpuCores": 16},
            topology={"withinReplica": "numa", "numaAligned": True},
        ),
    )
    b = d.bindings[0]
    assert b.numa_node == 0 and len(b.cpu_set) == 16 and set(b.cpu_set) <= set(range(0, 64))
    assert b.nics and all(n in ("mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3") for n in b.nics)
    # The CPUs are taken: a second aligned replica gets other CPUs.
    state = state.bind("t", d.bindings)
    d2 = place_contract(
        state,
        ask(
            compute={"gpus": 2, "cpuCores": 16},
            topology={"withinReplica": "numa", "numaAligned": True},
        ),
    )
    assert not set(d2.bindings[0].cpu_set) & set(b.cpu_set)


def test_mig_follows_the_placement_rules_and_never_shares_a_gpu_given_whole() -> None:
    state = FleetState.build([fleet_node("a", "hgx-a100-80gb")])
    d = place_contract(state, ask(compute={"gpus": 7}))  # leaves one GPU
    state = state.bind("t", d.bindings)
    free = ({0, 1, 2, 3, 4, 5, 6, 7} - set(d.bindings[0].gpus)).pop()
    instances = []
    for profile in ("4g.40gb", "3g.40gb"):
        m = place_contract(state, ask(compute={"migProfile": profile}))
        assert m.placed and m.bindings[0].gpus == (free,)
        instances.append(m.bindings[0].mig_instance)
        state = state.bind("t", m.bindings)
    assert instances == [f"4g.40gb on GPU {free} slots 0-3", f"3g.40gb on GPU {free} slots 4-7"]
    # The GPU is full of MIG slices, and no whole or fractional GPU is left.
    for contract in ({"migProfile": "1g.10gb"}, {"gpuMilli": 100}, {"gpus": 1}):
        assert not place_contract(state, ask(compute=contract)).placed


def test_seven_1g_slices_fill_one_gpu_and_a_3g_goes_only_where_the_rules_allow() -> None:
    state = FleetState.build([fleet_node("h", "hgx-h100-80gb")])
    d = place_contract(state, ask(7, compute={"migProfile": "1g.10gb"}))
    assert d.placed and {b.gpus for b in d.bindings} == {(d.bindings[0].gpus[0],)}
    assert sorted(b.mig_instance or "" for b in d.bindings)[0].endswith("slots 0-0")
    state = state.bind("t", d.bindings)
    three = place_contract(state, ask(compute={"migProfile": "3g.40gb"}))
    assert three.bindings[0].gpus != d.bindings[0].gpus


def test_a_gang_takes_the_tightest_tier_and_never_a_looser_one_than_its_clause() -> None:
    nodes = training_fleet(hgx_racks=2, hgx_per_rack=4, nvl72_racks=1)
    state = FleetState.build(nodes)
    nvl = place_contract(state, ask(16, compute={"gpus": 4}, topology={"withinReplica": "nvlink"}))
    assert nvl.tier == "nvlink-domain"
    assert all("nvl" in b.node for b in nvl.bindings)
    rack = place_contract(state, ask(4, compute={"gpus": 8}, topology={"acrossReplicas": "rack"}))
    assert rack.tier == "rack" and len({b.node.rsplit("-", 1)[0] for b in rack.bindings}) == 1
    five = ask(5, compute={"gpus": 8}, topology={"acrossReplicas": "rack"})
    too_big = place_contract(state, five, pristine=FleetState.build(nodes, pristine=True))
    assert not too_big.placed and not too_big.ever_possible
    assert any(r.clause == "topology.acrossReplicas[rack]" for r in too_big.reasons)
    site = place_contract(state, ask(5, compute={"gpus": 8}, topology={"acrossReplicas": "site"}))
    assert site.placed and site.tier == "rdma"


def test_spread_across_racks_reaches_min_domains() -> None:
    state = FleetState.build(training_fleet(hgx_racks=3, hgx_per_rack=2, nvl72_racks=0))
    d = place_contract(
        state, ask(3, compute={"gpus": 1}, availability={"spreadAcross": "rack", "minDomains": 3})
    )
    assert d.placed and len({b.node.rsplit("-", 1)[0] for b in d.bindings}) == 3


def test_site_power_budget_is_never_exceeded() -> None:
    # 2 kW at the site: two 700 W H100s fit, a third does not.
    state = FleetState.build([fleet_node("h", "hgx-h100-80gb", power_kw=2.0)])
    d = place_contract(state, ask(compute={"gpus": 2}))
    assert d.placed and any(e.clause == "site.powerBudgetKW" for e in d.evidence)
    state = state.bind("t", d.bindings)
    more = place_contract(state, ask(compute={"gpus": 1}))
    assert not more.placed and any(r.clause == "site.powerBudgetKW" for r in more.reasons)


def test_rdma_bandwidth_per_gpu_and_quota_are_clauses_with_counts() -> None:
    nodes = [fleet_node("h", "hgx-h100-80gb"), fleet_node("l", "pcie-l40s-8gpu")]
    state = FleetState.build(nodes)
    d = place_contract(state, ask(compute={"gpus": 2}, topology={"minRdmaGbpsPerGpu": 200}))
    assert d.bindings[0].node == "h"
    assert any("400 Gb/s RDMA" in e.message for e in d.evidence)
    capped = WorkloadAsk(
        "t",
        1,
        Contract.model_validate({"compute": {"gpus": 2}}),
        model_quota_left_milli={"H100-SXM5-80GB": 1000},
    )
    q = place_contract(state, capped)
    assert q.bindings[0].node == "l"
    over = WorkloadAsk(
        "t", 1, Contract.model_validate({"compute": {"gpus": 2}}), quota_left_milli=1000
    )
    refused = place_contract(state, over, pristine=FleetState.build(nodes, pristine=True))
    assert not refused.placed and refused.ever_possible
    assert refused.reasons[0].clause == "quota"


def test_a_rejected_contract_says_why_the_fleet_never_could_not_why_it_cannot_now() -> None:
    """Out of quota and asking for a GPU model no node has: Rejected for the model (a larger
    quota would not help), in the summary and clause by clause."""
    nodes = [fleet_node("h", "hgx-h100-80gb"), fleet_node("l", "pcie-l40s-8gpu")]
    state = FleetState.build(nodes)
    h200 = WorkloadAsk(
        "t",
        1,
        Contract.model_validate({"compute": {"gpus": 8, "models": ["H200-SXM-141GB"]}}),
        quota_left_milli=1000,
    )
    d = place_contract(state, h200, pristine=FleetState.build(nodes, pristine=True))
    assert not d.placed and not d.ever_possible
    assert d.summary.startswith("never satisfiable by the fleet the tenant may use: ")
    assert "quota" not in d.summary and "H200-SXM-141GB" in d.summary, d.summary
    assert [r.clause for r in d.reasons] == ["compute.models"]
    assert d.reasons[0].excluded == 2


def test_a_waiting_gang_says_in_one_sentence_how_many_nodes_qualify_and_what_it_needs() -> None:
    """'2 nodes qualify with room for 2 replica(s); it needs 5' before the per-tier lines,
    not only one line per tier ("0 of 1 any domain(s)...")."""
    from stratum.api.v1alpha1.contract import Contract
    from stratum.testing.fleets import training_fleet

    nodes = training_fleet(sites=1, hgx_racks=1, hgx_per_rack=2, nvl72_racks=0)
    gang = Contract.model_validate({"compute": {"gpus": 8}, "topology": {"acrossReplicas": "rack"}})
    decision = place_contract(
        FleetState.build(nodes),
        WorkloadAsk("t", 5, gang),
        pristine=FleetState.build(nodes, pristine=True),
    )
    assert not decision.placed
    assert "2 nodes qualify with room for 2 replica(s); it needs 5" in decision.summary


def test_a_gang_no_node_qualifies_for_says_so_without_room_for_zero() -> None:
    """'no node qualifies; it needs 3', not 'no node qualify with room for 0 replica(s)'."""
    from stratum.api.v1alpha1.contract import Contract
    from stratum.testing.fleets import training_fleet

    nodes = training_fleet(sites=1, hgx_racks=1, hgx_per_rack=2, nvl72_racks=0)
    gang = Contract.model_validate(
        {"compute": {"gpus": 8, "models": ["L4-24GB"]}, "topology": {"acrossReplicas": "rack"}}
    )
    decision = place_contract(
        FleetState.build(nodes),
        WorkloadAsk("t", 3, gang),
        pristine=FleetState.build(nodes, pristine=True),
    )
    assert not decision.placed
    assert "no node qualifies; it needs 3" in decision.summary
    assert "room for 0" not in decision.summary
    # ...and names the clause that rules the nodes out, without a line per tier after it.
    assert [r.clause for r in decision.reasons] == ["compute.models"], decision.summary


def test_numa_alignment_no_node_can_give_is_named_in_the_refusal() -> None:
    """8 GPUs aligned to one NUMA node, on HGX nodes with 4 GPUs per NUMA node: refused,
    naming topology.numaAligned, not '0 of 1 replica(s) fit on the devices'."""
    from stratum.api.v1alpha1.contract import Contract
    from stratum.testing.fleets import training_fleet

    nodes = training_fleet(sites=1, hgx_racks=1, hgx_per_rack=2, nvl72_racks=0)
    aligned = Contract.model_validate(
        {"compute": {"gpus": 8, "models": ["H100-SXM5-80GB"]}, "topology": {"numaAligned": True}}
    )
    decision = place_contract(
        FleetState.build(nodes),
        WorkloadAsk("t", 1, aligned),
        pristine=FleetState.build(nodes, pristine=True),
    )
    assert not decision.placed
    assert "have no 8 GPUs on one NUMA node" in decision.summary
    assert any(r.clause == "topology.numaAligned" for r in decision.reasons)
    four = Contract.model_validate(
        {"compute": {"gpus": 4, "models": ["H100-SXM5-80GB"]}, "topology": {"numaAligned": True}}
    )
    assert place_contract(FleetState.build(nodes), WorkloadAsk("t", 1, four)).placed
