"""What the agent starts and stops, with a runtime that records calls: nothing is stopped on
a stale view (an outage), what moved away is stopped once the view is fresh again, and a
fence contract stops its replica once the lease has passed unheard."""

from __future__ import annotations

import time
from pathlib import Path

from stratum.agent.host import Agent, AgentSettings
from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.backends.agent.protocol import DesiredRun, launch_to_wire
from stratum.backends.base import (
    LaunchSpec,
    NodeObservation,
    ReplicaLaunch,
    ReplicaRun,
    RunObservation,
)


class Recorder:
    def __init__(self) -> None:
        self.runs: dict[str, RunObservation] = {}
        self.calls: list[tuple[str, str]] = []

    def launch(self, spec: LaunchSpec, node: str) -> None:
        self.calls.append(("launch", spec.key))
        self.runs[spec.key] = RunObservation(
            key=spec.key,
            uid=spec.uid,
            attempt=spec.attempt,
            phase="Running",
            replicas=(ReplicaRun(replica=0, node=node, phase="Running", pid=4242),),
        )

    def stop(self, key: str) -> None:
        self.calls.append(("stop", key))
        self.runs.pop(key, None)

    def observe_runs(self) -> tuple[RunObservation, ...]:
        return tuple(self.runs.values())

    def telemetry(self, node: str) -> NodeObservation:
        return NodeObservation(name=node, reachable=True, gpus=(), power_w=0.0)


def _desired(key: str, *, attempt: int = 1, fence: bool = False) -> DesiredRun:
    spec = LaunchSpec(
        key=key,
        uid="u1",
        attempt=attempt,
        replicas=(ReplicaLaunch(replica=0, node="h"),),
        workload_type="batch",
        command=("true",),
    )
    return DesiredRun(
        key=key,
        uid="u1",
        attempt=attempt,
        phase="Running",
        on_partition="fence" if fence else "keep",
        spec=launch_to_wire(spec),
    )


def _agent(tmp_path: Path) -> tuple[Agent, Recorder]:
    runtime = Recorder()
    settings = AgentSettings(
        server="http://127.0.0.1:9", state_dir=tmp_path, hardware=HardwareProfileSpec(), node="h"
    )
    agent = Agent(settings, runtime)
    agent._tune(1.0, 3.0, 5.0)  # the server's answer: fence after 3 + 5 - 1 = 7 s unheard
    return agent, runtime


def _set(agent: Agent, runs: list[DesiredRun], *, fresh: bool) -> None:
    agent._desired.runs = {r.key: r for r in runs}
    agent._desired.fresh = fresh


def test_an_outage_stops_nothing_and_a_fresh_list_fences_what_moved(tmp_path: Path) -> None:
    agent, runtime = _agent(tmp_path)
    agent.connected = True
    _set(agent, [_desired("t/a"), _desired("t/b")], fresh=True)
    agent.converge()
    assert sorted(runtime.runs) == ["t/a", "t/b"]
    agent._lost("cut")  # the view goes stale
    _set(agent, [], fresh=False)
    agent.converge()
    assert sorted(runtime.runs) == ["t/a", "t/b"]  # keep: nothing stopped while cut off
    agent.connected = True
    _set(agent, [_desired("t/a")], fresh=True)  # t/b moved elsewhere meanwhile
    agent.converge()
    assert sorted(runtime.runs) == ["t/a"] and ("stop", "t/b") in runtime.calls
    # A new attempt replaces the old one; the same attempt is never started twice.
    _set(agent, [_desired("t/a", attempt=2)], fresh=True)
    agent.converge()
    agent.converge()
    assert runtime.runs["t/a"].attempt == 2
    assert runtime.calls.count(("launch", "t/a")) == 2


def test_fence_stops_a_replica_once_its_lease_passes_unheard(tmp_path: Path) -> None:
    agent, runtime = _agent(tmp_path)
    agent.connected = True
    _set(agent, [_desired("t/keep"), _desired("t/fence", fence=True)], fresh=True)
    agent.converge()
    agent._lost("cut")
    agent.last_ok = time.monotonic() - 5  # within the 7 s lease
    agent.converge()
    assert sorted(runtime.runs) == ["t/fence", "t/keep"]
    agent.last_ok = time.monotonic() - 8  # past it: the server may place it again now
    agent.converge()
    assert sorted(runtime.runs) == ["t/keep"]
    agent.converge()  # and it stays stopped (not launched again from the stale view)
    assert runtime.calls.count(("launch", "t/fence")) == 1
