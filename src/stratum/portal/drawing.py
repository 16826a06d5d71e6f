"""Inline SVG: a node's topology (sockets, NUMA nodes, PCIe switches, GPUs by NVLink domain,
NICs; GPUs coloured by tenant, health and utilisation, MIG slices and fractions inside
their GPU) and small line charts. Pure functions of wire dicts; every text is escaped."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from markupsafe import Markup

from stratum.core.demand import MIG_SLICES, MILLI

PALETTE = ("#1d4ed8", "#047857", "#7c3aed", "#b45309", "#0e7490", "#be185d", "#4d7c0f", "#9333ea")
FAILED = "#b91c1c"
FREE = "#e5e7eb"
OTHER = "#6b7280"  # work the caller may not name (another tenant's)
MIG_SLOTS = re.compile(r"on GPU (\d+) slots (\d+)-(\d+)")

GPU_W, GPU_H, NIC_W, NIC_H, PAD = 70, 84, 70, 26, 10


def tenant_colour(tenant: str) -> str:
    return PALETTE[zlib.crc32(tenant.encode()) % len(PALETTE)]


@dataclass(slots=True)
class Share:
    """Part of one GPU held by one workload: whole, a milli-GPU fraction or MIG slots."""

    tenant: str
    workload: str
    milli: int = MILLI
    slots: tuple[int, int] | None = None  # first and last MIG slot
    focus: bool = False


@dataclass(slots=True)
class GpuView:
    index: int
    model: str
    domain: str | None
    health: str = "Unknown"
    utilization: float | None = None
    power_w: float | None = None
    shares: list[Share] = field(default_factory=list)


def shares_by_gpu(
    allocations: Iterable[Mapping[str, Any]],
    mig: Mapping[tuple[str, str], str],
    *,
    focus: tuple[str, str] | None,
    may_name: bool,
) -> dict[int, list[Share]]:
    """Node allocations (and the MIG instances their Placements name, by (tenant, workload))
    as shares of each GPU. Without `may_name`, only the focused workload is named."""
    out: dict[int, list[Share]] = {}
    for a in allocations:
        key = (str(a.get("namespace", "")), str(a.get("workload", "")))
        own = key == focus
        tenant, workload = key if (may_name or own) else ("other", "other work")
        slots = None
        found = MIG_SLOTS.search(mig.get(key, ""))
        if found:
            slots = (int(found.group(2)), int(found.group(3)))
        for gpu in a.get("gpus") or []:
            milli = int(a.get("gpuMilli") or MILLI)
            if slots:
                milli = (slots[1] - slots[0] + 1) * MILLI // MIG_SLICES
            out.setdefault(int(gpu), []).append(Share(tenant, workload, milli, slots, own))
    return out


def gpu_views(
    hardware: Mapping[str, Any],
    states: Sequence[Mapping[str, Any]],
    shares: Mapping[int, list[Share]],
) -> list[GpuView]:
    by_index = {int(s.get("index", -1)): s for s in states}
    views = []
    for g in hardware.get("gpus") or []:
        state = by_index.get(int(g["index"]), {})
        views.append(
            GpuView(
                index=int(g["index"]),
                model=str(g.get("model", "GPU")),
                domain=g.get("nvlinkDomain"),
                health=str(state.get("health", "Unknown")),
                utilization=state.get("utilizationPct"),
                power_w=state.get("powerW"),
                shares=list(shares.get(int(g["index"]), [])),
            )
        )
    return views


# -- the node picture --------------------------------------------------------------------
@dataclass(slots=True)
class _Group:
    """A PCIe switch (or the NUMA node's root complex) with its GPUs and NICs."""

    switch: str | None
    gpus: list[GpuView] = field(default_factory=list)
    nics: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def width(self) -> int:
        n = max(len(self.gpus), len(self.nics), 1)
        return n * (GPU_W + PAD) + PAD


def _numa_groups(
    numa: int | None, hardware: Mapping[str, Any], gpus: list[GpuView]
) -> list[_Group]:
    spec = {int(g["index"]): g for g in hardware.get("gpus") or []}
    groups: dict[str | None, _Group] = {}
    for gpu in gpus:
        if spec[gpu.index].get("numaNode") == numa:
            switch = spec[gpu.index].get("pcieSwitch")
            groups.setdefault(switch, _Group(switch)).gpus.append(gpu)
    for nic in hardware.get("nics") or []:
        if nic.get("numaNode") == numa:
            switch = nic.get("pcieSwitch")
            groups.setdefault(switch, _Group(switch)).nics.append(nic)
    return list(groups.values())


def node_svg(hardware: Mapping[str, Any], gpus: list[GpuView], *, title: str) -> Markup:
    """Sockets left to right, their NUMA nodes inside, PCIe switches inside those, GPUs on
    top and NICs below them; a bar under each NVLink domain joins its GPUs."""
    sockets = [
        (f"socket {s.get('id', i)}" + (f" · {s['model']}" if s.get("model") else ""), s)
        for i, s in enumerate(hardware.get("sockets") or [])
    ]
    numa_of_socket = [
        [
            (n.get("id"), f"NUMA {n.get('id')} · CPUs {n.get('cpus') or '?'}")
            for n in s.get("numaNodes") or []
        ]
        for _, s in sockets
    ]
    known = {n for row in numa_of_socket for n, _ in row}
    spec = {int(g["index"]): g for g in hardware.get("gpus") or []}
    if any(spec[g.index].get("numaNode") not in known for g in gpus) or not sockets:
        sockets.append(("no NUMA information", {}))
        numa_of_socket.append([(None, "GPUs and NICs of unknown NUMA node")])
    parts: list[str] = []
    gpu_x: dict[int, float] = {}
    x = PAD
    numa_h = 40 + GPU_H + PAD + NIC_H + PAD + 26
    socket_h = numa_h + 2 * PAD + 22
    for (label, _), numas in zip(sockets, numa_of_socket, strict=True):
        sx = x
        x += PAD
        for numa, numa_label in numas:
            nx = x
            groups = _numa_groups(numa, hardware, gpus) if numa in known or numa is None else []
            inner = sum(g.width for g in groups) + PAD if groups else 160
            inner = max(inner, 7 * len(numa_label) + 20)  # the label fits
            parts.append(_rect(nx, 40, inner, numa_h, "numa", numa_label))
            gx = nx + PAD
            for group in groups:
                parts.append(
                    _rect(
                        gx,
                        62,
                        group.width - PAD,
                        numa_h - 32,
                        "switch",
                        f"PCIe switch {group.switch}" if group.switch else "root complex",
                    )
                )
                cx = gx + PAD
                for gpu in group.gpus:
                    parts.append(_gpu(cx, 84, gpu))
                    gpu_x[gpu.index] = cx
                    cx += GPU_W + PAD
                cx = gx + PAD
                for nic in group.nics:
                    parts.append(_nic(cx, 84 + GPU_H + PAD, nic))
                    cx += NIC_W + PAD
                gx += group.width
            x = nx + inner + PAD
        parts.insert(0, _rect(sx, 16, x - sx, socket_h, "socket", label))
        x += PAD
    width = x + PAD
    y = 16 + socket_h + 14
    domains: dict[str, list[int]] = {}
    for gpu in gpus:
        if gpu.domain:
            domains.setdefault(gpu.domain, []).append(gpu.index)
    for domain, members in sorted(domains.items()):
        xs = [gpu_x[i] + GPU_W / 2 for i in members if i in gpu_x]
        if not xs:
            continue
        parts.append(
            f'<line class="nvlink" x1="{min(xs) - 8}" y1="{y}" x2="{max(xs) + 8}" y2="{y}"/>'
        )
        for drop in xs:
            parts.append(
                f'<line class="nvlink-drop" x1="{drop}" y1="{84 + GPU_H}" x2="{drop}" y2="{y}"/>'
            )
        parts.append(
            _text(min(xs) - 8, y + 16, f"NVLink domain {domain} ({len(xs)} GPUs)", "label")
        )
        y += 30
    height = y + 10
    body = "".join(parts)
    return Markup(
        f'<svg class="topology" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _rect(x: float, y: float, w: float, h: float, cls: str, label: str) -> str:
    return f'<rect class="{cls}" x="{x}" y="{y}" width="{w}" height="{h}" rx="6"/>' + _text(
        x + 8, y + 15, label, f"{cls}-label"
    )


def _text(x: float, y: float, text: str, cls: str) -> str:
    return f'<text class="{cls}" x="{x}" y="{y}">{escape(text)}</text>'


def _gpu(x: float, y: float, gpu: GpuView) -> str:
    failed = gpu.health == "Failed"
    who = ", ".join(f"{s.tenant}/{s.workload}" for s in gpu.shares) or "free"
    util = "?" if gpu.utilization is None else f"{gpu.utilization:.0f}%"
    tip = f"GPU {gpu.index} · {gpu.model} · {gpu.health} · utilisation {util} · {who}"
    cls = "gpu" + (" failed" if failed else "") + (" degraded" if gpu.health == "Degraded" else "")
    cls += " focus" if any(s.focus for s in gpu.shares) else ""
    out = [
        f'<g class="{cls}" data-gpu="{gpu.index}" data-health="{escape(gpu.health)}">',
        f"<title>{escape(tip)}</title>",
        f'<rect class="gpu-box" x="{x}" y="{y}" width="{GPU_W}" height="{GPU_H}" rx="4"/>',
    ]
    # Shares: MIG slots as columns of the slot grid, fractions and whole GPUs as widths.
    area_y, area_h = y + 22, GPU_H - 40
    if any(s.slots for s in gpu.shares):
        slot_w = (GPU_W - 8) / MIG_SLICES
        for i in range(MIG_SLICES):
            out.append(
                f'<rect class="mig-slot" x="{x + 4 + i * slot_w:.1f}" y="{area_y}" '
                f'width="{slot_w - 1:.1f}" height="{area_h}"/>'
            )
    offset = 0.0
    for share in gpu.shares:
        colour = OTHER if share.tenant == "other" else tenant_colour(share.tenant)
        if share.slots:
            slot_w = (GPU_W - 8) / MIG_SLICES
            sx, n = x + 4 + share.slots[0] * slot_w, share.slots[1] - share.slots[0] + 1
            w = n * slot_w - 1
        else:
            w = (GPU_W - 8) * share.milli / MILLI
            sx = x + 4 + offset
            offset += w
        out.append(
            f'<rect class="share{" own" if share.focus else ""}" x="{sx:.1f}" y="{area_y}" '
            f'width="{max(w, 2):.1f}" height="{area_h}" fill="{colour}"/>'
        )
    out.append(_text(x + 5, y + 15, f"GPU {gpu.index}", "gpu-label"))
    if failed:
        out.append(_text(x + 8, y + 50, "FAILED", "failed-label"))
    if gpu.utilization is not None:
        w = (GPU_W - 8) * max(0.0, min(gpu.utilization, 100.0)) / 100
        out.append(
            f'<rect class="util-track" x="{x + 4}" y="{y + GPU_H - 12}" '
            f'width="{GPU_W - 8}" height="6"/>'
        )
        out.append(
            f'<rect class="util" x="{x + 4}" y="{y + GPU_H - 12}" width="{w:.1f}" height="6"/>'
        )
    out.append("</g>")
    return "".join(out)


def _nic(x: float, y: float, nic: Mapping[str, Any]) -> str:
    speed = f" {nic.get('speedGbps'):g}G" if nic.get("speedGbps") else ""
    kind = " RDMA" if nic.get("rdma") else ""
    return (
        f'<g class="nic"><title>{escape(str(nic.get("name")))}{escape(kind + speed)}</title>'
        f'<rect class="nic-box" x="{x}" y="{y}" width="{NIC_W}" height="{NIC_H}" rx="3"/>'
        + _text(x + 4, y + 17, f"{nic.get('name')}{speed}"[:12], "nic-label")
        + "</g>"
    )


# -- charts ------------------------------------------------------------------------------
def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    unit: str,
    limit: float | None = None,
    width: int = 560,
    height: int = 160,
) -> Markup:
    """A few lines on shared axes (x: time in seconds, y: value), a dashed limit line."""
    points = [p for line in series.values() for p in line]
    if not points:
        return Markup(f'<p class="muted">{escape(title)}: no samples yet</p>')
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    top = max([p[1] for p in points] + ([limit] if limit else [])) or 1.0
    left, bottom = 48, height - 22

    def sx(x: float) -> float:
        return left + (width - left - 10) * ((x - x0) / (x1 - x0) if x1 > x0 else 1.0)

    def sy(y: float) -> float:
        return bottom - (bottom - 12) * (y / (top * 1.1))

    parts = [
        f'<line class="axis" x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}"/>',
        f'<line class="axis" x1="{left}" y1="12" x2="{left}" y2="{bottom}"/>',
        _text(4, 20, (f"{top:,.0f}" if top >= 100 else f"{top:.3g}")[:9], "tick"),
        _text(4, bottom, "0", "tick"),
        _text(left + 6, 22, unit, "tick"),
    ]
    if limit:
        parts.append(
            f'<line class="limit" x1="{left}" y1="{sy(limit):.1f}" '
            f'x2="{width - 10}" y2="{sy(limit):.1f}"/>'
        )
    for i, (name, line) in enumerate(sorted(series.items())):
        colour = tenant_colour(name) if name else PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in line)
        parts.append(f'<polyline class="series" stroke="{colour}" points="{coords}"/>')
        x, y = line[-1]  # the latest value, also the only mark when there is one sample
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        parts.append(_text(left + 8 + 150 * i, height - 4, name, "legend"))
    return Markup(
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(parts)}</svg>"
    )
