"""The agent's main loop: join, then three duties on their own threads.

- report: every heartbeat, the host's telemetry and every run as the runtime sees it.
  Reports are state, not events: the newest carries every run's phase and exit code, so an
  outage loses nothing; undelivered ones are counted and the newest is sent on reconnect.
- watch: the Placements naming this node (list, then watch; list again on 410 Gone, on
  reconnect, and every RELIST_SECONDS as a safety net).
- converge: start what is desired and not running; stop what runs and is no longer
  desired, but only from a desired state read since the last reconnect, so an outage
  never stops anything. A replica whose contract says onPartition: fence stops once its
  lease (the server's NotReady delay plus grace, less one heartbeat) has passed unheard:
  before the server may place it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from stratum.agent import state
from stratum.agent.link import Gone, Link, Refused
from stratum.agent.runtime import Runtime
from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.backends.agent.protocol import (
    DesiredRun,
    GpuReport,
    JoinRequest,
    NodeReport,
    ReplicaReport,
    RunReport,
    launch_from_wire,
)
from stratum.backends.base import RunObservation

log = logging.getLogger("stratum.agent")
T = TypeVar("T")
RELIST_SECONDS = 60.0


class AgentError(Exception):
    """Something the agent cannot go on without (no token that works, bad arguments)."""


@dataclass(frozen=True, slots=True)
class AgentSettings:
    server: str
    state_dir: Path
    hardware: HardwareProfileSpec
    node: str
    bootstrap_token: str | None = None
    cluster: str | None = None
    rack: str | None = None
    ca: Path | None = None
    # Until the server says otherwise (its answer to every join and report does).
    heartbeat_seconds: float = 10.0


@dataclass(slots=True)
class _Desired:
    runs: dict[str, DesiredRun] = field(default_factory=dict)
    fresh: bool = False  # read since the last (re)connection: safe to stop by
    resource_version: str | None = None


class Agent:
    def __init__(self, settings: AgentSettings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.node = settings.node
        self.link = Link(settings.server, ca=settings.ca)
        self.heartbeat = settings.heartbeat_seconds
        self.lease = 3 * settings.heartbeat_seconds + 60.0
        self._desired = _Desired()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.connected = False
        self.reconnects = 0  # a watch begun before the latest reconnect lists again
        self.last_ok = time.monotonic()
        self.undelivered = 0
        self.seq = 0
        self._fenced: set[tuple[str, str, int]] = set()
        self._threads: list[threading.Thread] = []

    # -- joining -----------------------------------------------------------------------
    def join(self) -> None:
        """Use the saved node token, or join with the bootstrap token; retried while the
        server cannot be reached, fatal when it refuses."""
        saved = state.load(self.settings.state_dir)
        delay = 0.5
        while not self._stop.is_set():
            try:
                if saved is not None and saved.node == self.node:
                    self.link.token = saved.token
                    if self._update_node():
                        return
                    saved = None  # refused: the token was revoked; join again
                self._join_with_bootstrap()
                return
            except (OSError, _Unreachable) as err:
                log.warning("server unreachable (%s); retrying in %.1fs", err, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _update_node(self) -> bool:
        """Register what discovery found on the Node, with the node's own token; False
        when the token is refused."""
        try:
            body = _call(lambda: self.link.get_node(self.node))
            hardware = self.settings.hardware.model_dump(mode="json", by_alias=True)
            if body["spec"].get("hardware") != hardware:
                body["spec"]["hardware"] = hardware
                _call(lambda: self.link.put_node(body))
        except Refused as err:
            if err.code in (401, 403, 404):
                log.warning("the saved node token no longer works: %s", err.message)
                return False
            raise AgentError(f"the server refused the node's update: {err}") from None
        return True

    def _join_with_bootstrap(self) -> None:
        bootstrap = self.settings.bootstrap_token
        if not bootstrap:
            raise AgentError(
                "no node token that works and no --token: give the Cluster's bootstrap token"
            )
        request = JoinRequest(
            node=self.node,
            cluster=self.settings.cluster,
            rack=self.settings.rack,
            hardware=self.settings.hardware,
        )
        try:
            answer = _call(lambda: self.link.join(bootstrap, request))
        except Refused as err:
            raise AgentError(f"the server refused the join: {err.message}") from None
        self.link.token = answer.token
        self._tune(answer.heartbeat_seconds, answer.not_ready_after_seconds, answer.grace_seconds)
        state.save(
            self.settings.state_dir, state.Identity(answer.node, answer.cluster, answer.token)
        )
        log.info("joined cluster %s as node %s", answer.cluster, answer.node)

    def _tune(self, heartbeat: float, not_ready_after: float, grace: float) -> None:
        self.heartbeat = heartbeat
        # Fence strictly before the server may place the run again (it counts from the
        # last report it received, which is before the agent's last answer).
        self.lease = max(heartbeat, not_ready_after + grace - heartbeat)

    # -- running -----------------------------------------------------------------------
    def start(self) -> None:
        self.join()
        for target, name in (
            (self._report_loop, "report"),
            (self._watch_loop, "watch"),
            (self._converge_loop, "converge"),
        ):
            thread = threading.Thread(target=target, name=f"agent-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the agent; never its runs (their supervisors outlive it)."""
        self._stop.set()
        self._wake.set()
        self.link.close()
        for thread in self._threads:
            thread.join(timeout=1)  # daemons: a watch blocked on a read ends with us

    def wait(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(1.0)

    # -- report ------------------------------------------------------------------------
    def _report_loop(self) -> None:
        while not self._stop.is_set():
            self.report_once()
            self._stop.wait(self.heartbeat)

    def report_once(self) -> None:
        report = self._report()
        try:
            answer = _call(lambda: self.link.report(report))
        except _Unreachable as err:
            self._lost(str(err))
            return
        except Refused as err:
            log.warning("report refused: %s", err)
            if err.code == 401:
                self._lost(err.message)
                self._rejoin()
            return
        self._tune(answer.heartbeat_seconds, answer.not_ready_after_seconds, answer.grace_seconds)
        if not self.connected:
            log.info("connected; %d reports were undelivered", self.undelivered)
            self.reconnects += 1
            self._wake.set()  # list again before anything is stopped
        self.connected, self.undelivered = True, 0
        self.last_ok = time.monotonic()

    def _rejoin(self) -> None:
        try:
            self._join_with_bootstrap()
        except (AgentError, _Unreachable) as err:
            log.error("cannot join again: %s", err)

    def _lost(self, why: str) -> None:
        if self.connected:
            log.warning("lost the server (%s): every run goes on; reports are buffered", why)
        self.connected = False
        self.undelivered += 1
        with self._lock:
            self._desired.fresh = False

    def _report(self) -> NodeReport:
        self.seq += 1
        host = self.runtime.telemetry(self.node)
        runs = [_run_report(r, self.node) for r in self.runtime.observe_runs()]
        return NodeReport(
            node=self.node,
            seq=self.seq,
            gpus=[
                GpuReport(
                    index=g.index,
                    health=g.health,
                    utilization_pct=min(100.0, max(0.0, g.utilization_pct)),
                    memory_used_gib=max(0.0, g.memory_used_gib),
                    power_w=max(0.0, g.power_w),
                    temperature_c=g.temperature_c,
                    ecc_errors=g.ecc_errors,
                    nvlink_degraded=g.nvlink_degraded,
                )
                for g in host.gpus
            ],
            cpu_utilization_pct=host.cpu_utilization_pct,
            memory_used_gib=host.memory_used_gib,
            power_w=max(0.0, host.power_w),
            runs=runs,
            buffered=self.undelivered,
        )

    # -- watch -------------------------------------------------------------------------
    def _watch_loop(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            if not self.connected:
                self._wake.wait(self.heartbeat)
                self._wake.clear()
                continue
            try:
                self.relist()
                delay = 0.5
                self._follow()
            except Gone:
                continue  # list again at once
            except (_Unreachable, Refused) as err:
                log.info("watch ended (%s); listing again in %.1fs", err, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def relist(self) -> None:
        runs, rv = _call(lambda: self.link.desired(self.node))
        with self._lock:
            self._desired = _Desired({r.key: r for r in runs}, fresh=True, resource_version=rv)
        self.converge()

    def _follow(self) -> None:
        started, generation = time.monotonic(), self.reconnects
        rv = self._desired.resource_version or "0"
        events = self.link.watch(self.node, rv, read_timeout=max(3 * self.heartbeat, 20.0))
        try:
            for kind, run, bookmark in _calls(events):
                if self._stop.is_set() or not self.connected or generation != self.reconnects:
                    return
                if run is not None:
                    log.debug(
                        "watch: %s %s active=%s attempt=%d", kind, run.key, run.active, run.attempt
                    )
                    with self._lock:
                        if kind == "DELETED":
                            self._desired.runs.pop(run.key, None)
                        else:
                            self._desired.runs[run.key] = run
                    self.converge()
                elif bookmark is not None:
                    self._desired.resource_version = bookmark
                if time.monotonic() - started > RELIST_SECONDS:
                    return
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    # -- converge ----------------------------------------------------------------------
    def _converge_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.converge()
            except Exception:  # a broken run must not stop the loop
                log.exception("converge failed")
            self._stop.wait(self.heartbeat)

    def converge(self) -> None:
        with self._lock:
            desired = dict(self._desired.runs)
            fresh = self._desired.fresh
            running = {r.key: r for r in self.runtime.observe_runs()}
            # Time alone decides: over a link that drops packets a report hangs until its
            # timeout and the agent still believes it is connected, while the server, which
            # has heard nothing either, may already place the replica again.
            partitioned = time.monotonic() - self.last_ok > self.lease
            for key, want in desired.items():
                ident = (key, want.uid, want.attempt)
                if partitioned and want.on_partition == "fence":
                    if key in running and ident not in self._fenced:
                        log.warning("%s: lease expired while partitioned: fenced", key)
                        self.runtime.stop(key)
                        self._fenced.add(ident)
                    continue
                if not fresh or not want.active or ident in self._fenced:
                    continue
                have = running.get(key)
                if have is None or (have.uid, have.attempt) != (want.uid, want.attempt):
                    log.info("%s: launching attempt %d", key, want.attempt)
                    self.runtime.launch(launch_from_wire(want.spec), self.node)
            if not fresh:
                return  # stop nothing on a stale view of what should run
            for key in running:
                want_run = desired.get(key)
                if want_run is None or not want_run.active:
                    log.info(
                        "%s: no longer placed here (%s): stopping it",
                        key,
                        "no Placement" if want_run is None else f"Placement {want_run.phase}",
                    )
                    self.runtime.stop(key)


class _Unreachable(Exception):
    """The server could not be reached (connection refused, timed out, TLS failure...)."""


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except httpx.HTTPError as err:
        raise _Unreachable(f"{type(err).__name__}: {err}") from None


def _calls(events: Iterator[T]) -> Iterator[T]:
    while True:
        try:
            item = next(events)
        except StopIteration:
            return
        except httpx.HTTPError as err:
            raise _Unreachable(f"{type(err).__name__}: {err}") from None
        yield item


def _run_report(run: RunObservation, node: str) -> RunReport:
    return RunReport(
        key=run.key,
        uid=run.uid,
        attempt=run.attempt,
        phase=run.phase,
        message=run.message[:2000],
        started_at=run.started_at,
        finished_at=run.finished_at,
        replicas=[
            ReplicaReport(
                replica=r.replica,
                phase=r.phase,
                pid=r.pid,
                exit_code=r.exit_code,
                restarts=r.restarts,
                started_at=r.started_at,
                message=r.message[:2000],
            )
            for r in run.replicas
            if r.node == node
        ],
    )
