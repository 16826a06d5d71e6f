"""The local runtime on its own, with real processes: a launch is adopted rather than run
twice (also by a new runtime on the same state directory), stop is SIGTERM to the process
group then SIGKILL after the grace period, restart policies are honoured, and a new
attempt replaces the old one."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stratum.backends.base import LaunchSpec, ReplicaLaunch, RunObservation
from stratum.backends.local.runtime import LocalRuntime
from stratum.testing import localhost
from stratum.testing.clock import FakeClock

KEY = "team/job"


@pytest.fixture
def parent() -> Iterator[str]:
    name = localhost.cgroup_parent()
    yield name
    localhost.remove_cgroups(name)


def _spec(
    program: Path,
    *args: str,
    attempt: int = 1,
    grace: float = 30.0,
    restart: str = "Never",
) -> LaunchSpec:
    return LaunchSpec(
        key=KEY,
        uid="uid-1",
        attempt=attempt,
        replicas=(ReplicaLaunch(replica=0, node="box", cpu_set="0"),),
        workload_type="batch",
        command=(sys.executable, str(program)),
        args=args,
        restart_policy=restart,
        grace_period_seconds=grace,
    )


Check = Callable[[RunObservation | None], bool]


def _wait(runtime: LocalRuntime, ok: Check) -> RunObservation | None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        runs = {r.key: r for r in runtime.observe_runs()}
        if ok(runs.get(KEY)):
            return runs.get(KEY)
        time.sleep(0.05)
    raise AssertionError(f"timed out; runs: {runtime.observe_runs()}")


def _running(run: RunObservation | None) -> bool:
    return run is not None and run.phase == "Running" and bool(run.replicas[0].checks)


def _final_state(state_dir: Path) -> str:
    """The replica's state once its supervisor has recorded how the process ended."""
    path = state_dir / "runs/team/job/uid-1/1/0/state.json"
    deadline = time.monotonic() + 20
    while '"stopped": true' not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.read_text()


def _ready(runtime: LocalRuntime) -> None:
    """The program has set its SIGTERM handler (it prints its pinning after)."""
    deadline = time.monotonic() + 20
    while "replica=" not in runtime.logs(KEY) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_second_launch_and_a_new_runtime_adopt_the_run(tmp_path: Path, parent: str) -> None:
    program = localhost.write_program(tmp_path)
    runtime = LocalRuntime(tmp_path / "state", FakeClock(), cgroup_parent=parent)
    spec = _spec(program, "30", "0", grace=0.5)
    runtime.launch(spec, "box")
    run = _wait(runtime, _running)
    assert run is not None
    pid = run.replicas[0].pid
    runtime.launch(spec, "box")  # the same uid and attempt: adopted
    later = LocalRuntime(tmp_path / "state", FakeClock(), cgroup_parent=parent)
    later.launch(spec, "box")  # as a restarted server would
    again = _wait(later, _running)
    assert again is not None and again.replicas[0].pid == pid
    assert localhost.processes_of(KEY, program) == [pid]
    later.stop(KEY)
    _wait(later, lambda r: r is None)
    deadline = time.monotonic() + 10
    while localhost.processes_of(KEY, program) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert localhost.processes_of(KEY, program) == []


def test_stop_sends_sigterm_then_sigkill_after_the_grace_period(
    tmp_path: Path, parent: str
) -> None:
    program = localhost.write_program(tmp_path)
    runtime = LocalRuntime(tmp_path / "state", FakeClock(), cgroup_parent=parent)
    runtime.launch(_spec(program, "60", "0", "trap", grace=1.0), "box")  # ignores SIGTERM
    run = _wait(runtime, _running)
    assert run is not None
    _ready(runtime)
    started = time.monotonic()
    runtime.stop(KEY)
    while localhost.processes_of(KEY, program) and time.monotonic() - started < 15:
        time.sleep(0.02)
    took = time.monotonic() - started
    assert localhost.processes_of(KEY, program) == []
    assert took >= 1.0  # it outlived SIGTERM for the whole grace period
    state = _final_state(tmp_path / "state")
    assert '"exit_code": 137' in state and "killed by SIGKILL" in state
    assert "got SIGTERM" in runtime.logs(KEY)
    assert runtime.observe_runs() == ()  # stopped runs are not reported


def test_a_program_that_honours_sigterm_stops_at_once(tmp_path: Path, parent: str) -> None:
    program = localhost.write_program(tmp_path)
    runtime = LocalRuntime(tmp_path / "state", FakeClock(), cgroup_parent=parent)
    runtime.launch(_spec(program, "60", "0", grace=30.0), "box")
    _wait(runtime, _running)
    _ready(runtime)
    started = time.monotonic()
    runtime.stop(KEY)
    while localhost.processes_of(KEY, program) and time.monotonic() - started < 15:
        time.sleep(0.02)
    assert time.monotonic() - started < 10  # far inside the 30 s grace period
    state = _final_state(tmp_path / "state")
    assert '"exit_code": 143' in state


def test_on_failure_restarts_and_never_does_not(tmp_path: Path, parent: str) -> None:
    program = localhost.write_program(tmp_path)
    runtime = LocalRuntime(tmp_path / "state", FakeClock(), cgroup_parent=parent)
    runtime.launch(_spec(program, "0.1", "3", restart="OnFailure"), "box")
    run = _wait(runtime, lambda r: r is not None and r.replicas[0].restarts >= 2)
    assert run is not None and run.phase in ("Running", "Starting")
    assert "exit code 3" in run.replicas[0].message or run.phase == "Running"
    runtime.stop(KEY)
    runtime.launch(_spec(program, "0.1", "3", attempt=2), "box")
    failed = _wait(runtime, lambda r: r is not None and r.phase == "Failed")
    assert failed is not None and failed.attempt == 2
    assert failed.replicas[0].exit_code == 3 and failed.replicas[0].restarts == 0


def test_a_new_attempt_stops_the_old_one(tmp_path: Path, parent: str) -> None:
    program = localhost.write_program(tmp_path)
    runtime = LocalRuntime(tmp_path / "state", FakeClock(), cgroup_parent=parent)
    runtime.launch(_spec(program, "60", "0", grace=0.5), "box")
    first = _wait(runtime, _running)
    assert first is not None
    runtime.launch(_spec(program, "60", "0", attempt=2, grace=0.5), "box")
    second = _wait(runtime, lambda r: _running(r) and r is not None and r.attempt == 2)
    assert second is not None
    deadline = time.monotonic() + 10
    while len(localhost.processes_of(KEY, program)) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert localhost.processes_of(KEY, program) == [second.replicas[0].pid]
    runtime.stop(KEY)


def test_follow_streams_the_output_until_the_process_ends(tmp_path: Path, parent: str) -> None:
    program = localhost.write_program(tmp_path)
    runtime = LocalRuntime(tmp_path / "state", FakeClock(), cgroup_parent=parent)
    runtime.launch(_spec(program, "1.0", "0"), "box")
    _wait(runtime, lambda r: r is not None)
    started = time.monotonic()
    text = "".join(runtime.follow(KEY, poll_seconds=0.05))
    assert time.monotonic() - started < 15
    assert text.startswith("CUDA_VISIBLE_DEVICES=\n") and text.endswith("done\n")
    assert text == runtime.logs(KEY)
    assert "".join(runtime.follow(KEY, tail=1)) == "done\n"  # ended: the tail, then stop


def _pruned_within(runtime: LocalRuntime, now: float, seconds: float) -> int:
    """What `prune(now)` deletes once it deletes anything, trying for `seconds`: a stopped
    replica goes only after its supervisor has exited."""
    deadline = time.monotonic() + seconds
    while not (pruned := runtime.prune(now=now)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pruned


def test_stopped_runs_past_retention_are_pruned_and_nothing_that_runs(
    tmp_path: Path, parent: str
) -> None:
    """Every run used to stay on disk for good, walked by every observe pass. A replica
    stopped longer ago than the retention, its processes gone, is deleted with its empty
    parents; a newer attempt that still runs, and a run stopped since, are kept."""
    program = localhost.write_program(tmp_path)
    state = tmp_path / "state"
    runtime = LocalRuntime(state, FakeClock(), cgroup_parent=parent, retention_seconds=3600)
    runtime.launch(_spec(program, "60", "0", grace=0.5), "box")
    assert _wait(runtime, _running) is not None
    runtime.launch(_spec(program, "60", "0", attempt=2, grace=0.5), "box")  # stops attempt 1
    assert _wait(runtime, lambda r: _running(r) and r is not None and r.attempt == 2)
    old = state / "runs/team/job/uid-1/1"
    stopped_at = float((old / "0" / "stop").read_text())
    assert runtime.prune(now=stopped_at + 3599) == 0  # within the retention: kept
    # Past it, deleted once the old attempt's supervisor and process have exited (on a busy
    # machine that takes a moment after the stop was written).
    assert _pruned_within(runtime, stopped_at + 3601, seconds=20) == 1
    assert not old.exists()
    assert (state / "runs/team/job/uid-1/2/0/launch.json").exists()  # still runs: kept
    # A stop file but its process still running (a stop under way): never pruned under it.
    current = state / "runs/team/job/uid-1/2/0"
    (current / "stop").write_text(str(stopped_at))
    assert runtime.prune(now=stopped_at + 10**6) == 0
    assert (current / "launch.json").exists()
    (current / "stop").unlink()
    runtime.stop(KEY)
    assert _pruned_within(runtime, stopped_at + 10**6, seconds=20) == 1
    assert not (state / "runs" / "team").exists()  # the empty parents went too
