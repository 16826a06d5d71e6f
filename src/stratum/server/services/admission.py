"""Admission of Workloads: quota, budget, sovereignty and policies, inside the write's
transaction (so a batch sees the sites, tenants and policies written before it)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from stratum.api.v1alpha1 import Policy, Site, Tenant, Workload
from stratum.core import governance
from stratum.core.errors import Cause, Forbidden
from stratum.core.governance import Usage
from stratum.store.objects import Transaction, WireObject


def full(model: type[Any], wire: WireObject) -> dict[str, Any]:
    """The object with every optional field present (null when unset): what CEL sees."""
    dumped: dict[str, Any] = model.model_validate(wire).model_dump(mode="json", by_alias=True)
    return dumped


def list_all(
    tx: Transaction,
    kind: str,
    namespace: str | None = None,
    *,
    namespaces: Collection[str] | None = None,
) -> list[WireObject]:
    items: list[WireObject] = []
    token = None
    while True:
        page = tx.list(
            kind, namespace=namespace, namespaces=namespaces, limit=5000, continue_token=token
        )
        items += page.items
        if not page.continue_token:
            return items
        token = page.continue_token


class AdmissionCache:
    """What admission reads, loaded once per transaction and kept current as a batch
    admits workloads one after another."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self._sites: list[dict[str, Any]] | None = None
        self._policies: list[WireObject] | None = None
        self._profiles: list[WireObject] | None = None
        self._usage: dict[str, Usage] = {}
        self._locked: set[str] = set()

    def lock_tenants(self, namespaces: set[str]) -> None:
        """Take the tenants' admission locks, in name order, before anything is written.

        Without them two concurrent writes of one tenant each read its usage before the
        other commits and both fit the quota (on PostgreSQL). In a fixed order and before
        the transaction's first write (which takes the resourceVersion counter's lock), two
        batches cannot wait on each other."""
        for namespace in sorted(namespaces - self._locked):
            self.tx.lock(f"admission/{namespace}")
            self._locked.add(namespace)

    @property
    def profiles(self) -> list[WireObject]:
        if self._profiles is None:
            self._profiles = list_all(self.tx, "HardwareProfile")
        return self._profiles

    @property
    def sites(self) -> list[dict[str, Any]]:
        if self._sites is None:
            self._sites = [full(Site, s) for s in list_all(self.tx, "Site")]
        return self._sites

    @property
    def policies(self) -> list[WireObject]:
        if self._policies is None:
            self._policies = [full(Policy, p) for p in list_all(self.tx, "Policy")]
        return self._policies

    def usage(self, namespace: str) -> Usage:
        if namespace not in self._usage:
            self._usage[namespace] = governance.usage_of(list_all(self.tx, "Workload", namespace))
        return self._usage[namespace]

    def tenant(self, namespace: str) -> dict[str, Any]:
        found = self.tx.find("Tenant", "", namespace)
        if found is None:  # a reserved namespace: no tenant, no quota
            return {"metadata": {"name": namespace}, "spec": {}, "status": {}}
        return full(Tenant, found)

    def admit(self, workload: Workload, existing: WireObject | None) -> list[str]:
        """Refuse (Forbidden, naming every reason) or return the warnings."""
        ns = workload.metadata.namespace or ""
        self.lock_tenants({ns})  # before the tenant and its usage are read
        wire = workload.model_dump(mode="json", by_alias=True)
        tenant = self.tenant(ns)
        quota = tenant.get("spec", {}).get("quota") or {}
        # Without a quota the tenant's other workloads decide nothing: don't read them
        # (reading every workload on every write makes a tenant's writes O(n) each).
        limited = (
            quota.get("gpus") is not None
            or bool(quota.get("gpusByModel"))
            or quota.get("cpuCores") is not None
        )
        usage = self.usage(ns) if limited else Usage()
        others = usage.copy()
        old = (
            governance.demand_of(existing)
            if existing is not None and governance.is_active(existing)
            else None
        )
        if old is not None:
            others.add(old, -1)
        decision = governance.admit(
            workload=wire, tenant=tenant, usage=others, sites=self.sites, policies=self.policies
        )
        if decision.denials:
            raise Forbidden(
                f"Workload {ns}/{workload.metadata.name} was refused: "
                + "; ".join(decision.denials),
                causes=[Cause("spec", d, "FieldValueForbidden") for d in decision.denials],
            )
        if old is not None:
            usage.add(old, -1)
        usage.add(governance.demand_of(wire))
        return decision.warnings + request_hints(wire, self.profiles)


def request_hints(workload: dict[str, Any], profiles: list[WireObject]) -> list[str]:
    """Warnings for a request no node could ever meet, said at apply rather than as a
    puzzling Rejected later: an unknown GPU model (with the nearest known ones), or more
    whole GPUs per replica than any machine of the fleet has."""
    import difflib

    from stratum.core.gpucatalog import CATALOG

    compute = workload.get("spec", {}).get("contract", {}).get("compute") or {}
    fleet: dict[str, int] = {}  # GPU model -> most GPUs of that model on one machine
    for p in profiles:
        counts: dict[str, int] = {}
        for gpu in p.get("spec", {}).get("gpus") or []:
            counts[gpu.get("model", "")] = counts.get(gpu.get("model", ""), 0) + 1
        for model, n in counts.items():
            fleet[model] = max(fleet.get(model, 0), n)
    # The fleet's own models first: those are the ones a request can actually get.
    known = sorted({m.model for m in CATALOG} | set(fleet), key=lambda m: (m not in fleet, m))
    hints = []
    asked = [str(m) for m in compute.get("models") or []]
    for model in asked:
        if model in known:
            continue
        near = [k for k in known if model.upper() in k.upper()][:3] or difflib.get_close_matches(
            model, known, n=3, cutoff=0.5
        )
        hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
        hints.append(
            f"spec.contract.compute.models: unknown GPU model {model!r}{hint} "
            f"(the fleet has: {', '.join(sorted(fleet)) or 'no machines yet'}); "
            "no node will match it"
        )
    gpus = compute.get("gpus")
    pool = {m: n for m, n in fleet.items() if not asked or m in asked}
    if isinstance(gpus, int) and pool and gpus > max(pool.values()):
        hints.append(
            f"spec.contract.compute.gpus: {gpus} GPUs per replica, but no machine of the "
            f"fleet{' with ' + '/'.join(asked) if asked else ''} has more than "
            f"{max(pool.values())}; a replica runs on one node, so use more replicas"
        )
    return hints


def tenant_usage(tx: Transaction, tenants: list[WireObject]) -> list[WireObject]:
    """Tenants with `status.usage.gpus` and `gpusByModel` computed from their workloads."""
    if not tenants:
        return tenants
    names = [t["metadata"]["name"] for t in tenants]
    by_ns: dict[str, list[WireObject]] = {}
    token = None
    while True:
        page = tx.list("Workload", namespaces=names, limit=5000, continue_token=token)
        for w in page.items:
            by_ns.setdefault(w["metadata"].get("namespace", ""), []).append(w)
        if not page.continue_token:
            break
        token = page.continue_token
    for t in tenants:
        usage = governance.usage_of(by_ns.get(t["metadata"]["name"], []))
        status = t.setdefault("status", {})
        status["usage"] = {**(status.get("usage") or {}), **usage.as_wire()}
    return tenants
