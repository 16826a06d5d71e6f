"""Reports for compliance: where each workload runs under which law and which policies
allowed it (sovereignty), and whether the audit chain is intact."""

from __future__ import annotations

from stratum.api.v1alpha1 import Site, Tenant, Workload
from stratum.core import access, reports
from stratum.core.access import Principal
from stratum.core.audit import Verification
from stratum.core.errors import Forbidden
from stratum.core.reports import SovereigntyRow, parse_time
from stratum.reconcile.world import ModelCache
from stratum.server.audit_trail import AuditTrail
from stratum.server.services.admission import full, list_all
from stratum.store.objects import ObjectStore


class GovernanceService:
    def __init__(self, store: ObjectStore, trail: AuditTrail | None = None) -> None:
        self.store = store
        self.trail = trail or AuditTrail(store, (), None)
        # Workloads validated once per resourceVersion, as the controllers keep them: a
        # report re-reads only what changed since the last one.
        self._workloads = ModelCache()

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
    ) -> list[SovereigntyRow]:
        """One row per workload the caller may see: where it runs or ran, under which
        jurisdictions, since when, and the policies that allowed it there (core/reports.py)."""
        since, until = parse_time(start), parse_time(end)
        if tenant is not None:
            access.check(principal, "read", "Workload", namespaced=True, namespace=tenant)
        allowed = access.visible_namespaces(principal, "Workload")
        shown = {tenant} if tenant is not None else allowed
        with self.store.read() as tx:
            placements = list_all(tx, "Placement", namespaces=shown)
            # Only the nodes that placements name, and only their site: a large fleet's
            # nodes are mostly GPU telemetry, which the report has no use for.
            named = {r.get("node") for p in placements for r in p["spec"].get("replicas", [])}
            node_sites = tx.field_values("Node", ("spec", "site"), names=named - {None})
            snapshot = reports.Snapshot(
                workloads=[
                    w.model_dump(mode="json", by_alias=True)
                    for w in self._workloads.typed(tx, Workload).values()
                    if shown is None or (w.metadata.namespace or "") in shown
                ],
                placements=placements,
                sites={s["metadata"]["name"]: full(Site, s) for s in list_all(tx, "Site")},
                node_sites={name: site for (_, name), site in node_sites.items()},
                tenants={t["metadata"]["name"]: full(Tenant, t) for t in list_all(tx, "Tenant")},
                policies=list_all(tx, "Policy"),
                now=tx.clock.now(),
            )
        return reports.sovereignty_rows(
            snapshot, since=since, until=until, names_policies=principal.reads_everything
        )
