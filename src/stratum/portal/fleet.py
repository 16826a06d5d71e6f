"""The fleet's figures: per site and cluster, in one pass over the nodes (10,000 nodes are
aggregated on the server; the browser gets a few numbers per site, and nodes a page at a
time)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from stratum.core.demand import MILLI, allocation_milli, held_by_gpu
from stratum.portal.reads import Obj, name_of

NODES_PER_PAGE = 50


@dataclass(slots=True)
class Figures:
    """GPUs of a site or cluster by state and by tenant, utilisation and power."""

    nodes: int = 0
    ready: int = 0
    gpus: int = 0
    failed: int = 0
    degraded: int = 0
    allocated_milli: int = 0
    by_tenant_milli: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    util_sum: float = 0.0
    util_n: int = 0
    power_w: float = 0.0

    @property
    def allocated(self) -> float:
        return self.allocated_milli / MILLI

    @property
    def free(self) -> float:
        return max(self.gpus - self.failed - self.allocated, 0.0)

    @property
    def utilization(self) -> float | None:
        return self.util_sum / self.util_n if self.util_n else None

    def by_tenant(self) -> list[tuple[str, float]]:
        return sorted(
            ((t, m / MILLI) for t, m in self.by_tenant_milli.items()), key=lambda r: -r[1]
        )

    def add(self, node: Obj) -> None:
        status = node.get("status") or {}
        self.nodes += 1
        self.ready += status.get("phase") == "Ready"
        gpus = status.get("gpus") or []
        self.gpus += len(gpus)
        for g in gpus:
            health = g.get("health")
            self.failed += health == "Failed"
            self.degraded += health == "Degraded"
            if g.get("utilizationPct") is not None:
                self.util_sum += float(g["utilizationPct"])
                self.util_n += 1
            self.power_w += float(g.get("powerW") or 0.0)
        for a in status.get("allocations") or []:
            held = len(a.get("gpus") or []) * allocation_milli(a)
            self.allocated_milli += held
            self.by_tenant_milli[str(a.get("namespace", ""))] += held


def by_site_and_cluster(nodes: list[Obj]) -> tuple[dict[str, Figures], dict[str, Figures]]:
    sites: dict[str, Figures] = defaultdict(Figures)
    clusters: dict[str, Figures] = defaultdict(Figures)
    for node in nodes:
        spec = node.get("spec") or {}
        sites[str(spec.get("site", ""))].add(node)
        clusters[str(spec.get("cluster", ""))].add(node)
    return dict(sites), dict(clusters)


def gpu_cells(node: Obj) -> list[dict[str, Any]]:
    """Each GPU of a node as a small square: health and whether it is held."""
    status = node.get("status") or {}
    held = held_by_gpu(status.get("allocations") or [])
    return [
        {
            "index": g.get("index"),
            "health": g.get("health", "Unknown"),
            "held": held.get(int(g.get("index", -1)), 0) / MILLI,
        }
        for g in status.get("gpus") or []
    ]


def site_rows(sites: list[Obj], figures: dict[str, Figures]) -> list[dict[str, Any]]:
    rows = []
    for site in sites:
        spec, status = site.get("spec") or {}, site.get("status") or {}
        fig = figures.get(name_of(site))
        draw_kw = fig.power_w / 1000 if fig else float(status.get("powerDrawKW") or 0.0)
        rows.append(
            {
                "name": name_of(site),
                "where": ", ".join(
                    x for x in (spec.get("city"), spec.get("country"), spec.get("provider")) if x
                ),
                "jurisdictions": spec.get("jurisdictions") or [],
                "budget_kw": spec.get("powerBudgetKW"),
                "draw_kw": draw_kw,
                "figures": fig,
            }
        )
    return rows


class FleetCache:
    """The fleet's figures, computed again only after twice as long as the last computation
    took (at most `ttl` seconds), however many pages ask: a 20-node fleet is always fresh,
    a 10,000-node one (seconds to read) is read at most a third of the time.

    Only for callers who may list Nodes: each request is still authorized (a one-item list
    with the caller's rights) before the shared figures are handed out; platform roles all
    see every node, so they share one answer. While the store has not changed since the
    figures were computed they stay, however old."""

    def __init__(self, ttl: float = 10.0) -> None:
        import threading

        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: tuple[dict[str, Figures], dict[str, Figures]] | None = None
        self._at = 0.0
        self._keep = 0.0
        self._version = -1

    def figures(self, reader: Any) -> tuple[dict[str, Figures], dict[str, Figures]] | None:
        """(by site, by cluster), or None when the caller may not read Nodes."""
        import time

        from stratum.core.errors import Forbidden

        try:
            version = reader.resource_version("Node")
        except Forbidden:
            return None
        with self._lock:  # one computation at a time; the others wait for its answer
            fresh = version == self._version or time.monotonic() - self._at < self._keep
            if self._value is None or not fresh:
                started = time.monotonic()
                self._value = by_site_and_cluster(reader.list("Node"))
                self._at, self._version = time.monotonic(), version
                self._keep = min(self.ttl, 2 * (self._at - started))
            return self._value
