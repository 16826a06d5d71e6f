"""The agent protocol's wire types, shared by the server (routers/agents.py) and the agent
process (stratum.agent): what a host reports, and what it is asked to run.

A report is validated whole before anything is recorded, so that a malformed one is a 422
naming the field and changes nothing, for this node or any other.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from stratum.api.v1alpha1 import Placement, Workload
from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.api.v1alpha1.meta import ObjectName, WireModel
from stratum.backends.base import LaunchSpec, ReplicaLaunch
from stratum.backends.launching import launch_spec

PROTOCOL = "stratum.dev/agent/v1"
RunPhaseName = Literal["Starting", "Running", "Succeeded", "Failed", "Lost"]
HealthName = Literal["Healthy", "Degraded", "Failed", "Unknown"]
# The annotation the simulator reads for a run's length; a real host runs the command.
RUN_KEY = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class JoinRequest(WireModel):
    """`stratum agent`'s first call, with the Cluster's bootstrap token as its bearer."""

    node: ObjectName
    cluster: ObjectName | None = None
    rack: str | None = Field(default=None, max_length=63)
    hardware: HardwareProfileSpec


class Answer(WireModel):
    """What the server sends: an older agent ignores fields a newer server adds."""

    model_config = ConfigDict(**{**WireModel.model_config, "extra": "ignore"})
    protocol: str = PROTOCOL


class JoinAnswer(Answer):
    node: str
    cluster: str
    token: str
    heartbeat_seconds: float
    not_ready_after_seconds: float
    grace_seconds: float


class ReplicaReport(WireModel):
    replica: int = Field(ge=0, le=100_000)
    phase: RunPhaseName
    pid: int | None = Field(default=None, ge=1)
    exit_code: int | None = Field(default=None, ge=-255, le=255)
    restarts: int = Field(default=0, ge=0)
    started_at: datetime | None = None
    message: str = Field(default="", max_length=2000)


class RunReport(WireModel):
    key: str = Field(pattern=RUN_KEY, max_length=317, description="namespace/name")
    uid: str = Field(max_length=64)
    attempt: int = Field(ge=1)
    phase: RunPhaseName
    message: str = Field(default="", max_length=2000)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    replicas: list[ReplicaReport] = Field(default_factory=list, max_length=4096)


class GpuReport(WireModel):
    index: int = Field(ge=0, le=1024)
    health: HealthName = "Healthy"
    utilization_pct: float = Field(default=0.0, ge=0, le=100)
    memory_used_gib: float = Field(default=0.0, ge=0)
    power_w: float = Field(default=0.0, ge=0)
    temperature_c: float = 0.0
    ecc_errors: int = Field(default=0, ge=0)
    nvlink_degraded: bool = False


class NodeReport(WireModel):
    """One heartbeat: the host's telemetry and every run it holds, as it sees them now.
    `buffered` says how many heartbeats it could not deliver before this one."""

    node: ObjectName
    seq: int = Field(ge=0)
    gpus: list[GpuReport] = Field(default_factory=list, max_length=1024)
    cpu_utilization_pct: float | None = Field(default=None, ge=0, le=100)
    memory_used_gib: float | None = Field(default=None, ge=0)
    power_w: float = Field(default=0.0, ge=0)
    runs: list[RunReport] = Field(default_factory=list, max_length=1000)
    buffered: int = Field(default=0, ge=0)


class ReportAnswer(Answer):
    heartbeat_seconds: float
    not_ready_after_seconds: float
    grace_seconds: float


class DesiredRun(Answer):
    """One Placement naming the node, as the agent runs it: `active` is False once the
    Placement no longer holds devices (released, finished) and the run must stop."""

    key: str
    uid: str
    attempt: int
    phase: str | None = None
    active: bool = True
    on_partition: Literal["keep", "fence"] = "keep"
    resource_version: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)


def launch_to_wire(spec: LaunchSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def launch_from_wire(data: dict[str, Any]) -> LaunchSpec:
    fields = dict(data)
    fields["replicas"] = tuple(ReplicaLaunch(**r) for r in fields.get("replicas", ()))
    for name in ("command", "args"):
        fields[name] = tuple(fields.get(name, ()))
    fields["env"] = tuple((str(k), str(v)) for k, v in fields.get("env", ()))
    return LaunchSpec(**fields)


def desired_run(
    placement: dict[str, Any],
    workload: dict[str, Any] | None,
    *,
    holding: frozenset[str],
) -> DesiredRun:
    """What a node runs for one Placement (wire dicts, as stored): the LaunchSpec the
    workload controller hands a backend, built from the same two objects."""
    meta = placement["metadata"]
    pspec = placement.get("spec") or {}
    phase = (placement.get("status") or {}).get("phase")
    key = f"{meta.get('namespace', '')}/{meta['name']}"
    uid = pspec.get("workloadUid") or ""
    attempt = int(pspec.get("attempt") or 1)
    active = phase in holding and workload is not None
    if workload is not None and (workload.get("metadata") or {}).get("uid") != uid:
        active = False  # the Workload was deleted and made again: this Placement is stale
    if not active or workload is None:
        return DesiredRun(
            key=key,
            uid=uid,
            attempt=attempt,
            phase=phase,
            active=False,
            resource_version=meta.get("resourceVersion"),
        )
    # The same spec the workload controller hands a backend (backends/launching.py).
    typed = Workload.model_validate(workload)
    spec = launch_spec(typed, Placement.model_validate(placement))
    return DesiredRun(
        key=key,
        uid=uid,
        attempt=attempt,
        phase=phase,
        active=True,
        on_partition=typed.spec.contract.lifecycle.on_partition,
        resource_version=meta.get("resourceVersion"),
        spec=launch_to_wire(spec),
    )


def names_node(placement: dict[str, Any], node: str) -> bool:
    return any(r.get("node") == node for r in (placement.get("spec") or {}).get("replicas") or [])
