"""GPUs through NVML (the official `nvidia-ml-py` bindings), when nvidia-smi is not installed.

This is the only module that imports `pynvml`, and it does so inside the function: a host
without the NVIDIA driver gets a note ("NVML not available"), never an import error.
"""

from __future__ import annotations

import contextlib
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
