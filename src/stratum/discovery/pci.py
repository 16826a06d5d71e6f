"""PCI inventory: `lspci -nn` output and /sys/bus/pci/devices (class, vendor, numa_node).

This is how a host whose NVIDIA driver is missing or broken still shows its GPUs, NVSwitch
chips and RDMA NICs. GPU models come from the device id (see core.gpucatalog); names of
RDMA devices (mlx5_0) are not known at this level, so NICs found here are counted but named
by their PCI address.
"""

from __future__ import annotations

import re
from pathlib import Path

from stratum.core.gpucatalog import NVSWITCH_PCI_DEVICE_IDS
from stratum.discovery.sources import Facts, GpuFact, NicFact, Note, ParseError, Text

NVIDIA = "10de"
_GPU_CLASSES = ("0300", "0302")
_LSPCI = re.compile(
    r"^(?P<bdf>(?:[0-9a-f]{4,8}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\s+(?P<cls_name>[^\[]+?)\s+"
    r"\[(?P<cls>[0-9a-f]{4})\]:\s+(?P<name>.*?)\s*\[(?P<vendor>[0-9a-f]{4}):(?P<device>[0-9a-f]{4})\]"
    r"(?:\s+\(rev [0-9a-f]+\))?\s*$"
)
_LSPCI_LOOSE = re.compile(r"^(?:[0-9a-f]{4,8}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\s")
_BRACKET_MODEL = re.compile(r"\[([^\]]+)\]\s*$")


def is_lspci(text: Text) -> bool:
    rows = [line for line in text.lines if line.strip()]
    return bool(rows) and sum(bool(_LSPCI_LOOSE.match(r)) for r in rows) >= max(1, len(rows) // 2)


def _bdf(bdf: str) -> str:
    return bdf if bdf.count(":") == 2 else f"0000:{bdf}"


def _classify(
    source: str,
    bdf: str,
    cls: str,
    vendor: str,
    device: str,
    name: str,
    numa: int | None,
    gpus: list[GpuFact],
    nics: list[NicFact],
    switches: list[str],
) -> None:
    if vendor == NVIDIA and cls in _GPU_CLASSES:
        product = None
        match = _BRACKET_MODEL.search(name)
        if match:
            product = match[1]  # "GA100 [A100 SXM4 80GB]" -> "A100 SXM4 80GB"
        gpus.append(
            GpuFact(
                source,
                pci_bus_id=_bdf(bdf),
                pci_device_id=device,
                product_name=product,
                numa_node=numa,
            )
        )
    elif vendor == NVIDIA and cls == "0680":
        switches.append(NVSWITCH_PCI_DEVICE_IDS.get(device, f"NVIDIA bridge 10de:{device}"))
    elif cls == "0207":
        nics.append(
            NicFact(
                source,
                _bdf(bdf),
                rdma=True,
                link_layer="InfiniBand",
                model=name or None,
                numa_node=numa,
                pci_bus_id=_bdf(bdf),
                from_pci_only=True,
            )
        )
    elif cls == "0200" and vendor in ("15b3",):
        # Mellanox Ethernet functions are RoCE-capable; which ones the fabric uses for
        # RDMA shows in /sys/class/infiniband, not here.
        nics.append(
            NicFact(
                source,
                _bdf(bdf),
                rdma=None,
                link_layer="Ethernet",
                model=name or None,
                numa_node=numa,
                pci_bus_id=_bdf(bdf),
                from_pci_only=True,
            )
        )


def parse_lspci(text: Text) -> Facts:
    gpus: list[GpuFact] = []
    nics: list[NicFact] = []
    switches: list[str] = []
    notes: list[Note] = []
    for i, line in enumerate(text.lines):
        if not line.strip():
            continue
        match = _LSPCI.match(line.strip())
        if not match:
            if _LSPCI_LOOSE.match(line):
                raise ParseError(
                    text.source,
                    text.line_no(i),
                    "an `lspci -nn` line: address, class [cccc]: name [vvvv:dddd] (plain "
                    "`lspci` lacks the ids; run `lspci -nn`)",
                    line.strip(),
                )
            continue
        _classify(
            text.source,
            match["bdf"],
            match["cls"],
            match["vendor"],
            match["device"],
            match["name"],
            None,
            gpus,
            nics,
            switches,
        )
    gpus.sort(key=lambda g: g.pci_bus_id or "")
    if switches:
        notes.append(Note(text.source, f"{len(switches)} NVSwitch chip(s): {switches[0]}"))
    return Facts(
        gpus=tuple(gpus),
        nics=tuple(nics),
        nvswitches=len(switches) if gpus else None,
        notes=tuple(notes),
        sources=(text.source,),
    )


def read_sysfs_pci(root: Path) -> Facts:
    base = root / "sys/bus/pci/devices"
    if not base.is_dir():
        return Facts()
    gpus: list[GpuFact] = []
    nics: list[NicFact] = []
    switches: list[str] = []
    source = str(base)
    for dev in sorted(base.iterdir()):
        cls = (_read(dev / "class") or "").lower().removeprefix("0x")[:4]
        vendor = (_read(dev / "vendor") or "").lower().removeprefix("0x")
        device = (_read(dev / "device") or "").lower().removeprefix("0x")
        numa_text = _read(dev / "numa_node")
        numa = int(numa_text) if numa_text and numa_text.isdigit() else None
        before = len(gpus)
        _classify(source, dev.name, cls, vendor, device, "", numa, gpus, nics, switches)
        if len(gpus) > before:
            g = gpus[-1]
            gpus[-1] = GpuFact(
                g.source,
                pci_bus_id=g.pci_bus_id,
                pci_device_id=g.pci_device_id,
                numa_node=g.numa_node,
                pcie_switch=pcie_switch_of(dev),
            )
    gpus.sort(key=lambda g: g.pci_bus_id or "")
    return Facts(
        gpus=tuple(gpus),
        nics=tuple(nics),
        nvswitches=len(switches) if gpus else None,
        sources=(source,) if gpus or nics else (),
    )


def pcie_switch_of(dev: Path) -> str | None:
    """The upstream port of the PCIe switch above a device, from its sysfs path.

    /sys/devices/pci0000:00/<root port>/<switch upstream>/<switch downstream>/<device>:
    with two bridges or more between the root port and the device, the first one below the
    root port is the switch that the device shares with its siblings.
    """
    try:
        parts = dev.resolve().parts
    except OSError:
        return None
    bdfs = [p for p in parts if re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", p)]
    if len(bdfs) < 4:
        return None
    return bdfs[1]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
