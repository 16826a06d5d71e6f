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
    """What each replica runs; the backend launches it on the devices the Placement binds."""

    image: str | None = Field(
        default=None,
        max_length=1024,
        description="Container image, for backends that run containers (kubernetes; unset: "
        "the backend's default image); the local runtime runs commands, not images.",
    )
    command: list[str] = Field(
        default_factory=list,
        description="The program and its first arguments (argv); the local runtime needs it, "
        "on kubernetes it replaces the image's entrypoint.",
    )
    args: list[str] = Field(default_factory=list, description="Arguments appended after command.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables for each replica, by name; Stratum adds its own "
        "(STRATUM_REPLICA and others).",
    )
    working_dir: str | None = Field(
        default=None, max_length=4096, description="Directory the command starts in."
    )
    restart_policy: RestartPolicy = Field(
        default="Never",
        description="What the runtime does when a replica's process exits: Never restarts "
        "it, OnFailure restarts it on a non-zero exit, Always restarts it.",
    )
    grace_period_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="Seconds between SIGTERM and SIGKILL when a replica is stopped.",
    )


class WorkloadSpec(WireModel):
    type: WorkloadType = Field(
        description="The kind of work: training, finetune, inference, batch or agent; "
        "policies can match on it (match.workloadTypes)."
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=4096,
        description="Replicas, placed as a gang: all bind at once or none does; the contract "
        "applies to each.",
    )
    run: RunSpec = Field(
        default_factory=RunSpec,
        description="What each replica runs: image or command, arguments, environment, "
        "restart policy.",
    )
    contract: Contract = Field(
        default_factory=Contract,
        description="The resources, topology, law, availability, service level and "
        "lifecycle the workload must be given; the scheduler binds it only where every "
        "clause holds.",
    )
    template: ObjectName | None = Field(
        default=None,
        description="Name of the WorkloadTemplate it was launched from (set by `stratum "
        "launch`); informational.",
    )


class ClauseReason(WireModel):
    """Why the scheduler could not bind the workload, for one clause."""

    clause: str = Field(
        description="The contract clause (e.g. topology.withinReplica) or rule (quota, "
        "policy) that ruled nodes out."
    )
    excluded: int = Field(
        default=0, ge=0, description="How many nodes this clause ruled out, after the earlier ones."
    )
    message: str = Field(default="", description="What the excluded nodes lacked, in words.")


class Violation(WireModel):
    """A clause found broken while the workload ran."""

    clause: str = Field(description="The clause that broke, e.g. serviceLevel.p99LatencyMs.")
    message: str = Field(description="What was observed, in words.")
    at: Timestamp = Field(description="When the breach was found.")


class WorkloadStatus(Status):
    phase: ContractPhase | None = Field(
        default=None,
        description="Where the contract stands: Pending (waiting to bind), Bound, Running, "
        "Violated (a clause broke while running), Succeeded, Failed, or Rejected (no fleet "
        "the tenant may use could ever hold it; judged again when the spec or fleet changes).",
    )
    placement: str | None = Field(
        default=None,
        description="Name of the Placement (same namespace) holding its devices, while bound.",
    )
    message: str = Field(default="", description="The latest transition, in words.")
    reasons: list[ClauseReason] = Field(
        default_factory=list,
        description="Why it is not bound: the nodes each clause ruled out, in the order judged.",
    )
    attempt: int = Field(
        default=0, ge=0, description="How many times it has been placed (1 after the first bind)."
    )
    bound_at: Timestamp | None = Field(
        default=None, description="When its current Placement was bound."
    )
    running_at: Timestamp | None = Field(
        default=None, description="When the backend started its current run."
    )
    finished_at: Timestamp | None = Field(default=None, description="When it Succeeded or Failed.")
    violations: list[Violation] = Field(
        default_factory=list,
        description="Clauses found broken while running, most recent last (the last 20 kept).",
    )
    last_remediation_seconds: float | None = Field(
        default=None,
        description="Seconds from the last violation to running again, on the last remediation.",
    )
    p99_latency_ms: float | None = Field(
        default=None,
        description="99th-percentile request latency in ms, as the backend last reported it.",
    )
    throughput_rps: float | None = Field(
        default=None,
        description="Requests per second, as the backend last reported them.",
    )


class Workload(Resource):
    KIND: ClassVar[str] = "Workload"
    PLURAL: ClassVar[str] = "workloads"
    NAMESPACED: ClassVar[bool] = True
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("workload", "wl")
    kind: Literal["Workload"] = "Workload"
    spec: WorkloadSpec = Field(
        description="What to run, how many replicas, and the contract they must be given."
    )
    status: WorkloadStatus = Field(
        default_factory=WorkloadStatus,
        description="Where the contract stands: phase, placement, why it is not bound, violations.",
    )
