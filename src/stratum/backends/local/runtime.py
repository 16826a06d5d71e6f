"""LocalRuntime: run the replicas a Placement binds to a node of this host, each under its
own supervisor (supervisor.py), and report what runs, what it got, and how the host is.

The API the local backend (backend.py) and `stratum agent` (on remote hosts) both call:

    runtime = LocalRuntime(state_dir, clock)
    runtime.launch(spec, node)      start, or adopt (same uid and attempt: never a second copy)
    runtime.stop(key)               SIGTERM to each replica's process group, SIGKILL after grace
    runtime.observe_runs()          -> tuple[RunObservation, ...]
    runtime.telemetry(node)         -> NodeObservation (host CPU and memory, GPUs via NVML)
    runtime.logs(key, replica, tail) / runtime.follow(key, replica, tail)

Everything lives in the state directory (rundir.py), so a runtime started later (a server
restarted, kill -9 included) adopts what the previous one launched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from stratum.backends.base import (
    HostCheck,
    LaunchSpec,
    NodeObservation,
    NoLogs,
    ReplicaRun,
    RunObservation,
    RunPhase,
)
from stratum.backends.local import rundir
from stratum.backends.local.pinning import HostFacts, plan
from stratum.backends.local.telemetry import HostSampler
from stratum.core.clock import Clock, clock_rate
from stratum.discovery import nvml

log = logging.getLogger("stratum.backends.local")

# What a replica's process inherits from the process that runs the runtime: enough to find
# programs and libraries, never the server's own secrets (tokens, keys, database URLs).
INHERITED_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "LD_LIBRARY_PATH",
    "CUDA_HOME",
    "CUDA_MPS_PIPE_DIRECTORY",
    "CUDA_MPS_LOG_DIRECTORY",
)
# A supervisor that has not written its state this long after launch never started.
START_SECONDS = 15.0
# How long a stopped replica's directory (its output.log for `stratum logs`) is kept, and
# how often the runtime looks for ones past that.
RUN_RETENTION_SECONDS = 7 * 86400.0
PRUNE_EVERY_SECONDS = 600.0
TERMINAL: frozenset[str] = frozenset({"Succeeded", "Failed", "Lost"})


class LocalRuntime:
    def __init__(
        self,
        state_dir: Path,
        clock: Clock,
        *,
        cgroup_parent: str = "stratum",
        host: HostFacts | None = None,
        gpus: Callable[[], tuple[nvml.GpuReading, ...] | None] = nvml.read_gpu_telemetry,
        python: str = sys.executable,
        retention_seconds: float = RUN_RETENTION_SECONDS,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.retention_seconds = retention_seconds
        self._pruned_at: float | None = None
        self.clock = clock
        self.cgroup_parent = cgroup_parent
        self._host = host
        self._python = python
        self._sampler = HostSampler(gpus=gpus)
        self._lock = threading.RLock()

    @property
    def host(self) -> HostFacts:
        """Read at each launch (an MPS daemon may have started since), unless injected."""
        return self._host if self._host is not None else HostFacts.read()

    # -- launch ------------------------------------------------------------------------
    def launch(self, spec: LaunchSpec, node: str) -> None:
        """Start the replicas of `spec` bound to `node`; a replica already launched with this
        uid and attempt is adopted as it is (running or finished), never started twice.
        Older attempts of the same workload still running are stopped first."""
        with self._lock:
            uid = rundir.safe(spec.uid)
            for old in rundir.key_dirs(self.state_dir, spec.key):
                if (old.uid, old.attempt) != (uid, spec.attempt) and not old.stopped:
                    self._stop_dir(old)
            for replica in spec.replicas:
                if replica.node != node:
                    continue
                where = rundir.run_dir(
                    self.state_dir, spec.key, spec.uid, spec.attempt, replica.replica
                )
                if where.read(rundir.LAUNCH) is not None:
                    continue  # adopted: this very placement was launched already
                where.path.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._start(spec, replica.replica, node, where, plan(replica, self.host))

    def _start(
        self, spec: LaunchSpec, replica: int, node: str, where: rundir.RunDir, pin: dict[str, Any]
    ) -> None:
        env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        env.update(dict(spec.env))
        env.update(
            {
                "STRATUM_WORKLOAD": spec.key,
                "STRATUM_ATTEMPT": str(spec.attempt),
                "STRATUM_REPLICA": str(replica),
                "STRATUM_NODE": node,
            }
        )
        argv = [*spec.command, *spec.args]
        launch = {
            "key": spec.key,
            "uid": spec.uid,
            "attempt": spec.attempt,
            "replica": replica,
            "node": node,
            "argv": argv,
            "env": env,
            "workingDir": spec.working_dir,
            "restartPolicy": spec.restart_policy,
            "gracePeriodSeconds": spec.grace_period_seconds,
            "cgroupParent": self.cgroup_parent,
            "pin": pin,
            "launchedAt": self.clock.now().isoformat(),
            "launchedReal": rundir.wall(),
        }
        where.write(rundir.LAUNCH, launch)
        if not argv:
            what = f"image {spec.image!r}" if spec.image else "nothing"
            where.write(
                rundir.STATE,
                {
                    "phase": "Failed",
                    "exit_code": None,
                    "finished": rundir.wall(),
                    "message": f"the local runtime runs commands, not images: spec.run.command "
                    f"is empty ({what} to run)",
                },
            )
            return
        with (where.path / "supervisor.log").open("ab") as log:
            first = subprocess.Popen(
                [self._python, "-m", "stratum.backends.local.supervisor", str(where.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        # It forks the supervisor proper and exits at once; reaped off this thread, so a
        # controller pass does not wait for an interpreter to start (launch.json, written
        # first, is what makes the launch adopted from here on).
        threading.Thread(target=first.wait, name="stratum-launch", daemon=True).start()

    # -- stop --------------------------------------------------------------------------
    def stop(self, key: str) -> None:
        """Stop every replica of every attempt of `key`; a no-op when nothing runs."""
        with self._lock:
            for where in rundir.key_dirs(self.state_dir, key):
                if not where.stopped:
                    self._stop_dir(where)

    def _stop_dir(self, where: rundir.RunDir) -> None:
        (where.path / rundir.STOP).write_text(str(rundir.wall()))
        sup = where.read(rundir.SUPERVISOR) or {}
        if rundir.alive(sup.get("pid"), sup.get("start")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(sup["pid"]), signal.SIGTERM)  # it signals the group, then kills
            return
        # The supervisor is gone (killed itself): stop the orphaned process group here.
        state = where.read(rundir.STATE) or {}
        pid, start = state.get("pid"), state.get("pidStart")
        if pid and state.get("phase") in ("Running", "Starting") and rundir.alive(pid, start):
            launch = where.read(rundir.LAUNCH) or {}
            grace = float(launch.get("gracePeriodSeconds", 30.0))
            threading.Thread(
                target=_terminate_group, args=(int(pid), start, grace), daemon=True
            ).start()

    # -- prune -------------------------------------------------------------------------
    def prune(self, now: float | None = None) -> int:
        """Delete the directories of replicas stopped more than `retention_seconds` ago
        whose supervisor and process are gone (their logs with them), and the directories
        left empty; how many replicas went. Without it every run ever made stays on disk,
        and every observe pass walks them all."""
        now = rundir.wall() if now is None else now
        gone = 0
        with self._lock:
            for where in list(rundir.all_dirs(self.state_dir)):
                at = where.stopped_at()
                if at is None or now - at < self.retention_seconds or _still_running(where):
                    continue
                shutil.rmtree(where.path, ignore_errors=True)
                gone += 1
                parent = where.path.parent
                while parent != self.state_dir and parent.is_dir() and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
        return gone

    def _prune_now_and_then(self) -> None:
        at = time.monotonic()
        if self._pruned_at is None or at - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = at
            pruned = self.prune()
            if pruned:
                log.info("pruned %d stopped replica director(ies) past retention", pruned)

    # -- observe -----------------------------------------------------------------------
    def observe_runs(self) -> tuple[RunObservation, ...]:
        """Every workload with a replica not yet stopped, its latest attempt, as it is now."""
        self._prune_now_and_then()
        groups: dict[tuple[str, str, int], list[tuple[rundir.RunDir, dict[str, Any]]]] = {}
        launched: dict[tuple[str, str, int], float] = {}
        for where in rundir.all_dirs(self.state_dir):
            if where.stopped:
                continue
            launch = where.read(rundir.LAUNCH)
            if launch is None:
                continue
            group = (where.key, where.uid, where.attempt)
            groups.setdefault(group, []).append((where, launch))
            at = float(launch.get("launchedReal", 0.0))
            launched[group] = max(launched.get(group, at), at)
        latest: dict[str, tuple[str, str, int]] = {}
        for group in groups:
            best = latest.get(group[0])
            if best is None or launched[group] > launched[best]:
                latest[group[0]] = group
        return tuple(self._run(groups[latest[key]]) for key in sorted(latest))

    def _run(self, replicas: list[tuple[rundir.RunDir, dict[str, Any]]]) -> RunObservation:
        runs = [self._replica(where, launch) for where, launch in replicas]
        first = replicas[0][1]
        phase = _overall([r.phase for r in runs])
        if phase in ("Failed", "Lost"):
            bad = [r for r in runs if r.phase == phase]
            message = "; ".join(f"replica {r.replica} on {r.node}: {r.message}" for r in bad)
        elif phase == "Succeeded":
            message = "; ".join(f"replica {r.replica}: {r.message}" for r in runs)
        else:
            message = "; ".join(f"replica {r.replica}: {r.message}" for r in runs if r.message)
        started = [r.started_at for r in runs if r.started_at is not None]
        finished = [self._finished(where, launch) for where, launch in replicas]
        done = [f for f in finished if f is not None]
        return RunObservation(
            key=str(first["key"]),
            uid=str(first["uid"]),
            attempt=int(first["attempt"]),
            phase=phase,
            message=message,
            started_at=min(started) if started else None,
            finished_at=max(done) if phase in TERMINAL and done else None,
            replicas=tuple(sorted(runs, key=lambda r: r.replica)),
        )

    def _replica(self, where: rundir.RunDir, launch: dict[str, Any]) -> ReplicaRun:
        state = where.read(rundir.STATE)
        sup = where.read(rundir.SUPERVISOR) or {}
        supervised = rundir.alive(sup.get("pid"), sup.get("start"))
        node = str(launch.get("node", ""))
        if state is None:
            waited = rundir.wall() - float(launch.get("launchedReal", 0.0))
            if supervised or waited < START_SECONDS:
                return ReplicaRun(where.replica, node, "Starting", message="starting")
            return ReplicaRun(
                where.replica,
                node,
                "Lost",
                message=f"its supervisor never started (see supervisor.log in {where.path})",
            )
        phase: RunPhase = state.get("phase", "Starting")
        message = str(state.get("message") or "")
        pid = state.get("pid")
        if phase in ("Running", "Starting") and not supervised:
            if rundir.alive(pid, state.get("pidStart")):
                message = "its supervisor is gone; the process still runs"
            else:
                phase = "Lost"
                message = "its supervisor and process ended without recording an exit code"
        checks = tuple(
            HostCheck(str(c["clause"]), c["state"], str(c.get("message", "")))
            for c in state.get("checks") or ()
        )
        started = state.get("started")
        return ReplicaRun(
            replica=where.replica,
            node=node,
            phase=phase,
            exit_code=state.get("exit_code"),
            pid=int(pid) if pid else None,
            started_at=self._at(launch, float(started)) if started else None,
            restarts=int(state.get("restarts") or 0),
            message=message,
            checks=checks,
        )

    def _finished(self, where: rundir.RunDir, launch: dict[str, Any]) -> datetime | None:
        state = where.read(rundir.STATE) or {}
        finished = state.get("finished")
        return self._at(launch, float(finished)) if finished else None

    def _at(self, launch: dict[str, Any], real: float) -> datetime:
        """A moment the supervisor recorded (real time) on the runtime's clock, which may
        run faster than real time: launched at `launchedAt`, it has run `rate` times the
        real seconds since."""
        base = datetime.fromisoformat(str(launch["launchedAt"]))
        elapsed = max(0.0, real - float(launch.get("launchedReal", real)))
        return base + timedelta(seconds=elapsed * clock_rate(self.clock))

    # -- telemetry ---------------------------------------------------------------------
    def telemetry(self, node: str) -> NodeObservation:
        """This host now: CPU and memory from /proc, every GPU through NVML where present."""
        cpu, memory = self._sampler.host()
        gpus = self._sampler.gpus()
        return NodeObservation(
            name=node,
            reachable=True,
            gpus=gpus,
            power_w=round(sum(g.power_w for g in gpus), 1),
            cpu_utilization_pct=cpu,
            memory_used_gib=memory,
        )

    # -- logs --------------------------------------------------------------------------
    def logs(self, key: str, replica: int = 0, tail: int | None = None) -> str:
        where = self._latest(key, replica)
        try:
            text = (where.path / rundir.OUTPUT).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return _tail(text, tail)

    def follow(
        self, key: str, replica: int = 0, tail: int | None = None, poll_seconds: float = 0.2
    ) -> Iterator[str]:
        where = self._latest(key, replica)
        return _follow(where, tail, poll_seconds)

    def _latest(self, key: str, replica: int) -> rundir.RunDir:
        found = [
            (float((d.read(rundir.LAUNCH) or {}).get("launchedReal", 0.0)), d)
            for d in rundir.key_dirs(self.state_dir, key)
            if d.replica == replica
        ]
        if not found:
            any_replica = any(True for _ in rundir.key_dirs(self.state_dir, key))
            if any_replica:
                raise NoLogs(f"workload {key} has no replica {replica} on this host")
            raise NoLogs(f"workload {key} has not run on this host")
        return max(found, key=lambda item: (item[0], item[1].attempt))[1]


def _overall(phases: list[RunPhase]) -> RunPhase:
    order: tuple[RunPhase, ...] = ("Failed", "Lost", "Starting")
    for phase in order:
        if phase in phases and (phase != "Starting" or "Running" not in phases):
            return phase
    if all(p == "Succeeded" for p in phases):
        return "Succeeded"
    return "Running"


def _tail(text: str, tail: int | None) -> str:
    if tail is None:
        return text
    if tail <= 0:
        return ""
    lines = text.splitlines(keepends=True)
    return "".join(lines[-tail:])


def _follow(where: rundir.RunDir, tail: int | None, poll_seconds: float) -> Iterator[str]:
    path = where.path / rundir.OUTPUT
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    first = _tail(text, tail)
    if first:
        yield first
    offset = len(text.encode("utf-8", errors="replace"))
    while True:
        ended = _ended(where)
        try:
            with path.open("rb") as stream:
                stream.seek(offset)
                chunk = stream.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            yield chunk.decode("utf-8", errors="replace")
        elif ended:
            return
        else:
            yield ""  # nothing new: the reader may stop here (its client went away)
            time.sleep(poll_seconds)


def _ended(where: rundir.RunDir) -> bool:
    """No more output will come: the run finished, or nothing supervises it any longer."""
    state = where.read(rundir.STATE) or {}
    if state.get("phase") in TERMINAL:
        return True
    sup = where.read(rundir.SUPERVISOR) or {}
    return sup != {} and not rundir.alive(sup.get("pid"), sup.get("start"))


def _terminate_group(pgid: int, start: int | None, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and rundir.alive(pgid, start):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _still_running(where: rundir.RunDir) -> bool:
    """Its supervisor, or the process it ran, is still alive (a stop not yet finished)."""
    sup = where.read(rundir.SUPERVISOR) or {}
    state = where.read(rundir.STATE) or {}
    return rundir.alive(sup.get("pid"), sup.get("start")) or rundir.alive(
        state.get("pid"), state.get("pidStart")
    )
