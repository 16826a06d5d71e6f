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
    id: int = Field(ge=0, le=1023)
    cpus: str = Field(default="", description="CPU list as the kernel prints it, e.g. 0-31,64-95")
    memory_gib: float = Field(default=0.0, ge=0, description="0 when unknown")
    kind: Literal["dram", "hbm", "gpu-memory", "unknown"] = Field(
        default="dram", description="what backs the node's memory; CPU-less nodes are hbm or gpu"
    )
    gpu: int | None = Field(
        default=None, ge=0, description="kind gpu-memory: index of the GPU whose memory it is"
    )


class SocketSpec(WireModel):
    id: int = Field(ge=0, le=63)
    model: str | None = None
    cores: int = Field(default=0, ge=0, description="physical cores; 0 when unknown")
    threads_per_core: int = Field(default=1, ge=1, le=8)
    numa_nodes: list[NumaNodeSpec] = Field(default_factory=list)


class MigProfileSpec(WireModel):
    """A MIG profile the GPU supports (nvidia-smi mig -lgip)."""

    name: str = Field(pattern=MIG_PROFILE_NAME_PATTERN)
    slices: int = Field(ge=1, le=8, description="compute slices (g) the profile takes")
    memory_gib: float = Field(ge=0)
    max_instances: int = Field(ge=1, le=8)


class MigDeviceSpec(WireModel):
    """A MIG instance that exists on the GPU now (nvidia-smi -L / -q)."""

    index: int = Field(ge=0, le=63)
    profile: str = Field(pattern=MIG_PROFILE_NAME_PATTERN)
    uuid: str | None = None
    memory_gib: float = Field(default=0.0, ge=0)


class GpuSpec(WireModel):
    index: int = Field(ge=0, le=1023)
    model: str = Field(
        min_length=1, description="canonical model (H100-SXM5-80GB); 'unknown' if not reported"
    )
    family: str | None = Field(default=None, description="model family a contract names: H100")
    vendor: str | None = Field(default=None, description="NVIDIA or AMD; None when not known")
    product_name: str | None = Field(default=None, description="the name the driver reports")
    architecture: str | None = None
    memory_gib: float = Field(ge=0, description="0 when the source does not report memory")
    uuid: str | None = None
    pci_bus_id: str | None = Field(default=None, description="dddd:bb:dd.f, lowercase")
    pcie_gen: int | None = Field(default=None, ge=1, le=7)
    pcie_width: int | None = Field(default=None, ge=1, le=32)
    numa_node: int | None = None
    pcie_switch: str | None = Field(default=None, description="id of the PCIe switch it sits on")
    nvlink_domain: str | None = Field(default=None, description="GPUs sharing it talk over NVLink")
    nvlink_links: int = Field(default=0, ge=0, description="NVLinks this GPU has")
    nvlink_peers: list[int] = Field(
        default_factory=list, description="indices of the GPUs of this node it reaches by NVLink"
    )
    nvlink_gbps_per_link: float | None = Field(
        default=None, ge=0, description="GB/s per link and direction"
    )
    mig_capable: bool = False
    mig_enabled: bool = False
    mig_profiles: list[MigProfileSpec] = Field(default_factory=list)
    mig_devices: list[MigDeviceSpec] = Field(default_factory=list)
    power_w: float | None = Field(default=None, gt=0, description="board power limit (TDP), W")
    idle_power_w: float | None = Field(default=None, gt=0)


class NicSpec(WireModel):
    name: str = Field(min_length=1)
    model: str | None = None
    rdma: bool = False
    speed_gbps: float = Field(default=0.0, ge=0, description="0 when unknown")
    numa_node: int | None = None
    pcie_switch: str | None = None
    pci_bus_id: str | None = None
    link_layer: Literal["InfiniBand", "Ethernet"] | None = None


class PowerSpec(WireModel):
    idle_w: float = Field(default=0.0, ge=0, description="0 when unknown")
    max_w: float = Field(default=0.0, ge=0, description="0 when unknown")


class NvlinkFabricSpec(WireModel):
    """How the GPUs' NVLinks are wired.

    bridge: two GPUs joined by an NVLink bridge; mesh: GPUs wired to each other directly
    (e.g. V100 hybrid cube mesh, POWER9 pairs); nvswitch: every GPU of a domain reaches every
    other through NVSwitch chips. scope=rack means the domain spans several nodes of one rack
    (GB200 NVL72: 18 compute trays, 72 GPUs): nodes of this profile in the same rack share it.
    """

    kind: NvlinkFabricKind
    interconnect: Literal["nvlink", "xgmi"] | None = Field(
        default=None, description="nvlink, or xgmi (AMD Infinity Fabric); None means nvlink"
    )
    switches: int = Field(default=0, ge=0, description="NVSwitch chips serving one domain")
    scope: NvlinkScope = "node"
    domain_gpus: int = Field(ge=1, le=576, description="GPUs in one NVLink domain")
    domain_nodes: int = Field(default=1, ge=1, le=72, description="nodes in one NVLink domain")

    @model_validator(mode="after")
    def _scope(self) -> NvlinkFabricSpec:
        if self.scope == "node" and self.domain_nodes != 1:
            raise ValueError("domainNodes must be 1 when scope is node; use scope: rack")
        if self.scope == "rack" and self.kind != "nvswitch":
            raise ValueError("a rack-scale NVLink domain needs NVSwitch (kind: nvswitch)")
        return self


class LinkMatrix(WireModel):
    """Pairwise link classes between devices (GPUs then NICs), as nvidia-smi topo -m."""

    devices: list[str] = Field(default_factory=list)
    classes: list[list[str]] = Field(default_factory=list)

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
    description: str = ""
    vendor: str | None = None
    model: str | None = None
    architecture: str | None = Field(default=None, description="CPU architecture: x86_64, ...")
    sockets: list[SocketSpec] = Field(default_factory=list)
    memory_numa_nodes: list[NumaNodeSpec] = Field(
        default_factory=list, description="NUMA nodes with memory and no CPUs (HBM, GPU memory)"
    )
    memory_gib: float = Field(default=0.0, ge=0, description="0 when unknown")
    gpus: list[GpuSpec] = Field(default_factory=list)
    nvlink: NvlinkFabricSpec | None = None
    nics: list[NicSpec] = Field(default_factory=list)
    power: PowerSpec = Field(default_factory=PowerSpec)
    links: LinkMatrix | None = None

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
    spec: HardwareProfileSpec
    status: Status = Field(default_factory=Status)
