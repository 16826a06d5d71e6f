"""The share look-ahead: knapsack values, cutting-stock prices and the loss of a placement,
and the Stratum policy following it."""

from __future__ import annotations

import numpy as np
import pytest

from stratum.scheduling.fragmentation import WorkloadMix
from stratum.scheduling.gapvalue import GapValue, knapsack_values, pattern_prices
from stratum.scheduling.policies.stratum import StratumConfig, StratumPolicy, _gap_value
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import NodeSpec, Snapshot


def _share(milli: int) -> Request:
    return Request(cpu_milli=1000, memory_mib=1024, gpu_count=1, gpu_milli=milli)


def test_knapsack_values_take_items_any_number_of_times() -> None:
    v = knapsack_values(np.array([300, 500]), np.array([0.3, 0.5]))
    assert v[1000] == pytest.approx(1.0)  # 500 + 500
    assert v[800] == pytest.approx(0.8)  # 500 + 300
    assert v[900] == pytest.approx(0.9)  # 300 x 3
    assert v[299] == 0.0
    assert (np.diff(v) >= 0).all()


def test_pattern_prices_solve_the_cutting_stock_lp() -> None:
    # 2 x 470 and 3 x 320: best is one GPU of 470+470 and one of 320x3, so the LP needs 2
    # GPUs and prices a 470 at 1/2 and a 320 at 1/3.
    y, patterns = pattern_prices(np.array([470, 320]), np.array([2.0, 3.0]))
    assert y == pytest.approx([0.5, 1 / 3])
    # Started from the patterns it found, the same LP needs no new one and agrees.
    again, more = pattern_prices(np.array([470, 320]), np.array([2.0, 3.0]), start=patterns)
    assert again == pytest.approx(y) and more == patterns
    # 810s are plentiful and 160s few: the 160s fill the 190 the 810s leave and are worth
    # nothing on their own; every pattern is worth at most one GPU.
    y, _ = pattern_prices(np.array([810, 160]), np.array([100.0, 5.0]))
    assert y == pytest.approx([1.0, 0.0])
    assert knapsack_values(np.array([810, 160]), y)[1000] <= 1.0 + 1e-9


def test_loss_is_zero_for_an_optimal_pair_and_positive_for_a_spoiled_one() -> None:
    gap = GapValue(np.array([470, 320, 650]), np.array([10.0, 5.0, 5.0]))
    loss = {h: float(gap.loss(np.array([h]), 320)[0]) for h in (350, 530, 1000)}
    assert loss[350] == pytest.approx(0.0)  # 320 beside a 650
    assert loss[1000] == pytest.approx(0.0)  # a fresh GPU: 320 + 650 still fits later
    assert loss[530] > 0.1  # beside a 470, where a second 470 would have fitted
    assert gap.loss(np.array([530]), 470)[0] == pytest.approx(0.0)


def test_stratum_keeps_the_gap_of_a_470_for_another_470() -> None:
    """A 320 arrives; one GPU holds a 470 (530 free), the rest are free. Fragmentation alone
    puts the 320 beside the 470 (leaving 210 that little can use); the look-ahead, having
    learned that 470s are frequent, opens a fresh GPU instead."""
    snap = Snapshot.build([NodeSpec("a", 64_000, 262_144, 2, "T4")])
    first = _share(470)
    snap = snap.allocate(snap.decide(0, (0,), first, 0.0), request=first)
    whole = Request(cpu_milli=1000, memory_mib=1024, gpu_count=1, gpu_milli=1000)
    history = [whole] * 12 + [_share(470)] * 8 + [_share(320)] * 3 + [_share(650)] * 3
    choices = {}
    for weight in (0.0, 10.0):
        policy = StratumPolicy(seed=1, config=StratumConfig(gap_loss_weight=weight))
        learn = Snapshot.build([NodeSpec("x", 512_000, 2_097_152, 8, "T4")] * 4)
        for r in history:
            d = policy.place(learn, r)
            learn = learn.allocate(d, request=r)
        choices[weight] = policy.place(snap, _share(320)).gpus
    assert choices[0.0] == (0,)
    assert choices[10.0] == (1,)


def test_a_dead_gap_costs_nothing_to_fill() -> None:
    """On a node with no CPU left for shares, the 530 beside a 470 will never see a second
    470: putting the 320 there spoils nothing."""
    gap = GapValue(np.array([470, 320, 650]), np.array([10.0, 5.0, 5.0]))
    h = np.array([530])
    dead = np.array([False])
    assert gap.loss(h, 320)[0] > 0.1
    assert gap.loss(h, 320, live_before=dead, live_after=dead)[0] == 0.0
    # A gap still alive after the placement keeps its value: 470 + 470 still loses nothing.
    live = np.array([True])
    assert gap.loss(h, 470, live_before=live, live_after=dead)[0] == pytest.approx(0.0)


def test_the_look_ahead_values_a_gap_by_the_shares_that_may_land_on_its_model() -> None:
    """470s pinned to model B and 320s that may run anywhere: the 530 left beside a 470 on a
    B GPU is worth a second 470 (a 320 there spoils it), but no 470 can come to an A GPU, so
    a 320 there spoils nothing. Without pins both models get the same (single-LP) values."""
    snap = Snapshot.build(
        [NodeSpec("a", 64_000, 1 << 20, 4, "A"), NodeSpec("b", 64_000, 1 << 20, 4, "B")]
    )
    mix = WorkloadMix.from_weights(
        {(1000, 470, 1, frozenset({"B"})): 10.0, (1000, 320, 1, frozenset()): 10.0}
    )
    gap = _gap_value(mix, snap, per_model=True)
    assert gap is not None
    a, b = snap.models.index("A"), snap.models.index("B")
    loss = gap.loss(np.array([a, b]), np.array([530, 530]), 320)
    assert loss[0] == pytest.approx(0.0) and loss[1] > 0.1
    single = _gap_value(mix, snap, per_model=False)
    assert single is not None
    same = single.loss(np.array([a, b]), np.array([530, 530]), 320)
    assert same[0] == pytest.approx(same[1]) and same[0] > 0.1
