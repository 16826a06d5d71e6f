"""The resource contract a workload states: every clause optional, defaults permissive."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stratum.api.v1alpha1.meta import WireModel

WithinReplica = Literal["nvlink", "pcie-switch", "numa", "any"]
AcrossReplicas = Literal["nvlink-domain", "rack", "rdma", "site", "any"]
SiteKind = Literal["datacenter", "cloud", "edge"]
Isolation = Literal["shared", "dedicated-node"]
SpreadDomain = Literal["none", "node", "rack", "site"]
OnViolation = Literal["replace", "report"]
# Ten years: longer is a typo, and timedelta and datetime arithmetic overflow far beyond it.
MAX_DURATION_SECONDS = 10 * 366 * 86400

# MIG profile names as nvidia-smi prints them: "1g.10gb", "3g.40gb", "1g.24gb+me", "1c.3g.40gb".
MIG_PROFILE_PATTERN = r"^([1-9]c\.)?[1-9]g\.[0-9]+gb(\+me|\+gfx|-me)?$"


class ComputeClause(WireModel):
    """Per-replica compute: exactly one of gpus, gpuMilli or migProfile (none means CPU only)."""

    gpus: int | None = Field(
        default=None,
        ge=1,
        le=72,
        description="Whole GPUs per replica, all on one node; exclusive of gpuMilli and "
        "migProfile.",
    )
    gpu_milli: int | None = Field(
        default=None,
        ge=1,
        le=999,
        description="A share of one GPU per replica, in thousandths (250 = a quarter), "
        "time-shared with other work on that GPU; exclusive of gpus and migProfile.",
    )
    mig_profile: str | None = Field(
        default=None,
        pattern=MIG_PROFILE_PATTERN,
        description="One MIG instance per replica, by profile name as nvidia-smi prints it "
        "(e.g. 1g.10gb, 3g.40gb); only GPUs offering that profile qualify; exclusive of gpus "
        "and gpuMilli.",
    )
    models: list[str] = Field(
        default_factory=list,
        description="GPU models the replica may run on, as canonical names matched exactly "
        "against the node's GPU model (e.g. H100-SXM5-80GB); empty: any model. Quotas by "
        "model count the workload against each model listed.",
    )
    min_gpu_memory_gib: float | None = Field(
        default=None,
        gt=0,
        le=4096,
        description="Least memory each GPU must have, in GiB; a node whose GPU memory is "
        "unknown does not qualify.",
    )
    cpu_cores: float = Field(
        default=1.0,
        gt=0,
        le=4096,
        description="CPU cores per replica (fractions allowed); where the node describes its "
        "CPUs, the replica is pinned to that many logical CPUs, rounded up.",
    )
    memory_gib: float = Field(
        default=1.0, gt=0, le=65536, description="Host memory per replica, in GiB."
    )

    @model_validator(mode="after")
    def _one_gpu_form(self) -> ComputeClause:
        given = [
            n
            for n, v in (
                ("gpus", self.gpus),
                ("gpuMilli", self.gpu_milli),
                ("migProfile", self.mig_profile),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"state GPUs in one form only: got {' and '.join(given)}; "
                "use gpus (whole), gpuMilli (a fraction) or migProfile (a MIG slice)"
            )
        return self

    @property
    def gpu_count(self) -> int:
        return self.gpus or 0


class TopologyClause(WireModel):
    """How close the devices of one replica, and the replicas of a gang, must sit."""

    within_replica: WithinReplica = Field(
        default="any",
        description="How a replica's whole GPUs must be connected: all in one NVLink domain "
        "(nvlink), under one PCIe switch (pcie-switch) or on one NUMA node (numa); any: "
        "anywhere on the node. Needs compute.gpus.",
    )
    across_replicas: AcrossReplicas = Field(
        default="any",
        description="The loosest domain that must hold every replica of the gang: one NVLink "
        "domain, one rack, RDMA-capable nodes of one site, one site, or anywhere; the "
        "scheduler tries the tightest tier first and records the tier it used in the "
        "Placement.",
    )
    numa_aligned: bool = Field(
        default=False,
        description="Put each replica's GPUs, CPU set, memory and NIC on one NUMA node; "
        "nodes that do not describe their NUMA layout do not qualify. Needs GPUs.",
    )
    min_rdma_gbps_per_gpu: float | None = Field(
        default=None,
        gt=0,
        le=3200,
        description="Least RDMA bandwidth each of the replica's GPUs must get, in Gb/s: the "
        "speed of its closest RDMA NIC divided among the GPUs that share that NIC.",
    )


class SovereigntyClause(WireModel):
    """Where the law lets the workload run: checked against each Site at admission and by
    the scheduler."""

    jurisdictions: list[str] = Field(
        default_factory=list,
        description="The site must be under at least one of these jurisdictions (its "
        "spec.jurisdictions), e.g. EU, US; empty: any.",
    )
    countries: list[str] = Field(
        default_factory=list,
        description="The site's country must be one of these ISO 3166-1 alpha-2 codes "
        "(e.g. DE); empty: any.",
    )
    site_kinds: list[SiteKind] = Field(
        default_factory=list,
        description="The site's kind must be one of these (datacenter, cloud, edge); empty: any.",
    )
    deny_providers: list[str] = Field(
        default_factory=list,
        description="Sites run by these providers (the site's spec.provider) are ruled out.",
    )
    data_classification: str | None = Field(
        default=None,
        max_length=63,
        description="A label for the data the workload handles (e.g. personal); places "
        "nothing itself, but is shown in the sovereignty report and policies can test it.",
    )

    @model_validator(mode="after")
    def _country_codes(self) -> SovereigntyClause:
        for i, code in enumerate(self.countries):
            if len(code) != 2 or not code.isalpha() or not code.isupper():
                raise ValueError(
                    f"countries[{i}]: {code!r} is not an ISO 3166-1 alpha-2 code "
                    "(two capital letters, e.g. DE)"
                )
        return self


class AvailabilityClause(WireModel):
    """How a gang's replicas spread over failure domains."""

    spread_across: SpreadDomain = Field(
        default="none",
        description="The failure domain replicas are spread over: node (one replica per "
        "node), rack or site (least-used domain first); none: no spreading.",
    )
    min_domains: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="Distinct racks or sites the replicas must span when spreadAcross is rack "
        "or site (node spread always needs one node per replica).",
    )


class ServiceLevelClause(WireModel):
    """Targets a running workload must meet, judged against what its backend reports."""

    p99_latency_ms: float | None = Field(
        default=None,
        gt=0,
        description="Highest acceptable 99th-percentile request latency, in ms; above it while "
        "Running, the contract is Violated.",
    )
    min_throughput_rps: float | None = Field(
        default=None,
        gt=0,
        description="Lowest acceptable throughput, in requests per second; below it while "
        "Running, the contract is Violated.",
    )


class LifecycleClause(WireModel):
    """Priority, preemption, run time and what happens when the contract breaks."""

    priority: int = Field(
        default=0,
        ge=-1000,
        le=1000,
        description="Scheduling priority, higher first; work of higher priority may evict "
        "preemptible work of lower priority to bind.",
    )
    preemptible: bool = Field(
        default=False,
        description="Whether higher-priority work may evict this workload (it goes back to "
        "Pending, reason Preempted).",
    )
    max_duration_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DURATION_SECONDS,
        description="Longest a run may last, in seconds; past it the workload is stopped and "
        "Failed (DeadlineExceeded). Budgets project GPU-hours from it; unset: unbounded, "
        "projected as 0.",
    )
    on_violation: OnViolation = Field(
        default="replace",
        description="When a clause breaks while running: replace stops it and places it "
        "again on healthy devices; report keeps it running, Violated, until the clause holds "
        "again.",
    )
    on_partition: Literal["keep", "fence"] = Field(
        default="keep",
        description="A replica on a host cut off from the control plane (stratum agent): "
        "keep runs it on through any outage (a copy placed elsewhere meanwhile is fenced "
        "when the link heals); fence stops it once its lease expires, before the server may "
        "place it again, so that two copies never run at once.",
    )


class Contract(WireModel):
    """What the workload must be given; every clause is optional and permissive by default."""

    compute: ComputeClause = Field(
        default_factory=ComputeClause,
        description="Per-replica devices: GPUs (whole, a share or a MIG slice), GPU models, "
        "CPU cores and memory.",
    )
    topology: TopologyClause = Field(
        default_factory=TopologyClause,
        description="How a replica's GPUs and a gang's replicas must be connected.",
    )
    sovereignty: SovereigntyClause = Field(
        default_factory=SovereigntyClause,
        description="Which sites the law allows: jurisdictions, countries, site kinds and "
        "providers.",
    )
    isolation: Isolation = Field(
        default="shared",
        description="dedicated-node: no other tenant's work shares the replicas' nodes; "
        "shared: nodes may be shared.",
    )
    availability: AvailabilityClause = Field(
        default_factory=AvailabilityClause,
        description="How replicas spread over nodes, racks or sites.",
    )
    service_level: ServiceLevelClause = Field(
        default_factory=ServiceLevelClause,
        description="Latency and throughput targets while running.",
    )
    lifecycle: LifecycleClause = Field(
        default_factory=LifecycleClause,
        description="Priority, preemption, maximum run time, and the response to a "
        "violation or a network partition.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> Contract:
        whole = self.compute.gpus is not None
        if self.topology.within_replica != "any" and not whole:
            raise ValueError(
                f"topology.withinReplica={self.topology.within_replica!r} needs whole GPUs "
                "(compute.gpus); a fraction or MIG slice lives on one GPU"
            )
        if (
            self.topology.numa_aligned
            and self.compute.gpus is None
            and self.compute.gpu_milli is None
            and self.compute.mig_profile is None
        ):
            raise ValueError("topology.numaAligned needs GPUs to align to (compute.gpus)")
        return self
