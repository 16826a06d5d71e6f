"""The supervisor of one replica: `python -m stratum.backends.local.supervisor RUNDIR`.

Started by the runtime, it forks once more and leaves its session (so it outlives the
server that started it and is never its zombie), then runs the replica's process in a
process group of its own, pinned as launch.json says, reads back what the process got
(verify.py), and records everything in the run directory: its pid and start time, the
process's, each restart, the exit code. SIGTERM asks it to stop: SIGTERM to the process
group, SIGKILL after the grace period. Restart policy: Never, OnFailure, Always.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stratum.backends.local import cgroup, rundir
from stratum.backends.local.verify import verify

POLL_SECONDS = 0.05
MAX_RESTART_DELAY = 10.0


class Supervisor:
    def __init__(self, path: Path) -> None:
        self.path = path
        launch = rundir.read_json(path / rundir.LAUNCH)
        if launch is None:
            raise SystemExit(f"supervisor: no {rundir.LAUNCH} in {path}")
        self.launch: dict[str, Any] = launch
        self.pin: dict[str, Any] = launch["pin"]
        self.stopping = False
        self.state: dict[str, Any] = {"phase": "Starting", "restarts": 0, "message": ""}
        self.group: cgroup.Cgroup | None = None
        self.cgroup_reason = ""

    # -- records -----------------------------------------------------------------------
    def record(self, **changes: Any) -> None:
        self.state.update(changes)
        rundir.write_json(self.path / rundir.STATE, self.state)

    def _stop_asked(self, *_: object) -> None:
        self.stopping = True

    # -- the process -------------------------------------------------------------------
    def _spawn(self) -> subprocess.Popen[bytes]:
        launch, pin = self.launch, self.pin
        argv = [*pin.get("numactl", []), *launch["argv"]]
        env = {**launch["env"], **pin["env"]}
        cpus = pin.get("cpus")
        group = self.group

        def in_child() -> None:  # between fork and exec, in the child
            if group is not None:
                group.join()
            if cpus:
                os.sched_setaffinity(0, cpus)

        output = (self.path / rundir.OUTPUT).open("ab")
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=launch.get("workingDir") or None,
                start_new_session=True,  # its own process group: stop signals the group
                preexec_fn=in_child,
            )
        finally:
            output.close()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop_asked)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        rundir.write_json(
            self.path / rundir.SUPERVISOR,
            {"pid": os.getpid(), "start": rundir.process_start(os.getpid())},
        )
        name = self.path.relative_to(self.path.parents[3]).as_posix().replace("/", ".")
        self.group, self.cgroup_reason = cgroup.create(
            name,
            parent=self.launch.get("cgroupParent") or "stratum",
            cpus=self.pin.get("cpus"),
            numa_node=self.pin.get("numaNode"),
            memory_bytes=self.pin.get("memoryBytes"),
        )
        try:
            return self._loop()
        finally:
            if self.group is not None:
                self.group.remove()

    def _loop(self) -> int:
        policy = self.launch.get("restartPolicy") or "Never"
        restarts = 0
        while True:
            if self.stopping or (self.path / rundir.STOP).exists():
                self.record(phase="Failed", stopped=True, message="stopped before it started")
                return 0
            try:
                child = self._spawn()
            except OSError as err:
                self.record(
                    phase="Failed",
                    exit_code=127,
                    finished=rundir.wall(),
                    message=f"could not start {self.launch['argv'][0]!r}: {err.strerror or err}",
                )
                return 0
            self.record(
                phase="Running",
                pid=child.pid,
                pidStart=rundir.process_start(child.pid),
                started=self.state.get("started") or rundir.wall(),
                restarts=restarts,
                message="" if not restarts else self.state.get("message", ""),
            )
            self.record(checks=verify(child.pid, self.pin, self.group, self.cgroup_reason))
            code = self._wait(child)
            exit_code = code if code >= 0 else 128 - code
            how = f"exit code {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
            if self.stopping:
                self.record(
                    phase="Failed",
                    stopped=True,
                    exit_code=exit_code,
                    finished=rundir.wall(),
                    message=f"stopped ({how})",
                )
                return 0
            again = policy == "Always" or (policy == "OnFailure" and code != 0)
            if again and not (self.path / rundir.STOP).exists():
                restarts += 1
                self.record(
                    phase="Starting",
                    restarts=restarts,
                    lastExitCode=exit_code,
                    message=f"restarting after {how} (restart {restarts}, {policy})",
                )
                self._sleep(min(MAX_RESTART_DELAY, 0.5 * 2 ** (restarts - 1)))
                continue
            self.record(
                phase="Succeeded" if code == 0 else "Failed",
                exit_code=exit_code,
                finished=rundir.wall(),
                message=how,
            )
            return 0

    def _wait(self, child: subprocess.Popen[bytes]) -> int:
        while True:
            code = child.poll()
            if code is not None:
                return code
            if self.stopping:
                return self._terminate(child)
            time.sleep(POLL_SECONDS)

    def _terminate(self, child: subprocess.Popen[bytes]) -> int:
        """SIGTERM to the process group; SIGKILL once the grace period is over."""
        grace = float(self.launch.get("gracePeriodSeconds", 30.0))
        _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            code = child.poll()
            if code is not None:
                _signal_group(child.pid, signal.SIGKILL)  # what it left behind in its group
                return code
            time.sleep(POLL_SECONDS)
        _signal_group(child.pid, signal.SIGKILL)
        return child.wait()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping:
            time.sleep(POLL_SECONDS)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m stratum.backends.local.supervisor RUNDIR\n")
        return 2
    path = Path(argv[0]).resolve()
    # Fork once more: the runtime waits for this first process, so the supervisor proper
    # is nobody's child but init's, and survives the server (it already has its own
    # session: the runtime started it with start_new_session).
    if os.fork() > 0:
        return 0
    with contextlib.suppress(OSError):  # already a session leader
        os.setsid()
    return Supervisor(path).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
