"""The fleet as placement sees it, made from API objects: nodes with their site's law and
hardware, and the devices live placements hold. Pure: callers read the objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stratum.api.v1alpha1 import HardwareProfile, Node, Placement, Site
from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.core.lifecycle import HOLDING
from stratum.scheduling.contracts import FleetNode, Held
from stratum.scheduling.devices import NodeLayout, parse_cpus
from stratum.scheduling.request import MILLI

# Placements in these phases hold their devices (core/lifecycle.py derives them).
HOLDING_PHASES = HOLDING


def node_hardware(
    node: Node, profiles: Mapping[str, HardwareProfile]
) -> HardwareProfileSpec | None:
    if node.spec.hardware is not None:
        return node.spec.hardware
    profile = profiles.get(node.spec.profile or "")
    return profile.spec if profile else None


def fleet_nodes(
    nodes: Iterable[Node],
    sites: Mapping[str, Site],
    profiles: Mapping[str, HardwareProfile],
    tenants_on: Mapping[str, frozenset[str]] | None = None,
) -> list[FleetNode]:
    """Every node whose site and hardware are known, with health from its status."""
    fleet = []
    layouts: dict[int, NodeLayout] = {}  # one per profile object: nodes share it
    for node in nodes:
        hw = node_hardware(node, profiles)
        site = sites.get(node.spec.site)
        if hw is None or site is None:
            continue
        layout = layouts.get(id(hw))
        if layout is None:
            layout = layouts[id(hw)] = NodeLayout.from_spec(hw)
        domains = {g.nvlink_domain for g in hw.gpus}
        domain = ""
        if len(domains) == 1 and hw.nvlink is not None and (only := domains.pop()):
            rack = node.spec.rack or ""
            domain = (
                f"{site.metadata.name}/{rack}/{only}"
                if hw.nvlink.scope == "rack" and rack
                else f"{node.metadata.name}/{only}"
            )
        health = {g.index: g.health for g in node.status.gpus}
        # A degraded device keeps what runs on it (a report-only contract may accept it)
        # but takes no new work.
        healthy = tuple(health.get(g.index, "Healthy") == "Healthy" for g in hw.gpus)
        cores = sum(s.cores * s.threads_per_core for s in hw.sockets) or 1
        memory = hw.memory_gib or sum(n.memory_gib for s in hw.sockets for n in s.numa_nodes)
        ready = node.status.phase == "Ready"  # never place on a node nobody has observed
        fleet.append(
            FleetNode(
                name=node.metadata.name,
                site=site.metadata.name,
                site_kind=site.spec.kind,
                country=site.spec.country,
                jurisdictions=frozenset(site.spec.jurisdictions),
                provider=site.spec.provider,
                rack=node.spec.rack or "",
                cpu_milli=cores * 1000,
                memory_mib=int(memory * 1024),
                gpu_models=tuple(g.model for g in hw.gpus),
                gpu_memory_gib=tuple(g.memory_gib for g in hw.gpus),
                gpu_nvlink=tuple(bool(g.nvlink_domain) for g in hw.gpus),
                gpu_healthy=healthy,
                schedulable=ready and not node.spec.unschedulable,
                tenants=(tenants_on or {}).get(node.metadata.name, frozenset()),
                layout=layout,
                nvlink_domain=domain,
                site_power_kw=site.spec.power_budget_kw,
            )
        )
    return fleet


def held_devices(placements: Iterable[Placement]) -> tuple[list[Held], dict[str, frozenset[str]]]:
    """Devices held by live placements, and which tenants hold work on each node."""
    held: list[Held] = []
    tenants: dict[str, set[str]] = {}
    for p in placements:
        if p.status.phase not in HOLDING_PHASES:
            continue
        # A dedicated-node contract's Placement says so; one bound before the field existed
        # said it only in its evidence.
        dedicated = p.spec.dedicated or any(
            e.clause == "isolation" and e.holds for e in p.spec.evidence
        )
        owner = (p.metadata.namespace or "") if dedicated else ""
        for r in p.spec.replicas:
            held.append(
                Held(
                    node=r.node,
                    gpus=tuple(r.gpus),
                    milli=r.gpu_milli or MILLI,
                    cpu_milli=r.cpu_milli,
                    memory_mib=r.memory_mib,
                    mig_instance=r.mig_instance,
                    cpu_set=parse_cpus(r.cpu_set),
                    numa_node=r.numa_node,
                    dedicated_for=owner,
                )
            )
            tenants.setdefault(r.node, set()).add(p.metadata.namespace or "")
    return held, {k: frozenset(v) for k, v in tenants.items()}
