"""API objects into a scheduling cycle's input: the one observe step that the
WorkloadController and `stratum plan` share, so that both decide alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stratum.api.v1alpha1 import Placement, Policy, Site, Tenant, Workload
from stratum.core.governance import judge_sites
from stratum.scheduling.contracts import FleetNode
from stratum.scheduling.cycle import CycleInput, Holding, TenantTerms, Waiting
from stratum.scheduling.fleet import HOLDING_PHASES, held_devices
from stratum.scheduling.request import MILLI


@dataclass(frozen=True, slots=True)
class PolicySites:
    """The sites a tenant's deny policies allow one workload (None: no policy restricts)."""

    sites: frozenset[str] | None = None
    reason: str = "ruled out by a policy"


NO_POLICY = PolicySites()


def workload_key(wl: Workload) -> str:
    return f"{wl.metadata.namespace}/{wl.metadata.name}"


def age(wl: Workload) -> float:
    created = wl.metadata.creation_timestamp
    return created.timestamp() if created else 0.0


def tenant_terms(tenant: Tenant) -> TenantTerms:
    quota = tenant.spec.quota
    return TenantTerms(
        jurisdictions=frozenset(tenant.spec.allowed_jurisdictions),
        isolation=tenant.spec.isolation,
        quota_milli=None if quota.gpus is None else quota.gpus * MILLI,
        quota_milli_by_model={m: limit * MILLI for m, limit in quota.gpus_by_model.items()},
        weight=tenant.spec.fair_share_weight,
    )


def holdings(
    placements: Iterable[Placement], workloads: Mapping[str, Workload], nodes: Iterable[FleetNode]
) -> list[Holding]:
    """The live placements whose workload still exists, with what they hold."""
    model_of = {n.name: n.model for n in nodes}
    out = []
    for p in placements:
        key = f"{p.metadata.namespace}/{p.spec.workload}"
        owner = workloads.get(key)
        if p.status.phase not in HOLDING_PHASES or owner is None:
            continue
        out.append(
            Holding(
                key=key,
                tenant=p.metadata.namespace or "",
                contract=owner.spec.contract,
                replicas=owner.spec.replicas,
                held=tuple(held_devices([p])[0]),
                models=tuple(sorted({model_of.get(r.node, "") for r in p.spec.replicas} - {""})),
                age=age(owner),
            )
        )
    return out


def waiting(wl: Workload, policy: PolicySites = NO_POLICY) -> Waiting:
    return Waiting(
        key=workload_key(wl),
        tenant=wl.metadata.namespace or "",
        replicas=wl.spec.replicas,
        contract=wl.spec.contract,
        age=age(wl),
        policy_sites=policy.sites,
        policy_reason=policy.reason,
    )


def cycle_input(
    *,
    nodes: Iterable[FleetNode],
    placements: Iterable[Placement],
    workloads: Mapping[str, Workload],
    waiting_for: Iterable[Workload],
    tenants: Mapping[str, Tenant],
    policy_sites: Callable[[Workload], PolicySites] = lambda _: NO_POLICY,
) -> CycleInput:
    fleet = tuple(nodes)
    return CycleInput(
        nodes=fleet,
        holdings=tuple(holdings(placements, workloads, fleet)),
        waiting=tuple(waiting(w, policy_sites(w)) for w in waiting_for),
        tenants={name: tenant_terms(t) for name, t in tenants.items()},
    )


def judge_policy_sites(
    *,
    workload: Mapping[str, Any],
    tenant: Mapping[str, Any],
    sites: list[Mapping[str, Any]],
    policies: list[Mapping[str, Any]],
) -> PolicySites:
    """The sites the deny policies allow (CEL, over full dumps as admission sees them):
    placement, remediation and preemption never bind outside them."""
    verdict = judge_sites(workload=workload, tenant=tenant, sites=sites, policies=policies)
    refused = [e.message for v in verdict.sites for e in v.exclusions if e.kind == "policy"]
    if not refused:
        return NO_POLICY
    allowed = frozenset(
        v.site for v in verdict.sites if not any(e.kind == "policy" for e in v.exclusions)
    )
    return PolicySites(allowed, refused[0])


def full(obj: Site | Tenant | Policy | Workload) -> dict[str, Any]:
    """Every field, null when unset: the shape CEL sees at admission and at placement."""
    dumped: dict[str, Any] = obj.model_dump(mode="json", by_alias=True)
    return dumped
