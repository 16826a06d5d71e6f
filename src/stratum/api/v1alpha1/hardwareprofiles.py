"""HardwareProfile: a named machine topology (NUMA, GPUs, NICs, power, pairwise links).

Unknown values stay unknown on the wire: `None` for optional facts, `0` where the field is a
count or a quantity that discovery could not read (documented per field). The derived facts
(link class of any two devices, NVLink domains, closest NIC) live in `stratum.core.topology`.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from stratum.api.v1alpha1.meta import Resource, Status, WireModel

# The link classes `nvidia-smi topo -m` prints, best first. NV# carries a link count.
# SOC is what drivers before 384 printed for SYS; it is accepted and means SYS.
LINK_CLASS_PATTERN = r"^(X|NV[0-9]+|PIX|PXB|PHB|NODE|SYS|SOC)$"
_LINK_CLASS = re.compile(LINK_CLASS_PATTERN)

# MIG profile names as nvidia-smi prints them: "1g.10gb", "3g.40gb", "1g.10gb+me".
MIG_PROFILE_NAME_PATTERN = r"^([1-9]c\.)?[1-9]g\.[0-9]+gb(\+me|\+gfx|-me)?$"

NvlinkFabricKind = Literal["bridge", "mesh", "nvswitch"]
NvlinkScope = Literal["node", "rack"]


class NumaNodeSpec(WireModel):
    """A NUMA node: its CPUs and its memory."""

    id: int = Field(ge=0, le=1023, description="NUMA node id, as the kernel numbers it.")
    cpus: str = Field(
        default="",
        description="Its logical CPUs as the kernel prints them, e.g. 0-31,64-95; empty for a "
        "memory-only node.",
    )
    memory_gib: float = Field(default=0.0, ge=0, description="Its memory in GiB; 0 when unknown.")
    kind: Literal["dram", "hbm", "gpu-memory", "unknown"] = Field(
        default="dram",
        description="What backs the node's memory: dram, hbm, gpu-memory (a GPU's memory "
        "exposed as a NUMA node) or unknown.",
    )
    gpu: int | None = Field(
        default=None,
        ge=0,
        description="For kind gpu-memory: the index of the GPU whose memory it is.",
    )


class SocketSpec(WireModel):
    """A CPU socket and the NUMA nodes it holds."""

    id: int = Field(ge=0, le=63, description="Socket (physical package) id.")
    model: str | None = Field(default=None, description="CPU model name; unset when unknown.")
    cores: int = Field(default=0, ge=0, description="Physical cores; 0 when unknown.")
    threads_per_core: int = Field(
        default=1, ge=1, le=8, description="Hardware threads per core (2 with SMT)."
    )
    numa_nodes: list[NumaNodeSpec] = Field(
        default_factory=list, description="NUMA nodes of this socket, with CPUs and memory."
    )


class MigProfileSpec(WireModel):
    """A MIG profile the GPU supports (nvidia-smi mig -lgip)."""

    name: str = Field(
        pattern=MIG_PROFILE_NAME_PATTERN,
        description="Profile name as nvidia-smi prints it, e.g. 1g.10gb; what "
        "compute.migProfile names.",
    )
    slices: int = Field(ge=1, le=8, description="Compute slices (the g of 3g.40gb) it takes.")
    memory_gib: float = Field(ge=0, description="Memory of one instance, in GiB.")
    max_instances: int = Field(
        ge=1, le=8, description="Most instances of this profile one GPU can hold."
    )


class MigDeviceSpec(WireModel):
    """A MIG instance that exists on the GPU now (nvidia-smi -L / -q)."""

    index: int = Field(ge=0, le=63, description="Index of the MIG device on its GPU.")
    profile: str = Field(
        pattern=MIG_PROFILE_NAME_PATTERN, description="Its profile name, e.g. 3g.40gb."
    )
    uuid: str | None = Field(default=None, description="MIG device UUID (MIG-...), if reported.")
    memory_gib: float = Field(default=0.0, ge=0, description="Its memory in GiB; 0 when unknown.")


class GpuSpec(WireModel):
    """One GPU: model, memory, PCIe and NVLink position, MIG and power."""

    index: int = Field(
        ge=0, le=1023, description="GPU index on the node, as the driver numbers it."
    )
    model: str = Field(
        min_length=1,
        description="Canonical model name, e.g. H100-SXM5-80GB, which compute.models and "
        "quotas match exactly; 'unknown' if not reported.",
    )
    family: str | None = Field(
        default=None,
        description="Model family, e.g. H100; informational (contracts match `model`).",
    )
    vendor: str | None = Field(default=None, description="NVIDIA or AMD; unset when not known.")
    product_name: str | None = Field(
        default=None, description="The product name the driver reports."
    )
    architecture: str | None = Field(
        default=None, description="GPU architecture, e.g. Hopper; informational."
    )
    memory_gib: float = Field(
        ge=0,
        description="GPU memory in GiB; 0 when the source does not report it (then "
        "compute.minGpuMemoryGiB cannot be met).",
    )
    uuid: str | None = Field(default=None, description="GPU UUID (GPU-...), if reported.")
    pci_bus_id: str | None = Field(
        default=None, description="PCI address, dddd:bb:dd.f, lowercase."
    )
    pcie_gen: int | None = Field(default=None, ge=1, le=7, description="PCIe generation.")
    pcie_width: int | None = Field(default=None, ge=1, le=32, description="PCIe lanes.")
    numa_node: int | None = Field(
        default=None,
        description="NUMA node the GPU is attached to (an id of this profile); unset when unknown.",
    )
    pcie_switch: str | None = Field(
        default=None,
        description="Id of the PCIe switch it sits on; GPUs with the same id share one "
        "(topology.withinReplica: pcie-switch).",
    )
    nvlink_domain: str | None = Field(
        default=None,
        description="Id of its NVLink domain; GPUs with the same id talk over NVLink "
        "(topology.withinReplica: nvlink).",
    )
    nvlink_links: int = Field(default=0, ge=0, description="NVLinks this GPU has.")
    nvlink_peers: list[int] = Field(
        default_factory=list, description="Indices of the GPUs of this node it reaches by NVLink."
    )
    nvlink_gbps_per_link: float | None = Field(
        default=None, ge=0, description="NVLink bandwidth in GB/s per link and direction."
    )
    mig_capable: bool = Field(
        default=False,
        description="The GPU supports MIG; only then does the scheduler place MIG slices on it.",
    )
    mig_enabled: bool = Field(default=False, description="MIG mode is on now, as discovered.")
    mig_profiles: list[MigProfileSpec] = Field(
        default_factory=list, description="MIG profiles the GPU offers (nvidia-smi mig -lgip)."
    )
    mig_devices: list[MigDeviceSpec] = Field(
        default_factory=list, description="MIG instances that exist on the GPU now."
    )
    power_w: float | None = Field(
        default=None,
        gt=0,
        description="Board power limit (TDP) in W; what a bound GPU counts against its "
        "site's powerBudgetKW.",
    )
    idle_power_w: float | None = Field(default=None, gt=0, description="Idle power draw in W.")


class NicSpec(WireModel):
    """A network interface."""

    name: str = Field(
        min_length=1, description="Interface or device name (e.g. mlx5_0), unique on the node."
    )
    model: str | None = Field(default=None, description="NIC model; informational.")
    rdma: bool = Field(
        default=False,
        description="Supports RDMA (InfiniBand or RoCE); only RDMA NICs count toward "
        "topology.minRdmaGbpsPerGpu and the rdma tier.",
    )
    speed_gbps: float = Field(default=0.0, ge=0, description="Link speed in Gb/s; 0 when unknown.")
    numa_node: int | None = Field(
        default=None, description="NUMA node the NIC is attached to; unset when unknown."
    )
    pcie_switch: str | None = Field(
        default=None, description="Id of the PCIe switch it sits on, as in gpus[].pcieSwitch."
    )
    pci_bus_id: str | None = Field(default=None, description="PCI address, dddd:bb:dd.f.")
    link_layer: Literal["InfiniBand", "Ethernet"] | None = Field(
        default=None, description="InfiniBand or Ethernet; unset when unknown."
    )


class PowerSpec(WireModel):
    """The whole node's power draw."""

    idle_w: float = Field(default=0.0, ge=0, description="Idle draw in W; 0 when unknown.")
    max_w: float = Field(default=0.0, ge=0, description="Maximum draw in W; 0 when unknown.")


class NvlinkFabricSpec(WireModel):
    """How the GPUs' NVLinks are wired.

    bridge: two GPUs joined by an NVLink bridge; mesh: GPUs wired to each other directly
    (e.g. V100 hybrid cube mesh, POWER9 pairs); nvswitch: every GPU of a domain reaches every
    other through NVSwitch chips. scope=rack means the domain spans several nodes of one rack
    (GB200 NVL72: 18 compute trays, 72 GPUs): nodes of this profile in the same rack share it.
    """

    kind: NvlinkFabricKind = Field(
        description="bridge (two GPUs bridged), mesh (GPUs wired directly) or nvswitch "
        "(every GPU of a domain reaches every other through NVSwitch)."
    )
    interconnect: Literal["nvlink", "xgmi"] | None = Field(
        default=None, description="nvlink, or xgmi (AMD Infinity Fabric); unset means nvlink."
    )
    switches: int = Field(default=0, ge=0, description="NVSwitch chips serving one domain.")
    scope: NvlinkScope = Field(
        default="node",
        description="node: a domain lies within one node; rack: it spans domainNodes nodes "
        "of one rack (e.g. GB200 NVL72), needing kind nvswitch.",
    )
    domain_gpus: int = Field(ge=1, le=576, description="GPUs in one NVLink domain.")
    domain_nodes: int = Field(
        default=1, ge=1, le=72, description="Nodes in one NVLink domain (1 unless scope is rack)."
    )

    @model_validator(mode="after")
    def _scope(self) -> NvlinkFabricSpec:
        if self.scope == "node" and self.domain_nodes != 1:
            raise ValueError("domainNodes must be 1 when scope is node; use scope: rack")
        if self.scope == "rack" and self.kind != "nvswitch":
            raise ValueError("a rack-scale NVLink domain needs NVSwitch (kind: nvswitch)")
        return self


class LinkMatrix(WireModel):
    """Pairwise link classes between devices (GPUs then NICs), as nvidia-smi topo -m."""

    devices: list[str] = Field(
        default_factory=list,
        description="Row and column names: GPU<index> for a GPU, the NIC's name for a NIC.",
    )
    classes: list[list[str]] = Field(
        default_factory=list,
        description="Square, symmetric matrix of link classes (X on the diagonal, NV<n>, PIX, "
        "PXB, PHB, NODE or SYS, best first), one row per device.",
    )

    @model_validator(mode="after")
    def _square(self) -> LinkMatrix:
        n = len(self.devices)
        if len(self.classes) != n or any(len(row) != n for row in self.classes):
            raise ValueError(f"classes must be a {n}x{n} matrix, one row and column per device")
        if len(set(self.devices)) != n:
            raise ValueError("devices must be unique")
        for i, row in enumerate(self.classes):
            for j, value in enumerate(row):
                if not _LINK_CLASS.fullmatch(value):
                    raise ValueError(
                        f"classes[{i}][{j}] ({self.devices[i]} to {self.devices[j]}): {value!r} "
                        "is not a link class; expected X, NV<n>, PIX, PXB, PHB, NODE or SYS"
                    )
                if (i == j) != (value == "X"):
                    raise ValueError(
                        f"classes[{i}][{j}]: X marks a device against itself, and only there"
                    )
                if self.classes[j][i] != value:
                    raise ValueError(
                        f"classes[{i}][{j}] is {value!r} but classes[{j}][{i}] is "
                        f"{self.classes[j][i]!r}: a link has one class both ways"
                    )
        return self


class HardwareProfileSpec(WireModel):
    description: str = Field(default="", description="What machine this is; informational.")
    vendor: str | None = Field(default=None, description="System vendor; informational.")
    model: str | None = Field(default=None, description="System model; informational.")
    architecture: str | None = Field(
        default=None, description="CPU architecture: x86_64, aarch64, ..."
    )
    sockets: list[SocketSpec] = Field(
        default_factory=list, description="CPU sockets with their cores and NUMA nodes."
    )
    memory_numa_nodes: list[NumaNodeSpec] = Field(
        default_factory=list,
        description="NUMA nodes with memory and no CPUs (HBM, GPU memory).",
    )
    memory_gib: float = Field(default=0.0, ge=0, description="Host memory in GiB; 0 when unknown.")
    gpus: list[GpuSpec] = Field(default_factory=list, description="The GPUs, unique by index.")
    nvlink: NvlinkFabricSpec | None = Field(
        default=None, description="How the GPUs' NVLinks are wired; unset: no NVLink."
    )
    nics: list[NicSpec] = Field(default_factory=list, description="The NICs, unique by name.")
    power: PowerSpec = Field(
        default_factory=PowerSpec, description="The whole node's idle and maximum power draw."
    )
    links: LinkMatrix | None = Field(
        default=None,
        description="Pairwise link classes between GPUs and NICs, as nvidia-smi topo -m "
        "prints them; unset: derived from the fields above.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> HardwareProfileSpec:
        indices = [g.index for g in self.gpus]
        if len(set(indices)) != len(indices):
            raise ValueError(f"gpus: indices must be unique, got {indices}")
        names = [n.name for n in self.nics]
        if len(set(names)) != len(names):
            raise ValueError(f"nics: names must be unique, got {names}")
        numa_ids = [n.id for s in self.sockets for n in s.numa_nodes]
        numa_ids += [n.id for n in self.memory_numa_nodes]
        if len(set(numa_ids)) != len(numa_ids):
            raise ValueError(f"NUMA node ids must be unique across sockets, got {numa_ids}")
        if numa_ids:
            known = set(numa_ids)
            placed = [("gpus", i, g.numa_node) for i, g in enumerate(self.gpus)]
            placed += [("nics", i, n.numa_node) for i, n in enumerate(self.nics)]
            for where, i, node in placed:
                if node is not None and node not in known:
                    raise ValueError(
                        f"{where}[{i}].numaNode: {node} is not a NUMA node of this profile "
                        f"(known: {sorted(known)})"
                    )
        for i, gpu in enumerate(self.gpus):
            for peer in gpu.nvlink_peers:
                if peer == gpu.index or peer not in indices:
                    raise ValueError(
                        f"gpus[{i}].nvlinkPeers: {peer} is not another GPU of this profile"
                    )
        if self.nvlink is None and any(g.nvlink_domain for g in self.gpus):
            raise ValueError("gpus name an nvlinkDomain but the profile has no nvlink fabric")
        if self.links is not None:
            expected = {f"GPU{i}" for i in indices} | set(names)
            unknown = [d for d in self.links.devices if d not in expected]
            if unknown:
                raise ValueError(
                    f"links.devices: {unknown} are neither GPU<index> of a GPU nor a NIC name"
                )
        return self


class HardwareProfile(Resource):
    KIND: ClassVar[str] = "HardwareProfile"
    PLURAL: ClassVar[str] = "hardwareprofiles"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hwp", "profile", "profiles")
    kind: Literal["HardwareProfile"] = "HardwareProfile"
    spec: HardwareProfileSpec = Field(
        description="The machine's topology: sockets, NUMA nodes, GPUs, NICs, NVLink, links and "
        "power."
    )
    status: Status = Field(
        default_factory=Status,
        description="Conditions, if any; profiles have no status of their own.",
    )
