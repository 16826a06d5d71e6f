"""Faults the simulator can inject, and scenario files that inject them on a schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal["node-down", "gpu-fail", "link-degrade", "power-cap", "partition"]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "node-down",
    "gpu-fail",
    "link-degrade",
    "power-cap",
    "partition",
)

# What each kind needs, so that a bad request names the missing field.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "node-down": ("node",),
    "gpu-fail": ("node", "gpu"),
    "link-degrade": ("node", "gpu"),
    "power-cap": ("site", "kw"),
    "partition": ("cluster",),
}


@dataclass(frozen=True, slots=True)
class Fault:
    id: str
    kind: FaultKind
    node: str | None = None
    gpu: int | None = None
    site: str | None = None
    cluster: str | None = None
    kw: float | None = None
    # link-degrade: the share of NVLink bandwidth left (0.25 = a quarter of it).
    bandwidth_fraction: float = 0.25

    def describe(self) -> str:
        if self.kind == "node-down":
            return f"node {self.node} is down"
        if self.kind == "gpu-fail":
            return f"GPU {self.gpu} on node {self.node} failed"
        if self.kind == "link-degrade":
            return (
                f"NVLink of GPU {self.gpu} on node {self.node} degraded to "
                f"{self.bandwidth_fraction:.0%} of its bandwidth"
            )
        if self.kind == "power-cap":
            return f"site {self.site} capped at {self.kw:g} kW"
        return f"cluster {self.cluster} is partitioned from the control plane"

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": self.id, "kind": self.kind, "description": self.describe()}
        for key in ("node", "gpu", "site", "cluster", "kw"):
            value = getattr(self, key)
            if value is not None:
                wire[key] = value
        if self.kind == "link-degrade":
            wire["bandwidthFraction"] = self.bandwidth_fraction
        return wire


def parse_fault(data: Any, *, fault_id: str, where: str = "fault") -> Fault:
    """Validate a fault given as a mapping; ValueError names the field that is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with a kind, got {type(data).__name__}")
    kind = data.get("kind")
    if kind not in _REQUIRED:
        raise ValueError(f"{where}.kind: expected one of {', '.join(FAULT_KINDS)}, got {kind!r}")
    allowed = {"kind", "node", "gpu", "site", "cluster", "kw", "bandwidthFraction", "at"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for key in _REQUIRED[kind]:
        if data.get(key) is None:
            raise ValueError(f"{where}.{key}: required for {kind}")
    gpu = data.get("gpu")
    if gpu is not None and (not isinstance(gpu, int) or gpu < 0):
        raise ValueError(f"{where}.gpu: expected a GPU index >= 0, got {gpu!r}")
    kw = data.get("kw")
    # NaN compares false both ways, and neither it nor infinity can be listed back as JSON.
    if kw is not None and (
        isinstance(kw, bool) or not isinstance(kw, int | float) or not math.isfinite(kw) or kw < 0
    ):
        raise ValueError(f"{where}.kw: expected a finite power in kW >= 0, got {kw!r}")
    fraction = data.get("bandwidthFraction", 0.25)
    if not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        raise ValueError(f"{where}.bandwidthFraction: expected 0 <= x < 1, got {fraction!r}")
    return Fault(
        id=fault_id,
        kind=kind,
        node=data.get("node"),
        gpu=gpu,
        site=data.get("site"),
        cluster=data.get("cluster"),
        kw=float(kw) if kw is not None else None,
        bandwidth_fraction=float(fraction),
    )


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    at_seconds: float
    fault: dict[str, Any]


def parse_scenario(data: Any, source: str = "scenario") -> list[ScheduledFault]:
    """A scenario: `faults: [{at: 30, kind: gpu-fail, node: n1, gpu: 3}, ...]`, `at` in
    simulated seconds after the scenario starts."""
    if not isinstance(data, dict) or not isinstance(data.get("faults"), list):
        raise ValueError(f"{source}: expected a mapping with a list under 'faults'")
    scheduled = []
    for i, item in enumerate(data["faults"]):
        where = f"{source}: faults[{i}]"
        parse_fault(item, fault_id="check", where=where)
        at = item.get("at", 0)
        if not isinstance(at, int | float) or at < 0:
            raise ValueError(f"{where}.at: expected seconds >= 0, got {at!r}")
        scheduled.append(ScheduledFault(float(at), {k: v for k, v in item.items() if k != "at"}))
    return sorted(scheduled, key=lambda s: s.at_seconds)
