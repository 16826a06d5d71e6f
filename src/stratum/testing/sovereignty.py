"""A fleet for the sovereignty report: sites under three laws, tenants with and without
allowed jurisdictions, deny and warn policies, and any number of workloads in every phase,
most of them placed, some where their contract or a policy forbids. Shared by the report's
test and its benchmark (benchmarks/bench_sovereignty_report.py).

Objects are written straight into the store (no admission), so a fleet of thousands is
seeded in seconds and may hold placements admission would have refused: the report must
name those as violations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stratum.core.access import Principal
from stratum.store.objects import ObjectStore

API = "stratum.dev/v1alpha1"
NAMESPACES = ("research", "health-eu", "scratch")  # scratch has no Tenant object
SITES = (
    # name, kind, provider, country, jurisdictions
    ("fra-1", "datacenter", "equinix", "DE", ["EU", "GDPR"]),
    ("us-east-1", "cloud", "aws", "US", ["US"]),
    ("edge-lyon", "edge", "orange", "FR", ["EU", "GDPR"]),
)
NODES_PER_SITE = 8
CLAUSES: tuple[dict[str, Any], ...] = (
    {},
    {"jurisdictions": ["EU"]},
    {"jurisdictions": ["EU"], "dataClassification": "personal"},
    {"dataClassification": "personal"},
    {"countries": ["US"]},
    {"siteKinds": ["edge"], "dataClassification": "internal"},
    {"denyProviders": ["aws"]},
    {"jurisdictions": ["US"], "dataClassification": "personal"},
)
PHASES = ("Running", "Pending", "Bound", "Succeeded", "Failed", "Violated", None)
TYPES = ("batch", "inference", "finetune", "training")


def _site(name: str, kind: str, provider: str, country: str, law: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Site",
        "metadata": {"name": name},
        "spec": {
            "kind": kind,
            "provider": provider,
            "country": country,
            "jurisdictions": law,
            "pricing": {"currency": "EUR", "gpuHour": 2.0},
        },
    }


def _tenant(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}


def _policy(name: str, expression: str, message: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Policy",
        "metadata": {"name": name},
        "spec": {"expression": expression, "message": message, **spec},
    }


def _node(site: str, i: int, name: str | None = None) -> dict[str, Any]:
    # Each GPU with its telemetry, as a live node reports it: the bulk of a node's body.
    gpus = [
        {"index": g, "health": "Healthy", "utilizationPct": float((i * 7 + g) % 100)}
        for g in range(8)
    ]
    return {
        "apiVersion": API,
        "kind": "Node",
        "metadata": {"name": name or f"{site}-n{i:02d}"},
        "spec": {"cluster": f"{site}-c", "site": site, "rack": f"{site}-r{i // 4}"},
        "status": {"phase": "Ready", "gpus": gpus},
    }


def _stamp(i: int, hour: int) -> str:
    return f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{hour:02d}:{i % 60:02d}:00Z"


def _workload(i: int) -> dict[str, Any]:
    # Each trait cycles with its own period, so that a few dozen workloads mix them all.
    phase = PHASES[i % len(PHASES)]
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if phase not in (None, "Pending"):
        status["boundAt"] = _stamp(i, 8)
    if phase in ("Running", "Violated", "Succeeded", "Failed") and i % 2:
        status["runningAt"] = _stamp(i, 9)
    if phase in ("Succeeded", "Failed"):
        status["finishedAt"] = _stamp(i, 17)
    contract: dict[str, Any] = {"compute": {"gpus": 1 + i % 4}}
    clause = CLAUSES[(i // 3) % len(CLAUSES)]
    if clause:
        contract["sovereignty"] = clause
    if (i // 2) % 4 == 1:
        contract["lifecycle"] = {"preemptible": True}
    if (i // 4) % 3 == 1:
        contract["isolation"] = "dedicated-node"
    return {
        "apiVersion": API,
        "kind": "Workload",
        "metadata": {
            "name": f"w-{i:05d}",
            "namespace": NAMESPACES[i % len(NAMESPACES)],
            "creationTimestamp": _stamp(i, 7),
        },
        "spec": {
            "type": TYPES[(i // 2) % len(TYPES)],
            "replicas": 1 + (i // 5) % 3,
            "contract": contract,
        },
        "status": status,
    }


def _placement(i: int, workload: dict[str, Any], attempt: int = 1) -> dict[str, Any]:
    replicas = []
    for r in range(workload["spec"]["replicas"]):
        # Mostly one site; some gangs span two or three; a few name a node that is gone.
        site = SITES[(i + attempt + (r if (i // 7) % 2 == 0 else 0)) % len(SITES)][0]
        node = f"{site}-n{(i + r) % NODES_PER_SITE:02d}" if i % 23 != 5 else f"gone-{i}"
        replicas.append({"replica": r, "node": node, "gpus": [r]})
    return {
        "apiVersion": API,
        "kind": "Placement",
        "metadata": {
            "name": f"{workload['metadata']['name']}-{attempt}",
            "namespace": workload["metadata"]["namespace"],
        },
        "spec": {
            "workload": workload["metadata"]["name"],
            "attempt": attempt,
            "replicas": replicas,
        },
    }


def report_fleet(workloads: int, idle_nodes: int = 0) -> list[dict[str, Any]]:
    """The objects, in an order the store accepts: sites, tenants, policies, nodes (with
    `idle_nodes` more that hold no work, as a large fleet has), then each workload followed
    by its placements (most workloads have one, a few two)."""
    objects = [_site(*s) for s in SITES]
    objects += [
        _tenant("research"),
        _tenant("health-eu", allowedJurisdictions=["EU"]),
    ]
    objects += [
        _policy(
            "personal-data-stays-in-eu",
            "!has(workload.spec.contract.sovereignty.dataClassification) || "
            "workload.spec.contract.sovereignty.dataClassification != 'personal' || "
            "'EU' in site.spec.jurisdictions",
            "workloads with personal data may run only in EU jurisdictions",
        ),
        _policy(
            "no-preemptible-at-the-edge",
            "!(workload.spec.contract.lifecycle.preemptible && site.spec.kind == 'edge')",
            "preemptible work on edge sites is discouraged (little spare capacity)",
            action="warn",
        ),
        _policy(
            "health-eu-on-dedicated-nodes",
            "tenant.metadata.name != 'health-eu' || "
            "workload.spec.contract.isolation == 'dedicated-node'",
            "workloads of health-eu must ask for dedicated nodes (contract.isolation)",
        ),
        _policy(
            "no-training-at-the-edge",
            "!has(site.spec) || site.spec.kind != 'edge'",
            "training and fine-tuning stay off edge sites",
            match={"workloadTypes": ["training", "finetune"]},
        ),
    ]
    objects += [_node(s[0], i) for s in SITES for i in range(NODES_PER_SITE)]
    objects += [_node(SITES[i % 3][0], i, f"idle-{i:05d}") for i in range(idle_nodes)]
    for i in range(workloads):
        workload = _workload(i)
        objects.append(workload)
        if (i // 3) % 4 != 3:
            objects.append(_placement(i, workload))
        if i % 11 == 4:  # placed again elsewhere: the later placement (by name) counts
            objects.append(_placement(i, workload, attempt=2))
    # A placement whose workload is gone: the report lists workloads, not placements.
    objects.append(_placement(1, _workload(workloads + 3)))
    return objects


def seed_report_fleet(store: ObjectStore, workloads: int, idle_nodes: int = 0) -> None:
    """Write `report_fleet(workloads, idle_nodes)` in one transaction."""
    with store.write() as tx:
        for obj in report_fleet(workloads, idle_nodes):
            tx.create(obj)


# When the small fleet's report is read (the store's clock), and by whom: the cases whose
# rows tests/fixtures/sovereignty/rows.json pins.
NOW = datetime(2026, 7, 1, tzinfo=UTC)
ADMIN = Principal("admin", platform_role="platform-admin")
CASES: tuple[tuple[str, Principal, dict[str, str]], ...] = (
    ("platform-admin", ADMIN, {}),
    (
        "platform-viewer, tenant health-eu",
        Principal("eve", platform_role="platform-viewer"),
        {"tenant": "health-eu"},
    ),
    ("member of research", Principal("grace", tenant_roles={"research": "member"}), {}),
    (
        "platform-admin, May to September",
        ADMIN,
        {"start": "2026-05-01T00:00:00Z", "end": "2026-09-30T00:00:00Z"},
    ),
)
