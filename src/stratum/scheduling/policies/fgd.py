"""FGD (Fragmentation Gradient Descent, Weng et al., USENIX ATC 2023): move the fleet down the
fragmentation gradient, the mix of "typical" requests being read from the whole trace in
advance.

score = ⌊100·sigmoid((F_before - F_after)/1000)⌋ for the node's fragmentation F under the
mix; for a GPU share every fitting GPU is tried and the best (lowest index on ties) is kept.
Scores of a request shape depend only on a node's row, so they are cached per shape and
recomputed only for rows whose generation changed since.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stratum.scheduling.decision import Decision
from stratum.scheduling.fragmentation import Shape, WorkloadMix, node_frag
from stratum.scheduling.policies.ranking import TieBreak
from stratum.scheduling.request import MILLI, Request
from stratum.scheduling.snapshot import Snapshot

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(slots=True)
class _ShapeScores:
    generation: IntArray
    score: IntArray
    gpu: IntArray


def frag_after(
    mix: WorkloadMix, allowed: BoolArray, snapshot: Snapshot, rows: IntArray, request: Request
) -> tuple[FloatArray, FloatArray]:
    """Fragmentation of ``rows`` before, and after placing the request on each of their GPU
    slots (for a share: shape (rows, W), NaN where the GPU does not fit; otherwise (rows, 1))."""
    cpu = snapshot.cpu_free[rows]
    g = snapshot.gpu_free[rows]
    model = snapshot.model_idx[rows]
    before = node_frag(mix, allowed, cpu, g, model)
    cpu_after = cpu - request.cpu_milli
    if request.is_sharing:
        d, w = g.shape
        after = np.repeat(g, w, axis=0).reshape(d, w, w)
        idx = np.arange(w)
        after[:, idx, idx] -= request.gpu_milli
        f = node_frag(
            mix, allowed, np.repeat(cpu_after, w), after.reshape(d * w, w), np.repeat(model, w)
        ).reshape(d, w)
        f[g < request.gpu_milli] = np.nan
        return before, f
    if request.gpu_count:
        full = g == MILLI
        take = full & (np.cumsum(full, axis=1) <= request.gpu_count)
        g = np.where(take, 0, g)
    return before, node_frag(mix, allowed, cpu_after, g, model)[:, None]


class FgdPolicy:
    name = "fgd"

    def __init__(self, *, seed: int, mix: WorkloadMix) -> None:
        self._tie = TieBreak(seed)
        self._mix = mix
        self._allowed: BoolArray | None = None
        self._lineage = -1
        self._cache: dict[Shape, _ShapeScores] = {}

    def _scores(self, snapshot: Snapshot, request: Request) -> _ShapeScores:
        if snapshot.lineage != self._lineage:
            self._lineage = snapshot.lineage
            self._cache.clear()
            self._allowed = self._mix.allowed(snapshot.models)
        assert self._allowed is not None
        entry = self._cache.get(request.shape)
        if entry is None:
            n = snapshot.size
            entry = _ShapeScores(
                generation=np.full(n, -1, dtype=np.int64),
                score=np.zeros(n, dtype=np.int64),
                gpu=np.zeros(n, dtype=np.int64),
            )
            self._cache[request.shape] = entry
        rows = np.flatnonzero(entry.generation != snapshot.node_generation)
        if len(rows):
            before, after = frag_after(self._mix, self._allowed, snapshot, rows, request)
            with np.errstate(invalid="ignore"):
                s = np.floor(100.0 / (1.0 + np.exp(-(before[:, None] - after) / 1000.0)))
            s = np.where(np.isnan(s), -1.0, s)
            best = s.argmax(axis=1)
            entry.score[rows] = np.maximum(s[np.arange(len(rows)), best], 0).astype(np.int64)
            entry.gpu[rows] = best
            entry.generation[rows] = snapshot.node_generation[rows]
        return entry

    def place(self, snapshot: Snapshot, request: Request) -> Decision:
        feasible = snapshot.feasible(request)
        entry = self._scores(snapshot, request)
        node = self._tie.pick(snapshot, entry.score, feasible)
        if node < 0:
            return snapshot.fail(request)
        if request.is_sharing:
            gpus: tuple[int, ...] = (int(entry.gpu[node]),)
        else:
            gpus = snapshot.tightest_gpus(node, request)
        return snapshot.decide(node, gpus, request, float(entry.score[node]))
