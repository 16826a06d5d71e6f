"""The agent backend's liveness on a fake clock: heard is Ready, silent past the NotReady
delay is unreachable (its runs unseen), silent past the grace period is Lost; a report of an
attempt older than the one launched says nothing about the current one."""

from __future__ import annotations

from stratum.backends.agent.backend import AgentBackend, Liveness
from stratum.backends.agent.protocol import NodeReport, ReplicaReport, RunReport
from stratum.backends.base import LaunchSpec, ReplicaLaunch
from stratum.testing.clock import FakeClock


def _report(node: str, *, attempt: int = 1, phase: str = "Running") -> NodeReport:
    return NodeReport.model_validate(
        {
            "node": node,
            "seq": 1,
            "runs": [
                RunReport(
                    key="team-a/job",
                    uid="u1",
                    attempt=attempt,
                    phase=phase,
                    replicas=[ReplicaReport(replica=0 if node == "a" else 1, phase="Running")],
                ).model_dump()
            ],
        }
    )


def _backend() -> tuple[AgentBackend, FakeClock]:
    clock = FakeClock()
    live = Liveness(heartbeat_seconds=1, not_ready_after_seconds=3, grace_seconds=5)
    return AgentBackend(clock=clock, liveness=live), clock


def test_silence_turns_a_node_not_ready_then_its_runs_lost() -> None:
    backend, clock = _backend()
    backend.record(_report("a"), cluster="c")
    backend.record(_report("b"), cluster="c")
    seen = backend.observe()
    assert all(n.reachable for n in seen.nodes)
    assert [(r.key, r.phase, len(r.replicas)) for r in seen.runs] == [("team-a/job", "Running", 2)]
    clock.advance(2)
    backend.record(_report("b"), cluster="c")
    clock.advance(2)  # a: 4 s silent
    seen = backend.observe()
    assert {n.name: n.reachable for n in seen.nodes} == {"a": False, "b": True}
    assert seen.runs[0].phase == "Running"  # behind a partition, it may run on: unseen
    clock.advance(4)  # a: 8 s silent, past NotReady (3) + grace (5)
    backend.record(_report("b"), cluster="c")
    run = backend.observe().runs[0]
    assert run.phase == "Lost" and "node a stopped answering" in run.message


def test_a_node_expected_at_start_counts_from_then() -> None:
    backend, clock = _backend()
    backend.expect([("a", "c")])
    assert backend.observe().nodes[0].reachable
    clock.advance(3)
    assert not backend.observe().nodes[0].reachable


def test_an_older_attempts_report_says_nothing_of_the_new_one() -> None:
    backend, clock = _backend()
    backend.record(_report("a", attempt=1), cluster="c")
    clock.advance(9)  # a is lost with attempt 1 on it
    backend.launch(
        LaunchSpec(
            key="team-a/job",
            uid="u1",
            attempt=2,
            replicas=(ReplicaLaunch(replica=0, node="b"),),
            workload_type="batch",
        )
    )
    assert backend.observe().runs == ()  # not "Lost": attempt 2 has not reported yet
    backend.record(_report("b", attempt=2, phase="Starting"), cluster="c")
    runs = backend.observe().runs
    assert [(r.attempt, r.phase) for r in runs] == [(2, "Starting")]
