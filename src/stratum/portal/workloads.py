"""Workloads: the filtered list, one workload's contract clause by clause with its
evidence or reasons, its placement on the topology, its events, and metric samples."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from markupsafe import Markup

from stratum.core.demand import MILLI, replica_gpu_milli
from stratum.portal import drawing
from stratum.portal.reads import Obj, Reader, hardware_of, name_of, ns_of

PER_PAGE = 50
CLAUSES = (
    "compute",
    "topology",
    "sovereignty",
    "isolation",
    "availability",
    "serviceLevel",
    "lifecycle",
)
# Evidence clause names that belong to a contract clause of another name.
CLAUSE_OF = {"site.powerBudgetKW": "compute", "quota": "compute", "budget": "lifecycle"}


def filtered(
    items: list[Obj], *, tenant: str, phase: str, text: str, page: int
) -> tuple[list[Obj], int]:
    """A page of the workloads matching the filters, and how many pages there are."""
    rows = [
        w
        for w in items
        if (not tenant or ns_of(w) == tenant)
        and (not phase or (w.get("status") or {}).get("phase") == phase)
        and (not text or text.lower() in name_of(w).lower())
    ]
    rows.sort(key=lambda w: (ns_of(w), name_of(w)))
    pages = max(1, -(-len(rows) // PER_PAGE))
    page = min(max(page, 1), pages)
    return rows[(page - 1) * PER_PAGE : page * PER_PAGE], pages


def gpus_of(workload: Obj) -> float:
    """GPUs the workload holds or asks for, in GPUs (fractions and MIG slices in part)."""
    compute = ((workload.get("spec") or {}).get("contract") or {}).get("compute") or {}
    milli = replica_gpu_milli(
        gpus=compute.get("gpus"),
        gpu_milli=compute.get("gpuMilli"),
        mig_profile=compute.get("migProfile"),
    )
    return milli * int((workload.get("spec") or {}).get("replicas") or 1) / MILLI


def clause_rows(workload: Obj, placement: Obj | None) -> list[dict[str, Any]]:
    """Each contract clause: what it asks, and the evidence it holds or the reason not."""
    contract = (workload.get("spec") or {}).get("contract") or {}
    status = workload.get("status") or {}
    evidence = (placement or {}).get("spec", {}).get("evidence") or []
    healthy = status.get("phase") in ("Bound", "Running")
    rows = []
    for clause in CLAUSES:
        ev = [e for e in evidence if _clause(e.get("clause", "")) == clause]
        reasons = [r for r in status.get("reasons") or [] if _clause(r.get("clause", "")) == clause]
        broken = [
            v for v in status.get("violations") or [] if _clause(v.get("clause", "")) == clause
        ]
        rows.append(
            {
                "clause": clause,
                "asks": contract.get(clause),
                "evidence": ev,
                "reasons": reasons,
                "violations": broken[-3:] if status.get("phase") == "Violated" else [],
                # Evidence that broke stays on the Placement after the fault clears: the
                # phase says whether it holds now (report-only work runs again when it does).
                "holds": bool(ev)
                and not (broken and status.get("phase") == "Violated")
                and (healthy or all(e.get("holds", True) for e in ev)),
            }
        )
    return rows


def _clause(name: str) -> str:
    head = name.split(".")[0].split("[")[0]
    return CLAUSE_OF.get(name, CLAUSE_OF.get(head, head))


def placement_drawings(
    reader: Reader, workload: Obj, placement: Obj | None
) -> list[tuple[str, Markup]]:
    """Each node the workload runs on, its GPUs drawn with the workload's own picked out.
    Platform roles see the node's other tenants; a tenant sees only its own work, on the
    node's HardwareProfile (tenants read profiles, not Nodes)."""
    if not placement:
        return []
    focus = (ns_of(workload), name_of(workload))
    replicas = placement.get("spec", {}).get("replicas") or []
    out = []
    for node_name in dict.fromkeys(str(r["node"]) for r in replicas):
        mine = [r for r in replicas if r["node"] == node_name]
        mig = {focus: " ".join(str(r.get("migInstance") or "") for r in mine)}
        node = reader.get_or_none("Node", node_name) if reader.platform else None
        if node is not None:
            hardware = hardware_of(reader, node)
            states = (node.get("status") or {}).get("gpus") or []
            allocations = (node.get("status") or {}).get("allocations") or []
        else:
            hardware = _profile_guess(reader, placement)
            states = []
            allocations = [
                {
                    "namespace": focus[0],
                    "workload": focus[1],
                    "gpus": r.get("gpus"),
                    "gpuMilli": r.get("gpuMilli"),
                }
                for r in mine
            ]
        if not hardware:
            continue
        shares = drawing.shares_by_gpu(allocations, mig, focus=focus, may_name=reader.platform)
        views = drawing.gpu_views(hardware, states, shares)
        out.append(
            (
                node_name,
                drawing.node_svg(hardware, views, title=f"{node_name}: where {focus[1]} runs"),
            )
        )
    return out


def _profile_guess(reader: Reader, placement: Obj) -> Obj | None:
    """For a tenant: no node to read, so no topology beyond its own GPU indices."""
    replicas = placement.get("spec", {}).get("replicas") or []
    count = max([max(r.get("gpus") or [0]) for r in replicas] + [0]) + 1
    return {"gpus": [{"index": i, "model": "GPU"} for i in range(count)], "sockets": []}


def events_for(reader: Reader, namespace: str, name: str, limit: int = 30) -> list[Obj]:
    items = [
        e
        for e in reader.list("Event", namespace)
        if (e.get("spec") or {}).get("involvedObject", {}).get("name") == name
    ]
    return latest(items, limit)


def latest(events: list[Obj], limit: int) -> list[Obj]:
    def when(e: Obj) -> str:
        spec = e.get("spec") or {}
        return str(spec.get("lastTimestamp") or spec.get("firstTimestamp") or "")

    return sorted(events, key=when, reverse=True)[:limit]


class Samples:
    """Metric samples of each workload this portal has shown, newest last: the server keeps
    no metric history (Prometheus does: dashboards/), so the charts start when the page is
    first opened and grow as it refreshes."""

    def __init__(self, keep: int = 240, every: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], deque[tuple[float, dict[str, float]]]] = {}
        self.keep, self.every = keep, every

    def add(self, key: tuple[str, str], values: Mapping[str, float]) -> None:
        now = time.monotonic()
        with self._lock:
            series = self._series.setdefault(key, deque(maxlen=self.keep))
            if series and now - series[-1][0] < self.every:
                return
            series.append((now, dict(values)))

    def series(self, key: tuple[str, str]) -> dict[str, list[tuple[float, float]]]:
        with self._lock:
            rows = list(self._series.get(key, ()))
        out: dict[str, list[tuple[float, float]]] = {}
        start = rows[0][0] if rows else 0.0
        for at, values in rows:
            for name, value in values.items():
                out.setdefault(name, []).append((at - start, value))
        return out


def metrics_now(reader: Reader, workload: Obj, placement: Obj | None) -> dict[str, float]:
    """This moment's figures: the workload's latency and throughput, and (for platform
    roles, who read Nodes) the mean utilisation and power of the GPUs it holds."""
    status = workload.get("status") or {}
    values: dict[str, float] = {}
    for key, name in (("p99LatencyMs", "p99 latency ms"), ("throughputRps", "throughput rps")):
        if status.get(key) is not None:
            values[name] = float(status[key])
    if placement and reader.platform:
        utils, power = [], 0.0
        for r in placement.get("spec", {}).get("replicas") or []:
            node = reader.get_or_none("Node", str(r["node"]))
            states = {g.get("index"): g for g in (node or {}).get("status", {}).get("gpus") or []}
            for i in r.get("gpus") or []:
                g = states.get(i) or {}
                if g.get("utilizationPct") is not None:
                    utils.append(float(g["utilizationPct"]))
                power += float(g.get("powerW") or 0.0)
        if utils:
            values["GPU utilisation %"] = sum(utils) / len(utils)
            values["GPU power W"] = power
    return values


def held_over_time(workloads: list[Obj], now: datetime) -> dict[str, list[tuple[float, float]]]:
    """GPUs each tenant held, from its workloads' bound and finished times (hours ago → GPUs),
    and the GPU-hours that accrued: quota and budget use over time."""
    steps: dict[str, list[tuple[datetime, float]]] = {}
    for w in workloads:
        status = w.get("status") or {}
        start = _at(status.get("boundAt"))
        if start is None:
            continue
        end = _at(status.get("finishedAt")) or now
        g = gpus_of(w)
        steps.setdefault(ns_of(w), []).extend([(start, g), (end, -g)])
    out: dict[str, list[tuple[float, float]]] = {}
    for tenant, changes in steps.items():
        changes.sort(key=lambda c: c[0])
        level, line = 0.0, []
        for at, delta in changes:
            x = -(now - at).total_seconds() / 3600
            line.append((x, level))
            level = max(level + delta, 0.0)
            line.append((x, level))
        line.append((0.0, level))
        out[tenant] = line
    return out


def _at(text: Any) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
