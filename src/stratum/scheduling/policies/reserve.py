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
  free CPU at once. For each such class of the mix (``mix_classes``), ``SlotBook`` counts the
  slots the fleet still has, and ``SlotBook.short`` compares them with the requests of the
  class expected before the fleet fills (its share of the mix's GPU demand x the free GPU);
  when slots run short of that, a placement that takes a slot from the class is avoided where
  another feasible node does not. Without it, shares and CPU-only requests spread over the
  few nodes that can host the largest requests and those fail while most of the fleet is
  free.
* Scarce capabilities (``scarce_classes``): requests that few nodes of the fleet could ever
  host, asked for yet or not; the same book counts their slots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


_BITS = 63

SlotClass = tuple[int, int, frozenset[str]]
"""A class of multi-GPU request: k whole GPUs, CPU milli, the models it allows (empty: any)."""


def mix_classes(weights: Mapping[Shape, float], *, max_classes: int = 8) -> dict[SlotClass, float]:
    """The mix's classes of k > 1 whole GPUs (the ``max_classes`` asking most GPU) and each
    one's share of the mix's GPU demand."""
    demand = {s: w * s[1] * s[2] for s, w in weights.items()}
    total = sum(demand.values())
    classes: dict[SlotClass, float] = {}
    for (cpu, milli, count, models), d in demand.items():
        if count > 1 and milli == MILLI and d > 0:
            key = (count, cpu, models)
            classes[key] = classes.get(key, 0.0) + d
    chosen = sorted(classes.items(), key=lambda kv: -kv[1])[:max_classes]
    return {c: d / total for c, d in chosen}


class SlotBook:
    """Per node, how many requests of each class it could still host ("slots"), brought up
    to date for the rows that changed since the last snapshot seen; and what placing a
    request would take of them. One book serves every reserve of a policy: the slots are
    counted once per decision however many reserves read them. It reads the nodes' free
    CPU, full GPUs and models, never free memory (the placeholder by which gang.policy_pick
    hides the rows a decision may not use)."""

    __slots__ = (
        "_all",
        "_allowed",
        "_bit",
        "_columns",
        "_cpu",
        "_generation",
        "_holds",
        "_k",
        "_lineage",
        "_seen",
        "_slots",
        "_total",
        "classes",
    )

    def __init__(self, classes: Sequence[SlotClass], snapshot: Snapshot) -> None:
        self.classes = tuple(classes)
        self._k = np.array([c[0] for c in self.classes], dtype=np.int64)
        self._cpu = np.maximum(np.array([c[1] for c in self.classes], dtype=np.int64), 1)
        self._allowed = np.array(
            [_allows(c[2], snapshot.models) for c in self.classes], dtype=np.bool_
        ).reshape(len(self.classes), len(snapshot.models))
        self._lineage = -1
        #: the snapshot generation the slots were last brought up to (-1: never)
        self._seen = -1
        self._generation: IntArray = np.zeros(0, dtype=np.int64)
        self._slots: IntArray = np.zeros((0, len(self.classes)), dtype=np.int64)
        self._total: IntArray = np.zeros(len(self.classes), dtype=np.int64)
        #: per node, the classes it holds a slot of, one bit each (classes past the 63rd
        #: share the last bit, which then only says "one of them": see ``_holding``)
        self._bit = np.left_shift(1, np.minimum(np.arange(len(self.classes)), _BITS - 1))
        self._holds: IntArray = np.zeros(0, dtype=np.int64)
        self._columns: dict[bytes, _Columns] = {}
        self._all = self._of(np.ones(len(self.classes), dtype=np.bool_))

    def __len__(self) -> int:
        return len(self.classes)

    def column(self, classes: Sequence[SlotClass]) -> BoolArray:
        """The book's columns of ``classes`` (a mask over its classes)."""
        wanted = set(classes)
        return np.array([c in wanted for c in self.classes], dtype=np.bool_)

    @staticmethod
    def _slots_of(full: IntArray, cpu: IntArray, model: IntArray, of: _Columns) -> IntArray:
        """(rows x ``of``'s classes): requests of each class the rows could still host with
        ``full`` whole GPUs and ``cpu`` free."""
        by_gpu = full[:, None] // of.k[None, :]
        by_cpu = cpu[:, None] // of.cpu[None, :]
        out: IntArray = np.minimum(by_gpu, by_cpu) * of.allowed[model]
        return out

    def _of(self, wanted: BoolArray) -> _Columns:
        """The columns of ``wanted`` classes and their tables (a decision asks for one of a
        few masks again and again)."""
        key = wanted.tobytes()
        found = self._columns.get(key)
        if found is None:
            cols = wanted.nonzero()[0]
            found = _Columns(
                cols=cols,
                k=self._k[cols],
                cpu=self._cpu[cols],
                allowed=self._allowed[cols].T,
                bits=int(np.bitwise_or.reduce(self._bit[cols])) if len(cols) else 0,
                shared=len(self.classes) > _BITS and bool(len(cols)) and cols[-1] >= _BITS - 1,
            )
            self._columns[key] = found
        return found

    def _refresh(self, snapshot: Snapshot) -> None:
        # A policy follows one line of states (gang.policy_pick), so within a lineage the
        # snapshot's generation says which rows changed: none when it is the one last seen.
        if (
            snapshot.lineage == self._lineage
            and snapshot.generation == self._seen
            and len(self._generation) == snapshot.size
        ):
            return
        self._seen = snapshot.generation
        if snapshot.lineage != self._lineage or len(self._generation) != snapshot.size:
            self._lineage = snapshot.lineage
            self._slots = self._slots_of(
                snapshot.gpu_full, snapshot.cpu_free, snapshot.model_idx, self._all
            )
            self._generation = snapshot.node_generation.copy()
            self._total = self._slots.sum(axis=0)
            self._holds = self._bits(self._slots)
            return
        stale = (self._generation != snapshot.node_generation).nonzero()[0]
        if len(stale):
            new = self._slots_of(
                snapshot.gpu_full[stale],
                snapshot.cpu_free[stale],
                snapshot.model_idx[stale],
                self._all,
            )
            self._total += (new - self._slots[stale]).sum(axis=0)
            self._slots[stale] = new
            self._holds[stale] = self._bits(new)
            self._generation[stale] = snapshot.node_generation[stale]

    def _bits(self, slots: IntArray) -> IntArray:
        out: IntArray = np.bitwise_or.reduce(np.where(slots > 0, self._bit, 0), axis=1)
        return out

    def _holding(self, rows: IntArray, of: _Columns) -> IntArray:
        """Positions in ``rows`` of the nodes holding a slot of one of ``of``'s classes."""
        at = (self._holds[rows] & of.bits).nonzero()[0]
        if len(at) and of.shared:
            # Past the 63rd class a bit is shared: check the slots themselves.
            at = at[self._slots[rows[at]][:, of.cols].any(axis=1)]
        return at

    def left(self, snapshot: Snapshot) -> IntArray:
        """Per class, the slots the fleet still has."""
        self._refresh(snapshot)
        return self._total.copy()

    def short(self, snapshot: Snapshot, share: FloatArray, margin: float) -> BoolArray:
        """Classes with fewer slots left than ``margin`` x the requests of the class expected
        before the fleet fills (``share``: each class's share of the GPU demand; a class
        with none is never short)."""
        self._refresh(snapshot)
        free = float(snapshot.gpu_free_total.sum())
        expected = share * free / (self._k * MILLI)
        out: BoolArray = self._total < margin * expected
        return out

    def taken(
        self,
        snapshot: Snapshot,
        rows: IntArray,
        request: Request,
        gpus: IntArray,
        groups: Sequence[BoolArray],
    ) -> list[FloatArray]:
        """For each group of classes (a mask over the book's), the GPUs' worth of its slots
        that placing ``request`` on each of ``rows`` takes (``gpus``: for a share, the GPU it
        would take on each row)."""
        self._refresh(snapshot)
        outs = [np.zeros(len(rows)) for _ in groups]
        if not len(rows) or not groups:
            return outs
        of = self._of(groups[0] if len(groups) == 1 else np.logical_or.reduce(groups))
        # Only rows holding a slot of a wanted class can lose one.
        at = self._holding(rows, of)
        if not len(at):
            return outs
        sub = rows[at]
        full = snapshot.gpu_full[sub]
        if request.is_sharing:
            full = full - (snapshot.gpu_free[sub, gpus[at]] == MILLI)
        elif request.gpu_milli == MILLI:
            full = full - request.gpu_count
        cpu_after = snapshot.cpu_free[sub] - request.cpu_milli
        after = self._slots_of(full, cpu_after, snapshot.model_idx[sub], of)
        lost = (self._slots[sub][:, of.cols] - after) * of.k
        for out, group in zip(outs, groups, strict=True):
            out[at] = lost @ group[of.cols]
        return outs


@dataclass(frozen=True, slots=True)
class _Columns:
    """Some of a book's classes: their columns, GPU counts, CPU, models allowed (models x
    classes) and the bits of ``SlotBook._holds`` that stand for them."""

    cols: IntArray
    k: IntArray
    cpu: IntArray
    allowed: BoolArray
    bits: int
    #: a class past the 63rd is among them (its bit is shared: see _holding)
    shared: bool


def scarce_classes(
    weights: Mapping[Shape, float], snapshot: Snapshot, share: float
) -> list[SlotClass]:
    """Requests of whole GPUs that at most ``share`` of the fleet's nodes could ever host (on
    an empty node), whether the mix asks for them or not: from the fleet, for each GPU count
    k, "k GPUs and more CPU than the next node down offers" (the largest requests some node
    shapes alone can take); from the learned mix, each class of k > 1 whole GPUs seen. The
    nodes able to host them are few, and a request that fits elsewhere should leave them be.
    """
    g, c = snapshot.gpu_count, snapshot.cpu_capacity
    limit = share * snapshot.size
    out: set[SlotClass] = set()

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
