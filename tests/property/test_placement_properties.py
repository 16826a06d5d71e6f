"""Placement invariants under Hypothesis: no GPU over-allocated, every decision satisfies its
request, same input and seed give the same decision, and freeing everything restores the
snapshot exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum.scheduling.fragmentation import WorkloadMix
from stratum.scheduling.policies import POLICY_NAMES, make_policy
from stratum.scheduling.request import MILLI, Request
from stratum.scheduling.snapshot import NodeSpec, Snapshot

MODELS = ("A100", "T4", "V100")

nodes_st = st.lists(
    st.builds(
        lambda i, cpu, mem, gpus, model: NodeSpec(f"n{i}", cpu, mem, gpus, model),
        st.integers(0, 10_000),
        st.sampled_from([8_000, 32_000, 96_000]),
        st.sampled_from([16_384, 131_072]),
        st.integers(0, 8),
        st.sampled_from(MODELS),
    ),
    min_size=1,
    max_size=12,
)


@st.composite
def requests_st(draw: st.DrawFn) -> Request:
    kind = draw(st.sampled_from(["cpu", "share", "whole"]))
    models = frozenset(draw(st.sets(st.sampled_from(MODELS), max_size=2)))
    cpu = draw(st.sampled_from([0, 1000, 4000, 12_000, 40_000]))
    mem = draw(st.sampled_from([0, 1024, 16_384, 100_000]))
    if kind == "cpu":
        return Request(cpu_milli=cpu, memory_mib=mem)
    if kind == "share":
        milli = draw(st.sampled_from([50, 230, 470, 810]))
        return Request(
            cpu_milli=cpu, memory_mib=mem, gpu_count=1, gpu_milli=milli, gpu_models=models
        )
    count = draw(st.integers(1, 8))
    return Request(
        cpu_milli=cpu, memory_mib=mem, gpu_count=count, gpu_milli=MILLI, gpu_models=models
    )


def _fleet(nodes: list[NodeSpec]) -> Snapshot:
    return Snapshot.build(
        [
            NodeSpec(f"n{i}", n.cpu_milli, n.memory_mib, n.gpu_count, n.model)
            for i, n in enumerate(nodes)
        ]
    )


def _run(name: str, snap: Snapshot, requests: list[Request], seed: int) -> tuple[Snapshot, list]:  # type: ignore[type-arg]
    policy = make_policy(name, seed=seed, typical=WorkloadMix.typical(requests))
    placed = []
    for r in requests:
        d = policy.place(snap, r)
        if d.placed:
            # Every clause of the request holds on the chosen node, before allocation.
            assert snap.feasible(r)[d.node]
            assert len(d.gpus) == r.gpu_count and len(set(d.gpus)) == len(d.gpus)
            assert all(snap.gpu_free[d.node, g] >= r.gpu_milli for g in d.gpus)
            assert all(g < snap.gpu_count[d.node] for g in d.gpus)
            if r.gpu_models and r.gpu_count:
                assert snap.models[snap.model_idx[d.node]] in r.gpu_models
            assert (d.cpu_milli, d.memory_mib, d.milli) == (
                r.cpu_milli,
                r.memory_mib,
                r.gpu_milli if r.gpu_count else d.milli,
            )
            snap = snap.allocate(d, request=r)
            placed.append((d, r))
        else:
            assert not snap.feasible(r).any()
            assert d.explanation is not None and d.explanation.feasible == 0
        # Nothing is ever over-allocated.
        assert (snap.gpu_free >= 0).all() and (snap.gpu_free <= MILLI).all()
        assert (snap.cpu_free >= 0).all() and (snap.memory_free >= 0).all()
    return snap, placed


@settings(max_examples=40, deadline=None)
@given(
    nodes=nodes_st,
    requests=st.lists(requests_st(), min_size=1, max_size=25),
    seed=st.integers(0, 2**16),
    name=st.sampled_from(POLICY_NAMES),
)
def test_decisions_satisfy_requests_and_never_over_allocate(
    nodes: list[NodeSpec], requests: list[Request], seed: int, name: str
) -> None:
    _run(name, _fleet(nodes), requests, seed)


@settings(max_examples=25, deadline=None)
@given(
    nodes=nodes_st,
    requests=st.lists(requests_st(), min_size=1, max_size=20),
    seed=st.integers(0, 2**16),
    name=st.sampled_from(POLICY_NAMES),
)
def test_same_input_and_seed_give_the_same_decisions(
    nodes: list[NodeSpec], requests: list[Request], seed: int, name: str
) -> None:
    _, first = _run(name, _fleet(nodes), requests, seed)
    _, second = _run(name, _fleet(nodes), requests, seed)
    assert [d for d, _ in first] == [d for d, _ in second]


@settings(max_examples=30, deadline=None)
@given(
    nodes=nodes_st,
    requests=st.lists(requests_st(), min_size=1, max_size=25),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_freeing_everything_restores_the_snapshot_exactly(
    nodes: list[NodeSpec], requests: list[Request], seed: int, data: st.DataObject
) -> None:
    start = _fleet(nodes)
    end, placed = _run("stratum", start, requests, seed)
    # Release in an arbitrary order: the result must not depend on it.
    order = data.draw(st.permutations(range(len(placed))))
    for i in order:
        d, r = placed[i]
        end = end.release(d, request=r)
    assert end.same_state(start)
    assert np.array_equal(end.gpu_free, start.gpu_free)
