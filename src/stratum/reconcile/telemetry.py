"""What the controllers tell Prometheus about the fleet: each pass turns one consistent read
of the world and the backends' observations into the fleet gauges, and accrues tenants'
GPU time and cost from the placements that ran since the pass before."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stratum.api.v1alpha1 import HardwareProfile, Node, Placement, Tenant, Workload
from stratum.backends.base import NodeObservation, Observation
from stratum.core.demand import bound_milli
from stratum.core.governance import gpu_hour_price
from stratum.observability.metrics import FleetGauges, Metrics, priority_band
from stratum.reconcile.world import World
from stratum.scheduling.fleet import HOLDING_PHASES, node_hardware
from stratum.scheduling.request import MILLI

GIB = 1024**3
Samples = dict[tuple[str, ...], float]


@dataclass(frozen=True, slots=True)
class GpuUse:
    """GPUs one running placement holds at one site, and their price per hour."""

    tenant: str
    gpus: float
    price_per_hour: float
    currency: str


def _gpus(node: Node, profiles: dict[str, HardwareProfile]) -> dict[int, tuple[str, float | None]]:
    """Per GPU index, its model and rated board power (W) as the node's profile states."""
    hw = node_hardware(node, profiles)
    return {g.index: (g.model, g.power_w) for g in hw.gpus} if hw else {}


def _price(pricing: dict[str, Any] | None, model: str, watts: float | None) -> tuple[float, str]:
    if pricing is None:
        return 0.0, "EUR"
    return gpu_hour_price(pricing, model, watts), str(pricing.get("currency") or "EUR")


def _held_milli(placements: Iterable[Placement]) -> dict[tuple[str, int], list[tuple[str, int]]]:
    """(node, gpu) -> [(tenant, milli)] for every live placement."""
    out: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for p in placements:
        if p.status.phase not in HOLDING_PHASES:
            continue
        for r in p.spec.replicas:
            for g in r.gpus:
                out[(r.node, g)].append(
                    (p.metadata.namespace or "", bound_milli(r.gpu_milli, r.mig_instance))
                )
    return out


def fleet_state(world: World, observations: list[Observation]) -> FleetGauges:
    """Every fleet gauge from the world and the observations. Pure."""
    seen: dict[str, NodeObservation] = {n.name: n for obs in observations for n in obs.nodes}
    held = _held_milli(world.placements.values())
    s: dict[str, Samples] = defaultdict(lambda: defaultdict(float))
    cpu_used: dict[str, int] = defaultdict(int)
    mem_used: dict[str, int] = defaultdict(int)
    for p in world.placements.values():
        if p.status.phase in HOLDING_PHASES:
            for r in p.spec.replicas:
                cpu_used[r.node] += r.cpu_milli
                mem_used[r.node] += r.memory_mib
    free_total = free_partial = 0
    for node in world.nodes.values():
        name, site = node.metadata.name, node.spec.site
        phase = node.status.phase or "Unknown"
        state = "Cordoned" if node.spec.unschedulable and phase == "Ready" else phase
        s["stratum_nodes"][(site, state)] += 1
        obs = seen.get(name)
        if obs is not None:
            s["stratum_node_power_watts"][(site, name)] = obs.power_w
        hw = node_hardware(node, world.profiles)
        if hw is None:
            continue
        cores = sum(k.cores * k.threads_per_core for k in hw.sockets) or 1
        memory_gib = hw.memory_gib or sum(n.memory_gib for k in hw.sockets for n in k.numa_nodes)
        exhausted = cpu_used[name] >= cores * 1000 or mem_used[name] >= memory_gib * 1024
        schedulable = phase == "Ready" and not node.spec.unschedulable
        health = {g.index: g.health for g in node.status.gpus}
        status_gpus = {g.index: g for g in node.status.gpus}
        observed = {g.index: g for g in obs.gpus} if obs is not None else {}
        for gpu in hw.gpus:
            i, model = gpu.index, gpu.model
            taken = min(sum(m for _, m in held.get((name, i), [])), MILLI)
            h = observed[i].health if i in observed else health.get(i, "Healthy")
            if phase != "Ready":
                gpu_state = "unreachable"
            elif h == "Failed":
                gpu_state = "failed"
            elif h in ("Degraded", "Unknown"):
                gpu_state = "degraded"
            else:
                gpu_state = "allocated" if taken else "idle"
            s["stratum_gpus"][(site, model, gpu_state)] += 1
            if gpu_state in ("idle", "allocated"):
                free = MILLI - taken
                if not schedulable or exhausted:
                    if not taken:
                        s["stratum_scheduler_stranded_gpus"][(site,)] += 1
                else:
                    free_total += free
                    if 0 < free < MILLI:
                        free_partial += free
            labels = (site, name, str(i), model)
            s["stratum_gpu_memory_total_bytes"][labels] = gpu.memory_gib * GIB
            o = observed.get(i)
            util = (
                o.utilization_pct
                if o
                else (status_gpus[i].utilization_pct if i in status_gpus else None)
            )
            mem = (
                o.memory_used_gib
                if o
                else (status_gpus[i].memory_used_gib if i in status_gpus else None)
            )
            power = o.power_w if o else (status_gpus[i].power_w if i in status_gpus else None)
            temp = (
                o.temperature_c
                if o
                else (status_gpus[i].temperature_c if i in status_gpus else None)
            )
            if util is not None:
                s["stratum_gpu_utilization_ratio"][labels] = util / 100
            if mem is not None:
                s["stratum_gpu_memory_used_bytes"][labels] = mem * GIB
            if power is not None:
                s["stratum_gpu_power_watts"][labels] = power
            if temp is not None:
                s["stratum_gpu_temperature_celsius"][labels] = temp
            for tenant, milli in held.get((name, i), []):
                s["stratum_tenant_allocated_gpus"][(tenant, site, model)] += milli / MILLI
    for site_name in world.sites:
        s["stratum_scheduler_stranded_gpus"][(site_name,)] += 0
    s["stratum_scheduler_fragmented_gpu_ratio"][()] = (
        free_partial / free_total if free_total else 0.0
    )
    draw: dict[str, float] = defaultdict(float)
    caps: dict[str, float] = {}
    for obs_ in observations:
        for site_name, kw in obs_.site_power_kw.items():
            draw[site_name] += kw
        caps.update(obs_.site_power_cap_kw)
    for site_name, site_obj in world.sites.items():
        s["stratum_site_power_draw_watts"][(site_name,)] = draw.get(site_name, 0.0) * 1000
        if site_obj.spec.power_budget_kw:
            s["stratum_site_power_budget_watts"][(site_name,)] = (
                site_obj.spec.power_budget_kw * 1000
            )
        if caps.get(site_name):
            s["stratum_site_power_cap_watts"][(site_name,)] = caps[site_name] * 1000
    for tenant_name, tenant_obj in world.tenants.items():
        _tenant_gauges(s, tenant_name, tenant_obj)
    for wl in world.workloads.values():
        tenant_name = wl.metadata.namespace or ""
        contract_phase = wl.status.phase or "Pending"
        s["stratum_contracts"][(tenant_name, contract_phase)] += 1
        if contract_phase == "Pending":
            band = priority_band(wl.spec.contract.lifecycle.priority)
            s["stratum_scheduler_pending_contracts"][(tenant_name, band)] += 1
    return FleetGauges({k: sorted(v.items()) for k, v in s.items()})


def _tenant_gauges(s: dict[str, Samples], name: str, tenant: Tenant) -> None:
    if tenant.spec.quota.gpus is not None:
        s["stratum_tenant_quota_gpus"][(name,)] = float(tenant.spec.quota.gpus)
    budget = tenant.spec.budget
    if budget is None:
        return
    usage = tenant.status.usage
    if budget.gpu_hours is not None:
        s["stratum_tenant_budget_used_ratio"][(name,)] = usage.gpu_hours / budget.gpu_hours
    elif budget.amount:
        s["stratum_tenant_budget_used_ratio"][(name,)] = usage.cost / budget.amount


def queue_depths(world: World) -> dict[str, int]:
    """Objects each controller has work for, as the pass begins."""
    clusters = sum(
        c.status.observed_generation != c.metadata.generation for c in world.clusters.values()
    )
    nodes = sum(n.status.phase is None for n in world.nodes.values())
    workloads = sum(
        w.status.phase in (None, "Pending", "Violated")
        or (
            w.status.phase in ("Bound", "Running")
            and w.status.observed_generation != w.metadata.generation
        )
        for w in world.workloads.values()
    )
    return {"clusters": clusters, "nodes": nodes, "workloads": workloads}


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the last pass saw of one workload's contract."""

    uid: str
    attempt: int
    last_violation: datetime | None
    running_at: datetime | None
    verdict: tuple[str | None, str]


def _seen(wl: Workload) -> _Seen:
    st = wl.status
    return _Seen(
        wl.metadata.uid or "",
        st.attempt,
        max((v.at for v in st.violations), default=None),
        st.running_at,
        (st.phase, st.message),
    )


class FleetTelemetry:
    """Feeds a Metrics instance from each pass.

    Contract events (bindings, violations, unschedulable verdicts, remediations) are counted
    from what changed in workload statuses between two passes, so that the controllers that
    make them need no metric code and a restarted server does not count history twice: its
    first pass only takes a baseline.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._last_at: datetime | None = None
        self._running: list[GpuUse] = []
        self._contracts: dict[str, _Seen] | None = None

    def update(self, world: World, observations: list[Observation], now: datetime) -> None:
        m = self.metrics
        m.known_tenants(world.tenants)
        self._count_contract_events(world)
        m.fleet.update(fleet_state(world, observations))
        for controller, depth in queue_depths(world).items():
            m.reconcile_queue_depth.labels(controller).set(depth)
        # GPU time accrues over the interval for what was running at its start.
        if self._last_at is not None:
            seconds = max((now - self._last_at).total_seconds(), 0.0)
            for use in self._running:
                m.tenant_gpu_seconds.labels(use.tenant).inc(use.gpus * seconds)
                if use.price_per_hour:
                    m.tenant_cost.labels(use.tenant, use.currency).inc(
                        use.gpus * seconds / 3600 * use.price_per_hour
                    )
        self._last_at = now
        self._running = running_uses(world)

    def _count_contract_events(self, world: World) -> None:
        m = self.metrics
        before = self._contracts
        now_seen = {key: _seen(wl) for key, wl in world.workloads.items()}
        self._contracts = now_seen
        if before is None:
            return
        for key, wl in world.workloads.items():
            tenant = wl.metadata.namespace or ""
            seen = now_seen[key]
            old = before.get(key)
            if old is not None and old.uid != seen.uid:
                old = None
            st = wl.status
            old_attempt = old.attempt if old else 0
            if seen.attempt > old_attempt:
                m.scheduler_placements.labels(tenant).inc(seen.attempt - old_attempt)
                if old_attempt == 0 and st.bound_at and wl.metadata.creation_timestamp:
                    m.contract_time_to_bind.observe(
                        max((st.bound_at - wl.metadata.creation_timestamp).total_seconds(), 0.0)
                    )
            since = old.last_violation if old else None
            for v in st.violations:
                if since is None or v.at > since:
                    m.contract_violations.labels(tenant, v.clause).inc()
            # Running again after a violation newer than the run before: remediated.
            violated = seen.last_violation
            if (
                st.running_at
                and st.last_remediation_seconds is not None
                and violated
                and violated <= st.running_at
                and (old is None or old.running_at is None or violated > old.running_at)
            ):
                m.contract_remediation.observe(st.last_remediation_seconds)
            if (
                st.phase in ("Pending", "Rejected")
                and st.reasons
                and (old is None or old.verdict != seen.verdict)
            ):
                for reason in st.reasons:
                    m.scheduler_failures.labels(reason.clause).inc()


def running_uses(world: World) -> list[GpuUse]:
    """GPUs held by every Running placement, with the price per hour at its site."""
    uses: list[GpuUse] = []
    pricing: dict[str, dict[str, Any] | None] = {}  # per site, in wire form
    for p in world.placements.values():
        if p.status.phase != "Running":
            continue
        for r in p.spec.replicas:
            node = world.nodes.get(r.node)
            if node is None or not r.gpus:
                continue
            site = node.spec.site
            if site not in pricing:
                found = world.sites.get(site)
                pricing[site] = found.spec.pricing.model_dump(by_alias=True) if found else None
            model, watts = _gpus(node, world.profiles).get(r.gpus[0], ("", None))
            price, currency = _price(pricing[site], model, watts)
            share = bound_milli(r.gpu_milli, r.mig_instance) / MILLI
            uses.append(GpuUse(p.metadata.namespace or "", len(r.gpus) * share, price, currency))
    return uses
