"""Placement: the guarantee — exact devices per replica and evidence for every clause."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import ObjectName, Resource, Status, WireModel
from stratum.api.v1alpha1.workloads import ContractPhase


class ReplicaBinding(WireModel):
    replica: int = Field(ge=0)
    node: ObjectName
    gpus: list[int] = Field(default_factory=list)
    gpu_milli: int | None = Field(default=None, ge=1, le=999)
    cpu_milli: int = Field(default=0, ge=0)
    memory_mib: int = Field(default=0, ge=0)
    mig_instance: str | None = None
    cpu_set: str | None = None
    numa_node: int | None = None
    nic: str | None = None


class Evidence(WireModel):
    clause: str = Field(min_length=1)
    holds: bool = True
    message: str = ""
    host: Literal["verified", "not-enforceable", "mismatch", "unverified"] | None = Field(
        default=None,
        description="how the runtime found this clause on the host after launch (absent: "
        "evidence from the model, at placement)",
    )


class PlacementSpec(WireModel):
    workload: ObjectName
    workload_uid: str | None = None
    attempt: int = Field(default=1, ge=1)
    replicas: list[ReplicaBinding] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    tier: Literal["nvlink-domain", "rack", "rdma", "site", "any"] | None = None
    dedicated: bool = Field(
        default=False, description="dedicated-node isolation: no other tenant joins its nodes"
    )


class PlacementStatus(Status):
    phase: ContractPhase | None = None


class Placement(Resource):
    KIND: ClassVar[str] = "Placement"
    PLURAL: ClassVar[str] = "placements"
    NAMESPACED: ClassVar[bool] = True
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("placement", "pl")
    kind: Literal["Placement"] = "Placement"
    spec: PlacementSpec
    status: PlacementStatus = Field(default_factory=PlacementStatus)
