"""GPU fragmentation as FGD defines it: how much free GPU a node holds that the expected mix
of requests could not use.

For a request type t (CPU, per-GPU milli m, count k, allowed models) a node's fragment is all
its free milli-GPU when t cannot run there at all (CPU-only t, model not allowed, not enough
CPU or GPUs), and otherwise the free milli on GPUs with less than m free. A node's
fragmentation is the mix-weighted sum over types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stratum.scheduling.request import Request

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Shape = tuple[int, int, int, frozenset[str]]


@dataclass(frozen=True, slots=True, eq=False)
class WorkloadMix:
    """A distribution over request shapes (weights sum to 1)."""

    cpu: IntArray
    milli: IntArray
    count: IntArray
    models: tuple[frozenset[str], ...]
    weight: FloatArray
    # Distinct per-GPU milli thresholds, and each type's column among them.
    thresholds: IntArray
    column: IntArray

    @classmethod
    def from_weights(cls, weights: Mapping[Shape, float]) -> WorkloadMix:
        shapes = [s for s, w in weights.items() if w > 0]
        if not shapes:
            raise ValueError("a workload mix needs at least one shape with weight > 0")
        w = np.array([weights[s] for s in shapes], dtype=np.float64)
        milli = np.array([s[1] for s in shapes], dtype=np.int64)
        thresholds, column = np.unique(milli, return_inverse=True)
        return cls(
            cpu=np.array([s[0] for s in shapes], dtype=np.int64),
            milli=milli,
            count=np.array([s[2] for s in shapes], dtype=np.int64),
            models=tuple(s[3] for s in shapes),
            weight=w / w.sum(),
            thresholds=thresholds.astype(np.int64),
            column=column.astype(np.int64).reshape(-1),
        )

    @classmethod
    def typical(cls, requests: Iterable[Request], coverage: float = 0.95) -> WorkloadMix:
        """FGD's "typical pods": the most frequent shapes until they cover ``coverage`` of the
        requests, renormalised."""
        counts = Counter(r.shape for r in requests)
        total = sum(counts.values())
        if total == 0:
            raise ValueError("no requests to learn a mix from")
        chosen: dict[Shape, float] = {}
        covered = 0
        # Ties in frequency keep first-seen order (Counter preserves insertion order).
        for shape, n in counts.most_common():
            chosen[shape] = float(n)
            covered += n
            if covered >= coverage * total:
                break
        return cls.from_weights(chosen)

    def __len__(self) -> int:
        return len(self.weight)

    def allowed(self, models: tuple[str, ...]) -> BoolArray:
        """(types x snapshot models): may type t run on a GPU of that model."""
        out = np.ones((len(self.weight), len(models)), dtype=np.bool_)
        for t, allow in enumerate(self.models):
            if allow:
                out[t] = [m in allow for m in models]
        return out


def frag_by_type(
    mix: WorkloadMix,
    allowed: BoolArray,
    cpu: IntArray,
    gpu: IntArray,
    model_idx: IntArray,
) -> FloatArray:
    """Fragment of each node (rows of ``gpu``) for each type: shape (nodes, types)."""
    total = gpu.sum(axis=1)
    # One pass per distinct threshold rather than per type: types share thresholds.
    ge = gpu[:, :, None] >= mix.thresholds[None, None, :]
    cnt = ge.sum(axis=1)
    below = np.where(ge, 0, gpu[:, :, None]).sum(axis=1)
    col = mix.column
    fits = cnt[:, col] >= mix.count[None, :]
    fits &= cpu[:, None] >= mix.cpu[None, :]
    fits &= allowed[:, model_idx].T
    fits &= (mix.count > 0)[None, :]
    out: FloatArray = np.where(fits, below[:, col], total[:, None]).astype(np.float64)
    return out


def node_frag(
    mix: WorkloadMix,
    allowed: BoolArray,
    cpu: IntArray,
    gpu: IntArray,
    model_idx: IntArray,
) -> FloatArray:
    """Expected fragment of each node under the mix, in milli-GPU."""
    result: FloatArray = frag_by_type(mix, allowed, cpu, gpu, model_idx) @ mix.weight
    return result


class BlendedFrag:
    """FGD's fragment blended with a capacity-aware one, in milli-GPU per node.

    FGD asks whether *one* request of type t still fits a node; that misses a node whose CPU
    is enough for one more GPU request but not for its eight free GPUs. The capacity-aware
    fragment counts, for each type, the free GPU that as many copies of t as the node's
    GPUs and CPU can hold would still leave idle: G - min(n_t*R_t, G) with
    n_t = min(GPU slots for t, cpu // cpu_t). FGD's own fragment is the special case
    "fits iff n_t >= 1", so both come out of one pass.

    Types that differ only in the models they allow share one column: on a node of model M
    a type either runs (its fragment depends on CPU and GPUs only) or not (all free GPU is
    fragment), so the mix folds into per-model weights of the distinct (CPU, milli, count)
    shapes. A mix with many pinned variants of few shapes costs what the few shapes cost.
    Tables that depend only on the mix and the fleet's model list are built once here: this
    runs on every decision.
    """

    __slots__ = (
        "_big",
        "_columns",
        "_cpu_div",
        "_k_div",
        "_need",
        "_rest",
        "_run_w",
        "_shapes",
        "_table",
        "_uniform",
        "_w_cap",
        "_w_fgd",
    )

    def __init__(self, mix: WorkloadMix, models: tuple[str, ...], capacity_weight: float):
        gpu = mix.count > 0
        # Distinct GPU shapes (cpu, milli, count) and each GPU type's column among them.
        keys = np.stack((mix.cpu[gpu], mix.milli[gpu], mix.count[gpu]), axis=1)
        if len(keys):
            shapes, column = np.unique(keys, axis=0, return_inverse=True)
        else:
            shapes, column = np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64)
        cpu, milli, k = shapes[:, 0], shapes[:, 1], shapes[:, 2]
        thresholds, col = np.unique(milli, return_inverse=True)
        col = col.reshape(-1)
        # What one GPU with v free milli (0..MILLI) adds to a node's sums, per threshold m:
        # v if v >= m (free milli at or above the shape's), v // m (slots of m it offers),
        # and v itself (the node's free total, last column). A lookup replaces comparisons
        # and integer divisions over (rows x GPUs x thresholds) on every decision.
        # All of it in int32: the sums stay within a few thousand per node and halving the
        # bytes halves the time of the decisions that score hundreds of rows; the results
        # are the same integers (free CPU is capped at _CPU_CAP, a half-million cores).
        thr = np.maximum(thresholds, 1)
        v = np.arange(MILLI_GPU + 1, dtype=np.int64)[:, None]
        table = np.concatenate((np.where(v >= thr, v, 0), v // thr, v), axis=1)
        self._table = table.astype(np.int32)
        # Columns of the per-node sums for each shape: at-or-above, then slots, then total.
        self._columns = np.concatenate((col, len(thr) + col, [2 * len(thr)]))
        self._shapes = len(shapes)
        share = milli < MILLI_GPU
        self._k_div = np.where(share, 1, np.maximum(k, 1)).astype(np.int32)[None, :]
        self._cpu_div = np.minimum(np.maximum(cpu, 1), _CPU_CAP).astype(np.int32)[None, :]
        # CPU-free types are never limited by CPU: lift their CPU slots out of reach.
        self._big = np.where(cpu > 0, 0, _CPU_CAP).astype(np.int32)[None, :]
        self._need = (milli * k).astype(np.int32)[None, :]
        # (models x shapes): weight of the types of each shape that may run on the model.
        run_w = np.zeros((len(models), len(shapes)))
        allowed = mix.allowed(models)[gpu]
        np.add.at(run_w.T, column.reshape(-1), allowed * mix.weight[gpu][:, None])
        self._run_w = run_w
        # The rest of the weight (CPU-only types, types barred from the model) sees all free
        # GPU as fragment.
        self._rest = 1.0 - run_w.sum(axis=1)
        self._w_fgd = 1.0 - capacity_weight
        self._w_cap = capacity_weight
        # Without pins every model weighs the shapes alike: two matrix-vector products.
        self._uniform = (
            (run_w[0] * self._w_fgd, run_w[0] * self._w_cap, float(self._rest[0]))
            if len(models) and np.array_equal(run_w, np.broadcast_to(run_w[0], run_w.shape))
            else None
        )

    def __call__(self, cpu: IntArray, gpu: IntArray, model_idx: IntArray) -> FloatArray:
        """Fragment of each row; ``gpu`` holds free milli per GPU, each within 0..1000."""
        # (GPUs x rows x sums): adding up whole (rows x sums) slabs is twice as fast as
        # reducing the middle axis of (rows x GPUs x sums).
        sums = self._table.take(gpu.T, axis=0).sum(axis=0, dtype=np.int32)[:, self._columns]
        s = self._shapes
        at_or_above = sums[:, :s]
        slots = sums[:, s : 2 * s] // self._k_div
        total = sums[:, -1]
        cpu32 = np.minimum(cpu, _CPU_CAP).astype(np.int32)
        n = np.minimum(slots, cpu32[:, None] // self._cpu_div + self._big)
        t = total[:, None]
        # FGD: all free GPU if the shape fits nowhere on the node, else the free GPU below its
        # milli; capacity-aware: what as many copies as fit would leave idle.
        fgd = np.where(n > 0, t - at_or_above, t)
        idle = t - np.minimum(n * self._need, t)
        if self._uniform is not None:
            w_fgd, w_cap, rest = self._uniform
            uniform: FloatArray = fgd @ w_fgd + idle @ w_cap + rest * total
            return uniform
        frag = self._w_fgd * fgd + self._w_cap * idle
        out: FloatArray = (frag * self._run_w[model_idx]).sum(axis=1) + self._rest[
            model_idx
        ] * total
        return out


MILLI_GPU = 1000
#: free CPU above this (milli: about 537,000 cores) counts as this much in the fragment, so
#: that its int32 arithmetic cannot overflow; no node comes near it
_CPU_CAP = 1 << 29
