"""NodeController: what the backends observe becomes each Node's status (health, telemetry)
and each Site's power draw. Writes only when something a person would notice changed, or
when the telemetry is older than `telemetry_seconds`; on a large fleet telemetry-only writes
are spread so that at most TELEMETRY_WRITES_PER_SECOND nodes a second are written for it
(as the kubelet reports an unchanged status rarely: the live figures are in the metrics)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stratum.api.v1alpha1 import Node
from stratum.backends.base import NodeObservation, Observation
from stratum.core.clock import Clock, clock_rate
from stratum.core.demand import held_by_gpu
from stratum.core.errors import Conflict, NotFound
from stratum.reconcile.events import record_event
from stratum.reconcile.world import World, key_of, wire
from stratum.scheduling.fleet import HOLDING_PHASES
from stratum.store.objects import ObjectStore

# Telemetry-only Node status writes a second, fleet-wide (real time): 1,000 agents at a 10 s
# heartbeat would otherwise mean 100 writes a second, each waking the controllers.
TELEMETRY_WRITES_PER_SECOND = 20.0


class NodeController:
    def __init__(
        self, store: ObjectStore, clock: Clock, *, telemetry_seconds: float = 10.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.telemetry_seconds = telemetry_seconds
        self._rate = clock_rate(clock)
        self._last_write: dict[str, datetime] = {}

    def _telemetry_interval(self, nodes: int) -> float:
        """Clock seconds between telemetry-only writes of one node."""
        return max(self.telemetry_seconds, nodes / TELEMETRY_WRITES_PER_SECOND * self._rate)

    def reconcile(self, world: World, observations: list[Observation]) -> None:
        seen = {n.name: n for obs in observations for n in obs.nodes}
        allocations = _allocations(world)
        now = self.clock.now()
        interval = self._telemetry_interval(len(world.nodes))
        updates: list[tuple[Node, dict[str, object], list[tuple[str, str, bool]]]] = []
        for node in world.nodes.values():
            obs = seen.get(node.metadata.name)
            if obs is None:
                continue
            status, events = _status(node, obs, now, allocations.get(node.metadata.name, []))
            old = wire(node)["status"]
            changed = _essence(old) != _essence(status)
            stale = (
                now
                - self._last_write.get(node.metadata.name, datetime.min.replace(tzinfo=now.tzinfo))
            ).total_seconds() >= interval
            if changed or stale:
                updates.append((node, status, events))
        for chunk in _chunks(updates, 100):
            written: list[Node] = []
            try:
                with self.store.write() as tx:
                    for node, status, events in chunk:
                        body = wire(node)
                        body["status"] = status
                        written.append(Node.model_validate(tx.replace(body, status_only=True)))
                        for reason, message, warning in events:
                            record_event(
                                tx,
                                node,
                                reason=reason,
                                message=message,
                                at=now,
                                type="Warning" if warning else "Normal",
                            )
            except (Conflict, NotFound):
                continue  # a concurrent change: the next pass reads it and tries again
            # Committed: later controllers in this pass see the new status. The World's
            # objects are replaced, never changed in place (they may be shared between
            # passes, reconcile/world.py ModelCache).
            for node in written:
                world.nodes[key_of(node)] = node
                self._last_write[node.metadata.name] = now
        self._site_power(world, observations, now)

    def _site_power(self, world: World, observations: list[Observation], now: datetime) -> None:
        draw: dict[str, float] = {}
        for obs in observations:
            for site_name, site_kw in obs.site_power_kw.items():
                draw[site_name] = draw.get(site_name, 0.0) + site_kw
        counts: dict[str, tuple[int, int]] = {}
        for member in world.nodes.values():
            n, g = counts.get(member.spec.site, (0, 0))
            counts[member.spec.site] = (n + 1, g + len(member.status.gpus))
        for name, site in world.sites.items():
            nodes, gpus = counts.get(name, (0, 0))
            kw = round(draw.get(name, 0.0), 1)
            s = site.status
            if (s.nodes, s.gpus) == (nodes, gpus) and abs(s.power_draw_kw - kw) < 0.5:
                continue
            body = wire(site)
            body["status"].update({"nodes": nodes, "gpus": gpus, "powerDrawKW": kw})
            try:
                with self.store.write() as tx:
                    tx.replace(body, status_only=True)
            except (Conflict, NotFound):
                continue


def _allocations(world: World) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for p in world.placements.values():
        if p.status.phase not in HOLDING_PHASES:
            continue
        for r in p.spec.replicas:
            entry: dict[str, object] = {
                "workload": p.spec.workload,
                "namespace": p.metadata.namespace or "",
                "replica": r.replica,
                "gpus": list(r.gpus),
            }
            if r.gpu_milli:
                entry["gpuMilli"] = r.gpu_milli
            if r.mig_instance:
                entry["migInstance"] = r.mig_instance
            out.setdefault(r.node, []).append(entry)
    return out


def _status(
    node: Node, obs: NodeObservation, now: datetime, allocations: list[dict[str, object]]
) -> tuple[dict[str, object], list[tuple[str, str, bool]]]:
    phase = "Ready" if obs.reachable else "NotReady"
    events: list[tuple[str, str, bool]] = []
    if node.status.phase and node.status.phase != phase:
        events.append(
            (
                "NodeReady" if phase == "Ready" else "NodeNotReady",
                f"node {node.metadata.name} is {phase}",
                phase != "Ready",
            )
        )
    before = {g.index: g.health for g in node.status.gpus}
    held = held_by_gpu(allocations)
    gpus = []
    for g in obs.gpus:
        if before.get(g.index, "Healthy") != g.health and g.health in ("Failed", "Degraded"):
            events.append(
                (
                    f"Gpu{g.health}",
                    f"GPU {g.index} is {g.health}"
                    + (" (NVLink degraded)" if g.nvlink_degraded else ""),
                    True,
                )
            )
        gpu: dict[str, object] = {
            "index": g.index,
            "health": g.health,
            "utilizationPct": g.utilization_pct,
            "memoryUsedGiB": g.memory_used_gib,
            "powerW": g.power_w,
            "temperatureC": g.temperature_c,
            "allocatedMilli": held.get(g.index, 0),
        }
        if g.ecc_errors:
            gpu["eccErrors"] = g.ecc_errors
        gpus.append(gpu)
    conditions = [
        {
            "type": "Ready",
            "status": "True" if obs.reachable else "False",
            "reason": "Heartbeat" if obs.reachable else "Unreachable",
            "message": "" if obs.reachable else "the backend cannot reach this node",
        }
    ]
    if obs.power_capped:
        conditions.append(
            {
                "type": "PowerCapped",
                "status": "True",
                "reason": "SitePowerCap",
                "message": "the site's power cap throttles this node's GPUs",
            }
        )
    status = {
        "phase": phase,
        "gpus": gpus,
        "cpuUtilizationPct": obs.cpu_utilization_pct,
        "memoryUsedGiB": obs.memory_used_gib,
        "conditions": conditions,
        "allocations": allocations,
        "lastHeartbeat": now.isoformat().replace("+00:00", "Z")
        if obs.reachable
        else (
            node.status.last_heartbeat.isoformat().replace("+00:00", "Z")
            if node.status.last_heartbeat
            else None
        ),
    }
    return {k: v for k, v in status.items() if v is not None}, events


def _essence(status: dict[str, Any]) -> object:
    """What counts as a change worth a write: phase, health per GPU, conditions, allocations."""
    return (
        status.get("phase"),
        [(g.get("index"), g.get("health")) for g in status.get("gpus") or []],
        [(c.get("type"), c.get("status")) for c in status.get("conditions") or []],
        status.get("allocations") or [],
    )


def _chunks(
    items: list[tuple[Node, dict[str, object], list[tuple[str, str, bool]]]], size: int
) -> list[list[tuple[Node, dict[str, object], list[tuple[str, str, bool]]]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
