"""Batch placement: as many GPUs as the exact optimum on B3's small instances, every clause
still held, and higher-priority work never traded for more lower-priority GPUs."""

from __future__ import annotations

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.batch import batch_order, place_batch
from stratum.scheduling.contracts import FleetState, WorkloadAsk
from stratum.testing.fleets import Gang, exact_placed_gpus, fleet_node, training_fleet


def ask(gang: Gang, priority: int = 0) -> WorkloadAsk:
    return WorkloadAsk(
        "t",
        gang.replicas,
        Contract.model_validate(
            {
                "compute": {"gpus": gang.gpus, "cpuCores": 4, "memoryGiB": 32},
                "topology": {"withinReplica": "nvlink", "acrossReplicas": gang.across},
                "lifecycle": {"priority": priority},
            }
        ),
    )


# Seed 0 of B3's small mix on its small fleet: the 8-GPU gangs of a rack and of the RDMA
# tier compete for four HGX servers in two racks, 4-GPU gangs for six NVL72 trays.
INSTANCE = [
    Gang(1, 1),
    Gang(2, 8, "rack"),
    Gang(1, 4),
    Gang(1, 2),
    Gang(3, 4, "rack"),
    Gang(1, 1),
    Gang(1, 1),
    Gang(1, 1),
    Gang(1, 1),
    Gang(3, 8, "rdma"),
    Gang(2, 8, "rack"),
]


def test_batch_matches_the_exact_optimum_and_keeps_every_clause() -> None:
    nodes = training_fleet(sites=1, hgx_racks=2, hgx_per_rack=2, nvl72_racks=1, trays_per_rack=6)
    asks = [ask(g) for g in INSTANCE]
    result = place_batch(FleetState.build(nodes), asks)
    placed = sum(INSTANCE[i].replicas * INSTANCE[i].gpus for i in result.placed)
    best, proved = exact_placed_gpus(nodes, INSTANCE, seconds=20)
    assert proved and placed == best
    # The order alone (largest first) is worse here: the search is what closes the gap.
    greedy = place_batch(FleetState.build(nodes), asks, max_orders=1)
    assert sum(INSTANCE[i].replicas * INSTANCE[i].gpus for i in greedy.placed) < best
    by_name = {n.name: n for n in nodes}
    taken: set[tuple[str, int]] = set()
    for i in result.placed:
        d = result.decisions[i]
        assert d is not None and len(d.bindings) == INSTANCE[i].replicas
        for b in d.bindings:
            assert not taken & {(b.node, g) for g in b.gpus}, "a GPU given twice"
            taken |= {(b.node, g) for g in b.gpus}
        if INSTANCE[i].across == "rack":
            assert len({by_name[b.node].rack for b in d.bindings}) == 1
        if INSTANCE[i].across == "nvlink-domain":
            assert len({by_name[b.node].nvlink_domain for b in d.bindings}) == 1
    # The fleet state handed back has exactly those GPUs taken.
    free = int((result.state.snapshot.gpu_free == 1000).sum())
    assert free == sum(len(n.gpu_models) for n in nodes) - len(taken)


def test_higher_priority_is_never_traded_for_more_lower_priority_gpus() -> None:
    nodes = [fleet_node("a", "hgx-h100-80gb")]
    asks = [ask(Gang(1, 8), priority=0), ask(Gang(1, 4), priority=10)]
    assert batch_order(asks) == [1, 0]
    result = place_batch(FleetState.build(nodes), asks)
    assert result.placed == (1,)


def test_the_budget_bounds_the_orders_tried() -> None:
    nodes = training_fleet(sites=1, hgx_racks=2, hgx_per_rack=2, nvl72_racks=1, trays_per_rack=6)
    result = place_batch(FleetState.build(nodes), [ask(g) for g in INSTANCE], max_orders=3)
    assert result.orders_tried <= 3
