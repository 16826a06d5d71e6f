"""`stratum up` as a person runs it: a demo fleet whose contracts bind and run, break under
an injected fault and heal; a second `up` on the same home reuses the fleet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from stratum.server.demo import demo_manifests
from stratum.testing.harness import ADMIN_TOKEN, free_port, run_cli
from tests import EXAMPLES

API = "/apis/stratum.dev/v1alpha1"


def start_up(home: Path, port: int) -> subprocess.Popen[str]:
    token_file = home / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stratum",
            "up",
            "--port",
            str(port),
            "--speed",
            "600",
            "--admin-token-file",
            str(token_file),
        ],
        env={**os.environ, "STRATUM_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(check: Callable[[], Any], timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out; last answer: {last!r}")


def phases(url: str) -> dict[str, Any]:
    items = httpx.get(
        f"{url}{API}/workloads", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ).json()["items"]
    return {f"{i['metadata']['namespace']}/{i['metadata']['name']}": i["status"] for i in items}


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    return out


def test_up_runs_the_demo_and_heals_an_injected_fault(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"STRATUM_SERVER": url, "STRATUM_CONFIG": str(tmp_path / "cli.yaml")}
    proc = start_up(tmp_path, port)
    try:
        running = wait_until(
            lambda: (
                (s := phases(url))
                and len(s) == 5
                and all(v.get("phase") == "Running" for v in s.values())
                and s
            )
        )
        assert running["research/llama-finetune"]["attempt"] == 1
        sites = run_cli("get", "sites", env=env)
        assert sites.returncode == 0 and "fra-1" in sites.stdout
        placement = httpx.get(
            f"{url}{API}/namespaces/research/placements/llama-finetune",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ).json()
        node = placement["spec"]["replicas"][0]["node"]
        injected = run_cli("fault", "inject", "gpu-fail", "--node", node, "--gpu", "3", env=env)
        assert injected.returncode == 0, injected.stderr
        assert f"GPU 3 on node {node} failed" in injected.stdout
        healed = wait_until(
            lambda: (
                (s := phases(url)["research/llama-finetune"])
                and s["phase"] == "Running"
                and s["attempt"] == 2
                and s
            )
        )
        assert healed["violations"][-1]["clause"] == "compute"
        # Recorded on the platform's one clock: simulated seconds at --speed 600.
        assert healed["lastRemediationSeconds"] / 600 < 15
        described = run_cli("describe", "workload", "llama-finetune", "-n", "research", env=env)
        assert "ContractViolated" in described.stdout and "remediated" in described.stdout
        listed = run_cli("fault", "list", env=env)
        assert "gpu-fail" in listed.stdout
        bad = run_cli(
            "fault", "inject", "gpu-fail", "--node", "no-such-node", "--gpu", "0", env=env
        )
        assert bad.returncode == 1 and "is not a simulated node" in bad.stderr
        planned = run_cli(
            "plan", "-f", str(EXAMPLES / "reference" / "fleet-change.yaml"), "-o", "json", env=env
        )
        assert planned.returncode == 0, planned.stderr
        plan = json.loads(planned.stdout)
        assert plan["newlyBound"] == ["research/h200-pretrain"]
        assert plan["displaced"] == ["research/chat-us"]
        assert plan["after"]["gpus"] == plan["before"]["gpus"] - 48 + 128
        scenario = tmp_path / "scenario.yaml"
        scenario.write_text(
            "faults:\n  - {at: 0, kind: power-cap, site: edge-lyon, kw: 0.05}\n"
            "  - {at: 60, kind: link-degrade, node: edge-lyon-l4-001, gpu: 0}\n"
        )
        played = run_cli("fault", "run", "-f", str(scenario), env=env)
        assert played.returncode == 0, played.stderr
        assert "t+0s" in played.stdout and "t+60s" in played.stdout
        edge = wait_until(
            lambda: (s := phases(url)["research/edge-vision"]) and s["phase"] == "Violated" and s
        )
        assert edge["violations"][-1]["clause"] == "compute.power"  # report-only: stays put
        assert run_cli("fault", "clear", env=env).returncode == 0
        assert wait_until(lambda: phases(url)["research/edge-vision"]["phase"] == "Running")
        scenario = tmp_path / "bad-scenario.yaml"
        scenario.write_text("faults:\n  - {at: -1, kind: gpu-fail, node: x, gpu: 0}\n")
        refused = run_cli("fault", "run", "-f", str(scenario), env=env)
        assert refused.returncode == 2 and "faults[0].at: expected seconds >= 0" in refused.stderr
        missing = run_cli("plan", "-f", str(tmp_path / "nope.yaml"), env=env)
        assert missing.returncode == 2 and "No such file" in missing.stderr
    finally:
        first = stop(proc)
    objects = len(demo_manifests())  # profiles, sites, clusters, tenants, work and catalog
    assert f"{objects} objects created, 0 reused" in first
    proc = start_up(tmp_path, port)
    try:
        again = wait_until(lambda: (s := phases(url)) and len(s) == 5 and s)
        assert again["research/llama-finetune"]["attempt"] >= 2, "the fleet was reused"
    finally:
        second = stop(proc)
    assert f"0 objects created, {objects} reused" in second
