"""The peer policies' scores, on hand-checked fleets, and Stratum's online learning."""

from __future__ import annotations

import pytest

from stratum.scheduling.fragmentation import WorkloadMix
from stratum.scheduling.policies import POLICY_NAMES, make_policy
from stratum.scheduling.policies.stratum import LearnedMix, StratumConfig, StratumPolicy
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import NodeSpec, Snapshot

SHARE = Request(cpu_milli=2000, memory_mib=1024, gpu_count=1, gpu_milli=400)
WHOLE = Request(cpu_milli=8000, memory_mib=1024, gpu_count=1, gpu_milli=1000)


def _fleet() -> Snapshot:
    return Snapshot.build(
        [
            NodeSpec("big", 96_000, 393_216, 8, "G2"),
            NodeSpec("small", 16_000, 65_536, 2, "P100"),
        ]
    )


def _with_share_on_big(snap: Snapshot) -> Snapshot:
    return snap.allocate(snap.decide(0, (2,), SHARE, 0.0), request=SHARE)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_policy_places_on_a_feasible_node_and_explains_failure(name: str) -> None:
    snap = _fleet()
    policy = make_policy(name, seed=7, typical=WorkloadMix.typical([SHARE, WHOLE]))
    decision = policy.place(snap, WHOLE)
    assert decision.placed and len(decision.gpus) == 1
    assert snap.gpu_free[decision.node, decision.gpus[0]] == 1000
    impossible = Request(
        cpu_milli=1000, gpu_count=3, gpu_milli=1000, gpu_models=frozenset({"P100"})
    )
    failed = policy.place(snap, impossible)
    assert not failed.placed
    assert (
        str(failed.explanation) == "0/2 nodes: 1 lack model P100, 1 lack 3 free whole GPUs (P100)"
    )


def test_packing_prefers_the_shared_gpu_then_the_used_node() -> None:
    snap = _with_share_on_big(_fleet())
    packing = make_policy("packing", seed=1)
    d = packing.place(snap, SHARE)
    assert (d.node, d.gpus) == (0, (2,))  # 600 free on GPU 2 -> tightest shared GPU
    assert d.score == 100 - (600 - 400) // 100
    whole = packing.place(snap, WHOLE)
    assert whole.node == 0 and whole.score == 49  # used node beats the all-free one (31)


def test_bestfit_and_dotproduct_prefer_the_fuller_node() -> None:
    snap = _fleet()
    # small: 16 cores, 2 GPUs; big: 96 cores, 8 GPUs -> small leaves less.
    assert make_policy("bestfit", seed=1).place(snap, WHOLE).node == 1
    d = make_policy("dotproduct", seed=1).place(snap, WHOLE)
    assert d.node == 1
    # dot = (16000*8000 + 256*2000*1000) / 128000^2 = 0.03906..; score = floor(100 - 50*dot)
    assert d.score == 98


def test_clustering_groups_by_class() -> None:
    snap = _with_share_on_big(_fleet())
    policy = make_policy("clustering", seed=1)
    # big holds only shares: 75 + floor(25*(8000-7600)/8000) = 76; small holds nothing: 25+18
    assert policy.place(snap, SHARE).node == 0
    assert policy.place(snap, WHOLE).node == 1


def test_fgd_puts_a_share_where_it_adds_least_fragmentation() -> None:
    snap = _with_share_on_big(_fleet())
    mix = WorkloadMix.typical([SHARE, SHARE, WHOLE])
    d = make_policy("fgd", seed=3, typical=mix).place(snap, SHARE)
    # Mix: share 2/3, whole 1/3. big's F = 1/3*600 = 200 (GPU 2's 600 is no whole GPU).
    # On GPU 2: 200 left, a fragment for both types: F = 200, drop 0 -> score 50.
    # On a fresh GPU (big or small): two partial GPUs, F rises by 200 -> floor(100*s(-0.2)) = 45.
    assert (d.node, d.gpus, d.score) == (0, (2,), 50.0)


def test_same_seed_same_decisions_and_learned_mix_follows_arrivals() -> None:
    snap = _fleet()
    a, b = StratumPolicy(seed=5), StratumPolicy(seed=5)
    for r in (SHARE, WHOLE, SHARE, SHARE):
        da, db = a.place(snap, r), b.place(snap, r)
        assert da == db
        snap = snap.allocate(da, request=r)
    assert a.mix is not None
    learned = LearnedMix(half_life=1e9)
    for r in (SHARE, SHARE, SHARE, WHOLE):
        learned.observe(r.shape)
    mix = learned.typical(coverage=1.0)
    assert sorted(mix.weight.tolist()) == pytest.approx([0.25, 0.75])


def test_unknown_policy_and_fgd_without_mix() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("nope", seed=1)
    with pytest.raises(ValueError, match="typical"):
        make_policy("fgd", seed=1)


def _wide_fleet(n: int) -> Snapshot:
    return Snapshot.build([NodeSpec(f"n{i}", 96_000, 393_216, 8, "G2") for i in range(n)])


def _scored_rows(policy: StratumPolicy, method: str = "_score_rows") -> list[int]:
    """Record how many rows each call of ``method`` scores: ``_score_rows``, the rows a
    decision (re)scores; ``_score_distinct``, the distinct node states among them."""
    seen: list[int] = []
    inner = getattr(policy, method)

    def spy(snapshot: Snapshot, rows: object, request: Request) -> object:
        seen.append(len(rows))  # type: ignore[arg-type]
        return inner(snapshot, rows, request)

    setattr(policy, method, spy)
    return seen


def test_stratum_scores_only_feasible_rows() -> None:
    snap = _wide_fleet(6)
    for i in range(5):  # leave one node with CPU for a big request
        cpu_hog = Request(cpu_milli=90_000)
        snap = snap.allocate(snap.decide(i, (), cpu_hog, 0.0), request=cpu_hog)
    policy = StratumPolicy(seed=1)
    seen = _scored_rows(policy)
    big = Request(cpu_milli=20_000, gpu_count=1, gpu_milli=1000)
    d = policy.place(snap, big)
    assert d.node == 5 and seen == [1]


def test_stratum_bounds_rescoring_after_a_mix_refresh() -> None:
    """After the learned mix is refreshed, rows scored under the old mix are rescored at most
    ``rescore_budget`` per decision, while rows whose node changed are always rescored."""
    snap = _wide_fleet(20)
    small = StratumPolicy(seed=3, config=StratumConfig(rescore_budget=4))
    full = StratumPolicy(seed=3, config=StratumConfig(rescore_budget=10_000))
    seen = _scored_rows(small)
    seen_full = _scored_rows(full)
    stream = [SHARE, WHOLE] * 6
    bounded_snap = snap
    for r in stream:
        d_small = small.place(bounded_snap, r)
        d_full = full.place(snap, r)
        snap = snap.allocate(d_full, request=r)
        bounded_snap = bounded_snap.allocate(d_small, request=r)
    # First request of each shape scores every node; refreshes at 1, 2, 4, 8 requests seen
    # then rescore at most the budget plus the one node changed by the last decision.
    assert seen[0] == 20 and seen[1] == 20
    assert max(seen[2:]) <= 4 + 2
    assert all(d.placed for d in (d_small, d_full))
    assert max(seen_full[2:]) == 20  # without the bound, a refresh rescores the whole fleet


def test_stratum_rescores_a_row_that_was_not_feasible_at_a_mix_refresh() -> None:
    """A row scored under an old mix and not feasible when its shape is next placed is not
    rescored then; it is rescored, under the new mix, as soon as a request of that shape
    may use it (here: one asking less memory), never placed on with its old score."""
    snap = _wide_fleet(4)
    hog = Request(cpu_milli=1000, memory_mib=300_000)
    snap = snap.allocate(snap.decide(3, (), hog, 0.0), request=hog)
    roomy = Request(cpu_milli=8000, memory_mib=200_000, gpu_count=1, gpu_milli=1000)
    policy = StratumPolicy(seed=0)
    scored: list[list[int]] = []
    inner = policy._score_rows

    def spy(snapshot: Snapshot, rows: object, request: Request) -> object:
        scored.append([int(r) for r in rows])  # type: ignore[attr-defined]
        return inner(snapshot, rows, request)  # type: ignore[arg-type]

    policy._score_rows = spy  # type: ignore[assignment,method-assign]
    policy.place(snap, WHOLE)  # 1st request: the mix is refreshed, every row scored
    policy.place(snap, roomy)  # 2nd: refreshed again; node 3 lacks the memory
    policy.place(snap, WHOLE)  # 3rd: no refresh; node 3 is feasible again
    assert scored == [[0, 1, 2, 3], [0, 1, 2], [3]]


def test_stratum_scores_nodes_in_the_same_state_once_and_places_as_if_it_scored_each() -> None:
    """A shape's first decision scores every feasible row; rows whose nodes are in the same
    state (free CPU, free milli per GPU, model) are scored once, and every row gets exactly
    the score it would have had alone."""
    nodes = [NodeSpec(f"g{i}", 96_000, 393_216, 8, "G2") for i in range(40)]
    nodes += [NodeSpec(f"p{i}", 32_000, 131_072, 4, "P100") for i in range(40)]
    snap = Snapshot.build(nodes)
    for i in range(0, 80, 3):  # three kinds of busy nodes among idle ones
        req = [SHARE, WHOLE, Request(cpu_milli=30_000)][i % 9 // 3]
        gpus = (0,) if req.gpu_count else ()
        snap = snap.allocate(snap.decide(i, gpus, req, 0.0), request=req)
    rows = snap.feasible(SHARE).nonzero()[0]
    for request in (SHARE, WHOLE):
        policy = StratumPolicy(seed=1)
        policy.place(snap, request)  # learns the mix, builds the fragment function
        distinct = _scored_rows(policy, "_score_distinct")
        drop, gpu = policy._score_rows(snap, rows, request)
        assert distinct == [8]  # 2 models x (idle, a share, a whole GPU or CPU taken)
        for row in rows:
            alone_drop, alone_gpu = policy._score_distinct(snap, rows[rows == row], request)
            assert (drop[rows == row][0], gpu[rows == row][0]) == (alone_drop[0], alone_gpu[0])
