"""Policy: a governance rule as a CEL expression over workload, tenant and site."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import Resource, Status, WireModel


class PolicyMatch(WireModel):
    """Which workloads the policy judges; both lists must match (an empty one matches all)."""

    tenants: list[str] = Field(
        default_factory=list,
        description="Tenant names whose workloads it judges; empty: every tenant.",
    )
    workload_types: list[str] = Field(
        default_factory=list,
        description="Workload types (spec.type: training, inference, ...) it judges; empty: "
        "every type.",
    )


class PolicySpec(WireModel):
    description: str = Field(default="", description="What the rule is for; informational.")
    expression: str = Field(
        min_length=1,
        max_length=8192,
        description="CEL expression, evaluated at admission for each site; true means the "
        "workload is allowed there. Variables: workload, tenant, site (each as on the wire). "
        "An evaluation error counts as false.",
    )
    action: Literal["deny", "warn"] = Field(
        default="deny",
        description="deny: the workload may not run at sites where the expression is false, "
        "and is refused when that rules out every site; warn: admission only warns.",
    )
    message: str = Field(
        min_length=1,
        max_length=1024,
        description="What a refusal or warning tells the user.",
    )
    match: PolicyMatch = Field(
        default_factory=PolicyMatch,
        description="Which workloads it judges, by tenant and workload type; empty: all.",
    )


class Policy(Resource):
    KIND: ClassVar[str] = "Policy"
    PLURAL: ClassVar[str] = "policies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("policy", "pol")
    kind: Literal["Policy"] = "Policy"
    spec: PolicySpec = Field(
        description="The rule: a CEL expression, what to do when it is false, and which workloads "
        "it judges."
    )
    status: Status = Field(
        default_factory=Status,
        description="Conditions, if any; policies have no status of their own.",
    )
