"""AgentBackend: the server's side of `stratum agent`.

Launch and stop are no-ops here: what a host must run is already in the Placements naming
it, which its agent watches (routers/agents.py). What runs is what the agents report; a
report lands in memory (no store write per heartbeat: 1,000 hosts every 10 s must stay
cheap), and the NodeController turns it into Node status at its own cadence.

Liveness, in this clock's seconds (scaled by clock_rate, like every duration here):
a node unheard for `not_ready_after` is unreachable (NotReady); after `grace` more, its
runs are Lost, which turns their contracts Violated (and re-placed where onViolation:
replace). A node the server knows from the store but has not heard since it started
counts from the start, so a host that died during an outage is found too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from stratum.backends.agent.protocol import NodeReport, RunReport
from stratum.backends.base import (
    BackendContext,
    ClusterRequest,
    GpuObservation,
    InventoryNode,
    LaunchSpec,
    NodeObservation,
    Observation,
    ReplicaRun,
    RunObservation,
    RunPhase,
)
from stratum.core.clock import Clock, clock_rate

DEFAULT_HEARTBEAT_SECONDS = 10.0
MISSED_HEARTBEATS = 3  # unheard this many intervals: NotReady
DEFAULT_GRACE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Liveness:
    """Real seconds, as configured; the backend converts them to clock seconds."""

    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    not_ready_after_seconds: float = DEFAULT_HEARTBEAT_SECONDS * MISSED_HEARTBEATS
    grace_seconds: float = DEFAULT_GRACE_SECONDS

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Liveness:
        """From the backend's options, else $STRATUM_AGENT_HEARTBEAT_SECONDS and
        $STRATUM_AGENT_GRACE_SECONDS, else the defaults (10 s, 3 missed, 60 s)."""

        def number(name: str, env: str, default: float) -> float:
            raw = options.get(name) or os.environ.get(env)
            if raw is None:
                return default
            value = float(raw)
            if value <= 0:
                raise ValueError(f"{name}: expected a number > 0, got {raw!r}")
            return value

        beat = number("heartbeat-seconds", "STRATUM_AGENT_HEARTBEAT_SECONDS", 10.0)
        return cls(
            heartbeat_seconds=beat,
            not_ready_after_seconds=number(
                "not-ready-after-seconds",
                "STRATUM_AGENT_NOT_READY_AFTER_SECONDS",
                beat * MISSED_HEARTBEATS,
            ),
            grace_seconds=number("grace-seconds", "STRATUM_AGENT_GRACE_SECONDS", 60.0),
        )


@dataclass(slots=True)
class _Host:
    name: str
    cluster: str
    heard_at: datetime  # the last report, or when this server began to expect one
    report: NodeReport | None = None
    # Runs seen on this node, kept past a missing report so that a Lost one can be named.
    runs: dict[str, RunReport] = field(default_factory=dict)


class AgentBackend:
    name = "agent"

    def __init__(self, *, clock: Clock, liveness: Liveness | None = None) -> None:
        self.clock = clock
        self.liveness = liveness or Liveness()
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        # key -> (uid, attempt) last launched: reports of an older attempt (a copy cut off
        # on a lost node) say nothing about the one placed since.
        self._launched: dict[str, tuple[str, int]] = {}

    # -- liveness in this clock's seconds ----------------------------------------------
    def _clock_seconds(self, real: float) -> float:
        return real * clock_rate(self.clock)

    # -- what agents tell the server ---------------------------------------------------
    def expect(self, nodes: Iterable[tuple[str, str]]) -> None:
        """Nodes (name, cluster) the store holds for agent clusters: unheard from now on
        until their agent reports (the server has just started)."""
        now = self.clock.now()
        with self._lock:
            for name, cluster in nodes:
                self._hosts.setdefault(name, _Host(name=name, cluster=cluster, heard_at=now))

    def joined(self, node: str, cluster: str) -> None:
        with self._lock:
            host = self._hosts.get(node)
            if host is None or host.cluster != cluster:
                self._hosts[node] = _Host(name=node, cluster=cluster, heard_at=self.clock.now())
            else:
                host.heard_at = self.clock.now()

    def record(self, report: NodeReport, *, cluster: str) -> None:
        """A validated heartbeat from `report.node`'s own agent."""
        now = self.clock.now()
        with self._lock:
            host = self._hosts.get(report.node)
            if host is None:
                host = self._hosts[report.node] = _Host(report.node, cluster, now)
            host.heard_at, host.report = now, report
            host.runs = {r.key: r for r in report.runs}

    def cluster_of(self, node: str) -> str | None:
        """The cluster of a node this backend knows (joined, reported, or expected)."""
        with self._lock:
            host = self._hosts.get(node)
            return None if host is None else host.cluster

    def forget_node(self, node: str) -> None:
        with self._lock:
            self._hosts.pop(node, None)

    # -- Backend -----------------------------------------------------------------------
    def inventory(self, cluster: ClusterRequest) -> list[InventoryNode]:
        # Hosts join by themselves (stratum agent); a Cluster's pools make no nodes here.
        return []

    def forget_cluster(self, cluster: str) -> None:
        with self._lock:
            for name in [n for n, h in self._hosts.items() if h.cluster == cluster]:
                del self._hosts[name]

    def launch(self, spec: LaunchSpec) -> None:
        """Nothing to send: the Placement is the desired state, and its agents watch it.
        Remembered only to tell the current attempt's reports from an older one's."""
        with self._lock:
            self._launched[spec.key] = (spec.uid, spec.attempt)

    def stop(self, key: str) -> None:
        """Nothing to send: a released Placement tells its agents to stop."""

    def observe(self) -> Observation:
        now = self.clock.now()
        not_ready = self._clock_seconds(self.liveness.not_ready_after_seconds)
        lost_after = not_ready + self._clock_seconds(self.liveness.grace_seconds)
        nodes: list[NodeObservation] = []
        by_key: dict[str, list[tuple[str, RunReport, bool]]] = {}
        with self._lock:
            hosts = list(self._hosts.values())
        for host in hosts:
            silent = (now - host.heard_at).total_seconds()
            reachable = silent < not_ready
            lost = silent >= lost_after
            nodes.append(_node(host, reachable))
            for key, run in host.runs.items():
                if reachable or lost:
                    by_key.setdefault(key, []).append((host.name, run, lost))
        with self._lock:
            launched = dict(self._launched)
        runs = tuple(
            _run(key, parts, launched.get(key))
            for key, parts in sorted(by_key.items())
            if key not in launched
            or any((run.uid, run.attempt) == launched[key] for _, run, _ in parts)
        )
        return Observation(at=now, nodes=tuple(nodes), runs=runs)


def _node(host: _Host, reachable: bool) -> NodeObservation:
    report = host.report
    if report is None:
        return NodeObservation(name=host.name, reachable=reachable, gpus=(), power_w=0.0)
    gpus = tuple(
        GpuObservation(
            index=g.index,
            health=g.health if reachable else "Unknown",
            utilization_pct=g.utilization_pct,
            memory_used_gib=g.memory_used_gib,
            power_w=g.power_w,
            temperature_c=g.temperature_c,
            ecc_errors=g.ecc_errors,
            nvlink_degraded=g.nvlink_degraded,
        )
        for g in report.gpus
    )
    return NodeObservation(
        name=host.name,
        reachable=reachable,
        gpus=gpus,
        power_w=report.power_w,
        cpu_utilization_pct=report.cpu_utilization_pct,
        memory_used_gib=report.memory_used_gib,
    )


_WORST: tuple[RunPhase, ...] = ("Lost", "Failed", "Starting", "Running", "Succeeded")


def _run(
    key: str, parts: list[tuple[str, RunReport, bool]], launched: tuple[str, int] | None
) -> RunObservation:
    """One workload's run from the reports of every node that holds a replica of it: the
    newest attempt wins; then the worst phase of its nodes (a gang is as well as its
    weakest member); a node silent past the grace period makes it Lost."""
    attempt = launched or max((run.uid, run.attempt) for _, run, _ in parts)
    parts = [p for p in parts if (p[1].uid, p[1].attempt) == attempt]
    lost_nodes = sorted(node for node, _, lost in parts if lost)
    phases: list[RunPhase] = [run.phase for _, run, lost in parts if not lost]
    if lost_nodes:
        phase: RunPhase = "Lost"
        message = f"node {', '.join(lost_nodes)} stopped answering"
    else:
        phase = min(phases, key=_WORST.index)
        message = "; ".join(run.message for _, run, _ in parts if run.message)[:2000]
    starts = [run.started_at for _, run, _ in parts if run.started_at is not None]
    ends = [run.finished_at for _, run, _ in parts if run.finished_at is not None]
    replicas = tuple(
        ReplicaRun(
            replica=r.replica,
            node=node,
            phase=r.phase,
            exit_code=r.exit_code,
            pid=r.pid,
            started_at=r.started_at,
            restarts=r.restarts,
            message=r.message,
        )
        for node, run, _ in parts
        for r in run.replicas
    )
    return RunObservation(
        key=key,
        uid=attempt[0],
        attempt=attempt[1],
        phase=phase,
        message=message,
        started_at=min(starts) if starts else None,
        finished_at=max(ends) if phase in ("Succeeded", "Failed") and ends else None,
        replicas=tuple(sorted(replicas, key=lambda r: r.replica)),
    )


def create(context: BackendContext) -> AgentBackend:
    """The registry's factory (backends/registry.py)."""
    return AgentBackend(clock=context.clock, liveness=Liveness.from_options(context.options))
