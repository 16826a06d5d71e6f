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
