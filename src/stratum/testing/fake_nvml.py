"""A stand-in for `pynvml` with the calls discovery makes, for hosts without an NVIDIA driver.

It answers like NVML does for the GPUs it is given, including the errors NVML raises for
features a board lacks (MIG on a PCIe L4, NVLink on a GPU without links).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace


class FakeNvmlError(Exception):
    """What pynvml.NVMLError is to NVML: raised for unsupported queries."""


@dataclass
class FakeGpu:
    name: str
    uuid: str
    bus_id: str
    memory_bytes: int
    mig: tuple[int, int] | None = None  # (current, pending); None: not MIG-capable
    power_limit_mw: int | None = None
    nvlinks: int = 0  # active links; NVLink calls beyond them raise
    # Live telemetry (read_gpu_telemetry); None: the board does not report it.
    utilization_pct: int | None = None
    memory_used_bytes: int = 0
    power_mw: int | None = None
    temperature_c: int | None = None
    ecc_uncorrected: int | None = None
    down_links: int = 0  # of the `nvlinks` links, how many are now inactive
    lost: bool = False  # fallen off the bus: NVML counts it, but every call on it fails


@dataclass
class FakeNvml:
    """Method names are pynvml's (camelCase), so the fake drops in for the module."""

    gpus: list[FakeGpu] = field(default_factory=list)
    fail_init: bool = False
    initialised: bool = False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise FakeNvmlError("NVML Shared Library Not Found")
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if self.gpus[index].lost:
            raise FakeNvmlError("GPU is lost")
        return self.gpus[index]

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return gpu.name

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> SimpleNamespace:
        used = gpu.memory_used_bytes
        return SimpleNamespace(total=gpu.memory_bytes, used=used, free=gpu.memory_bytes - used)

    def nvmlDeviceGetPciInfo(self, gpu: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(busId=gpu.bus_id.encode())

    def nvmlDeviceGetMigMode(self, gpu: FakeGpu) -> tuple[int, int]:
        if gpu.mig is None:
            raise FakeNvmlError("Not Supported")
        return gpu.mig

    def nvmlDeviceGetPowerManagementDefaultLimit(self, gpu: FakeGpu) -> int:
        if gpu.power_limit_mw is None:
            raise FakeNvmlError("Not Supported")
        return gpu.power_limit_mw

    def nvmlDeviceGetNvLinkState(self, gpu: FakeGpu, link: int) -> int:
        if link >= gpu.nvlinks:
            raise FakeNvmlError("Invalid Argument")
        return 0 if link < gpu.down_links else 1

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> SimpleNamespace:
        if gpu.utilization_pct is None:
            raise FakeNvmlError("Not Supported")
        return SimpleNamespace(gpu=gpu.utilization_pct, memory=0)

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        if gpu.power_mw is None:
            raise FakeNvmlError("Not Supported")
        return gpu.power_mw

    def nvmlDeviceGetTemperature(self, gpu: FakeGpu, sensor: int) -> int:
        if gpu.temperature_c is None:
            raise FakeNvmlError("Not Supported")
        return gpu.temperature_c

    def nvmlDeviceGetTotalEccErrors(self, gpu: FakeGpu, kind: int, counter: int) -> int:
        if gpu.ecc_uncorrected is None:
            raise FakeNvmlError("Not Supported")
        return gpu.ecc_uncorrected
