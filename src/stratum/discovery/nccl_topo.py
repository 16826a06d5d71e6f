"""Parser of NCCL topology XML (NCCL_TOPO_FILE / NCCL_TOPO_DUMP_FILE): CPUs, PCIe tree, GPUs, NICs.

Each <cpu> is a NUMA node (numaid, affinity mask); <pci> elements nest below it along the
PCIe tree. A device whose parent is a bridge (class 0x0604xx) sits on that switch. GPU
models are not in the format; they stay unknown unless another source names them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from stratum.core.cpulist import CpuListError, parse_cpumask
from stratum.discovery.sources import (
    Facts,
    GpuFact,
    NicFact,
    NumaFact,
    ParseError,
    Text,
    normalise_bus_id,
    parse_xml,
)


def is_nccl_topo(text: Text) -> bool:
    body = text.body
    return "<system" in body and "<cpu" in body and "<pci" in body


def parse_nccl_topo(text: Text) -> Facts:
    doc = parse_xml(text, ("<system",), "well-formed NCCL topology XML")
    root, first = doc.root, doc.first_line
    at = doc.lines
    gpus: list[GpuFact] = []
    nics: list[NicFact] = []
    numa: list[NumaFact] = []
    switch_names: dict[str, str] = {}
    for cpu in root.iter("cpu"):
        numa_id = cpu.get("numaid")
        if numa_id is None or not numa_id.isdigit():
            raise ParseError(
                text.source, at.get(id(cpu), first), "a numeric numaid on every <cpu>", numa_id
            )
        node = int(numa_id)
        affinity = cpu.get("affinity")
        try:
            cpus = parse_cpumask(affinity) if affinity else None
        except CpuListError as exc:
            raise ParseError(
                text.source,
                at.get(id(cpu), first),
                f"a hex affinity mask on <cpu numaid={node}>",
                affinity,
            ) from exc
        numa.append(NumaFact(text.source, node, cpus=cpus))
        _walk(text, cpu, node, None, gpus, nics, switch_names, at)
    if not numa:
        raise ParseError(text.source, first, "<cpu> elements under <system>")
    gpus.sort(key=lambda g: g.pci_bus_id or "")
    return Facts(gpus=tuple(gpus), nics=tuple(nics), numa=tuple(numa), sources=(text.source,))


def _walk(
    text: Text,
    element: ET.Element,
    node: int,
    switch: str | None,
    gpus: list[GpuFact],
    nics: list[NicFact],
    switch_names: dict[str, str],
    at: dict[int, int],
) -> None:
    for pci in element.findall("pci"):
        busid = pci.get("busid")
        cls = (pci.get("class") or "").lower().removeprefix("0x")
        if busid is None or not cls:
            raise ParseError(
                text.source, at.get(id(pci)), "busid and class on every <pci>", str(pci.attrib)
            )
        bdf = normalise_bus_id(busid)
        if cls.startswith("0604"):
            name = switch_names.setdefault(bdf, f"pcie-sw{len(switch_names)}")
            _walk(text, pci, node, name, gpus, nics, switch_names, at)
        elif cls.startswith("03"):
            gpus.append(GpuFact(text.source, pci_bus_id=bdf, numa_node=node, pcie_switch=switch))
        elif cls.startswith("02"):
            ib = cls.startswith("0207")
            nics.append(
                NicFact(
                    text.source,
                    bdf,
                    rdma=True if ib else None,
                    link_layer="InfiniBand" if ib else "Ethernet",
                    numa_node=node,
                    pci_bus_id=bdf,
                    pcie_switch=switch,
                    from_pci_only=True,
                )
            )
            for net in pci.iter("net"):
                speed = net.get("speed")
                if speed and speed.isdigit():
                    nics[-1] = NicFact(
                        text.source,
                        net.get("name") or bdf,
                        rdma=True,
                        speed_gbps=int(speed) / 1000,
                        link_layer="InfiniBand" if ib else "Ethernet",
                        numa_node=node,
                        pci_bus_id=bdf,
                        pcie_switch=switch,
                    )
        else:
            _walk(text, pci, node, switch, gpus, nics, switch_names, at)
