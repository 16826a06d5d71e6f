"""Workload: what a tenant runs, with the resource contract it must be given."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.contract import Contract
from stratum.api.v1alpha1.meta import ObjectName, Resource, Status, Timestamp, WireModel

WorkloadType = Literal["training", "finetune", "inference", "batch", "agent"]
ContractPhase = Literal[
    "Pending", "Bound", "Running", "Violated", "Succeeded", "Failed", "Released", "Rejected"
]


RestartPolicy = Literal["Never", "OnFailure", "Always"]


class RunSpec(WireModel):
    image: str | None = Field(default=None, max_length=1024)
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    working_dir: str | None = Field(
        default=None, max_length=4096, description="directory the command starts in"
    )
    restart_policy: RestartPolicy = Field(
        default="Never", description="what the runtime does when a replica's process exits"
    )
    grace_period_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="between SIGTERM and SIGKILL when a replica is stopped",
    )


class WorkloadSpec(WireModel):
    type: WorkloadType
    replicas: int = Field(default=1, ge=1, le=4096, description="a gang: all or nothing")
    run: RunSpec = Field(default_factory=RunSpec)
    contract: Contract = Field(default_factory=Contract)
    template: ObjectName | None = Field(default=None, description="WorkloadTemplate it came from")


class ClauseReason(WireModel):
    clause: str
    excluded: int = Field(default=0, ge=0)
    message: str = ""


class Violation(WireModel):
    clause: str
    message: str
    at: Timestamp


class WorkloadStatus(Status):
    phase: ContractPhase | None = None
    placement: str | None = None
    message: str = ""
    reasons: list[ClauseReason] = Field(default_factory=list, description="why not bound")
    attempt: int = Field(default=0, ge=0, description="how many times it has been placed")
    bound_at: Timestamp | None = None
    running_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    violations: list[Violation] = Field(default_factory=list, description="most recent last")
    last_remediation_seconds: float | None = Field(
        default=None, description="violation to running again, on the last remediation"
    )
    p99_latency_ms: float | None = None
    throughput_rps: float | None = None


class Workload(Resource):
    KIND: ClassVar[str] = "Workload"
    PLURAL: ClassVar[str] = "workloads"
    NAMESPACED: ClassVar[bool] = True
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("workload", "wl")
    kind: Literal["Workload"] = "Workload"
    spec: WorkloadSpec
    status: WorkloadStatus = Field(default_factory=WorkloadStatus)
