"""An immutable, numpy-backed picture of the fleet that placement reads.

One row per node: free CPU and memory, free milli-GPU per GPU, GPU model, and the count of
pods it holds per request class. ``allocate`` and ``release`` return a new snapshot that
differs in one row: the fleet is never rebuilt per decision. Each row carries the generation
that last changed it, so that policies can cache per-node work and redo only changed rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from stratum.scheduling.decision import Decision, Explanation
from stratum.scheduling.request import MILLI, Request

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

_lineages = itertools.count(1)


def _frozen(a: IntArray) -> IntArray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """The static part of one node, as a trace or an inventory gives it."""

    name: str
    cpu_milli: int
    memory_mib: int
    gpu_count: int
    model: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """Read-only arrays over N nodes and W GPU slots per node (absent GPUs hold 0 milli)."""

    names: tuple[str, ...]
    models: tuple[str, ...]
    model_idx: IntArray
    gpu_count: IntArray
    cpu_capacity: IntArray
    memory_capacity: IntArray
    cpu_free: IntArray
    memory_free: IntArray
    gpu_free: IntArray
    gpu_free_total: IntArray
    gpu_full: IntArray
    gpu_max: IntArray
    pods_by_class: IntArray
    node_generation: IntArray
    lineage: int
    generation: int

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, nodes: Sequence[NodeSpec]) -> Snapshot:
        """A snapshot of an empty fleet."""
        if not nodes:
            raise ValueError("a snapshot needs at least one node")
        models = tuple(sorted({n.model for n in nodes}))
        width = max(1, max(n.gpu_count for n in nodes))
        n = len(nodes)
        gpu_count = np.array([x.gpu_count for x in nodes], dtype=np.int64)
        gpu_free = np.where(np.arange(width)[None, :] < gpu_count[:, None], MILLI, 0).astype(
            np.int64
        )
        cpu = np.array([x.cpu_milli for x in nodes], dtype=np.int64)
        mem = np.array([x.memory_mib for x in nodes], dtype=np.int64)
        if (cpu < 0).any() or (mem < 0).any() or (gpu_count < 0).any():
            raise ValueError("node capacities must be >= 0")
        return cls(
            names=tuple(x.name for x in nodes),
            models=models,
            model_idx=_frozen(np.array([models.index(x.model) for x in nodes], dtype=np.int64)),
            gpu_count=_frozen(gpu_count),
            cpu_capacity=_frozen(cpu),
            memory_capacity=_frozen(mem),
            cpu_free=_frozen(cpu.copy()),
            memory_free=_frozen(mem.copy()),
            gpu_free=_frozen(gpu_free),
            gpu_free_total=_frozen(gpu_free.sum(axis=1)),
            gpu_full=_frozen(gpu_count.copy()),
            gpu_max=_frozen(np.where(gpu_count > 0, MILLI, 0).astype(np.int64)),
            pods_by_class=_frozen(np.zeros((n, width + 2), dtype=np.int64)),
            node_generation=_frozen(np.zeros(n, dtype=np.int64)),
            lineage=next(_lineages),
            generation=0,
        )

    def subset(self, rows: Sequence[int] | IntArray) -> Snapshot:
        """The same state restricted to `rows` (in that order), as a new lineage: what a
        filter outside the snapshot (sovereignty, topology) leaves for a policy to score."""
        idx = np.asarray(rows, dtype=np.int64)
        if idx.size == 0:
            raise ValueError("a snapshot needs at least one node")
        return replace(
            self,
            names=tuple(self.names[int(i)] for i in idx),
            model_idx=_frozen(self.model_idx[idx]),
            gpu_count=_frozen(self.gpu_count[idx]),
            cpu_capacity=_frozen(self.cpu_capacity[idx]),
            memory_capacity=_frozen(self.memory_capacity[idx]),
            cpu_free=_frozen(self.cpu_free[idx]),
            memory_free=_frozen(self.memory_free[idx]),
            gpu_free=_frozen(self.gpu_free[idx]),
            gpu_free_total=_frozen(self.gpu_free_total[idx]),
            gpu_full=_frozen(self.gpu_full[idx]),
            gpu_max=_frozen(self.gpu_max[idx]),
            pods_by_class=_frozen(self.pods_by_class[idx]),
            node_generation=_frozen(np.zeros(idx.size, dtype=np.int64)),
            lineage=next(_lineages),
            generation=0,
        )

    def with_free(
        self,
        *,
        cpu_free: IntArray,
        memory_free: IntArray,
        gpu_free: IntArray,
        pods_by_class: IntArray,
    ) -> Snapshot:
        """The same fleet with these free resources (a bulk load of what is already held),
        as a new lineage; the derived per-node summaries are recomputed."""
        if (
            (gpu_free < 0).any()
            or (gpu_free > MILLI).any()
            or (cpu_free < 0).any()
            or (memory_free < 0).any()
        ):
            raise ValueError("free resources must lie between 0 and the capacity")
        return replace(
            self,
            cpu_free=_frozen(cpu_free.astype(np.int64)),
            memory_free=_frozen(memory_free.astype(np.int64)),
            gpu_free=_frozen(gpu_free.astype(np.int64)),
            gpu_free_total=_frozen(gpu_free.sum(axis=1).astype(np.int64)),
            gpu_full=_frozen((gpu_free == MILLI).sum(axis=1).astype(np.int64)),
            gpu_max=_frozen(gpu_free.max(axis=1).astype(np.int64)),
            pods_by_class=_frozen(pods_by_class.astype(np.int64)),
            node_generation=_frozen(np.zeros(self.size, dtype=np.int64)),
            lineage=next(_lineages),
            generation=0,
        )

    # ---- shape ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def width(self) -> int:
        return int(self.gpu_free.shape[1])

    @property
    def total_gpu_milli(self) -> int:
        return int(self.gpu_count.sum()) * MILLI

    @property
    def used_gpu_milli(self) -> int:
        return self.total_gpu_milli - int(self.gpu_free_total.sum())

    def pod_class(self, request: Request) -> int:
        """0 for a GPU share, k for k whole GPUs, width+1 for CPU only."""
        if request.gpu_count == 0:
            return self.width + 1
        if request.is_sharing:
            return 0
        return min(request.gpu_count, self.width)

    def model_mask(self, request: Request) -> BoolArray:
        """Nodes whose GPU model the request allows (all nodes when it names none)."""
        if not request.gpu_models:
            return np.ones(self.size, dtype=np.bool_)
        allowed = np.array([m in request.gpu_models for m in self.models], dtype=np.bool_)
        mask: BoolArray = allowed[self.model_idx]
        return mask

    def gpu_fit(self, request: Request) -> BoolArray:
        """Nodes with ``gpu_count`` GPUs that each have ``gpu_milli`` free."""
        k, m = request.gpu_count, request.gpu_milli
        if k == 0:
            return np.ones(self.size, dtype=np.bool_)
        if k == 1:
            return self.gpu_max >= m
        if m == MILLI:
            return self.gpu_full >= k
        enough: BoolArray = (self.gpu_free >= m).sum(axis=1) >= k
        return enough

    # ---- filtering --------------------------------------------------------------------------
    def feasible(self, request: Request) -> BoolArray:
        """Every node where the request fits: model, GPUs, CPU and memory."""
        mask = self.gpu_fit(request)
        mask &= self.cpu_free >= request.cpu_milli
        mask &= self.memory_free >= request.memory_mib
        if request.gpu_models:
            mask &= self.model_mask(request)
        return mask

    def explain(self, request: Request) -> Explanation:
        """Count the nodes each filter excludes, charging each node to its first failure."""
        left = np.ones(self.size, dtype=np.bool_)
        excluded: list[tuple[str, int]] = []
        filters = (
            (f"lack model {'|'.join(sorted(request.gpu_models))}", self.model_mask(request)),
            (f"lack {request.describe_gpu()}", self.gpu_fit(request)),
            (f"lack {request.cpu_milli} milli-CPU", self.cpu_free >= request.cpu_milli),
            (f"lack {request.memory_mib} MiB memory", self.memory_free >= request.memory_mib),
        )
        for reason, passed in filters:
            out = left & ~passed
            excluded.append((reason, int(out.sum())))
            left &= passed
        return Explanation(total=self.size, feasible=int(left.sum()), excluded=tuple(excluded))

    def fail(self, request: Request) -> Decision:
        """The decision for a request that fits nowhere."""
        return Decision(node=-1, explanation=self.explain(request))

    # ---- GPU choice within a node -------------------------------------------------------------
    def tightest_gpus(self, node: int, request: Request) -> tuple[int, ...]:
        """The ``gpu_count`` fitting GPUs with least free milli (lowest index on ties)."""
        k, m = request.gpu_count, request.gpu_milli
        if k == 0:
            return ()
        row = self.gpu_free[node]
        fits = (row >= m).nonzero()[0]
        order = fits[np.argsort(row[fits], kind="stable")]
        if len(order) < k:
            raise ValueError(f"node {self.names[node]} cannot host {request.describe_gpu()}")
        return tuple(int(g) for g in sorted(order[:k].tolist()))

    def decide(self, node: int, gpus: tuple[int, ...], request: Request, score: float) -> Decision:
        return Decision(
            node=node,
            node_name=self.names[node],
            gpus=gpus,
            milli=request.gpu_milli,
            cpu_milli=request.cpu_milli,
            memory_mib=request.memory_mib,
            score=score,
        )

    # ---- incremental change -------------------------------------------------------------------
    def allocate(self, decision: Decision, *, request: Request | None = None) -> Snapshot:
        """The snapshot after ``decision`` takes its resources; checks that they are free."""
        return self._apply(decision, -1, request)

    def release(self, decision: Decision, *, request: Request | None = None) -> Snapshot:
        """The snapshot after ``decision``'s resources are given back."""
        return self._apply(decision, +1, request)

    def _apply(self, decision: Decision, sign: int, request: Request | None) -> Snapshot:
        if not decision.placed:
            return self
        i = decision.node
        # The row as Python ints: eight values are checked and summarised faster so than by
        # numpy calls (this runs once per decision).
        row = self.gpu_free[i].tolist()
        width = int(self.gpu_count[i])
        for g in decision.gpus:
            if g >= width:
                raise ValueError(f"node {self.names[i]} has no GPU {g}")
            row[g] += sign * decision.milli
        cpu = int(self.cpu_free[i]) + sign * decision.cpu_milli
        mem = int(self.memory_free[i]) + sign * decision.memory_mib
        if (
            min(row) < 0
            or max(row) > MILLI
            or not 0 <= cpu <= int(self.cpu_capacity[i])
            or not 0 <= mem <= int(self.memory_capacity[i])
            or len(set(decision.gpus)) != len(decision.gpus)
        ):
            verb = "over-allocate" if sign < 0 else "release more than allocated on"
            raise ValueError(f"decision would {verb} node {self.names[i]}: {decision}")
        klass = self.pod_class(
            request
            or Request(
                cpu_milli=decision.cpu_milli,
                memory_mib=decision.memory_mib,
                gpu_count=len(decision.gpus),
                gpu_milli=decision.milli if decision.gpus else 0,
            )
        )
        pods = self.pods_by_class.copy()
        pods[i, klass] -= sign
        if pods[i, klass] < 0:
            raise ValueError(f"release of a pod node {self.names[i]} does not hold")
        generation = self.generation + 1
        return replace(
            self,
            cpu_free=_set(self.cpu_free, i, cpu),
            memory_free=_set(self.memory_free, i, mem),
            gpu_free=_set(self.gpu_free, i, row),
            gpu_free_total=_set(self.gpu_free_total, i, sum(row)),
            gpu_full=_set(self.gpu_full, i, row.count(MILLI)),
            gpu_max=_set(self.gpu_max, i, max(row)),
            pods_by_class=_frozen(pods),
            node_generation=_set(self.node_generation, i, generation),
            generation=generation,
        )

    def same_state(self, other: Snapshot) -> bool:
        """Equal free resources and pod counts (ignores generations)."""
        pairs = (
            (self.cpu_free, other.cpu_free),
            (self.memory_free, other.memory_free),
            (self.gpu_free, other.gpu_free),
            (self.gpu_free_total, other.gpu_free_total),
            (self.gpu_full, other.gpu_full),
            (self.gpu_max, other.gpu_max),
            (self.pods_by_class, other.pods_by_class),
        )
        return self.names == other.names and all(np.array_equal(a, b) for a, b in pairs)


def _set(a: IntArray, i: int, value: int | list[int]) -> IntArray:
    """A read-only copy of ``a`` with row ``i`` set to ``value``."""
    b = a.copy()
    b[i] = value
    b.flags.writeable = False
    return b
