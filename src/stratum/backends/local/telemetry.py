"""This host's telemetry for the contract monitor: CPU use and memory from /proc, and per
GPU utilisation, memory, power, temperature, uncorrected ECC errors and NVLink state
through NVML (discovery/nvml.py, the one door to it) where the driver is installed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stratum.backends.base import DeviceHealth, GpuObservation
from stratum.discovery import nvml

GpuSource = Callable[[], tuple[nvml.GpuReading, ...] | None]


class HostSampler:
    """CPU use is a rate: each sample is measured against the one before it."""

    def __init__(self, *, gpus: GpuSource = nvml.read_gpu_telemetry, proc: Path = Path("/proc")):
        self._gpus = gpus
        self._proc = proc
        self._last_cpu: tuple[int, int] | None = None
        self._links: dict[int, int] = {}  # NVLink links first seen active, per GPU

    def host(self) -> tuple[float | None, float | None]:
        """(CPU use in percent since the last sample, memory in use in GiB)."""
        return self._cpu(), self._memory()

    def _cpu(self) -> float | None:
        try:
            first = (self._proc / "stat").read_text().splitlines()[0].split()
        except (OSError, IndexError):
            return None
        ticks = [int(v) for v in first[1:]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        total = sum(ticks[:8])  # guest time is already counted in user
        last, self._last_cpu = self._last_cpu, (total, idle)
        if last is None or total <= last[0]:
            return None
        busy = (total - last[0]) - (idle - last[1])
        return round(100.0 * busy / (total - last[0]), 1)

    def _memory(self) -> float | None:
        values: dict[str, int] = {}
        try:
            for line in (self._proc / "meminfo").read_text().splitlines():
                name, _, rest = line.partition(":")
                values[name] = int(rest.split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if "MemTotal" not in values or "MemAvailable" not in values:
            return None
        return round((values["MemTotal"] - values["MemAvailable"]) / (1024 * 1024), 2)

    def gpus(self) -> tuple[GpuObservation, ...]:
        readings = self._gpus()
        if readings is None:
            return ()  # no NVML: the node's GPUs are as modelled, without telemetry
        out = []
        for r in readings:
            baseline = self._links.setdefault(r.index, r.nvlink_active)
            degraded = r.nvlink_active < baseline
            health: DeviceHealth = "Degraded" if r.ecc_uncorrected or degraded else "Healthy"
            if r.lost:
                health = "Failed"  # NVML counts it but cannot reach it
            elif r.utilization_pct is None and r.memory_used_mib is None:
                health = "Unknown"  # it answers, but reports nothing
            out.append(
                GpuObservation(
                    index=r.index,
                    health=health,
                    utilization_pct=r.utilization_pct or 0.0,
                    memory_used_gib=round((r.memory_used_mib or 0.0) / 1024, 2),
                    power_w=round(r.power_w or 0.0, 1),
                    temperature_c=r.temperature_c or 0.0,
                    ecc_errors=r.ecc_uncorrected,
                    nvlink_degraded=degraded,
                )
            )
        return tuple(out)
