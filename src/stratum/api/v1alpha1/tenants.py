"""Tenant: members and roles, quotas, an enforced budget, isolation and allowed jurisdictions."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from stratum.api.v1alpha1.contract import Isolation
from stratum.api.v1alpha1.meta import Resource, Status, Timestamp, WireModel

Role = Literal["tenant-admin", "member", "viewer"]


class Member(WireModel):
    user: str = Field(min_length=1, max_length=253)
    role: Role = "member"


class Quota(WireModel):
    gpus: int | None = Field(default=None, ge=0, description="whole GPUs in total")
    gpus_by_model: dict[str, int] = Field(default_factory=dict)
    cpu_cores: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _non_negative(self) -> Quota:
        for model, n in self.gpus_by_model.items():
            if n < 0:
                raise ValueError(f"gpusByModel.{model}: expected a count >= 0, got {n}")
        return self


class Budget(WireModel):
    period: Literal["day", "week", "month", "quarter", "year"] = "month"
    gpu_hours: float | None = Field(default=None, gt=0)
    amount: float | None = Field(default=None, gt=0)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    soft_limit_pct: float = Field(default=80.0, gt=0, le=100)
    hard_limit: bool = True

    @model_validator(mode="after")
    def _some_limit(self) -> Budget:
        if self.gpu_hours is None and self.amount is None:
            raise ValueError("a budget needs gpuHours or amount")
        return self


class TenantSpec(WireModel):
    display_name: str = ""
    members: list[Member] = Field(default_factory=list)
    quota: Quota = Field(default_factory=Quota)
    budget: Budget | None = None
    isolation: Isolation = "shared"
    allowed_jurisdictions: list[str] = Field(default_factory=list, description="empty: any")
    fair_share_weight: float = Field(default=1.0, gt=0, le=1000)


class TenantUsage(WireModel):
    """GPUs are computed by the server from the tenant's active workloads (fractions count);
    GPU-hours and cost accrue from running work over the budget's period."""

    gpus: float = 0
    gpus_by_model: dict[str, float] = Field(default_factory=dict)
    gpu_hours: float = 0.0
    cost: float = 0.0
    currency: str | None = Field(default=None, description="of `cost`: the budget's")
    cost_other_currencies: dict[str, float] = Field(
        default_factory=dict, description="work priced in other currencies, not converted"
    )
    period_start: Timestamp | None = Field(default=None, description="of the budget period")


class TenantStatus(Status):
    usage: TenantUsage = Field(default_factory=TenantUsage)


class Tenant(Resource):
    KIND: ClassVar[str] = "Tenant"
    PLURAL: ClassVar[str] = "tenants"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("tenant",)
    kind: Literal["Tenant"] = "Tenant"
    spec: TenantSpec
    status: TenantStatus = Field(default_factory=TenantStatus)
