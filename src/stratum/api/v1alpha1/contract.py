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

    gpus: int | None = Field(default=None, ge=1, le=72, description="whole GPUs per replica")
    gpu_milli: int | None = Field(
        default=None, ge=1, le=999, description="a fraction of one GPU, in thousandths"
    )
    mig_profile: str | None = Field(default=None, pattern=MIG_PROFILE_PATTERN)
    models: list[str] = Field(default_factory=list, description="allowed GPU models; empty: any")
    min_gpu_memory_gib: float | None = Field(default=None, gt=0, le=4096)
    cpu_cores: float = Field(default=1.0, gt=0, le=4096)
    memory_gib: float = Field(default=1.0, gt=0, le=65536)

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
    within_replica: WithinReplica = "any"
    across_replicas: AcrossReplicas = "any"
    numa_aligned: bool = False
    min_rdma_gbps_per_gpu: float | None = Field(default=None, gt=0, le=3200)


class SovereigntyClause(WireModel):
    jurisdictions: list[str] = Field(default_factory=list, description="e.g. EU, US; empty: any")
    countries: list[str] = Field(default_factory=list, description="ISO 3166-1 alpha-2 codes")
    site_kinds: list[SiteKind] = Field(default_factory=list)
    deny_providers: list[str] = Field(default_factory=list)
    data_classification: str | None = Field(default=None, max_length=63)

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
    spread_across: SpreadDomain = "none"
    min_domains: int = Field(default=1, ge=1, le=1024)


class ServiceLevelClause(WireModel):
    p99_latency_ms: float | None = Field(default=None, gt=0)
    min_throughput_rps: float | None = Field(default=None, gt=0)


class LifecycleClause(WireModel):
    priority: int = Field(default=0, ge=-1000, le=1000)
    preemptible: bool = False
    max_duration_seconds: int | None = Field(default=None, ge=1, le=MAX_DURATION_SECONDS)
    on_violation: OnViolation = "replace"
    on_partition: Literal["keep", "fence"] = Field(
        default="keep",
        description="A replica on a host cut off from the control plane (stratum agent): "
        "keep runs it on through any outage (a copy placed elsewhere meanwhile is fenced "
        "when the link heals); fence stops it once its lease expires, before the server may "
        "place it again, so that two copies never run at once",
    )


class Contract(WireModel):
    compute: ComputeClause = Field(default_factory=ComputeClause)
    topology: TopologyClause = Field(default_factory=TopologyClause)
    sovereignty: SovereigntyClause = Field(default_factory=SovereigntyClause)
    isolation: Isolation = "shared"
    availability: AvailabilityClause = Field(default_factory=AvailabilityClause)
    service_level: ServiceLevelClause = Field(default_factory=ServiceLevelClause)
    lifecycle: LifecycleClause = Field(default_factory=LifecycleClause)

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
