"""Placement: the guarantee — exact devices per replica and evidence for every clause."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import ObjectName, Resource, Status, WireModel
from stratum.api.v1alpha1.workloads import ContractPhase


class ReplicaBinding(WireModel):
    """The exact devices one replica is given."""

    replica: int = Field(ge=0, description="Replica index within the gang.")
    node: ObjectName = Field(description="Name of the Node it runs on.")
    gpus: list[int] = Field(default_factory=list, description="Indices of its GPUs on that node.")
    gpu_milli: int | None = Field(
        default=None, ge=1, le=999, description="For a GPU share: thousandths of the GPU."
    )
    cpu_milli: int = Field(
        default=0, ge=0, description="CPU it is given, in thousandths of a core."
    )
    memory_mib: int = Field(default=0, ge=0, description="Host memory it is given, in MiB.")
    mig_instance: str | None = Field(
        default=None,
        description="For a MIG slice: profile, GPU and slots, e.g. '3g.40gb on GPU 0 slots 0-3'.",
    )
    cpu_set: str | None = Field(
        default=None, description="CPUs it is pinned to, as a kernel CPU list."
    )
    numa_node: int | None = Field(
        default=None, description="NUMA node its CPUs (and memory, when aligned) are on."
    )
    nic: str | None = Field(
        default=None,
        description="NICs it should use, comma-separated: those closest to its GPUs (RDMA first).",
    )


class Evidence(WireModel):
    """Whether one clause holds for this placement, and why."""

    clause: str = Field(
        min_length=1, description="The clause judged, e.g. topology.acrossReplicas."
    )
    holds: bool = Field(default=True, description="Whether the clause holds.")
    message: str = Field(default="", description="What was found, in words.")
    host: Literal["verified", "not-enforceable", "mismatch", "unverified"] | None = Field(
        default=None,
        description="how the runtime found this clause on the host after launch (absent: "
        "evidence from the model, at placement)",
    )


class PlacementSpec(WireModel):
    workload: ObjectName = Field(description="Name of the Workload it places (same namespace).")
    workload_uid: str | None = Field(default=None, description="That Workload's uid.")
    attempt: int = Field(
        default=1, ge=1, description="Which placement of the workload this is (1 first)."
    )
    replicas: list[ReplicaBinding] = Field(
        default_factory=list, description="The devices each replica is bound to."
    )
    evidence: list[Evidence] = Field(
        default_factory=list, description="For each clause, whether it holds and why."
    )
    tier: Literal["nvlink-domain", "rack", "rdma", "site", "any"] | None = Field(
        default=None,
        description="The acrossReplicas tier the gang was placed in (unset for one replica).",
    )
    dedicated: bool = Field(
        default=False, description="dedicated-node isolation: no other tenant joins its nodes"
    )


class PlacementStatus(Status):
    phase: ContractPhase | None = Field(
        default=None,
        description="Its workload's phase while it holds the devices (Bound, Running, "
        "Violated, ...); Released once it gives them back.",
    )


class Placement(Resource):
    KIND: ClassVar[str] = "Placement"
    PLURAL: ClassVar[str] = "placements"
    NAMESPACED: ClassVar[bool] = True
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("placement", "pl")
    kind: Literal["Placement"] = "Placement"
    spec: PlacementSpec = Field(
        description="The devices each replica of the workload is bound to, and evidence for each "
        "clause."
    )
    status: PlacementStatus = Field(default_factory=PlacementStatus, description="Its phase.")
