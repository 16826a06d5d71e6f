"""Node: one machine, discovered or simulated, with its topology, health and allocations."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.api.v1alpha1.meta import ObjectName, Resource, Status, Timestamp, WireModel

DeviceHealth = Literal["Healthy", "Degraded", "Failed", "Unknown"]


class NodeSpec(WireModel):
    cluster: ObjectName
    site: ObjectName
    profile: ObjectName | None = Field(default=None, description="HardwareProfile name")
    rack: str | None = Field(default=None, max_length=63)
    unschedulable: bool = False
    hardware: HardwareProfileSpec | None = Field(
        default=None, description="discovered topology; overrides the profile"
    )


class GpuState(WireModel):
    index: int = Field(ge=0)
    health: DeviceHealth = "Healthy"
    allocated_milli: int = Field(default=0, ge=0, le=1000)
    utilization_pct: float | None = Field(default=None, ge=0, le=100)
    memory_used_gib: float | None = Field(default=None, ge=0)
    power_w: float | None = Field(default=None, ge=0)
    temperature_c: float | None = None
    ecc_errors: int | None = Field(default=None, ge=0, description="uncorrected, since boot")


class Allocation(WireModel):
    workload: str
    namespace: str
    replica: int = Field(ge=0)
    gpus: list[int] = Field(default_factory=list)
    gpu_milli: int | None = None
    cpu_set: str | None = None


class NodeStatus(Status):
    phase: Literal["Ready", "NotReady", "Unknown"] | None = None
    gpus: list[GpuState] = Field(default_factory=list)
    # Host telemetry, where the backend reads it (the local runtime, agents).
    cpu_utilization_pct: float | None = Field(default=None, ge=0, le=100)
    memory_used_gib: float | None = Field(default=None, ge=0)
    allocations: list[Allocation] = Field(default_factory=list)
    last_heartbeat: Timestamp | None = None


class Node(Resource):
    KIND: ClassVar[str] = "Node"
    PLURAL: ClassVar[str] = "nodes"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("node", "no")
    kind: Literal["Node"] = "Node"
    spec: NodeSpec
    status: NodeStatus = Field(default_factory=NodeStatus)
