"""Readers of sysfs: NUMA nodes, PCI devices, RDMA devices and network interfaces.

Every reader takes a root (`/` on the host, or a directory holding a saved `sys/` tree) so
the same code reads the live machine and a copy of it. `save_sysfs` writes that copy: the
few small files the readers use, not the whole tree.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from stratum.core.cpulist import CpuListError, parse_cpulist
from stratum.discovery import infiniband, pci
from stratum.discovery.sources import Facts, NicFact, Note, NumaFact, merge_all, normalise_bus_id

_NODE = re.compile(r"^node(\d+)$")
_MEMTOTAL = re.compile(r"MemTotal:\s+(\d+) kB")
# Interfaces that are not hardware: no device link, or a known virtual driver.
_VIRTUAL = (
    "lo",
    "ifb",
    "veth",
    "docker",
    "br-",
    "virbr",
    "cni",
    "flannel",
    "cali",
    "tun",
    "tap",
    "bond",
    "team",
    "vxlan",
    "wg",
)


def read_numa(root: Path) -> Facts:
    base = root / "sys/devices/system/node"
    if not base.is_dir():
        return Facts()
    nodes: list[NumaFact] = []
    notes: list[Note] = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        match = _NODE.match(entry.name)
        if not match:
            continue
        cpulist = _read(entry / "cpulist")
        try:
            cpus = parse_cpulist(cpulist or "")
        except CpuListError as exc:
            notes.append(Note(str(entry / "cpulist"), str(exc)))
            cpus = None
        meminfo = _read(entry / "meminfo") or ""
        total = _MEMTOTAL.search(meminfo)
        nodes.append(
            NumaFact(
                str(entry),
                int(match[1]),
                cpus=cpus,
                memory_mib=int(total[1]) / 1024 if total else None,
            )
        )
    nodes.sort(key=lambda n: n.id)
    return Facts(numa=tuple(nodes), notes=tuple(notes), sources=(str(base),) if nodes else ())


def read_meminfo(root: Path) -> Facts:
    text = _read(root / "proc/meminfo")
    match = _MEMTOTAL.search(text or "")
    return Facts(memory_mib=int(match[1]) / 1024) if match else Facts()


def read_net(root: Path) -> Facts:
    """Hardware network interfaces (those with a device link): name, speed, NUMA node."""
    base = root / "sys/class/net"
    if not base.is_dir():
        return Facts()
    nics: list[NicFact] = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(_VIRTUAL) or not (entry / "device").exists():
            continue
        speed = _read(entry / "speed")
        mbps = int(speed) if speed and speed.isdigit() and int(speed) > 0 else None
        numa = _read(entry / "device/numa_node")
        bus = (entry / "device").resolve().name
        is_pci = re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", bus)
        nics.append(
            NicFact(
                str(entry),
                entry.name,
                rdma=(entry / "device/infiniband").is_dir() or None,
                speed_gbps=mbps / 1000 if mbps else None,
                link_layer="Ethernet",
                active=(_read(entry / "operstate") == "up"),
                numa_node=int(numa) if numa and numa.isdigit() else None,
                pci_bus_id=normalise_bus_id(bus) if is_pci else None,
                pcie_switch=pci.pcie_switch_of(entry / "device") if is_pci else None,
            )
        )
    return Facts(nics=tuple(nics), sources=(str(base),) if nics else ())


def read_sysfs(root: Path) -> Facts:
    """NUMA nodes, PCI GPUs/NICs, RDMA devices and network interfaces under `root`."""
    rdma = infiniband.read_sysfs_infiniband(root)
    net = read_net(root)
    # An RDMA device and its netdev are one NIC; keep the RDMA name (what NCCL uses).
    rdma_buses = {n.pci_bus_id for n in rdma.nics if n.pci_bus_id}
    net = Facts(
        nics=tuple(n for n in net.nics if n.pci_bus_id not in rdma_buses), sources=net.sources
    )
    return merge_all([read_numa(root), read_meminfo(root), pci.read_sysfs_pci(root), rdma, net])


# The files the readers use, relative to the root; globs, copied when present.
_SAVED = (
    "proc/meminfo",
    "sys/devices/system/node/node*/cpulist",
    "sys/devices/system/node/node*/meminfo",
    "sys/class/infiniband/*/ports/*/state",
    "sys/class/infiniband/*/ports/*/rate",
    "sys/class/infiniband/*/ports/*/link_layer",
    "sys/class/infiniband/*/device/numa_node",
    "sys/class/net/*/speed",
    "sys/class/net/*/operstate",
    "sys/class/net/*/device/numa_node",
)
_SAVED_PCI = ("class", "vendor", "device", "numa_node")


def save_sysfs(root: Path, target: Path) -> int:
    """Copy what the readers use from `root` into `target` (same layout); returns files copied.

    PCI devices are copied only for NVIDIA and network/InfiniBand functions. The copy keeps
    plain files, so symlinks (PCI paths, device links) are flattened: the saved tree reads
    the same but loses PCIe switch placement, which `nvidia-smi topo -m` carries instead.
    """
    copied = 0
    for pattern in _SAVED:
        for src in root.glob(pattern):
            if src.is_file():
                copied += _copy(src, target / src.relative_to(root))
    base = root / "sys/bus/pci/devices"
    if base.is_dir():
        for dev in base.iterdir():
            cls = (_read(dev / "class") or "").lower().removeprefix("0x")
            vendor = (_read(dev / "vendor") or "").lower().removeprefix("0x")
            if vendor == pci.NVIDIA or cls.startswith(("0200", "0207")):
                for name in _SAVED_PCI:
                    if (dev / name).is_file():
                        copied += _copy(dev / name, target / dev.relative_to(root) / name)
    return copied


def _copy(src: Path, dst: Path) -> int:
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    except OSError:
        return 0
    return 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
