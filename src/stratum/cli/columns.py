"""What `stratum get` shows for each kind: the columns of the table (and of -o wide)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from stratum.core.clock import SystemClock

Getter = Callable[[dict[str, Any]], str]


def _path(*keys: str, default: str = "") -> Getter:
    def get(obj: dict[str, Any]) -> str:
        value: Any = obj
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return default
            value = value[key]
        if isinstance(value, list):
            return ",".join(str(v) for v in value) or default
        if isinstance(value, bool):
            return "true" if value else "false"
        return default if value is None else str(value)

    return get


Now = Callable[[], datetime | None]


def _this_machine() -> datetime | None:
    return None


def ago(seconds: float) -> str:
    """5s, 3m, 2h, 4d: how kubectl writes an age (never negative)."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{max(whole, 0)}s"


@dataclass(frozen=True, slots=True)
class Since:
    """How long ago the timestamp at `keys` was, measured against `now()`: the server's
    clock as the client last heard it (under `stratum up --speed 60` that is simulated
    time, ahead of this machine's), or this machine's clock when `now()` is None."""

    keys: tuple[str, ...]
    missing: str = "-"
    now: Now = _this_machine

    def __call__(self, obj: dict[str, Any]) -> str:
        value: Any = obj
        for key in self.keys:
            value = value.get(key) if isinstance(value, dict) else None
        if not value:
            return self.missing
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return ago(((self.now() or SystemClock().now()) - at).total_seconds())

    def against(self, now: Now) -> Since:
        return replace(self, now=now)


def since(*keys: str, now: Now = _this_machine) -> Since:
    return Since(keys, now=now)


def _count(*keys: str) -> Getter:
    def get(obj: dict[str, Any]) -> str:
        value: Any = obj
        for key in keys:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        return str(len(value)) if isinstance(value, list) else "0"

    return get


def _gpus_per_replica(obj: dict[str, Any]) -> str:
    compute = obj.get("spec", {}).get("contract", {}).get("compute", {})
    if compute.get("gpus"):
        return str(compute["gpus"])
    if compute.get("gpuMilli"):
        return f"{compute['gpuMilli']}m"
    return compute.get("migProfile") or "0"


def _gpu_models(obj: dict[str, Any]) -> str:
    models: dict[str, int] = {}
    for gpu in obj.get("spec", {}).get("gpus", []):
        models[gpu.get("model", "?")] = models.get(gpu.get("model", "?"), 0) + 1
    return ",".join(f"{n}x {m}" for m, n in models.items()) or "none"


def _quota(obj: dict[str, Any]) -> str:
    gpus = obj.get("spec", {}).get("quota", {}).get("gpus")
    return "unlimited" if gpus is None else str(gpus)


def _gpu_use(obj: dict[str, Any]) -> str:
    """GPUs held by active workloads against the quota: 33/64, and per model when limited."""
    quota = obj.get("spec", {}).get("quota", {})
    usage = obj.get("status", {}).get("usage", {})
    used = usage.get("gpus", 0)
    text = f"{used}/{quota['gpus'] if quota.get('gpus') is not None else '-'}"
    for model, limit in sorted((quota.get("gpusByModel") or {}).items()):
        text += f" {model}:{(usage.get('gpusByModel') or {}).get(model, 0)}/{limit}"
    return text


def _cpu_use(obj: dict[str, Any]) -> str:
    """CPU cores its active workloads ask for against the quota: 12/16, or 12/- unlimited."""
    limit = obj.get("spec", {}).get("quota", {}).get("cpuCores")
    used = obj.get("status", {}).get("usage", {}).get("cpuCores", 0)
    return f"{used}/{'-' if limit is None else limit}"


def _budget_use(obj: dict[str, Any]) -> str:
    budget = obj.get("spec", {}).get("budget")
    if not budget:
        return "-"
    usage = obj.get("status", {}).get("usage", {})
    if budget.get("gpuHours") is not None:
        used, limit, unit = usage.get("gpuHours", 0), budget["gpuHours"], "GPU-h"
    else:
        used, limit, unit = (
            usage.get("cost", 0),
            budget.get("amount"),
            budget.get("currency", "EUR"),
        )
    pct = 100 * float(used) / float(limit) if limit else 0.0
    return f"{float(used):g}/{float(limit):g} {unit} ({pct:.0f}%)/{budget.get('period', 'month')}"


def _pools(obj: dict[str, Any]) -> str:
    pools = obj.get("spec", {}).get("nodePools", [])
    return ",".join(f"{p.get('count')}x {p.get('profile')}" for p in pools) or "none"


def _involved(obj: dict[str, Any]) -> str:
    ref = obj.get("spec", {}).get("involvedObject", {})
    return f"{ref.get('kind', '').lower()}/{ref.get('name', '')}"


Column = tuple[str, Getter]
NAME: Column = ("NAME", _path("metadata", "name"))
NAMESPACE: Column = ("NAMESPACE", _path("metadata", "namespace"))
AGE: Column = ("AGE", Since(("metadata", "creationTimestamp"), missing=""))

COLUMNS: dict[str, list[Column]] = {
    "Site": [
        NAME,
        ("KIND", _path("spec", "kind")),
        ("PROVIDER", _path("spec", "provider")),
        ("COUNTRY", _path("spec", "country")),
        ("JURISDICTIONS", _path("spec", "jurisdictions", default="-")),
        ("POWER-KW", _path("spec", "powerBudgetKW", default="-")),
        AGE,
    ],
    "HardwareProfile": [
        NAME,
        ("GPUS", _gpu_models),
        ("NICS", _count("spec", "nics")),
        ("MAX-W", _path("spec", "power", "maxW", default="-")),
        AGE,
    ],
    "Cluster": [
        NAME,
        ("SITE", _path("spec", "site")),
        ("BACKEND", _path("spec", "backend")),
        ("POOLS", _pools),
        ("PHASE", _path("status", "phase", default="-")),
        AGE,
    ],
    "Node": [
        NAME,
        ("CLUSTER", _path("spec", "cluster")),
        ("SITE", _path("spec", "site")),
        ("PROFILE", _path("spec", "profile", default="-")),
        ("PHASE", _path("status", "phase", default="-")),
        AGE,
    ],
    "ClusterTemplate": [
        NAME,
        ("VERSION", _path("spec", "version")),
        ("PUBLISHED", _path("spec", "published")),
        AGE,
    ],
    "WorkloadTemplate": [
        NAME,
        ("VERSION", _path("spec", "version")),
        ("PUBLISHED", _path("spec", "published")),
        AGE,
    ],
    "Tenant": [
        NAME,
        ("ISOLATION", _path("spec", "isolation")),
        ("GPUS", _gpu_use),
        ("BUDGET", _budget_use),
        ("JURISDICTIONS", _path("spec", "allowedJurisdictions", default="any")),
        ("WEIGHT", _path("spec", "fairShareWeight")),
        AGE,
    ],
    "Policy": [
        NAME,
        ("ACTION", _path("spec", "action")),
        ("MESSAGE", _path("spec", "message")),
        AGE,
    ],
    "Workload": [
        NAME,
        ("TYPE", _path("spec", "type")),
        ("REPLICAS", _path("spec", "replicas")),
        ("GPUS/REPLICA", _gpus_per_replica),
        ("PHASE", _path("status", "phase", default="-")),
        AGE,
    ],
    "Placement": [
        NAME,
        ("WORKLOAD", _path("spec", "workload")),
        ("REPLICAS", _count("spec", "replicas")),
        ("TIER", _path("spec", "tier", default="-")),
        ("PHASE", _path("status", "phase", default="-")),
        AGE,
    ],
    "Event": [
        ("LAST SEEN", since("spec", "lastTimestamp")),
        ("TYPE", _path("spec", "type")),
        ("REASON", _path("spec", "reason")),
        ("OBJECT", _involved),
        ("COUNT", _path("spec", "count")),
        ("MESSAGE", _path("spec", "message")),
    ],
    "AuditRecord": [
        NAME,
        ("SEQ", _path("spec", "sequence")),
        ("ACTOR", _path("spec", "actor")),
        ("ACTION", _path("spec", "action")),
        AGE,
    ],
}

WIDE_EXTRA: dict[str, list[Column]] = {
    "Site": [
        ("REGION", _path("spec", "region", default="-")),
        ("CITY", _path("spec", "city", default="-")),
    ],
    "Workload": [
        ("PRIORITY", _path("spec", "contract", "lifecycle", "priority")),
        ("ISOLATION", _path("spec", "contract", "isolation")),
        ("WITHIN", _path("spec", "contract", "topology", "withinReplica")),
        ("ACROSS", _path("spec", "contract", "topology", "acrossReplicas")),
        ("PLACEMENT", _path("status", "placement", default="-")),
    ],
    "Tenant": [("GPU-QUOTA", _quota), ("CPUS", _cpu_use)],
    "Event": [
        ("FIRST SEEN", since("spec", "firstTimestamp")),
        ("SOURCE", _path("spec", "source", default="-")),
    ],
    "Node": [
        ("RACK", _path("spec", "rack", default="-")),
        ("UNSCHEDULABLE", _path("spec", "unschedulable", default="false")),
    ],
}
WIDE_COMMON: list[Column] = [
    ("GENERATION", _path("metadata", "generation")),
    ("RESOURCE-VERSION", _path("metadata", "resourceVersion")),
]


# Where a workload or placement runs; `with_where` puts these under WHERE_KEY first.
WHERE_KEY = "__where__"
WHERE: list[Column] = [
    ("NODES", _path(WHERE_KEY, "nodes", default="<none>")),
    ("SITE", _path(WHERE_KEY, "site", default="<none>")),
    ("GPUS", _path(WHERE_KEY, "gpus", default="<none>")),
]


def with_where(
    obj: dict[str, Any], placement: dict[str, Any] | None, node_sites: dict[str, str]
) -> dict[str, Any]:
    """A copy of `obj` that carries its placement's nodes, sites and GPUs for the table."""
    if placement is None or not placement.get("spec", {}).get("replicas"):
        return obj
    replicas = placement["spec"]["replicas"]
    nodes = list(dict.fromkeys(r["node"] for r in replicas))
    sites = list(dict.fromkeys(node_sites[n] for n in nodes if node_sites.get(n)))
    return {
        **obj,
        WHERE_KEY: {
            "nodes": ",".join(nodes),
            "site": ",".join(sites) or "-",
            "gpus": _gpu_total(replicas),
        },
    }


def _gpu_total(replicas: list[dict[str, Any]]) -> str:
    """16, or 2x500m for slices, or 1x1g.10gb for MIG instances: what the replicas hold."""
    # migInstance reads "1g.10gb on GPU 0 slots 6-6": its first word is the profile.
    migs = [r["migInstance"].split()[0] for r in replicas if r.get("migInstance")]
    milli = [r["gpuMilli"] for r in replicas if r.get("gpuMilli")]
    if migs:
        return ",".join(f"{migs.count(m)}x{m}" for m in dict.fromkeys(migs))
    if milli:
        return ",".join(f"{milli.count(m)}x{m}m" for m in dict.fromkeys(milli))
    return str(sum(len(r.get("gpus", [])) for r in replicas))


def columns_for(
    kind: str, *, namespaced: bool, wide: bool, where: bool = False, now: Now = _this_machine
) -> list[Column]:
    """The table's columns; `where` adds NODES, SITE and GPUS (for -o wide and -w). Ages
    are measured against `now()` (the server's clock: `StratumClient.server_now`)."""
    cols = list(COLUMNS.get(kind, [NAME, AGE]))
    if namespaced:
        cols.insert(0, NAMESPACE)
    extra = (WIDE_EXTRA.get(kind, []) if wide else []) + (WHERE if where else [])
    if wide:
        extra += WIDE_COMMON
    cols[-1:-1] = extra
    return [(h, g.against(now) if isinstance(g, Since) else g) for h, g in cols]
