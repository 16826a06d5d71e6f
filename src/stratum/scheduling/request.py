"""What one placement asks for: CPU, memory, and whole or fractional GPUs of allowed models."""

from __future__ import annotations

from dataclasses import dataclass

from stratum.core.demand import MILLI as MILLI  # one whole GPU, in milli-GPU (re-exported)


@dataclass(frozen=True, slots=True)
class Request:
    """A single-node request.

    ``gpu_count`` GPUs, each with ``gpu_milli`` milli-GPU free: ``gpu_milli < 1000`` is a
    share of one GPU, ``gpu_milli == 1000`` is whole GPUs. ``gpu_models`` empty means any model.
    """

    cpu_milli: int
    memory_mib: int = 0
    gpu_count: int = 0
    gpu_milli: int = 0
    gpu_models: frozenset[str] = frozenset()
    name: str = ""

    def __post_init__(self) -> None:
        if self.cpu_milli < 0 or self.memory_mib < 0:
            raise ValueError("cpu_milli and memory_mib must be >= 0")
        if self.gpu_count < 0 or not 0 <= self.gpu_milli <= MILLI:
            raise ValueError("gpu_count must be >= 0 and gpu_milli in 0..1000")
        if self.gpu_count > 0 and self.gpu_milli == 0:
            raise ValueError("a request for GPUs needs gpu_milli > 0")
        if self.gpu_count == 0 and self.gpu_milli != 0:
            raise ValueError("gpu_milli without gpu_count")

    @property
    def gpu_total_milli(self) -> int:
        """All milli-GPU asked for (k·m)."""
        return self.gpu_count * self.gpu_milli

    @property
    def is_sharing(self) -> bool:
        """True for a fraction of one GPU."""
        return self.gpu_count > 0 and self.gpu_milli < MILLI

    @property
    def shape(self) -> tuple[int, int, int, frozenset[str]]:
        """What fragmentation scoring sees: (cpu, per-GPU milli, count, models); no memory."""
        return (self.cpu_milli, self.gpu_milli, self.gpu_count, self.gpu_models)

    def describe_gpu(self) -> str:
        """Human words for the GPU part, used in explanations."""
        models = f" ({'|'.join(sorted(self.gpu_models))})" if self.gpu_models else ""
        if self.gpu_count == 0:
            return "no GPU"
        if self.is_sharing:
            return f"a GPU with {self.gpu_milli} milli-GPU free{models}"
        plural = "s" if self.gpu_count > 1 else ""
        return f"{self.gpu_count} free whole GPU{plural}{models}"
