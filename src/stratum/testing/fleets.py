"""Fleets of built-in machines for placement tests and benchmarks, without a store; and the
exact optimum of a small gang-placement instance (OR-Tools CP-SAT, a dev dependency)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stratum.core.profiles import get_builtin_profile
from stratum.scheduling.contracts import TIERS, FleetNode
from stratum.scheduling.devices import NodeLayout

_LAYOUTS: dict[str, NodeLayout] = {}


def fleet_node(
    name: str,
    profile: str,
    *,
    site: str = "fra-1",
    rack: str = "r1",
    country: str = "DE",
    jurisdictions: Sequence[str] = ("EU",),
    site_kind: str = "datacenter",
    provider: str = "own",
    power_kw: float | None = None,
    healthy: Sequence[bool] | None = None,
    tenants: frozenset[str] = frozenset(),
) -> FleetNode:
    """One node of a built-in profile, as `scheduling.fleet.fleet_nodes` would make it."""
    hw = get_builtin_profile(profile).spec
    layout = _LAYOUTS.get(profile)
    if layout is None:
        layout = _LAYOUTS[profile] = NodeLayout.from_spec(hw)
    cores = sum(s.cores * s.threads_per_core for s in hw.sockets) or 1
    domain = ""
    if hw.nvlink is not None and hw.gpus and hw.gpus[0].nvlink_domain:
        d = hw.gpus[0].nvlink_domain
        domain = f"{site}/{rack}/{d}" if hw.nvlink.scope == "rack" else f"{name}/{d}"
    return FleetNode(
        name=name,
        site=site,
        site_kind=site_kind,
        country=country,
        jurisdictions=frozenset(jurisdictions),
        provider=provider,
        rack=rack,
        cpu_milli=cores * 1000,
        memory_mib=int(hw.memory_gib * 1024),
        gpu_models=tuple(g.model for g in hw.gpus),
        gpu_memory_gib=tuple(g.memory_gib for g in hw.gpus),
        gpu_nvlink=tuple(bool(g.nvlink_domain) for g in hw.gpus),
        gpu_healthy=tuple(healthy) if healthy is not None else (True,) * len(hw.gpus),
        tenants=tenants,
        layout=layout,
        nvlink_domain=domain,
        site_power_kw=power_kw,
    )


def training_fleet(
    *,
    sites: int = 1,
    hgx_racks: int = 2,
    hgx_per_rack: int = 4,
    nvl72_racks: int = 1,
    trays_per_rack: int = 18,
) -> list[FleetNode]:
    """8-GPU NVSwitch servers in racks and GB200 NVL72 racks (18 trays of 4 GPUs, one
    NVLink domain per rack), at one or more sites."""
    nodes = []
    for s in range(sites):
        site = f"site-{s + 1}"
        for r in range(hgx_racks):
            for n in range(hgx_per_rack):
                nodes.append(
                    fleet_node(
                        f"{site}-hgx-r{r + 1}-{n + 1:02d}",
                        "hgx-h100-80gb",
                        site=site,
                        rack=f"hgx-r{r + 1}",
                    )
                )
        for r in range(nvl72_racks):
            for n in range(trays_per_rack):
                nodes.append(
                    fleet_node(
                        f"{site}-nvl-r{r + 1}-{n + 1:02d}",
                        "gb200-nvl72-tray",
                        site=site,
                        rack=f"nvl-r{r + 1}",
                    )
                )
    return nodes


@dataclass(frozen=True, slots=True)
class Gang:
    replicas: int
    gpus: int  # whole GPUs per replica, on one node
    across: str = "any"  # the loosest tier the clause allows
    models: tuple[str, ...] = ()


def tier_domain(node: FleetNode, tier: str) -> str:
    if tier == "nvlink-domain":
        return node.nvlink_domain
    if tier == "rack":
        return f"{node.site}/{node.rack}"
    if tier in ("rdma", "site"):
        return node.site
    return "fleet"


def exact_placed_gpus(
    nodes: Sequence[FleetNode], gangs: Sequence[Gang], *, seconds: float = 10.0
) -> tuple[int, bool]:
    """The most GPUs any placement of a subset of `gangs` on the empty `nodes` binds, with
    every gang inside one domain of its clause's loosest tier, all or nothing, and whether
    CP-SAT proved it optimal within `seconds`."""
    # Typed loosely: the solver's API is camel- and snake-cased across 9.x releases.
    cp_model: Any = importlib.import_module("ortools.sat.python.cp_model")
    model = cp_model.CpModel()
    placed = [model.NewBoolVar(f"y{j}") for j in range(len(gangs))]
    load: dict[int, list[tuple[int, Any]]] = {i: [] for i in range(len(nodes))}
    for j, gang in enumerate(gangs):
        ok = [
            i
            for i, n in enumerate(nodes)
            if len(n.gpu_models) >= gang.gpus and (not gang.models or n.model in gang.models)
        ]
        # One replica has no other to be near: the across clause does not bind it.
        tiers = TIERS[: TIERS.index(gang.across if gang.replicas > 1 else "any") + 1]
        loosest = tiers[-1]
        domains: dict[str, list[int]] = {}
        for i in ok:
            label = tier_domain(nodes[i], loosest)
            if label:
                domains.setdefault(label, []).append(i)
        xs = {}
        for i in ok:
            xs[i] = model.NewIntVar(
                0, min(gang.replicas, len(nodes[i].gpu_models) // gang.gpus), f"x{j}_{i}"
            )
            load[i].append((gang.gpus, xs[i]))
        model.Add(sum(xs.values()) == gang.replicas * placed[j])
        chosen = [model.NewBoolVar(f"z{j}_{d}") for d in domains]
        model.Add(sum(chosen) == placed[j])
        for z, members in zip(chosen, domains.values(), strict=True):
            for i in members:
                model.Add(xs[i] <= gang.replicas * z)
        for i in ok:
            if not any(i in m for m in domains.values()):
                model.Add(xs[i] == 0)
    for i, terms in load.items():
        if terms:
            model.Add(sum(k * x for k, x in terms) <= len(nodes[i].gpu_models))
    model.Maximize(sum(g.replicas * g.gpus * y for g, y in zip(gangs, placed, strict=True)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 1
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return 0, False
    return round(solver.ObjectiveValue()), status == cp_model.OPTIMAL
