"""What the learned mix will need of capacity only some nodes have, so that Stratum keeps it:
GPU models that pinned requests depend on, and whole free nodes for multi-GPU requests.

Both terms are zero on a mix that needs neither (no pinned requests; whole nodes plentiful), so
they leave the policy's packing alone where it is not at risk.

* Model pressure: a request pinned to models A can only use A. ``model_pressure`` is, per
  model, the pinned GPU demand the mix sends to it (spread over A in proportion to GPUs) per
  GPU of it, relative to the fleet's: 1 means pinned requests alone would fill that model by
  the time the fleet fills. A request that may use several models is steered to the least
  pressed among them (FGD's fragment does this only weakly, through the pinned types' weight).
* Multi-GPU reserve: a request for k whole GPUs and c CPU needs a node with k free GPUs and c
  free CPU at once. For each such class of the mix, ``SlotReserve`` counts the slots the fleet
  still has and the requests of the class expected before the fleet fills (its share of the
  mix's GPU demand x the free GPU); when slots run short of that, a placement that takes a
  slot from the class is avoided where another feasible node does not. Without it, shares and
  CPU-only requests spread over the few nodes that can host the largest requests and those
  fail while most of the fleet is free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from stratum.scheduling.fragmentation import Shape
from stratum.scheduling.request import MILLI, Request
from stratum.scheduling.snapshot import Snapshot

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def _model_gpus(snapshot: Snapshot) -> FloatArray:
    out: FloatArray = np.bincount(
        snapshot.model_idx, weights=snapshot.gpu_count, minlength=len(snapshot.models)
    ).astype(np.float64)
    return out


def _allows(models: frozenset[str], fleet_models: tuple[str, ...]) -> BoolArray:
    if not models:
        return np.ones(len(fleet_models), dtype=np.bool_)
    return np.array([m in models for m in fleet_models], dtype=np.bool_)


def model_pressure(weights: Mapping[Shape, float], snapshot: Snapshot) -> FloatArray:
    """Per model of the snapshot: pinned GPU demand per GPU of the model, relative to the
    whole mix's GPU demand per GPU of the fleet (0 for every model when nothing is pinned)."""
    gpus = _model_gpus(snapshot)
    out = np.zeros(len(snapshot.models))
    total = 0.0
    for (_cpu, milli, count, models), w in weights.items():
        demand = w * milli * count
        total += demand
        if not models or not demand:
            continue
        reach = _allows(models, snapshot.models) * gpus
        if reach.sum() > 0:
            out += demand * reach / reach.sum()
    if total <= 0:
        return out
    per_gpu = np.divide(out, gpus, out=np.zeros_like(out), where=gpus > 0)
    result: FloatArray = per_gpu / (total / max(gpus.sum(), 1.0))
    return result


def pinned_share(weights: Mapping[Shape, float]) -> float:
    """The share of the mix's GPU demand pinned to GPU models (0 without GPU demand)."""
    total = pinned = 0.0
    for (_cpu, milli, count, models), w in weights.items():
        total += w * milli * count
        if models:
            pinned += w * milli * count
    return pinned / total if total > 0 else 0.0


class SlotReserve:
    """Slots for the mix's multi-GPU classes (k whole GPUs, c CPU, allowed models), kept per
    node and updated only for nodes that changed."""

    __slots__ = (
        "_allowed",
        "_always",
        "_cpu",
        "_generation",
        "_holds",
        "_k",
        "_lineage",
        "_share",
        "_slots",
        "_total",
        "margin",
    )

    def __init__(
        self,
        weights: Mapping[Shape, float],
        snapshot: Snapshot,
        *,
        margin: float,
        max_classes: int = 8,
    ) -> None:
        demand = {s: w * s[1] * s[2] for s, w in weights.items()}
        total = sum(demand.values())
        classes: dict[tuple[int, int, frozenset[str]], float] = {}
        for (cpu, milli, count, models), d in demand.items():
            if count > 1 and milli == MILLI and d > 0:
                key = (count, cpu, models)
                classes[key] = classes.get(key, 0.0) + d
        chosen = sorted(classes.items(), key=lambda kv: -kv[1])[:max_classes]
        share = [d / total for _, d in chosen] if total > 0 else [0.0] * len(chosen)
        self._setup([c for c, _ in chosen], share, snapshot, margin)

    @classmethod
    def always(
        cls, classes: Sequence[tuple[int, int, frozenset[str]]], snapshot: Snapshot
    ) -> SlotReserve:
        """A reserve for ``classes`` (k GPUs, CPU, allowed models) that counts every one of
        them as scarce, whatever is left (``taken`` then measures what a placement costs them)."""
        out = cls.__new__(cls)
        out._setup(list(classes), [0.0] * len(classes), snapshot, 1.0)
        out._always = True
        return out

    def _setup(
        self,
        chosen: list[tuple[int, int, frozenset[str]]],
        share: list[float],
        snapshot: Snapshot,
        margin: float,
    ) -> None:
        self.margin = margin
        self._always = False
        self._k = np.array([c[0] for c in chosen], dtype=np.int64)
        self._cpu = np.maximum(np.array([c[1] for c in chosen], dtype=np.int64), 1)
        self._allowed = np.array(
            [_allows(c[2], snapshot.models) for c in chosen], dtype=np.bool_
        ).reshape(len(chosen), len(snapshot.models))
        #: share of the mix's GPU demand per class
        self._share = np.array(share, dtype=np.float64)
        self._lineage = -1
        self._generation: IntArray = np.zeros(0, dtype=np.int64)
        self._slots: IntArray = np.zeros((0, len(chosen)), dtype=np.int64)
        self._total: IntArray = np.zeros(len(chosen), dtype=np.int64)
        #: per node, whether it holds a slot of any class
        self._holds: BoolArray = np.zeros(0, dtype=np.bool_)

    def __len__(self) -> int:
        return len(self._k)

    def _slots_of(self, full: IntArray, cpu: IntArray, model: IntArray) -> IntArray:
        """(rows x classes): requests of each class the rows could still host."""
        by_gpu = full[:, None] // self._k[None, :]
        by_cpu = cpu[:, None] // self._cpu[None, :]
        out: IntArray = np.minimum(by_gpu, by_cpu) * self._allowed.T[model]
        return out

    def _refresh(self, snapshot: Snapshot) -> None:
        if snapshot.lineage != self._lineage or len(self._generation) != snapshot.size:
            self._lineage = snapshot.lineage
            self._slots = self._slots_of(snapshot.gpu_full, snapshot.cpu_free, snapshot.model_idx)
            self._generation = snapshot.node_generation.copy()
            self._total = self._slots.sum(axis=0)
            self._holds = np.asarray(self._slots.any(axis=1), dtype=np.bool_)
            return
        stale = np.flatnonzero(self._generation != snapshot.node_generation)
        if len(stale):
            new = self._slots_of(
                snapshot.gpu_full[stale], snapshot.cpu_free[stale], snapshot.model_idx[stale]
            )
            self._total += (new - self._slots[stale]).sum(axis=0)
            self._slots[stale] = new
            self._holds[stale] = new.any(axis=1)
            self._generation[stale] = snapshot.node_generation[stale]

    def left(self, snapshot: Snapshot) -> int:
        """Slots of all classes the fleet still has."""
        self._refresh(snapshot)
        return int(self._total.sum())

    def scarce(self, snapshot: Snapshot) -> BoolArray:
        """Classes whose slots are fewer than ``margin`` x the requests expected to come."""
        self._refresh(snapshot)
        if self._always:
            return np.ones(len(self._k), dtype=np.bool_)
        free = float(snapshot.gpu_free_total.sum())
        expected = self._share * free / (self._k * MILLI)
        out: BoolArray = self._total < self.margin * expected
        return out

    def taken(
        self, snapshot: Snapshot, rows: IntArray, request: Request, gpus: IntArray
    ) -> FloatArray:
        """GPUs' worth of slots of scarce classes that placing ``request`` on each of ``rows``
        takes (``gpus``: for a share, the GPU it would take on each row); 0 when no class is
        scarce."""
        scarce = self.scarce(snapshot)
        out = np.zeros(len(rows))
        if not scarce.any() or not len(rows):
            return out
        cols = np.flatnonzero(scarce)
        k = self._k[cols]
        # Only rows holding a slot of a scarce class can lose one.
        at = np.flatnonzero(self._holds[rows])
        if len(at) and len(cols) < len(self._k):
            at = at[self._slots[rows[at]][:, cols].any(axis=1)]
        if not len(at):
            return out
        sub = rows[at]
        before = self._slots[sub][:, cols]
        full = snapshot.gpu_full[sub]
        if request.is_sharing:
            after_full = full - (snapshot.gpu_free[sub, gpus[at]] == MILLI)
        elif request.gpu_milli == MILLI:
            after_full = full - request.gpu_count
        else:
            after_full = full
        cpu_after = snapshot.cpu_free[sub] - request.cpu_milli
        by_gpu = after_full[:, None] // k[None, :]
        by_cpu = cpu_after[:, None] // self._cpu[cols][None, :]
        after = np.minimum(by_gpu, by_cpu) * self._allowed[cols].T[snapshot.model_idx[sub]]
        out[at] = (before - after) @ k
        return out


def scarce_classes(
    weights: Mapping[Shape, float], snapshot: Snapshot, share: float
) -> list[tuple[int, int, frozenset[str]]]:
    """Requests of whole GPUs that at most ``share`` of the fleet's nodes could ever host (on
    an empty node), whether the mix asks for them or not: from the fleet, for each GPU count
    k, "k GPUs and more CPU than the next node down offers" (the largest requests some node
    shapes alone can take); from the learned mix, each class of k > 1 whole GPUs seen. The
    nodes able to host them are few, and a request that fits elsewhere should leave them be.
    """
    g, c = snapshot.gpu_count, snapshot.cpu_capacity
    limit = share * snapshot.size
    out: set[tuple[int, int, frozenset[str]]] = set()

    def reach(k: int, cpu: int) -> int:
        return int(((g >= k) & (c >= cpu)).sum())

    for k in np.unique(g[g > 0]).tolist():
        levels = np.unique(c[g >= k]).tolist()
        for below, level in pairwise(levels):
            if 0 < reach(k, below + 1) <= limit:
                out.add((k, below + 1, frozenset()))
                out.add((k, level, frozenset()))
    for cpu, milli, count, models in weights:
        if count > 1 and milli == MILLI and 0 < reach(count, cpu) <= limit:
            out.add((count, cpu, models))
    return sorted(out, key=lambda t: (t[0], t[1], sorted(t[2])))


def request_reach(snapshot: Snapshot, request: Request) -> int:
    """How many nodes of the fleet could host ``request`` on an empty node (GPU count, CPU,
    memory and models; not what is free now)."""
    ok = (
        (snapshot.gpu_count >= request.gpu_count)
        & (snapshot.cpu_capacity >= request.cpu_milli)
        & (snapshot.memory_capacity >= request.memory_mib)
        & snapshot.model_mask(request)
    )
    return int(ok.sum())
