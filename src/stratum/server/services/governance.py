"""Reports for compliance: where each workload runs under which law and which policies
allowed it (sovereignty), and whether the audit chain is intact."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stratum.api.v1alpha1 import Site, Tenant, Workload
from stratum.core import access, governance
from stratum.core.access import Principal
from stratum.core.audit import Verification
from stratum.core.errors import Forbidden, Invalid
from stratum.server.audit_trail import AuditTrail
from stratum.server.services.admission import full, list_all
from stratum.store.objects import ObjectStore, WireObject


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{value!r} is not an ISO 8601 time (e.g. 2026-01-31T00:00:00Z)") from None


PLATFORM_POLICIES = "platform policies"
REFUSED_BY_POLICY = "refused by a platform policy"


def _aggregate(reasons: list[str]) -> list[str]:
    """Reasons as a tenant sees them: its own sovereignty terms as they are, every policy's
    refusal as one line that names none."""
    own = [r for r in reasons if not r.startswith("policy ")]
    return own + ([REFUSED_BY_POLICY] if len(own) < len(reasons) else [])


class GovernanceService:
    def __init__(self, store: ObjectStore, trail: AuditTrail | None = None) -> None:
        self.store = store
        self.trail = trail or AuditTrail(store, (), None)

    def verify_audit(self, principal: Principal) -> Verification:
        if not principal.reads_everything:
            raise Forbidden("the audit log is visible to platform roles only")
        return self.trail.verify()

    def sovereignty(
        self,
        principal: Principal,
        *,
        tenant: str | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> list[dict[str, Any]]:
        """One row per workload the caller may see: where it runs or ran, under which
        jurisdictions, since when, and the policies that allowed it there."""
        since, until = _when(start), _when(end)
        if tenant is not None:
            access.check(principal, "read", "Workload", namespaced=True, namespace=tenant)
        allowed = access.visible_namespaces(principal, "Workload")
        with self.store.read() as tx:
            now = tx.clock.now()
            if tenant is not None:
                workloads = list_all(tx, "Workload", tenant)
                placements = list_all(tx, "Placement", tenant)
            else:
                workloads = [
                    w
                    for w in list_all(tx, "Workload")
                    if allowed is None or w["metadata"].get("namespace") in allowed
                ]
                placements = list_all(tx, "Placement")
            sites = {s["metadata"]["name"]: full(Site, s) for s in list_all(tx, "Site")}
            node_site = {n["metadata"]["name"]: n["spec"].get("site") for n in list_all(tx, "Node")}
            tenants = {t["metadata"]["name"]: full(Tenant, t) for t in list_all(tx, "Tenant")}
            policies = list_all(tx, "Policy")
        bound: dict[tuple[str, str], WireObject] = {
            (p["metadata"].get("namespace", ""), p["spec"].get("workload", "")): p
            for p in placements
        }
        # Policies are the platform's: their names and messages may name other tenants, so a
        # tenant learns only that platform policies allowed or refused its work.
        names_policies = principal.reads_everything
        rows = []
        for w in workloads:
            ns, name = w["metadata"].get("namespace", ""), w["metadata"]["name"]
            status = w.get("status") or {}
            began = _when(
                status.get("boundAt")
                or status.get("runningAt")
                or w["metadata"].get("creationTimestamp")
            )
            ended = _when(status.get("finishedAt"))
            if (since and (ended or now) < since) or (until and began and began > until):
                continue
            placement = bound.get((ns, name))
            site_names = sorted(
                {
                    node_site.get(r.get("node"), "") or "?"
                    for r in (placement or {}).get("spec", {}).get("replicas", [])
                }
            )
            placed = [sites[s] for s in site_names if s in sites]
            tenant_obj = tenants.get(ns, {"metadata": {"name": ns}, "spec": {}, "status": {}})
            verdict = governance.judge_sites(
                workload=full(Workload, w), tenant=tenant_obj, sites=placed, policies=policies
            )
            held = sorted({p for v in verdict.sites for p in v.allowed_by})
            if placed:
                held = [p for p in held if all(p in v.allowed_by for v in verdict.sites)]
            clause = (w.get("spec") or {}).get("contract", {}).get("sovereignty", {})
            violations = [r for v in verdict.sites if not v.allowed for r in v.reasons]
            if not names_policies:
                held = [PLATFORM_POLICIES] if held else []
                violations = _aggregate(violations)
            rows.append(
                {
                    "tenant": ns,
                    "workload": name,
                    "phase": status.get("phase") or "Pending",
                    "dataClassification": clause.get("dataClassification"),
                    "sites": site_names,
                    "countries": sorted({str(s["spec"]["country"]) for s in placed}),
                    "jurisdictions": sorted(
                        {j for s in placed for j in s["spec"]["jurisdictions"]}
                    ),
                    "from": began.isoformat().replace("+00:00", "Z") if began else None,
                    "to": ended.isoformat().replace("+00:00", "Z") if ended else None,
                    "contractJurisdictions": clause.get("jurisdictions") or [],
                    "allowedBy": held,
                    "violations": violations,
                }
            )
        return rows
