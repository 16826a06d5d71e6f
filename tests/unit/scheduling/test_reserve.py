"""Stratum keeps capacity that only some nodes have for the requests that need it: GPUs of a
model that pinned requests depend on, and whole nodes for large multi-GPU requests. In both
scenes the demanding requests are rare (outside the 95% of the mix the fragment is computed
on), which is where the plain fragment let them fail."""

from __future__ import annotations

import numpy as np
import pytest

from stratum.scheduling.policies.reserve import (
    SlotBook,
    mix_classes,
    model_pressure,
    pinned_share,
    request_reach,
    scarce_classes,
)
from stratum.scheduling.policies.stratum import StratumConfig, StratumPolicy
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import NodeSpec, Snapshot

SEEDS = range(12)


def _run(policy: StratumPolicy, snap: Snapshot, stream: list[Request]) -> tuple[Snapshot, int]:
    placed = 0
    for r in stream:
        d = policy.place(snap, r)
        if d.placed:
            snap = snap.allocate(d, request=r)
            placed += 1
    return snap, placed


# ---- GPU models pinned requests depend on ------------------------------------------------
ANY = Request(cpu_milli=8_000, memory_mib=1024, gpu_count=1, gpu_milli=1000)
ANY_SHARE = Request(cpu_milli=4_000, memory_mib=1024, gpu_count=1, gpu_milli=500)
RARE_SHARE = Request(
    cpu_milli=4_000, memory_mib=1024, gpu_count=1, gpu_milli=500, gpu_models=frozenset({"R"})
)


def _model_fleet() -> Snapshot:
    common = [NodeSpec(f"c{i}", 64_000, 1 << 20, 4, "C") for i in range(3)]
    return Snapshot.build([*common, NodeSpec("r", 64_000, 1 << 20, 4, "R")])


def _pinned_scene(config: StratumConfig, seed: int) -> int:
    """Pods that may run anywhere fill exactly the common model's 12 GPUs; then 8 halves of
    a GPU pinned to the rare model arrive. Returns how many of the 24 were placed."""
    policy = StratumPolicy(seed=seed, config=config)
    _run(policy, _model_fleet(), [RARE_SHARE] + [ANY, ANY_SHARE] * 20)  # learn the mix
    _, placed = _run(policy, _model_fleet(), [ANY, ANY_SHARE] * 8 + [RARE_SHARE] * 8)
    return placed


def test_a_pod_pinned_to_a_rare_model_is_not_blocked_by_pods_that_could_run_anywhere() -> None:
    assert all(_pinned_scene(StratumConfig(), seed) == 24 for seed in SEEDS)
    # Without the pinned-model pressure, unpinned pods take the rare GPUs on some seeds.
    assert any(_pinned_scene(StratumConfig(pin_weight=0), seed) < 24 for seed in SEEDS)


def test_model_pressure_is_zero_without_pins_and_highest_on_the_pinned_model() -> None:
    snap = _model_fleet()
    free = {ANY.shape: 10.0, ANY_SHARE.shape: 10.0}
    assert not model_pressure(free, snap).any()
    pressed = model_pressure({**free, RARE_SHARE.shape: 5.0}, snap)
    c, r = snap.models.index("C"), snap.models.index("R")
    # 5 x 500 of 17,500 milli asked per round, all of it on R's 4 of 16 GPUs.
    assert pressed[c] == 0.0 and pressed[r] == pytest.approx((2500 / 4) / (17_500 / 16))


# ---- whole nodes for multi-GPU requests ------------------------------------------------------
BIG = Request(cpu_milli=120_000, memory_mib=1024, gpu_count=8, gpu_milli=1000)
ONE = Request(cpu_milli=8_000, memory_mib=1024, gpu_count=1, gpu_milli=1000)
HALF = Request(cpu_milli=4_000, memory_mib=1024, gpu_count=1, gpu_milli=500)
CPU_ONLY = Request(cpu_milli=16_000, memory_mib=1024)


def _gpu_fleet() -> Snapshot:
    # Only the first node has the CPU for BIG.
    small = [NodeSpec(f"n{i}", 96_000, 1 << 20, 8, "G2") for i in range(3)]
    return Snapshot.build([NodeSpec("big", 128_000, 1 << 20, 8, "G3"), *small])


def _multi_gpu_scene(config: StratumConfig, seed: int) -> tuple[bool, float]:
    """Small pods take a third of the GPUs, then an 8-GPU pod that needs 120 cores arrives.
    Returns whether it fits and the share of GPUs that was free when it arrived."""
    policy = StratumPolicy(seed=seed, config=config)
    _run(policy, _gpu_fleet(), [BIG] + [ONE, HALF, HALF, CPU_ONLY] * 12)  # learn the mix
    snap, _ = _run(policy, _gpu_fleet(), [ONE, HALF, HALF, CPU_ONLY] * 5)
    free = float(snap.gpu_free_total.sum()) / snap.total_gpu_milli
    return policy.place(snap, BIG).placed, free


def test_a_large_multi_gpu_pod_still_fits_while_most_of_the_fleet_is_free() -> None:
    for seed in SEEDS:
        placed, free = _multi_gpu_scene(StratumConfig(), seed)
        assert placed and free > 0.65
    # Without the reserve, small pods spread over the one node that can host it.
    assert not all(_multi_gpu_scene(StratumConfig(reserve_margin=0), s)[0] for s in SEEDS)


def test_slot_book_counts_slots_and_what_a_placement_takes() -> None:
    snap = _gpu_fleet()
    mix = mix_classes({BIG.shape: 1.0, ONE.shape: 1.0})
    assert mix == {(8, 120_000, frozenset()): 8 / 9}  # one multi-GPU class, 8 of 9 GPUs asked
    book = SlotBook([*mix, (4, 100_000, frozenset())], snap)
    assert book.left(snap).tolist() == [1, 1]  # only the big node has the CPU for either
    share = np.array([*mix.values(), 0.0])
    # One slot (the big node) against 2 x (8/9 of the demand x 32 free GPUs / 8) expected; a
    # class the mix does not ask for is never short.
    short = book.short(snap, share, margin=2.0)
    assert short.tolist() == [True, False]
    rows = np.arange(snap.size)
    gpus = np.zeros(snap.size, dtype=np.int64)
    both = np.ones(2, dtype=np.bool_)
    taken, everything = book.taken(snap, rows, ONE, gpus, [short, both])
    assert taken.tolist() == [8.0, 0.0, 0.0, 0.0]
    # ONE on the big node leaves 120 cores and 7 GPUs: BIG loses its slot (8 GPUs' worth),
    # the 4-GPU class keeps its one.
    assert everything.tolist() == [8.0, 0.0, 0.0, 0.0]
    # 8 GPUs of 12 cores take both.
    wide = Request(cpu_milli=12_000, memory_mib=1024, gpu_count=8, gpu_milli=1000)
    assert book.taken(snap, rows, wide, gpus, [both])[0].tolist() == [12.0, 0.0, 0.0, 0.0]
    # A mix that asks mostly for single GPUs expects few BIG requests: not short.
    relaxed = mix_classes({BIG.shape: 1.0, ONE.shape: 1000.0})
    assert not book.short(snap, np.array([*relaxed.values(), 0.0]), margin=2.0).any()
    # The slots follow the snapshot: after BIG lands on the big node nothing is left.
    after = snap.allocate(snap.decide(0, tuple(range(8)), BIG, 0.0), request=BIG)
    assert book.left(after).tolist() == [0, 0]
    assert not book.taken(after, rows, ONE, gpus, [both])[0].any()


# ---- nodes with a capability few others have, before any request needs it -------------------
def _wide_fleet() -> Snapshot:
    # One node of 20 has the CPU for BIG; the mix has never asked for it.
    small = [NodeSpec(f"n{i}", 96_000, 1 << 20, 8, "G2") for i in range(19)]
    return Snapshot.build([NodeSpec("big", 128_000, 1 << 20, 8, "G3"), *small])


def _unseen_big_scene(config: StratumConfig, seed: int) -> bool:
    """Small pods (no BIG among them, so the slot reserve has nothing to keep) take a third of
    the GPUs; then the mix shifts to an 8-GPU pod that needs 120 cores. Whether it fits."""
    policy = StratumPolicy(seed=seed, config=config)
    _run(policy, _wide_fleet(), [ONE, HALF, HALF, CPU_ONLY] * 40)  # learn the mix
    snap, _ = _run(policy, _wide_fleet(), [ONE, HALF, HALF, CPU_ONLY] * 20)
    return policy.place(snap, BIG).placed


def test_a_node_only_it_can_fill_is_left_for_requests_nobody_asked_for_yet() -> None:
    assert all(_unseen_big_scene(StratumConfig(), seed) for seed in SEEDS)
    # Without the scarce-capability reserve, small pods land on the big node on some seeds.
    assert not all(_unseen_big_scene(StratumConfig(scarce_share=0), s) for s in SEEDS)


def test_scarce_classes_come_from_the_fleet_and_the_mix() -> None:
    snap = _wide_fleet()
    # From the fleet: 8 GPUs with more CPU than the 96-core nodes offer, and with all of the
    # big node's CPU (the largest request it alone can take).
    fleet: list[tuple[int, int, frozenset[str]]] = [
        (8, 96_001, frozenset()),
        (8, 128_000, frozenset()),
    ]
    assert scarce_classes({}, snap, 0.05) == fleet
    # A class the mix has seen that only the big node can host; ONE fits everywhere.
    seen = scarce_classes({BIG.shape: 1.0, ONE.shape: 5.0}, snap, 0.05)
    assert seen == [fleet[0], (8, 120_000, frozenset()), fleet[1]]
    # The share bounds how few nodes make a capability scarce.
    assert scarce_classes({}, snap, 0.01) == []
    assert request_reach(snap, BIG) == 1 and request_reach(snap, ONE) == 20


def test_pin_weight_falls_with_the_pinned_share() -> None:
    assert pinned_share({ANY.shape: 3.0, RARE_SHARE.shape: 2.0}) == pytest.approx(
        (2 * 500) / (3 * 1000 + 2 * 500)
    )
    assert pinned_share({ANY.shape: 1.0}) == 0.0 and pinned_share({}) == 0.0
