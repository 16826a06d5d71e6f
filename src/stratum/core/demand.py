"""GPU demand arithmetic, once: what one replica of a compute clause counts in milli-GPU.

A whole GPU is 1000; `gpuMilli` counts as given; a MIG profile `[Nc.]Mg.XXgb` takes M of the
seven compute slices of an A100/H100-class GPU, rounded up (so quotas never undercount).
Admission (over wire objects), quotas, fair share and the placement engine all call this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MILLI = 1000
MIG_SLICES = 7
_MIG = re.compile(r"^(?:[1-9]c\.)?([1-9])g\.")


def mig_compute_slices(profile: str) -> int | None:
    """The compute slices a MIG profile takes ("3g.40gb" -> 3, "1c.2g.20gb" -> 2), or None
    when the name is not a MIG profile."""
    match = _MIG.match(profile)
    return int(match.group(1)) if match else None


def mig_milli(profile: str) -> int:
    """A MIG instance's share of its GPU in milli-GPU (an unknown profile counts whole)."""
    slices = mig_compute_slices(profile)
    return MILLI if slices is None else (slices * MILLI + MIG_SLICES - 1) // MIG_SLICES


def replica_gpu_milli(
    *, gpus: int | None = None, gpu_milli: int | None = None, mig_profile: str | None = None
) -> int:
    """What one replica counts against a GPU quota: whole GPUs, a share, or a MIG slice."""
    if gpus:
        return gpus * MILLI
    if gpu_milli:
        return gpu_milli
    if mig_profile:
        return mig_milli(mig_profile)
    return 0


def bound_milli(gpu_milli: int | None, mig_instance: str | None) -> int:
    """What one replica's binding holds of each GPU it names: a share's gpu_milli, a MIG
    slice's part (its profile is the first word of the instance's name), else the whole
    GPU. Budgets charge and Node status counts by it."""
    if gpu_milli:
        return int(gpu_milli)
    return mig_milli(mig_instance.split()[0]) if mig_instance else MILLI


def allocation_milli(allocation: Mapping[str, Any]) -> int:
    """`bound_milli` of one allocation of a Node's status (wire form)."""
    return bound_milli(allocation.get("gpuMilli"), allocation.get("migInstance"))


def held_by_gpu(allocations: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """Per GPU index, the thousandths its allocations hold (at most 1000)."""
    held: dict[int, int] = {}
    for a in allocations:
        for gpu in a.get("gpus") or []:
            held[int(gpu)] = min(held.get(int(gpu), 0) + allocation_milli(a), MILLI)
    return held
