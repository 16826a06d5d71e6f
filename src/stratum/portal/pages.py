"""What each page shows, built from a Reader (the caller's rights) off the event loop."""

from __future__ import annotations

import itertools
from typing import Any

from stratum.core.errors import Forbidden
from stratum.portal import drawing, fleet, workloads
from stratum.portal.reads import Obj, Reader, hardware_of, name_of, ns_of

RECENT_EVENTS = 15
AUDIT_ROWS = 200


def overview(reader: Reader, cache: fleet.FleetCache) -> dict[str, Any]:
    sites = reader.list("Site")
    figures = cache.figures(reader)
    site_figures = figures[0] if figures is not None else {}
    items = reader.list("Workload")
    phases: dict[str, int] = {}
    for w in items:
        phase = (w.get("status") or {}).get("phase") or "Pending"
        phases[phase] = phases.get(phase, 0) + 1
    return {
        "sites": fleet.site_rows(sites, site_figures),
        "fleet_visible": figures is not None,
        "phases": sorted(phases.items()),
        "pending": [
            w
            for w in items
            if (w.get("status") or {}).get("phase") in (None, "Pending", "Rejected")
        ][:20],
        "violated": [w for w in items if (w.get("status") or {}).get("phase") == "Violated"][:20],
        "events": workloads.latest(reader.list("Event"), RECENT_EVENTS),
    }


def fleet_page(reader: Reader, cache: fleet.FleetCache) -> dict[str, Any]:
    sites = reader.list("Site")
    clusters = reader.list("Cluster")
    figures = cache.figures(reader)
    empty: dict[str, fleet.Figures] = {}
    site_figures, cluster_figures = figures if figures is not None else (empty, empty)
    by_site: dict[str, list[Obj]] = {}
    for c in clusters:
        by_site.setdefault(str((c.get("spec") or {}).get("site", "")), []).append(c)
    return {
        "sites": fleet.site_rows(sites, site_figures),
        "clusters": by_site,
        "cluster_figures": cluster_figures,
        "fleet_visible": figures is not None,
    }


def cluster_page(reader: Reader, name: str, continue_token: str | None) -> dict[str, Any]:
    cluster = reader.get("Cluster", name)
    if not reader.platform:
        raise Forbidden("Nodes are visible to platform roles only")
    nodes, next_token = reader.page(
        "Node",
        selector=f"stratum.dev/cluster={name}",
        limit=fleet.NODES_PER_PAGE,
        continue_token=continue_token,
    )
    return {
        "cluster": cluster,
        "nodes": [(n, fleet.gpu_cells(n)) for n in nodes],
        "next": next_token,
        "per_page": fleet.NODES_PER_PAGE,
    }


def node_page(reader: Reader, name: str) -> dict[str, Any]:
    node = reader.get("Node", name)
    hardware = hardware_of(reader, node) or {}
    status = node.get("status") or {}
    allocations = status.get("allocations") or []
    mig: dict[tuple[str, str], str] = {}
    for a in allocations:
        key = (str(a.get("namespace")), str(a.get("workload")))
        placement = reader.get_or_none("Placement", key[1], key[0])
        if placement:
            mig[key] = " ".join(
                str(r.get("migInstance") or "")
                for r in placement["spec"].get("replicas") or []
                if r.get("node") == name
            )
    shares = drawing.shares_by_gpu(allocations, mig, focus=None, may_name=True)
    views = drawing.gpu_views(hardware, status.get("gpus") or [], shares)
    tenants = sorted({s.tenant for v in views for s in v.shares})
    return {
        "node": node,
        "hardware": hardware,
        "svg": drawing.node_svg(hardware, views, title=f"Topology of node {name}"),
        "gpus": views,
        "tenants": [(t, drawing.tenant_colour(t)) for t in tenants],
        "allocations": allocations,
    }


def workload_list(reader: Reader, tenant: str, phase: str, text: str, page: int) -> dict[str, Any]:
    items = reader.list("Workload", tenant or None)
    rows, pages = workloads.filtered(items, tenant=tenant, phase=phase, text=text, page=page)
    return {
        "rows": rows,
        "pages": pages,
        "page": min(max(page, 1), pages),
        "total": len(items),
        "tenants": sorted({ns_of(w) for w in items} | ({tenant} if tenant else set())),
        "filters": {"tenant": tenant, "phase": phase, "q": text},
    }


def workload_page(
    reader: Reader, samples: workloads.Samples, namespace: str, name: str
) -> dict[str, Any]:
    workload = reader.get("Workload", name, namespace)
    placement = reader.get_or_none("Placement", name, namespace)
    key = (namespace, name)
    samples.add(key, workloads.metrics_now(reader, workload, placement))
    series = samples.series(key)
    charts = [
        drawing.line_chart({metric: line}, title=f"{name}: {metric}", unit=metric.split()[-1])
        for metric, line in sorted(series.items())
    ]
    return {
        "workload": workload,
        "placement": placement,
        "clauses": workloads.clause_rows(workload, placement),
        "drawings": workloads.placement_drawings(reader, workload, placement),
        "events": workloads.events_for(reader, namespace, name),
        "charts": charts,
        "gpus": workloads.gpus_of(workload),
    }


def tenants_page(reader: Reader) -> dict[str, Any]:
    from datetime import UTC

    tenants = reader.list("Tenant")
    items = reader.list("Workload")
    now = reader.service.store.clock.now()  # the platform's one clock (simulated at `up`)
    held = workloads.held_over_time(items, now if now.tzinfo else now.replace(tzinfo=UTC))
    rows = []
    for t in tenants:
        spec, usage = t.get("spec") or {}, (t.get("status") or {}).get("usage") or {}
        line = held.get(name_of(t), [])
        quota = (spec.get("quota") or {}).get("gpus")
        budget = spec.get("budget") or {}
        hours = _integral(line)
        rows.append(
            {
                "tenant": t,
                "usage": usage,
                "quota": quota,
                "budget": budget,
                "held_chart": drawing.line_chart(
                    {name_of(t): line},
                    title=f"GPUs {name_of(t)} held (hours ago → now)",
                    unit="GPUs",
                    limit=quota,
                ),
                "hours_chart": drawing.line_chart(
                    {name_of(t): hours},
                    title=f"GPU-hours {name_of(t)} used (hours ago → now)",
                    unit="GPU-h",
                    limit=budget.get("gpuHours"),
                ),
            }
        )
    return {"rows": rows}


def _integral(line: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """GPU-hours accrued along a step line of GPUs held (x in hours)."""
    total, out = 0.0, []
    for (x0, y0), (x1, _) in itertools.pairwise(line):
        total += y0 * max(x1 - x0, 0.0)
        out.append((x1, total))
    return out


def audit_page(reader: Reader, governance: Any) -> dict[str, Any]:
    rows = governance.sovereignty(reader.ctx.principal)
    try:
        verification = governance.verify_audit(reader.ctx.principal)
    except Forbidden as err:
        verification, refused = None, err.message
    else:
        refused = ""
    # The page shows the first rows; the CSV export has every one.
    return {
        "rows": rows[:AUDIT_ROWS],
        "total": len(rows),
        "verification": verification,
        "refused": refused,
    }
