"""`stratum top`: a live view of the fleet in the terminal, refreshed in place: sites (power
against budget), every node's GPUs (utilisation, power, health), contracts by phase, the
ones waiting or broken, and the latest violations. Reads the API only."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from stratum.cli.columns import ago
from stratum.cli.output import console, fail_api
from stratum.core.clock import SystemClock
from stratum.core.errors import ApiError

BARS = "▁▂▃▄▅▆▇█"
PHASES = ("Running", "Bound", "Pending", "Violated", "Rejected", "Succeeded", "Failed", "Released")


def register(app: typer.Typer) -> None:
    app.command("top")(top)


@dataclass(slots=True)
class Frame:
    """What one refresh shows, fetched from the API."""

    server: str
    at: datetime
    sites: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] | None = None  # None: the token may not read nodes
    workloads: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def fetch(client: Any) -> Frame:
    frame = Frame(server=client.server, at=SystemClock().now())
    try:
        frame.sites = client.list("Site")
        frame.workloads = client.list("Workload")
        try:
            frame.nodes = client.list("Node")
        except ApiError as err:
            if err.code not in (403, 404):
                raise
    except ApiError as err:
        frame.error = err.message
    # The fleet's time (simulated under `stratum up`), against which ages are measured.
    frame.at = client.server_now() or frame.at
    return frame


def _bar(ratio: float, width: int = 10) -> str:
    ratio = min(max(ratio, 0.0), 1.0)
    full = round(ratio * width)
    return "█" * full + "░" * (width - full)


def _power_style(ratio: float) -> str:
    return "red" if ratio >= 0.95 else "yellow" if ratio >= 0.8 else "green"


def sites_table(frame: Frame) -> Table:
    gpus_by_site: dict[str, list[dict[str, Any]]] = {}
    ready: dict[str, int] = {}
    for node in frame.nodes or []:
        site = node["spec"]["site"]
        gpus_by_site.setdefault(site, []).extend(node.get("status", {}).get("gpus", []))
        ready[site] = ready.get(site, 0) + (node.get("status", {}).get("phase") == "Ready")
    allocated = _allocated(frame.nodes or [])
    table = Table(
        title="Sites", title_justify="left", box=None, header_style="bold", pad_edge=False
    )
    for col in ("SITE", "NODES", "GPUS", "FAILED", "POWER", ""):
        table.add_column(col)
    for site in sorted(frame.sites, key=lambda s: s["metadata"]["name"]):
        name = site["metadata"]["name"]
        status = site.get("status", {})
        draw = float(status.get("powerDrawKW") or 0.0)
        budget = site["spec"].get("powerBudgetKW")
        gpus = gpus_by_site.get(name, [])
        failed = sum(g.get("health") in ("Failed", "Degraded") for g in gpus)
        if budget:
            ratio = draw / float(budget)
            power = Text(
                f"{draw:.1f}/{float(budget):g} kW {_bar(ratio)} {ratio:.0%}",
                style=_power_style(ratio),
            )
        else:
            power = Text(f"{draw:.1f} kW (no budget)")
        nodes_total = status.get("nodes", 0)
        table.add_row(
            name,
            f"{ready.get(name, 0)}/{nodes_total}" if frame.nodes is not None else str(nodes_total),
            f"{allocated.get(name, 0)}/{status.get('gpus', 0)}",
            Text(str(failed), style="bold red" if failed else "dim"),
            power,
            Text(site["spec"].get("country", ""), style="dim"),
        )
    return table


def _allocated(nodes: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for node in nodes:
        taken = {
            g for a in node.get("status", {}).get("allocations", []) for g in a.get("gpus", [])
        }
        out[node["spec"]["site"]] = out.get(node["spec"]["site"], 0) + len(taken)
    return out


def _gpu_cell(gpu: dict[str, Any], allocated: bool) -> Text:
    health = gpu.get("health", "Healthy")
    if health == "Failed":
        return Text("✗", style="bold red")
    if health in ("Degraded", "Unknown"):
        return Text("!", style="bold yellow")
    util = float(gpu.get("utilizationPct") or 0.0) / 100
    glyph = BARS[min(int(util * len(BARS)), len(BARS) - 1)]
    return Text(glyph, style="cyan" if allocated else "dim")


def _node_order(node: dict[str, Any]) -> tuple[int, float, str]:
    gpus = node.get("status", {}).get("gpus", [])
    broken = node.get("status", {}).get("phase") != "Ready" or any(
        g.get("health") != "Healthy" for g in gpus
    )
    util = sum(float(g.get("utilizationPct") or 0) for g in gpus) / (len(gpus) or 1)
    return (0 if broken else 1, -util, node["metadata"]["name"])


def nodes_table(frame: Frame, limit: int) -> RenderableType:
    if frame.nodes is None:
        return Text("Nodes: this token may not read nodes (a platform role can).", style="dim")
    more = "" if len(frame.nodes) <= limit else f" - {limit} of {len(frame.nodes)} nodes"
    table = Table(
        title=f"GPUs (▁..█ utilisation, cyan: allocated, ✗ failed, ! degraded){more}",
        title_justify="left",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    for col in ("NODE", "SITE", "STATE", "GPUS", "UTIL", "POWER", "TEMP"):
        table.add_column(col)
    for node in sorted(frame.nodes, key=_node_order)[:limit]:
        status = node.get("status", {})
        gpus = status.get("gpus", [])
        taken = {g for a in status.get("allocations", []) for g in a.get("gpus", [])}
        cells = Text()
        for gpu in gpus:
            cells.append_text(_gpu_cell(gpu, gpu.get("index") in taken))
        util = sum(float(g.get("utilizationPct") or 0) for g in gpus) / (len(gpus) or 1)
        power = sum(float(g.get("powerW") or 0) for g in gpus)
        temp = max((float(g.get("temperatureC") or 0) for g in gpus), default=0.0)
        phase = status.get("phase") or "Unknown"
        table.add_row(
            node["metadata"]["name"],
            node["spec"]["site"],
            Text(phase, style="green" if phase == "Ready" else "bold red"),
            cells if gpus else Text("-", style="dim"),
            f"{util:.0f}%" if gpus else "-",
            f"{power:.0f} W" if gpus else "-",
            f"{temp:.0f}°C" if gpus else "-",
        )
    return table


def contracts_view(frame: Frame, limit: int = 8) -> RenderableType:
    counts: dict[str, int] = {}
    for wl in frame.workloads:
        phase = wl.get("status", {}).get("phase") or "Pending"
        counts[phase] = counts.get(phase, 0) + 1
    style = {
        "Running": "green",
        "Bound": "green",
        "Pending": "yellow",
        "Violated": "bold red",
        "Rejected": "red",
        "Failed": "red",
    }
    summary = Text("Contracts: ")
    for phase in PHASES:
        if counts.get(phase):
            summary.append(f"{phase} {counts[phase]}  ", style=style.get(phase, ""))
    if not frame.workloads:
        summary.append("none", style="dim")
    waiting = Table(
        title="Waiting or broken",
        title_justify="left",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    for col in ("WORKLOAD", "PHASE", "WHY"):
        waiting.add_column(col)
    shown = [
        w
        for w in frame.workloads
        if (w.get("status", {}).get("phase") or "Pending")
        in ("Pending", "Violated", "Rejected", "Failed")
    ]
    for wl in shown[:limit]:
        st = wl.get("status", {})
        phase = st.get("phase") or "Pending"
        waiting.add_row(
            f"{wl['metadata']['namespace']}/{wl['metadata']['name']}",
            Text(phase, style=style.get(phase, "")),
            st.get("message", ""),
        )
    violations = sorted(
        (
            (v.get("at", ""), f"{wl['metadata']['namespace']}/{wl['metadata']['name']}", v)
            for wl in frame.workloads
            for v in wl.get("status", {}).get("violations", [])
        ),
        key=lambda t: t[0],
        reverse=True,
    )[:limit]
    recent = Table(
        title="Latest violations",
        title_justify="left",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    for col in ("WHEN", "WORKLOAD", "CLAUSE", "EVIDENCE"):
        recent.add_column(col)
    for at, key, v in violations:
        recent.add_row(
            _ago(at, frame.at), key, Text(v.get("clause", ""), style="red"), v.get("message", "")
        )
    parts: list[RenderableType] = [summary]
    if shown:
        parts.append(waiting)
    parts.append(recent if violations else Text("Latest violations: none", style="dim"))
    return Group(*parts)


def _ago(stamp: str, now: datetime) -> str:
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return f"{ago((now - at).total_seconds())} ago"


def render(frame: Frame, *, interval: float | None, node_limit: int = 40) -> RenderableType:
    head = Text(f"Stratum top - {frame.server} - {frame.at:%Y-%m-%d %H:%M:%S} UTC", style="bold")
    if interval:
        head.append(f"  (every {interval:g}s, Ctrl-C quits)", style="dim")
    parts: list[RenderableType] = [head]
    if frame.error:
        parts.append(Text(f"error: {frame.error}", style="bold red"))
        return Group(*parts)
    parts += [
        Text(""),
        sites_table(frame),
        Text(""),
        nodes_table(frame, node_limit),
        Text(""),
        contracts_view(frame),
    ]
    return Group(*parts)


def top(
    interval: Annotated[
        float, typer.Option(help="Seconds between refreshes.", min=0.2, max=3600)
    ] = 2.0,
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame and exit (scripts, tests).")
    ] = False,
    nodes: Annotated[
        int, typer.Option(help="Most nodes to show (faulty and busiest first).", min=1)
    ] = 40,
) -> None:
    """Watch sites, GPUs, contracts and violations live, refreshed in place."""
    from rich.live import Live

    from stratum.cli.resources import _client

    with _client() as client:
        frame = fetch(client)
        if once:
            if frame.error and not frame.sites:
                fail_api(_error(frame.error, client))
            console().print(render(frame, interval=None, node_limit=nodes))
            return
        out = console()
        try:
            with Live(
                render(frame, interval=interval, node_limit=nodes),
                console=out,
                auto_refresh=False,
                screen=out.is_terminal,
                redirect_stdout=False,
            ) as live:
                while True:
                    time.sleep(interval)
                    live.update(
                        render(fetch(client), interval=interval, node_limit=nodes), refresh=True
                    )
        except KeyboardInterrupt:
            return


def _error(message: str, client: Any) -> ApiError:
    try:
        client.list("Site")
    except ApiError as err:
        return err
    return ApiError(message)
