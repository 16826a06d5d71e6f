"""GPUs through NVML (the official `nvidia-ml-py` bindings), when nvidia-smi is not installed.

This is the only module that imports `pynvml`, and it does so inside the function: a host
without the NVIDIA driver gets a note ("NVML not available"), never an import error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from stratum.discovery.sources import Facts, GpuFact, Note, normalise_bus_id

SOURCE = "NVML"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_nvml(module: Any = None) -> Facts:
    """GPU facts from NVML; `module` stands in for pynvml in tests."""
    try:
        if module is None:
            import pynvml

            module = pynvml
        nv = module
        nv.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound and friends
        return Facts(
            notes=(
                Note(
                    SOURCE,
                    f"NVML not available ({type(exc).__name__}): no NVIDIA driver on this host",
                ),
            )
        )
    try:
        count = int(nv.nvmlDeviceGetCount())
        gpus: list[GpuFact] = []
        notes: list[Note] = []
        for index in range(count):
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            memory = nv.nvmlDeviceGetMemoryInfo(handle)
            bus = _text(nv.nvmlDeviceGetPciInfo(handle).busId)
            capable: bool | None = None
            enabled: bool | None = None
            try:
                current, _pending = nv.nvmlDeviceGetMigMode(handle)
                capable, enabled = True, bool(current)
            except Exception:  # NVMLError_NotSupported: not MIG-capable
                capable, enabled = False, False
            power: float | None = None
            try:
                power = nv.nvmlDeviceGetPowerManagementDefaultLimit(handle) / 1000.0
            except Exception:  # not supported on every board
                notes.append(Note(SOURCE, f"GPU {index}: power limit not reported"))
            links = 0
            for link in range(18):
                try:
                    if nv.nvmlDeviceGetNvLinkState(handle, link):
                        links += 1
                except Exception:  # link does not exist or NVLink unsupported
                    break
            gpus.append(
                GpuFact(
                    SOURCE,
                    index=index,
                    product_name=_text(nv.nvmlDeviceGetName(handle)),
                    uuid=_text(nv.nvmlDeviceGetUUID(handle)),
                    pci_bus_id=normalise_bus_id(bus),
                    memory_mib=float(memory.total) / (1024 * 1024),
                    mig_capable=capable,
                    mig_enabled=enabled,
                    power_limit_w=power,
                    nvlink_active=links or None,
                )
            )
        return Facts(gpus=tuple(gpus), notes=tuple(notes), sources=(SOURCE,))
    finally:
        with contextlib.suppress(Exception):  # shutting down a half-initialised library
            nv.nvmlShutdown()


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU as NVML sees it now: identity and live telemetry (None: not reported)."""

    index: int
    uuid: str
    name: str
    utilization_pct: float | None = None
    memory_used_mib: float | None = None
    power_w: float | None = None
    temperature_c: float | None = None
    ecc_uncorrected: int = 0
    nvlink_active: int = 0
    mig_uuids: tuple[str, ...] = ()
    # NVML counts the device but cannot reach it (fallen off the bus, XID 79): failed.
    lost: bool = False


def read_gpu_telemetry(module: Any = None) -> tuple[GpuReading, ...] | None:
    """Every GPU's utilisation, memory, power, temperature, ECC and NVLink now; None where
    NVML is not available (no NVIDIA driver). `module` stands in for pynvml in tests."""
    try:
        if module is None:
            import pynvml

            module = pynvml
        nv = module
        nv.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound and friends
        return None
    try:
        readings = []
        for index in range(int(nv.nvmlDeviceGetCount())):
            try:
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                readings.append(_reading(nv, index, handle))
            except Exception:  # NVMLError_GpuIsLost and friends: this GPU, not the others
                readings.append(GpuReading(index=index, uuid="", name="", lost=True))
        return tuple(readings)
    except Exception:  # the driver went away mid-read: no telemetry rather than a crash
        return None
    finally:
        with contextlib.suppress(Exception):
            nv.nvmlShutdown()


def _reading(nv: Any, index: int, handle: Any) -> GpuReading:
    def ask(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception:  # not supported on this board
            return None

    util = ask(lambda: nv.nvmlDeviceGetUtilizationRates(handle))
    memory = ask(lambda: nv.nvmlDeviceGetMemoryInfo(handle))
    power = ask(lambda: nv.nvmlDeviceGetPowerUsage(handle))
    temperature = ask(lambda: nv.nvmlDeviceGetTemperature(handle, 0))  # NVML_TEMPERATURE_GPU
    # Volatile (since boot) uncorrected errors: NVML_MEMORY_ERROR_TYPE_UNCORRECTED=1,
    # NVML_VOLATILE_ECC=0.
    ecc = ask(lambda: nv.nvmlDeviceGetTotalEccErrors(handle, 1, 0))
    links = 0
    for link in range(18):
        state = ask(partial(nv.nvmlDeviceGetNvLinkState, handle, link))
        if state is None:
            break
        links += 1 if state else 0
    migs: list[str] = []
    count = ask(lambda: nv.nvmlDeviceGetMaxMigDeviceCount(handle)) or 0
    for i in range(int(count)):
        mig = ask(partial(nv.nvmlDeviceGetMigDeviceHandleByIndex, handle, i))
        uuid = ask(partial(nv.nvmlDeviceGetUUID, mig)) if mig is not None else None
        if uuid:
            migs.append(_text(uuid))
    return GpuReading(
        index=index,
        uuid=_text(nv.nvmlDeviceGetUUID(handle)),
        name=_text(nv.nvmlDeviceGetName(handle)),
        utilization_pct=float(util.gpu) if util is not None else None,
        memory_used_mib=float(memory.used) / (1024 * 1024) if memory is not None else None,
        power_w=float(power) / 1000.0 if power is not None else None,
        temperature_c=float(temperature) if temperature is not None else None,
        ecc_uncorrected=int(ecc or 0),
        nvlink_active=links,
        mig_uuids=tuple(migs),
    )
