"""`stratum serve --backend local` runs real work on this host: `stratum logs` shows what a
replica printed (and follows it), and a server killed with -9 and started again adopts the
run it left (the same process, never a second copy); deleting the workload stops it."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stratum.client.http import StratumClient
from stratum.core.errors import Invalid
from stratum.testing import localhost, manifests
from stratum.testing.harness import ServerProcess, run_cli

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "local-host"
KEY = "team/long"


def _phase(client: StratumClient, name: str) -> tuple[str | None, int]:
    status: dict[str, Any] = client.get("Workload", name, "team").get("status") or {}
    return status.get("phase"), int(status.get("attempt") or 0)


def _until(what: str, ok: Any, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ok()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_logs_and_a_kill_9_restart_adopts_the_run(database_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    program = localhost.write_program(tmp_path)
    job = manifests.workload(
        "long",
        "team",
        {"compute": {"gpus": 1, "cpuCores": 1, "memoryGiB": 0.25}},
        type="batch",
        run={
            "command": [sys.executable, str(program)],
            "args": ["60", "0"],
            "gracePeriodSeconds": 2,
        },
    )
    server = ServerProcess(database_url, home, "--backend", "local").start()
    second: ServerProcess | None = None
    try:
        with StratumClient(server.url, server.token) as client:
            client.apply_list(
                [
                    manifests.site("here", country="DE"),
                    manifests.tenant("team"),
                    localhost.local_cluster("mine", "here", hardware_from=FIXTURE, node_name="box"),
                    job,
                ]
            )
            _until("Running", lambda: _phase(client, "long") == ("Running", 1))
            pids = _until("the process", lambda: localhost.processes_of(KEY, program))
            assert len(pids) == 1
            env = {"STRATUM_SERVER": server.url}
            shown = _until(
                "its output",
                lambda: (
                    (r := run_cli("logs", "long", "-n", "team", env=env)).stdout.count("\n") >= 4
                    and r
                ),
            )
            assert shown.returncode == 0, shown.stderr
            assert "CUDA_VISIBLE_DEVICES=GPU-6f1a2b3c-0000-4000-8000-00000000a00" in shown.stdout
            described = run_cli("describe", "placement", "long", "-n", "team", env=env)
            assert "compute.cpuSet" in described.stdout
            assert "verified on the host" in described.stdout  # the read-back, per clause
            assert client.logs("long", "team", tail=1) == "replica=0\n"
            with pytest.raises(Invalid) as missing:
                client.logs("long", "team", replica=3)
            assert "has 1 replica(s), numbered 0 to 0; got 3" in missing.value.message
            # -f follows a short job's output to its end, then returns.
            short = {**job, "metadata": {"name": "short", "namespace": "team"}}
            short["spec"] = {**job["spec"], "run": {**job["spec"]["run"], "args": ["2", "0"]}}
            client.apply(short)
            _until("short Running", lambda: _phase(client, "short")[0] in ("Running", "Succeeded"))
            followed = run_cli("logs", "short", "-n", "team", "-f", env=env, timeout=60)
            assert followed.returncode == 0, followed.stderr
            assert followed.stdout.startswith("CUDA_VISIBLE_DEVICES=GPU-")
            assert followed.stdout.endswith("replica=0\ndone\n")

        server.kill9()
        assert localhost.processes_of(KEY, program) == pids  # the run outlives its server
        second = ServerProcess(database_url, home, "--backend", "local")
        second.start()
        with StratumClient(second.url, second.token) as client:
            # Several passes of the new server's controllers: the run is adopted as it is.
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                assert _phase(client, "long") == ("Running", 1)
                assert localhost.processes_of(KEY, program) == pids
                time.sleep(0.3)
            runs = list((home / "runtime/runs/team/long").glob("*/*/*"))
            assert len(runs) == 1  # one attempt, one replica: nothing launched again

            client.delete("Workload", "long", "team")
            _until(
                "the process to stop", lambda: not localhost.processes_of(KEY, program), timeout=20
            )
            log = (runs[0] / "output.log").read_text()
            assert "got SIGTERM" in log
    finally:
        for s in (server, second):
            if s is not None and s.alive:
                s.stop()
        for pid in localhost.processes_of(KEY, program):  # never leave a test's process behind
            os.kill(pid, signal.SIGKILL)
