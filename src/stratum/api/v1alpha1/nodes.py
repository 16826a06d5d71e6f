"""Node: one machine, discovered or simulated, with its topology, health and allocations."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.api.v1alpha1.meta import ObjectName, Resource, Status, Timestamp, WireModel

DeviceHealth = Literal["Healthy", "Degraded", "Failed", "Unknown"]


class NodeSpec(WireModel):
    cluster: ObjectName = Field(description="Name of the Cluster the node belongs to.")
    site: ObjectName = Field(description="Name of the Site the node is at.")
    profile: ObjectName | None = Field(
        default=None, description="Name of the HardwareProfile describing its hardware."
    )
    rack: str | None = Field(
        default=None,
        max_length=63,
        description="Rack the node is in; the scheduler's rack tier and rack spread use it.",
    )
    unschedulable: bool = Field(
        default=False,
        description="Cordoned: the scheduler binds nothing new to it; work already bound stays.",
    )
    hardware: HardwareProfileSpec | None = Field(
        default=None, description="Discovered topology; when set, it overrides the profile."
    )


class GpuState(WireModel):
    """One GPU as its backend last reported it."""

    index: int = Field(ge=0, description="GPU index, as in the node's hardware.")
    health: DeviceHealth = Field(
        default="Healthy",
        description="Healthy, Degraded, Failed or Unknown; the scheduler places only on "
        "Healthy GPUs, and a bound GPU that turns Failed violates its workload's contract.",
    )
    allocated_milli: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="Thousandths of the GPU that bound work holds, from this node's "
        "allocations: a whole GPU 1000, a share its gpuMilli, a MIG slice its compute slices' "
        "part (at most 1000).",
    )
    utilization_pct: float | None = Field(
        default=None, ge=0, le=100, description="GPU utilisation in percent."
    )
    memory_used_gib: float | None = Field(default=None, ge=0, description="GPU memory used, GiB.")
    power_w: float | None = Field(default=None, ge=0, description="Power draw now, in W.")
    temperature_c: float | None = Field(default=None, description="Temperature in °C.")
    ecc_errors: int | None = Field(
        default=None, ge=0, description="Uncorrected ECC errors since boot."
    )


class Allocation(WireModel):
    """One replica bound to the node by a Placement."""

    workload: str = Field(description="Name of the Workload.")
    namespace: str = Field(description="Its namespace (tenant).")
    replica: int = Field(ge=0, description="Replica index within the workload's gang.")
    gpus: list[int] = Field(default_factory=list, description="Indices of the GPUs it holds.")
    gpu_milli: int | None = Field(
        default=None, description="For a GPU share: thousandths of the GPU it holds."
    )
    mig_instance: str | None = Field(
        default=None,
        description="For a MIG slice: the instance it holds, as its Placement names it "
        "(profile, GPU and memory slots).",
    )
    cpu_set: str | None = Field(
        default=None, description="CPUs it is pinned to, as a kernel CPU list; unset if not."
    )


class NodeStatus(Status):
    phase: Literal["Ready", "NotReady", "Unknown"] | None = Field(
        default=None,
        description="Ready: its backend reaches it; NotReady: the backend cannot reach it "
        "(nothing new is placed there).",
    )
    gpus: list[GpuState] = Field(
        default_factory=list, description="Health and telemetry of each GPU."
    )
    # Host telemetry, where the backend reads it (the local runtime, agents).
    cpu_utilization_pct: float | None = Field(
        default=None, ge=0, le=100, description="Host CPU utilisation in percent, if reported."
    )
    memory_used_gib: float | None = Field(
        default=None, ge=0, description="Host memory used in GiB, if reported."
    )
    allocations: list[Allocation] = Field(
        default_factory=list,
        description="Replicas bound to the node now, from the Placements that hold devices.",
    )
    last_heartbeat: Timestamp | None = Field(
        default=None, description="When the backend last reached the node."
    )


class Node(Resource):
    KIND: ClassVar[str] = "Node"
    PLURAL: ClassVar[str] = "nodes"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("node", "no")
    kind: Literal["Node"] = "Node"
    spec: NodeSpec = Field(
        description="Where the node is (cluster, site, rack), its hardware, and whether it takes "
        "new work."
    )
    status: NodeStatus = Field(
        default_factory=NodeStatus,
        description="Its health, GPU telemetry and the replicas bound to it, as the backend last "
        "reported them.",
    )
