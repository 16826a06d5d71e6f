"""`stratum agent` for real on one machine: three hosts, each in its own network namespace
behind a veth pair (stratum.testing.netns), running real processes through the local
runtime, against a real `stratum serve` child process.

Liveness is scaled down so that each scenario takes seconds: heartbeats every second,
NotReady after 3 s unheard, Lost (contracts Violated) after 3 s more. The control-plane
outage lasts OUTAGE_SECONDS ($STRATUM_AGENT_OUTAGE_SECONDS; the issue's 60 s runs in
benchmarks/bench_agents.py --outage 60).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratum.testing.agents import (
    AgentProcess,
    agent_cluster,
    agent_site,
    alive,
    eventually,
    fixture_dir,
)
from stratum.testing.campaigns.servers import ServerProcess
from stratum.testing.harness import ADMIN_TOKEN
from stratum.testing.netns import Namespace, unavailable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
    pytest.mark.timeout(240),
]

API = "/apis/stratum.dev/v1alpha1"
BOOT = "boot-fleet-secret"
OUTAGE_SECONDS = float(os.environ.get("STRATUM_AGENT_OUTAGE_SECONDS", "5"))
LIVENESS = {
    "STRATUM_AGENT_HEARTBEAT_SECONDS": "1",
    "STRATUM_AGENT_NOT_READY_AFTER_SECONDS": "3",
    "STRATUM_AGENT_GRACE_SECONDS": "3",
}
HOSTS = {"host-a": "h100", "host-b": "consumer", "host-c": "workstation"}
# Each replica prints what it was given, then waits; `sleep` carries a marker to count by.
SAYS = 'echo "node=$STRATUM_NODE replica=$STRATUM_REPLICA attempt=$STRATUM_ATTEMPT $*"'


@dataclass
class Fleet:
    root: Path
    server: ServerProcess
    admin: httpx.Client
    agents: dict[str, AgentProcess] = field(default_factory=dict)
    networks: dict[str, Namespace] = field(default_factory=dict)

    def restart_server(self) -> None:
        again = _server(self.root, self.server.database_url)
        again.port, again.url = self.server.port, self.server.url
        self.server = again.start()

    def workload(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.admin.get(f"{API}/namespaces/team-a/workloads/{name}").json()
        return found

    def placement(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.admin.get(f"{API}/namespaces/team-a/placements/{name}").json()
        return found

    def node_phase(self, name: str) -> str | None:
        phase: str | None = self.admin.get(f"{API}/nodes/{name}").json()["status"].get("phase")
        return phase

    def running(self, name: str, attempt: int | None = None) -> dict[str, Any] | None:
        wl = self.workload(name)
        placement = self.placement(name)
        if wl.get("status", {}).get("phase") != "Running":
            return None
        if attempt is not None and placement["spec"]["attempt"] != attempt:
            return None
        return placement

    def describe(self, name: str) -> str:
        wl = self.workload(name).get("status", {})
        placement = self.placement(name)
        nodes = {n: self.node_phase(n) for n in HOSTS}
        return (
            f"workload {wl.get('phase')} ({wl.get('message')}); placement "
            f"{placement.get('spec', {}).get('attempt')} on "
            f"{[r['node'] for r in placement.get('spec', {}).get('replicas', [])]} "
            f"{placement.get('status', {}).get('phase')}; nodes {nodes}"
        )

    def pids(self, key: str) -> dict[tuple[str, int], int]:
        return {
            (host, replica): pid
            for host, agent in self.agents.items()
            for replica, pid in agent.pids(key).items()
        }


def _server(root: Path, database_url: str) -> ServerProcess:
    return ServerProcess(
        database_url,
        root / "server",
        "--host",
        "0.0.0.0",
        "--backend",
        "simulated",
        "--backend",
        "agent",
        token=ADMIN_TOKEN,
        env=LIVENESS,
    )


def _workload(name: str, *, replicas: int, marker: str, **contract: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {
            "type": "inference",
            "replicas": replicas,
            "run": {
                "command": ["sh", "-c", f"{SAYS}; exec sleep {marker}", name],
                "args": ["given", name],
            },
            "contract": {"compute": {"gpus": 1}, **contract},
        },
    }


def _remove(fleet: Fleet, name: str, marker: str) -> None:
    """Delete a Workload: its agents stop every copy once its Placement is gone."""
    assert fleet.admin.delete(f"{API}/namespaces/team-a/workloads/{name}").status_code == 200
    eventually(lambda: _count(marker) == 0, timeout=30, what=f"{name}'s processes stopped")


def _joined(fleet: Fleet, name: str) -> bool:
    return bool(
        fleet.admin.get(f"{API}/nodes/{name}").status_code == 200
        and fleet.node_phase(name) == "Ready"
    )


def _all_three(pids: dict[tuple[str, int], int]) -> dict[tuple[str, int], int] | None:
    return pids if len(pids) == 3 else None


def _count(marker: str) -> int:
    """Processes running `sleep <marker>` on the whole machine: copies, wherever they are."""
    found = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", marker.encode()] and alive(int(entry.name)):
                found += 1
    return found


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One server and three hosts for the module: each test removes what it placed."""
    tmp_path = tmp_path_factory.mktemp("fleet")
    server = _server(tmp_path, f"sqlite:///{tmp_path / 'stratum.db'}").start()
    admin = httpx.Client(base_url=server.url, headers=server.headers, timeout=30)
    tenant: dict[str, Any] = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "team-a"},
        "spec": {},
    }
    for obj in (agent_site(), agent_cluster("fleet", BOOT), tenant):
        r = admin.post(f"{API}/{str(obj['kind']).lower()}s", json=obj)
        assert r.status_code == 201, r.text
    fleet = Fleet(tmp_path, server, admin)
    try:
        for i, (name, kind) in enumerate(HOSTS.items(), start=1):
            net = fleet.networks[name] = Namespace(i).create()
            fleet.agents[name] = AgentProcess(
                name=name,
                server_url=f"http://{net.host_ip}:{server.port}",
                bootstrap=BOOT,
                hardware_dir=fixture_dir(tmp_path, kind),
                state_dir=tmp_path / name,
                prefix=tuple(net.command()),
            ).start()
        eventually(
            lambda: all(_joined(fleet, name) for name in HOSTS),
            timeout=90,
            what="every host to join and be Ready",
        )
        yield fleet
    finally:
        for agent in fleet.agents.values():
            agent.stop()
            agent.stop_runs()
        for net in fleet.networks.values():
            net.destroy()
        if fleet.server.alive:
            fleet.server.stop()
        admin.close()


def test_a_gang_spans_three_hosts_and_outlives_a_killed_server(fleet: Fleet) -> None:
    # Joined with the hardware read from each host's saved tool outputs.
    gpus = {
        name: len(fleet.admin.get(f"{API}/nodes/{name}").json()["spec"]["hardware"]["gpus"])
        for name in HOSTS
    }
    assert gpus == {"host-a": 8, "host-b": 5, "host-c": 2}
    gang = _workload(
        "gang", replicas=3, marker="6001", availability={"spreadAcross": "node", "minDomains": 3}
    )
    assert fleet.admin.post(f"{API}/namespaces/team-a/workloads", json=gang).status_code == 201
    placement = eventually(lambda: fleet.running("gang"), timeout=60, what="the gang running")
    assert sorted(r["node"] for r in placement["spec"]["replicas"]) == sorted(HOSTS)
    before = eventually(
        lambda: _all_three(fleet.pids("team-a/gang")),
        timeout=30,
        what="three replicas with a pid each",
    )
    for (host, replica), _ in before.items():
        said = fleet.agents[host].runtime().logs("team-a/gang", replica)
        assert f"node={host} replica={replica} attempt=1 given gang" in said

    fleet.server.kill9()
    # The control plane is gone; every run goes on, and the agents buffer their reports.
    eventually(
        lambda: all("lost the server" in a.log() for a in fleet.agents.values()),
        timeout=15,
        what="every agent to notice the outage",
    )
    deadline_pids = fleet.pids("team-a/gang")
    time.sleep(OUTAGE_SECONDS)
    assert fleet.pids("team-a/gang") == before == deadline_pids
    fleet.restart_server()
    eventually(
        lambda: all(
            a.log().count("connected;") >= 2 and "undelivered" in a.log()
            for a in fleet.agents.values()
        ),
        timeout=30,
        what="every agent to reconnect",
    )
    # Both sides reconciled: nothing restarted, nothing duplicated, the same attempt.
    eventually(lambda: fleet.running("gang", attempt=1), timeout=30, what="the gang Running")
    time.sleep(3)  # past a NotReady delay: a restart would show by now
    assert fleet.pids("team-a/gang") == before
    assert _count("6001") == 3
    assert all(fleet.node_phase(n) == "Ready" for n in HOSTS)
    assert fleet.running("gang", attempt=1) is not None
    _remove(fleet, "gang", "6001")


def test_a_cut_link_and_a_killed_agent_are_remediated_and_fenced(fleet: Fleet) -> None:
    solo = _workload("solo", replicas=1, marker="6002")
    assert fleet.admin.post(f"{API}/namespaces/team-a/workloads", json=solo).status_code == 201
    first = eventually(lambda: fleet.running("solo"), timeout=60, what="solo running")
    host = first["spec"]["replicas"][0]["node"]
    old_pid = eventually(
        lambda: fleet.agents[host].pids("team-a/solo").get(0), timeout=30, what="solo's pid"
    )

    fleet.networks[host].cut()
    eventually(lambda: fleet.node_phase(host) == "NotReady", timeout=30, what=f"{host} NotReady")
    second = eventually(
        lambda: fleet.running("solo", attempt=2),
        timeout=60,
        what="solo re-placed and Running",
        describe=lambda: fleet.describe("solo"),
    )
    moved_to = second["spec"]["replicas"][0]["node"]
    assert moved_to != host
    violations = fleet.workload("solo")["status"]["violations"]
    assert any(v["clause"] == "compute" and host in v["message"] for v in violations)
    # onPartition: keep (the default): the cut-off copy ran on through the partition...
    assert alive(old_pid)
    fleet.networks[host].heal()
    # ...and is fenced once its agent hears the Placement moved: one copy again.
    eventually(lambda: not alive(old_pid), timeout=30, what="the old copy fenced")
    eventually(lambda: fleet.node_phase(host) == "Ready", timeout=30, what=f"{host} Ready")
    assert _count("6002") == 1

    # kill -9 the agent of the node that runs it now: the node is lost, the contract moves.
    moved_pid = fleet.agents[moved_to].pids("team-a/solo")[0]
    fleet.agents[moved_to].kill9()
    eventually(
        lambda: fleet.node_phase(moved_to) == "NotReady", timeout=30, what="lost node NotReady"
    )
    third = eventually(
        lambda: fleet.running("solo", attempt=3),
        timeout=60,
        what="solo re-placed again",
        describe=lambda: fleet.describe("solo"),
    )
    assert third["spec"]["replicas"][0]["node"] != moved_to
    # The dead agent's supervisor kept its copy; the agent, back, fences it.
    assert alive(moved_pid)
    fleet.agents[moved_to].start()
    eventually(lambda: not alive(moved_pid), timeout=45, what="the stale copy fenced")
    assert _count("6002") == 1
    eventually(
        lambda: fleet.node_phase(moved_to) == "Ready", timeout=30, what="the agent back, Ready"
    )
    _remove(fleet, "solo", "6002")


def test_a_fenced_contract_never_runs_twice_across_a_cut_link(fleet: Fleet) -> None:
    """onPartition: fence. The cut-off copy stops once its lease passes unheard, before the
    server may place the contract again: sampled all along, never two copies at once."""
    guard = _workload("guard", replicas=1, marker="6003", lifecycle={"onPartition": "fence"})
    assert fleet.admin.post(f"{API}/namespaces/team-a/workloads", json=guard).status_code == 201
    first = eventually(lambda: fleet.running("guard"), timeout=60, what="guard running")
    host = first["spec"]["replicas"][0]["node"]
    old_pid = eventually(
        lambda: fleet.agents[host].pids("team-a/guard").get(0), timeout=30, what="guard's pid"
    )
    fleet.networks[host].cut()
    most = 0

    def moved() -> dict[str, Any] | None:
        nonlocal most
        most = max(most, _count("6003"))
        return fleet.running("guard", attempt=2)

    second = eventually(
        moved, timeout=60, what="guard re-placed", describe=lambda: fleet.describe("guard")
    )
    assert second["spec"]["replicas"][0]["node"] != host
    assert not alive(old_pid)  # fenced on its own, the link still cut
    assert most == 1
    fleet.networks[host].heal()
    eventually(lambda: fleet.node_phase(host) == "Ready", timeout=30, what=f"{host} Ready")
    assert _count("6003") == 1  # the fenced copy is not started again
    _remove(fleet, "guard", "6003")
