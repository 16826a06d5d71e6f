"""Policy: a governance rule as a CEL expression over workload, tenant and site."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import Resource, Status, WireModel


class PolicyMatch(WireModel):
    tenants: list[str] = Field(default_factory=list, description="empty: every tenant")
    workload_types: list[str] = Field(default_factory=list)


class PolicySpec(WireModel):
    description: str = ""
    expression: str = Field(
        min_length=1,
        max_length=8192,
        description="CEL; true means the workload is allowed. Variables: workload, tenant, site",
    )
    action: Literal["deny", "warn"] = "deny"
    message: str = Field(min_length=1, max_length=1024)
    match: PolicyMatch = Field(default_factory=PolicyMatch)


class Policy(Resource):
    KIND: ClassVar[str] = "Policy"
    PLURAL: ClassVar[str] = "policies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("policy", "pol")
    kind: Literal["Policy"] = "Policy"
    spec: PolicySpec
    status: Status = Field(default_factory=Status)
