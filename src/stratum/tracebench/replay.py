"""The B1 protocol of BENCHMARKS.md (the FGD paper's): for one seed, shuffle and tune the pod
list to a share of the cluster's GPU capacity, place pods one at a time with no retry, and
record after each pod the arrived GPU request and the allocated GPU, both as % of capacity.

Curves are then reduced to buckets of arrived % 0..130, as the paper's analysis does: the
value of bucket x is the mean allocated % over pods whose rounded arrived % is x (or, if
none, x±1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stratum.scheduling.fragmentation import WorkloadMix, node_frag
from stratum.scheduling.policies import Policy
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import Snapshot
from stratum.tracebench.trace import tune

FloatArray = NDArray[np.float64]
BUCKETS = 131
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """One policy, one seed."""

    policy: str
    seed: int
    pods: int
    placed: int
    failed: int
    #: per bucket 0..130: mean allocated GPU % (NaN where the run never got there)
    alloc_pct: FloatArray
    #: per bucket: the fleet's fragmentation under the measurement mix, % of capacity
    frag_pct: FloatArray
    #: first bucket x whose allocated % is at least 1 below x, i.e. ≥ 1% of capacity failed,
    #: computed on the bucket curve as the paper's summary does (NaN if never)
    first_failed_bucket: float
    #: seconds spent inside ``place`` and ``allocate`` (0 without a clock)
    decision_seconds: float
    final: Snapshot

    @property
    def unalloc_pct(self) -> FloatArray:
        out: FloatArray = 100.0 - self.alloc_pct
        return out

    def unalloc_at(self, bucket: int) -> float:
        return float(100.0 - self.alloc_pct[bucket])

    @property
    def decisions_per_s(self) -> float:
        return self.pods / self.decision_seconds if self.decision_seconds > 0 else float("nan")


def bucketize(arrived_pct: FloatArray, values: FloatArray) -> FloatArray:
    """Mean of ``values`` per rounded arrived % (0..130), falling back to the ±1 window."""
    key = np.round(arrived_pct).astype(np.int64)
    out = np.full(BUCKETS, np.nan)
    inside = (key >= 0) & (key < BUCKETS)
    sums = np.bincount(key[inside], weights=values[inside], minlength=BUCKETS)[:BUCKETS]
    counts = np.bincount(key[inside], minlength=BUCKETS)[:BUCKETS]
    have = counts > 0
    out[have] = sums[have] / counts[have]
    for x in np.flatnonzero(~have):
        window = (key >= x - 1) & (key <= x + 1)
        if window.any():
            out[x] = float(values[window].mean())
    return out


def replay(
    snapshot: Snapshot,
    pods: Sequence[Request],
    order: Sequence[int],
    policy: Policy,
    *,
    seed: int = 0,
    measure_mix: WorkloadMix | None = None,
    clock: Clock | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Place ``pods[order[0]], pods[order[1]], ...`` one at a time on ``snapshot``."""
    total = snapshot.total_gpu_milli
    n = len(order)
    arrived = np.zeros(n)
    alloc = np.zeros(n)
    frag_points: list[tuple[float, float]] = []
    allowed = measure_mix.allowed(snapshot.models) if measure_mix is not None else None
    arrived_milli = used_milli = 0
    placed = 0
    last_bucket = -1
    spent = 0.0
    for i, p in enumerate(order):
        request = pods[p]
        arrived_milli += request.gpu_total_milli
        if clock is not None:
            t0 = clock()
            decision = policy.place(snapshot, request)
            if decision.placed:
                snapshot = snapshot.allocate(decision, request=request)
            spent += clock() - t0
        else:
            decision = policy.place(snapshot, request)
            if decision.placed:
                snapshot = snapshot.allocate(decision, request=request)
        if decision.placed:
            used_milli += request.gpu_total_milli
            placed += 1
        arrived[i] = 100.0 * arrived_milli / total
        alloc[i] = 100.0 * used_milli / total
        bucket = round(arrived[i])
        if measure_mix is not None and allowed is not None and bucket != last_bucket:
            last_bucket = bucket
            f = node_frag(
                measure_mix,
                allowed,
                snapshot.cpu_free,
                snapshot.gpu_free,
                snapshot.model_idx,
            )
            frag_points.append((arrived[i], 100.0 * float(f.sum()) / total))
        if on_progress is not None:
            on_progress(i + 1)
    if frag_points:
        fp = np.array(frag_points)
        frag = bucketize(fp[:, 0], fp[:, 1])
    else:
        frag = np.full(BUCKETS, np.nan)
    alloc_curve = bucketize(arrived, alloc)
    behind = np.flatnonzero(np.arange(BUCKETS) - np.nan_to_num(alloc_curve, nan=np.inf) >= 1.0)
    first_failed = float(behind[0]) if len(behind) else float("nan")
    return ReplayResult(
        policy=policy.name,
        seed=seed,
        pods=n,
        placed=placed,
        failed=n - placed,
        alloc_pct=alloc_curve,
        frag_pct=frag,
        first_failed_bucket=first_failed,
        decision_seconds=spent,
        final=snapshot,
    )


def run_seed(
    snapshot: Snapshot,
    pods: Sequence[Request],
    policy_factory: Callable[[int], Policy],
    *,
    seed: int,
    tune_ratio: float = 1.3,
    measure_mix: WorkloadMix | None = None,
    clock: Clock | None = None,
    on_progress: Callable[[int], None] | None = None,
    phases: Sequence[int] = (),
) -> ReplayResult:
    """One seed of the protocol: tune the list with the seed (within ``phases``, if given),
    then replay it."""
    order = tune(pods, snapshot.total_gpu_milli, tune_ratio, seed, phases)
    return replay(
        snapshot,
        pods,
        order,
        policy_factory(seed),
        seed=seed,
        measure_mix=measure_mix,
        clock=clock,
        on_progress=on_progress,
    )
