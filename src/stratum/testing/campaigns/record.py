"""What a campaign leaves behind: inputs tried, faults injected and survived, invariant
violations found, findings, and figures, printable as the record docs/reliability.md quotes."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Record:
    campaign: str
    seed: int
    inputs: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    survived: int = 0
    violations: list[str] = field(default_factory=list)
    # Misbehaviour that is not an invariant of the store: a 500, a stall, a refused
    # request that changed something, an authorization hole.
    findings: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and not self.findings

    def violation(self, message: str) -> None:
        if message not in self.violations:
            self.violations.append(message)

    def finding(self, message: str) -> None:
        if message not in self.findings:
            self.findings.append(message)

    def render(self) -> str:
        lines = [
            f"== {self.campaign} (seed {self.seed}, {self.seconds:.0f} s)",
            f"inputs tried: {sum(self.inputs.values())} " + _counts(self.inputs),
            f"faults injected: {sum(self.faults.values())} {_counts(self.faults)}; "
            f"survived: {self.survived}",
            f"invariant violations: {len(self.violations)}",
            *[f"  - {v}" for v in self.violations[:50]],
            f"findings: {len(self.findings)}",
            *[f"  - {f}" for f in self.findings[:100]],
        ]
        for key, value in self.figures.items():
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            lines.append(f"{key}: {shown}")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    if not counter:
        return ""
    return "(" + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) + ")"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs; 0 with fewer than two points."""
    if len(xs) < 2 or len(set(xs)) < 2:
        return 0.0
    return float(statistics.linear_regression(xs, ys).slope)
