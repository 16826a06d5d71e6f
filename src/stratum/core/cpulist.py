"""CPU lists as the kernel writes them ("0-31,64-95") and CPU masks ("00ff,ffffffff")."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?(?::(\d+)/(\d+))?$")


class CpuListError(ValueError):
    """A CPU list or mask that does not follow the kernel's format."""


def parse_cpulist(text: str) -> frozenset[int]:
    """Parse "0-3,8,10-11" (and the kernel's "0-31:2/4" stride form) into CPU ids.

    An empty string or "N/A" is the empty set: CPU-less NUMA nodes print nothing.
    """
    text = text.strip()
    if text in ("", "N/A", "(null)"):
        return frozenset()
    cpus: set[int] = set()
    for part in text.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            raise CpuListError(
                f"{part!r} in CPU list {text!r} is not a CPU id or range (expected e.g. 0-31,64-95)"
            )
        first = int(match[1])
        last = int(match[2]) if match[2] is not None else first
        if last < first:
            raise CpuListError(f"range {part!r} in CPU list {text!r} runs backwards")
        if last - first > 1 << 16:
            raise CpuListError(f"range {part!r} in CPU list {text!r} is implausibly large")
        if match[3] is not None:
            used, group = int(match[3]), int(match[4])
            if group <= 0 or used > group:
                raise CpuListError(f"stride {part!r} in CPU list {text!r} is malformed")
            cpus.update(c for c in range(first, last + 1) if (c - first) % group < used)
        else:
            cpus.update(range(first, last + 1))
    return frozenset(cpus)


def format_cpulist(cpus: frozenset[int] | set[int] | list[int]) -> str:
    """The kernel's compact form: sorted, consecutive ids folded into ranges."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def parse_cpumask(text: str) -> frozenset[int]:
    """Parse a hex CPU mask in the kernel's comma-grouped form ("000000ff,ffff0000")."""
    digits = text.strip().lower().replace(",", "").removeprefix("0x")
    if not digits or not re.fullmatch(r"[0-9a-f]+", digits):
        raise CpuListError(f"{text!r} is not a hex CPU mask (expected e.g. 00000000,00ffffff)")
    value = int(digits, 16)
    return frozenset(i for i in range(value.bit_length()) if value >> i & 1)
