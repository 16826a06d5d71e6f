"""SimulatedBackend: nodes made from hardware profiles, runs with durations on a clock that
can be faster than real time, per-GPU telemetry and injected faults.

Deterministic for a given seed and sequence of calls, so that tests and plans repeat.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.backends.base import (
    BackendContext,
    ClusterRequest,
    DeviceHealth,
    GpuObservation,
    InventoryNode,
    LaunchSpec,
    NodeObservation,
    Observation,
    RunObservation,
    RunPhase,
)
from stratum.backends.simulated.faults import Fault, parse_fault
from stratum.core.clock import Clock

# Simulated run time by workload type when the workload does not say (None: until stopped).
DEFAULT_DURATION_S: dict[str, float | None] = {
    "training": 6 * 3600.0,
    "finetune": 2 * 3600.0,
    "batch": 1800.0,
    "inference": None,
    "agent": None,
}
DEFAULT_GPU_MAX_W = 300.0
BASE_P99_MS = 80.0


@dataclass(slots=True)
class _SimNode:
    inventory: InventoryNode
    gpu_count: int


@dataclass(slots=True)
class _SimRun:
    spec: LaunchSpec
    started_at: datetime
    phase: RunPhase = "Running"
    message: str = ""
    finished_at: datetime | None = None
    uses: set[tuple[str, int]] = field(default_factory=set)  # (node, gpu)


class SimulatedBackend:
    name = "simulated"

    def __init__(self, *, clock: Clock, seed: int = 0) -> None:
        # The process's one clock (its pace is the simulation's speed), never one of its own.
        self.clock: Clock = clock
        self.seed = seed
        self._lock = threading.RLock()
        self._nodes: dict[str, _SimNode] = {}
        self._clusters: dict[str, list[str]] = {}
        self._runs: dict[str, _SimRun] = {}
        self._faults: dict[str, Fault] = {}
        self._fault_ids = itertools.count(1)

    # -- inventory ---------------------------------------------------------------------
    def inventory(self, cluster: ClusterRequest) -> list[InventoryNode]:
        nodes: list[InventoryNode] = []
        for pool in cluster.pools:
            prefix = pool.rack_prefix or f"{cluster.name}-r"
            for i in range(pool.count):
                rack = f"{prefix}{i // pool.nodes_per_rack + 1}"
                nodes.append(
                    InventoryNode(
                        name=f"{cluster.name}-{pool.name}-{i + 1:03d}",
                        cluster=cluster.name,
                        site=cluster.site,
                        pool=pool.name,
                        profile=pool.profile,
                        rack=rack,
                        hardware=pool.hardware,
                    )
                )
        with self._lock:
            for old in self._clusters.get(cluster.name, []):
                self._nodes.pop(old, None)
            self._clusters[cluster.name] = [n.name for n in nodes]
            for n in nodes:
                self._nodes[n.name] = _SimNode(n, len(n.hardware.gpus))
        return nodes

    def forget_cluster(self, cluster: str) -> None:
        with self._lock:
            for name in self._clusters.pop(cluster, []):
                self._nodes.pop(name, None)

    # -- runs --------------------------------------------------------------------------
    def launch(self, spec: LaunchSpec) -> None:
        with self._lock:
            current = self._runs.get(spec.key)
            if current and current.spec.uid == spec.uid and current.spec.attempt == spec.attempt:
                return  # already running this very placement: adopt it
            missing = [r.node for r in spec.replicas if r.node not in self._nodes]
            run = _SimRun(spec=spec, started_at=self.clock.now())
            run.uses = {(r.node, g) for r in spec.replicas for g in r.gpus}
            if missing:
                run.phase, run.message = "Failed", f"unknown node(s) {', '.join(missing)}"
                run.finished_at = run.started_at
            self._runs[spec.key] = run

    def stop(self, key: str) -> None:
        with self._lock:
            self._runs.pop(key, None)

    # -- faults ------------------------------------------------------------------------
    def inject(self, data: object) -> Fault:
        """Add a fault; ValueError names what is wrong with the request."""
        with self._lock:
            fault = parse_fault(data, fault_id=f"f{next(self._fault_ids)}")
            if fault.node is not None and fault.node not in self._nodes:
                raise ValueError(f"node: {fault.node!r} is not a simulated node")
            if (
                fault.gpu is not None
                and fault.node is not None
                and fault.gpu >= self._nodes[fault.node].gpu_count
            ):
                raise ValueError(
                    f"gpu: node {fault.node} has "
                    f"{self._nodes[fault.node].gpu_count} GPUs, no index {fault.gpu}"
                )
            if fault.cluster is not None and fault.cluster not in self._clusters:
                raise ValueError(f"cluster: {fault.cluster!r} is not a simulated cluster")
            if fault.site is not None and not any(
                n.inventory.site == fault.site for n in self._nodes.values()
            ):
                raise ValueError(f"site: no simulated node is at site {fault.site!r}")
            self._faults[fault.id] = fault
            return fault

    def clear(self, fault_id: str | None = None) -> list[Fault]:
        with self._lock:
            if fault_id is None:
                cleared = list(self._faults.values())
                self._faults.clear()
                return cleared
            fault = self._faults.pop(fault_id, None)
            if fault is None:
                raise KeyError(fault_id)
            return [fault]

    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults.values())

    # -- observation -------------------------------------------------------------------
    def observe(self) -> Observation:
        with self._lock:
            now = self.clock.now()
            down = {f.node for f in self._faults.values() if f.kind == "node-down"}
            failed = {(f.node, f.gpu) for f in self._faults.values() if f.kind == "gpu-fail"}
            degraded = {(f.node, f.gpu) for f in self._faults.values() if f.kind == "link-degrade"}
            partitioned = {f.cluster for f in self._faults.values() if f.kind == "partition"}
            caps = {
                f.site: f.kw
                for f in self._faults.values()
                if f.kind == "power-cap" and f.site is not None and f.kw is not None
            }
            busy = self._busy_gpus()
            self._advance_runs(now, down, failed)
            site_draw: dict[str, float] = {}
            nodes = []
            for name, node in sorted(self._nodes.items()):
                inv = node.inventory
                reachable = name not in down and inv.cluster not in partitioned
                gpus = tuple(
                    self._gpu(
                        name, i, node.inventory.hardware, busy, failed, degraded, name in down
                    )
                    for i in range(node.gpu_count)
                )
                power = _node_base_w(inv.hardware) + sum(g.power_w for g in gpus)
                if name in down:
                    power = 0.0
                site_draw[inv.site] = site_draw.get(inv.site, 0.0) + power / 1000
                nodes.append(
                    NodeObservation(
                        name=name, reachable=reachable, gpus=gpus, power_w=round(power, 1)
                    )
                )
            capped_sites = {s for s, cap in caps.items() if site_draw.get(s, 0.0) > cap}
            if capped_sites:
                nodes = [
                    NodeObservation(n.name, n.reachable, n.gpus, n.power_w, True)
                    if self._nodes[n.name].inventory.site in capped_sites
                    else n
                    for n in nodes
                ]
            # Runs behind a partition go on, but nobody can see them from here.
            hidden = {n for n, node in self._nodes.items() if node.inventory.cluster in partitioned}
            runs = tuple(
                self._observe_run(r, degraded, capped_sites)
                for r in self._runs.values()
                if not any(x.node in hidden for x in r.spec.replicas)
            )
            return Observation(
                at=now,
                nodes=tuple(nodes),
                runs=runs,
                site_power_kw={s: round(v, 3) for s, v in site_draw.items()},
                site_power_cap_kw=caps,
            )

    def _busy_gpus(self) -> dict[tuple[str, int], tuple[str, int]]:
        """(node, gpu) -> (workload type, milli) for every running replica."""
        busy: dict[tuple[str, int], tuple[str, int]] = {}
        for run in self._runs.values():
            if run.phase != "Running":
                continue
            for r in run.spec.replicas:
                for g in r.gpus:
                    milli = r.gpu_milli or 1000
                    prev = busy.get((r.node, g), ("", 0))[1]
                    busy[(r.node, g)] = (run.spec.workload_type, min(1000, prev + milli))
        return busy

    def _advance_runs(
        self, now: datetime, down: set[str | None], failed: set[tuple[str | None, int | None]]
    ) -> None:
        for run in self._runs.values():
            if run.phase != "Running":
                continue
            lost_nodes = sorted({r.node for r in run.spec.replicas if r.node in down})
            broken = sorted(u for u in run.uses if u in failed)
            if lost_nodes:
                run.phase, run.finished_at = "Lost", now
                run.message = f"node {', '.join(lost_nodes)} stopped answering"
            elif broken:
                run.phase, run.finished_at = "Failed", now
                run.message = "GPU " + ", ".join(f"{g} on {n}" for n, g in broken) + " failed"
            else:
                duration = run.spec.duration_seconds
                if duration is None:
                    duration = DEFAULT_DURATION_S.get(run.spec.workload_type)
                if duration is not None and (now - run.started_at).total_seconds() >= duration:
                    run.phase, run.finished_at, run.message = "Succeeded", now, "exit code 0"

    def _gpu(
        self,
        node: str,
        index: int,
        hw: HardwareProfileSpec,
        busy: dict[tuple[str, int], tuple[str, int]],
        failed: set[tuple[str | None, int | None]],
        degraded: set[tuple[str | None, int | None]],
        node_down: bool,
    ) -> GpuObservation:
        spec = hw.gpus[index]
        max_w = spec.power_w or DEFAULT_GPU_MAX_W
        idle_w = 0.15 * max_w
        if node_down:
            return GpuObservation(index, "Unknown", 0.0, 0.0, 0.0, 0.0)
        if (node, index) in failed:
            return GpuObservation(index, "Failed", 0.0, 0.0, idle_w, 35.0, ecc_errors=48)
        jitter = _jitter(self.seed, node, index)
        kind, milli = busy.get((node, index), ("", 0))
        if milli:
            base = 0.9 if kind in ("training", "finetune") else 0.6
            util = min(100.0, 100 * base * milli / 1000 + 8 * jitter)
            mem = spec.memory_gib * min(0.95, 0.5 + 0.45 * milli / 1000)
        else:
            util, mem = 2 * jitter, 0.4
        power = idle_w + (max_w - idle_w) * util / 100
        health: DeviceHealth = "Degraded" if (node, index) in degraded else "Healthy"
        return GpuObservation(
            index,
            health,
            round(util, 1),
            round(mem, 1),
            round(power, 1),
            round(28 + 0.06 * power, 1),
            nvlink_degraded=(node, index) in degraded,
        )

    def _observe_run(
        self, run: _SimRun, degraded: set[tuple[str | None, int | None]], capped_sites: set[str]
    ) -> RunObservation:
        p99 = throughput = None
        if run.spec.workload_type == "inference" and run.phase == "Running":
            slow = 1.0
            if any(u in degraded for u in run.uses):
                slow *= 2.5
            if any(
                self._nodes[r.node].inventory.site in capped_sites
                for r in run.spec.replicas
                if r.node in self._nodes
            ):
                slow *= 3.0
            p99 = round(BASE_P99_MS * slow * (1 + 0.1 * _jitter(self.seed, run.spec.key, 0)), 1)
            throughput = round(60.0 * len(run.spec.replicas) / slow, 1)
        return RunObservation(
            key=run.spec.key,
            uid=run.spec.uid,
            attempt=run.spec.attempt,
            phase=run.phase,
            message=run.message,
            started_at=run.started_at,
            finished_at=run.finished_at,
            p99_latency_ms=p99,
            throughput_rps=throughput,
        )


def _node_base_w(hw: HardwareProfileSpec) -> float:
    gpu_max = sum((g.power_w or DEFAULT_GPU_MAX_W) for g in hw.gpus)
    if hw.power.idle_w:
        return max(hw.power.idle_w - 0.15 * gpu_max, 0.0)
    return 150.0 * max(len(hw.sockets), 1)


def _jitter(seed: int, key: str, index: int) -> float:
    """A stable number in [0, 1) per (seed, key, index): telemetry noise that repeats."""
    digest = hashlib.blake2b(f"{seed}:{key}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def create(context: BackendContext) -> SimulatedBackend:
    """The registry's factory (backends/registry.py)."""
    return SimulatedBackend(clock=context.clock, seed=context.seed)
