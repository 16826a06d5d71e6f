"""HardwareProfile: a named machine topology (NUMA, GPUs, NICs, power, pairwise links)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from stratum.api.v1alpha1.meta import Resource, Status, WireModel

# The link classes `nvidia-smi topo -m` prints, best first. NV# carries a link count.
LINK_CLASS_PATTERN = r"^(X|NV[0-9]+|PIX|PXB|PHB|NODE|SYS|SOC)$"


class NumaNodeSpec(WireModel):
    id: int = Field(ge=0, le=1023)
    cpus: str = Field(default="", description="CPU list as the kernel prints it, e.g. 0-31,64-95")
    memory_gib: float = Field(default=0.0, ge=0)


class SocketSpec(WireModel):
    id: int = Field(ge=0, le=63)
    model: str | None = None
    cores: int = Field(default=0, ge=0)
    threads_per_core: int = Field(default=1, ge=1, le=8)
    numa_nodes: list[NumaNodeSpec] = Field(default_factory=list)


class MigProfileSpec(WireModel):
    name: str
    slices: int = Field(ge=1, le=8, description="compute slices (g) the profile takes")
    memory_gib: float = Field(ge=0)
    max_instances: int = Field(ge=1, le=8)


class GpuSpec(WireModel):
    index: int = Field(ge=0, le=1023)
    model: str = Field(min_length=1)
    memory_gib: float = Field(gt=0)
    uuid: str | None = None
    pci_bus_id: str | None = None
    numa_node: int | None = None
    pcie_switch: str | None = None
    nvlink_domain: str | None = None
    nvlink_links: int = Field(default=0, ge=0)
    mig_capable: bool = False
    mig_profiles: list[MigProfileSpec] = Field(default_factory=list)
    power_w: float | None = Field(default=None, gt=0)


class NicSpec(WireModel):
    name: str = Field(min_length=1)
    rdma: bool = False
    speed_gbps: float = Field(default=0.0, ge=0)
    numa_node: int | None = None
    pcie_switch: str | None = None
    link_layer: Literal["InfiniBand", "Ethernet"] | None = None


class PowerSpec(WireModel):
    idle_w: float = Field(default=0.0, ge=0)
    max_w: float = Field(default=0.0, ge=0)


class LinkMatrix(WireModel):
    """Pairwise link classes between devices (GPUs then NICs), as nvidia-smi topo -m."""

    devices: list[str] = Field(default_factory=list)
    classes: list[list[str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _square(self) -> LinkMatrix:
        n = len(self.devices)
        if len(self.classes) != n or any(len(row) != n for row in self.classes):
            raise ValueError(f"classes must be a {n}x{n} matrix, one row and column per device")
        return self


class HardwareProfileSpec(WireModel):
    description: str = ""
    vendor: str | None = None
    model: str | None = None
    sockets: list[SocketSpec] = Field(default_factory=list)
    memory_gib: float = Field(default=0.0, ge=0)
    gpus: list[GpuSpec] = Field(default_factory=list)
    nics: list[NicSpec] = Field(default_factory=list)
    power: PowerSpec = Field(default_factory=PowerSpec)
    links: LinkMatrix | None = None


class HardwareProfile(Resource):
    KIND: ClassVar[str] = "HardwareProfile"
    PLURAL: ClassVar[str] = "hardwareprofiles"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hwp", "profile", "profiles")
    kind: Literal["HardwareProfile"] = "HardwareProfile"
    spec: HardwareProfileSpec
    status: Status = Field(default_factory=Status)
