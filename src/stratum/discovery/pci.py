"""PCI inventory: `lspci -nn` or plain `lspci` output and /sys/bus/pci/devices.

This is how a host whose GPU driver is missing or broken still shows its GPUs (NVIDIA and
AMD Instinct), NVSwitch chips and RDMA NICs. GPU models come from the device id (see
core.gpucatalog). Plain `lspci` (a saved listing that cannot be rerun with -nn) has no ids:
devices are then told by their class and vendor names, models by the bracketed product name
("GH100 [H100 SXM5 80GB]") or "Device 2330", with a note that the ids are missing. With -PP
each address comes after its bridge path, which gives the PCIe switch the device sits under.
Names of RDMA devices (mlx5_0) are not known at this level, so NICs found here are counted
but named by their PCI address.
"""

from __future__ import annotations

import re
from pathlib import Path

from stratum.core.gpucatalog import NVSWITCH_PCI_DEVICE_IDS
from stratum.discovery.sources import Facts, GpuFact, NicFact, Note, Text

NVIDIA = "10de"
AMD = "1002"
_GPU_CLASSES = ("0300", "0302")
_AMD_GPU_CLASSES = ("0380", "1200", "0302")  # Display controller, Processing accelerators
# Class and vendor names as pci.ids spells them, for plain `lspci`.
_CLASS_NAMES = {
    "vga compatible controller": "0300",
    "3d controller": "0302",
    "display controller": "0380",
    "processing accelerators": "1200",
    "ethernet controller": "0200",
    "network controller": "0280",
    "infiniband controller": "0207",
    "bridge": "0680",
}
_VENDOR_NAMES = (
    ("NVIDIA Corporation", NVIDIA),
    ("Advanced Micro Devices, Inc. [AMD/ATI]", AMD),
    ("Mellanox Technologies", "15b3"),
)
_PATH_BDF = r"(?:[0-9a-f]{4,8}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]"
_LSPCI_PLAIN = re.compile(
    rf"^(?P<path>(?:{_PATH_BDF}/)*)(?P<bdf>{_PATH_BDF})\s+(?P<cls_name>[0-9A-Za-z][^:]*?):\s+"
    r"(?P<name>.*?)(?:\s+\(rev [0-9a-f]+\))?(?:\s+\(prog-if [^)]*\))?\s*$"
)
_DEVICE_NUMBER = re.compile(r"\bDevice ([0-9a-f]{4})\s*$")
_LSPCI = re.compile(
    r"^(?P<bdf>(?:[0-9a-f]{4,8}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\s+(?P<cls_name>[^\[]+?)\s+"
    r"\[(?P<cls>[0-9a-f]{4})\]:\s+(?P<name>.*?)\s*\[(?P<vendor>[0-9a-f]{4}):(?P<device>[0-9a-f]{4})\]"
    r"(?:\s+\(rev [0-9a-f]+\))?\s*$"
)
_LSPCI_LOOSE = re.compile(rf"^(?:{_PATH_BDF}/)*{_PATH_BDF}\s+[0-9A-Za-z][^:]*:\s")
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
    switch: str | None = None,
) -> None:
    amd_gpu = vendor == AMD and (
        cls in _AMD_GPU_CLASSES or (cls == "0300" and _product(name) is not None)
    )
    if (vendor == NVIDIA and cls in _GPU_CLASSES) or amd_gpu:
        gpus.append(
            GpuFact(
                source,
                pci_bus_id=_bdf(bdf),
                pci_device_id=device or None,
                product_name=_product(name),
                numa_node=numa,
                vendor="AMD" if vendor == AMD else "NVIDIA",
                pcie_switch=switch,
            )
        )
    elif vendor == NVIDIA and cls == "0680":
        if not device and "NVSwitch" not in name:
            return  # a plain listing's NVIDIA bridge that does not say it is an NVSwitch
        label = NVSWITCH_PCI_DEVICE_IDS.get(device, f"NVIDIA bridge 10de:{device}")
        switches.append(label if device else (_product(name) or name))
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
                pcie_switch=switch,
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
                pcie_switch=switch,
                from_pci_only=True,
            )
        )


def _product(name: str) -> str | None:
    """'GA100 [A100 SXM4 80GB]' -> 'A100 SXM4 80GB'; 'Aqua Vanjaram [Instinct MI300X]' likewise."""
    match = _BRACKET_MODEL.search(name)
    if match and match[1] not in ("AMD/ATI", "AMD"):
        return match[1]
    return None


def parse_lspci(text: Text) -> Facts:
    gpus: list[GpuFact] = []
    nics: list[NicFact] = []
    switches: list[str] = []
    notes: list[Note] = []
    plain_at: int | None = None
    skipped: list[int] = []
    for i, line in enumerate(text.lines):
        stripped = line.strip()
        if not stripped:
            continue
        match = _LSPCI.match(stripped)
        if match:
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
            continue
        plain = _LSPCI_PLAIN.match(stripped)
        if plain is None:
            if not line[:1].isspace():  # indented lines are -v details
                skipped.append(i)
            continue
        cls = _CLASS_NAMES.get(plain["cls_name"].strip().lower())
        if cls is None:
            continue  # host bridges, USB, SATA...: nothing Stratum places
        plain_at = i if plain_at is None else plain_at
        name = plain["name"]
        vendor = next((v for label, v in _VENDOR_NAMES if name.startswith(label)), "")
        device = _DEVICE_NUMBER.search(name)
        _classify(
            text.source,
            plain["bdf"],
            cls,
            vendor,
            device[1] if device else "",
            name,
            None,
            gpus,
            nics,
            switches,
            _switch_from_path(plain["path"], plain["bdf"]),
        )
    if plain_at is not None:
        notes.append(
            Note(
                text.source,
                "plain lspci (no -nn): vendor:device ids are missing, so devices are told "
                "by their names; `lspci -nn` gives the ids",
                text.line_no(plain_at),
            )
        )
    if skipped:
        first = text.lines[skipped[0]].strip()[:80]
        notes.append(
            Note(
                text.source,
                f"not an lspci line; skipped: {first!r}"
                + (f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""),
                text.line_no(skipped[0]),
            )
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


def _switch_from_path(path: str, bdf: str) -> str | None:
    """The PCIe switch above a device, from `lspci -PP`'s bridge path (as pcie_switch_of)."""
    bdfs = [p for p in path.split("/") if p] + [bdf]
    return _bdf(bdfs[1]) if len(bdfs) >= 4 else None


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
