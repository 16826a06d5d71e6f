"""Tenant: members and roles, quotas, an enforced budget, isolation and allowed jurisdictions."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from stratum.api.v1alpha1.contract import Isolation
from stratum.api.v1alpha1.meta import Resource, Status, Timestamp, WireModel

Role = Literal["tenant-admin", "member", "viewer"]


class Member(WireModel):
    """A user and the role they hold in the tenant."""

    user: str = Field(
        min_length=1,
        max_length=253,
        description="The user's subject, as their API token names it.",
    )
    role: Role = Field(
        default="member",
        description="tenant-admin: member rights, plus tokens bound to the tenant; member: "
        "reads the tenant and writes its Workloads and WorkloadTemplates; viewer: reads only.",
    )


class Quota(WireModel):
    """Most the tenant's active workloads may hold at once; admission refuses what exceeds it."""

    gpus: int | None = Field(
        default=None,
        ge=0,
        description="GPUs in total across its active workloads (shares and MIG slices count "
        "as fractions); unset: no limit.",
    )
    gpus_by_model: dict[str, int] = Field(
        default_factory=dict,
        description="GPUs by model (canonical name); a workload allowing several models counts "
        "against each of them.",
    )
    cpu_cores: float | None = Field(
        default=None,
        ge=0,
        description="CPU cores the tenant's active workloads may ask for in all (cpuCores x "
        "replicas, fractions count); a workload that would pass it is refused at admission.",
    )

    @model_validator(mode="after")
    def _non_negative(self) -> Quota:
        for model, n in self.gpus_by_model.items():
            if n < 0:
                raise ValueError(f"gpusByModel.{model}: expected a count >= 0, got {n}")
        return self


class Budget(WireModel):
    """What the tenant may spend per period, checked at admission against status.usage plus
    the new workload's projection (its GPUs times maxDurationSeconds)."""

    period: Literal["day", "week", "month", "quarter", "year"] = Field(
        default="month",
        description="The span usage accrues over; it restarts from zero at each UTC calendar "
        "day, week (Monday), month, quarter or year.",
    )
    gpu_hours: float | None = Field(
        default=None,
        gt=0,
        description="Most GPU-hours per period; when set, it is the limit checked (not amount).",
    )
    amount: float | None = Field(
        default=None,
        gt=0,
        description="Most cost per period in currency, at the prices of the sites where work "
        "runs; checked when gpuHours is unset.",
    )
    currency: str = Field(
        default="EUR",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of amount; work priced in another currency is not converted.",
    )
    soft_limit_pct: float = Field(
        default=80.0,
        gt=0,
        le=100,
        description="Percent of the limit from which admission warns.",
    )
    hard_limit: bool = Field(
        default=True,
        description="true: admission refuses work that would pass the limit (and all new work "
        "once it is reached); false: it only warns.",
    )

    @model_validator(mode="after")
    def _some_limit(self) -> Budget:
        if self.gpu_hours is None and self.amount is None:
            raise ValueError("a budget needs gpuHours or amount")
        return self


class TenantSpec(WireModel):
    display_name: str = Field(default="", description="Human-readable name; informational.")
    members: list[Member] = Field(
        default_factory=list, description="Users of the tenant and their roles."
    )
    quota: Quota = Field(
        default_factory=Quota,
        description="Most GPUs and CPU cores the tenant's active workloads may hold or ask for.",
    )
    budget: Budget | None = Field(
        default=None, description="Spending limit per period; unset: no budget."
    )
    isolation: Isolation = Field(
        default="shared",
        description="dedicated-node: every workload of the tenant gets nodes no other tenant "
        "uses, whatever its contract says; shared: as each contract says.",
    )
    allowed_jurisdictions: list[str] = Field(
        default_factory=list,
        description="Its workloads run only at sites under one of these jurisdictions, on top "
        "of each contract's sovereignty clause; empty: any.",
    )
    fair_share_weight: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="Fair-share weight: among waiting work of equal priority, the tenant with "
        "the smallest dominant share of the fleet divided by its weight goes first; 2 earns "
        "twice the share of 1.",
    )


class TenantUsage(WireModel):
    """GPUs and CPU cores are computed by the server from the tenant's active workloads
    (fractions count); GPU-hours and cost accrue from running work over the budget's period."""

    gpus: float = Field(default=0, description="GPUs its active workloads hold or ask for now.")
    gpus_by_model: dict[str, float] = Field(
        default_factory=dict, description="The same, by GPU model the workloads allow."
    )
    cpu_cores: float = Field(
        default=0,
        description="CPU cores its active workloads ask for now (cpuCores x replicas).",
    )
    gpu_hours: float = Field(default=0.0, description="GPU-hours used in the current period.")
    cost: float = Field(
        default=0.0, description="Cost accrued in the current period, in `currency`."
    )
    currency: str | None = Field(default=None, description="Currency of `cost`: the budget's.")
    cost_other_currencies: dict[str, float] = Field(
        default_factory=dict,
        description="Cost of work at sites priced in other currencies, by currency, not converted.",
    )
    period_start: Timestamp | None = Field(
        default=None, description="Start of the current budget period."
    )


class TenantStatus(Status):
    usage: TenantUsage = Field(
        default_factory=TenantUsage,
        description="GPUs held now, and GPU-hours and cost in the current budget period.",
    )


class Tenant(Resource):
    KIND: ClassVar[str] = "Tenant"
    PLURAL: ClassVar[str] = "tenants"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("tenant",)
    kind: Literal["Tenant"] = "Tenant"
    spec: TenantSpec = Field(
        description="Members and roles, quota, budget, isolation and allowed jurisdictions."
    )
    status: TenantStatus = Field(
        default_factory=TenantStatus,
        description="What the tenant uses now and in the current budget period.",
    )
