"""The answer of a policy: where a request goes (node, exact GPUs, milli taken) or, when
nothing fits, why, in numbers per filter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Explanation:
    """How many nodes each filter excluded. Each node is charged to the first filter it fails,
    in the order the filters run (model, GPU, CPU, memory), so the counts add up to ``total``."""

    total: int
    feasible: int
    excluded: tuple[tuple[str, int], ...]

    def __str__(self) -> str:
        parts = [f"{count} {reason}" for reason, count in self.excluded if count]
        head = f"{self.feasible}/{self.total} nodes"
        return f"{head}: {', '.join(parts)}" if parts else f"{head} fit"


@dataclass(frozen=True, slots=True)
class Decision:
    """A placement (``node >= 0``) or a failure (``node == -1``, with an explanation).

    ``gpus`` are the GPU indices on the node and ``milli`` the milli-GPU taken on each.
    """

    node: int
    node_name: str = ""
    gpus: tuple[int, ...] = ()
    milli: int = 0
    cpu_milli: int = 0
    memory_mib: int = 0
    score: float = 0.0
    explanation: Explanation | None = None

    @property
    def placed(self) -> bool:
        return self.node >= 0

    @property
    def gpu_total_milli(self) -> int:
        return self.milli * len(self.gpus)

    def __str__(self) -> str:
        if not self.placed:
            return f"unschedulable: {self.explanation}"
        gpus = ",".join(str(g) for g in self.gpus)
        share = f" ({self.milli} milli each)" if self.gpus else ""
        return f"node {self.node_name or self.node} gpus [{gpus}]{share}"
