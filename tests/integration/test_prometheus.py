"""A real Prometheus (Debian's `prometheus`, on loopback) scrapes a live server running the
demo fleet with its controllers, and PromQL over Prometheus's HTTP API agrees with what the
Stratum API reports: GPUs bound per tenant, then a violation after an injected fault. Every
dashboard query is also run there: each is valid PromQL to Prometheus itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratum.client.http import StratumClient
from stratum.core.demand import allocation_milli
from stratum.server.demo import demo_manifests
from stratum.testing.dashboards import expand, expressions
from stratum.testing.harness import ADMIN_TOKEN, LiveServer, free_port
from tests import DASHBOARDS

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None and not os.environ.get("CI"),
    reason="needs Debian's prometheus (apt-get install prometheus; .ci/run installs it)",
)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as err:
            last = err
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Prometheus:
    def __init__(self, tmp: Path, target: str) -> None:
        assert PROMETHEUS is not None, "prometheus is not installed"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        token = tmp / "token"
        token.write_text(ADMIN_TOKEN)
        token.chmod(0o600)
        config = tmp / "prometheus.yml"
        config.write_text(
            json.dumps(
                {  # JSON is YAML
                    "global": {
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "evaluation_interval": "1s",
                    },
                    "scrape_configs": [
                        {
                            "job_name": "stratum",
                            "static_configs": [{"targets": [target]}],
                            "authorization": {"type": "Bearer", "credentials_file": str(token)},
                        }
                    ],
                }
            )
        )
        self.log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"{expr}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def by(self, expr: str, label: str) -> dict[str, float]:
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in self.query(expr)}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[LiveServer, StratumClient]]:
    server = LiveServer(f"sqlite:///{tmp_path / 'stratum.db'}", controllers=True).start()
    client = StratumClient(server.url, server.token)
    try:
        client.apply_list(demo_manifests())
        wait_for(
            lambda: (
                (ws := client.list("Workload"))
                and len(ws) == 5
                and all(w["status"].get("phase") == "Running" for w in ws)
            ),
            "the demo to run",
        )
        yield server, client
    finally:
        client.close()
        server.stop()


@pytest.fixture
def prometheus(demo: tuple[LiveServer, StratumClient], tmp_path: Path) -> Iterator[Prometheus]:
    server, _ = demo
    prom = Prometheus(tmp_path, f"127.0.0.1:{server.port}")
    try:
        wait_for(
            lambda: httpx.get(f"{prom.url}/-/ready", timeout=2).status_code == 200,
            "prometheus to be ready",
        )
        wait_for(
            lambda: [
                t
                for t in httpx.get(f"{prom.url}/api/v1/targets", timeout=2).json()["data"][
                    "activeTargets"
                ]
                if t["health"] == "up"
            ],
            "the stratum target to be up",
        )
        yield prom
    finally:
        prom.stop()


def bound_gpus(client: StratumClient) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in client.list("Placement"):
        if p["status"].get("phase") in ("Bound", "Running", "Violated"):
            ns = p["metadata"]["namespace"]
            for r in p["spec"]["replicas"]:
                out[ns] = out.get(ns, 0.0) + len(r["gpus"]) * allocation_milli(r) / 1000
    return out


def test_prometheus_sees_what_the_api_reports(
    demo: tuple[LiveServer, StratumClient], prometheus: Prometheus
) -> None:
    _, client = demo
    expected = bound_gpus(client)
    assert set(expected) == {"research", "health-eu"}
    wait_for(
        lambda: (
            prometheus.by("sum by (tenant) (stratum_tenant_allocated_gpus)", "tenant")
            == pytest.approx(expected)
        ),
        f"Prometheus to count {expected} bound GPUs per tenant",
    )
    nodes = len(client.list("Node"))
    assert prometheus.by("sum(stratum_nodes)", "") == {"": nodes}
    running = prometheus.by('sum by (tenant) (stratum_contracts{phase="Running"})', "tenant")
    assert running == {"research": 4, "health-eu": 1}

    placement = client.get("Placement", "llama-finetune", "research")
    node = placement["spec"]["replicas"][0]["node"]
    client.inject_fault({"kind": "gpu-fail", "node": node, "gpu": 3})
    violations = 'stratum_contract_violations_total{tenant="research",clause="compute"}'
    wait_for(
        lambda: prometheus.by(violations, "clause") == {"compute": 1.0},
        "Prometheus to see one compute violation",
    )
    workload = client.get("Workload", "llama-finetune", "research")
    assert [v["clause"] for v in workload["status"]["violations"]] == ["compute"]
    failed = wait_for(
        lambda: prometheus.query('stratum_gpus{state="failed"} == 1'), "the failed GPU"
    )
    assert failed[0]["metric"]["site"] == client.get("Node", node)["spec"]["site"]
    assert prometheus.by(f'stratum_gpu_utilization_ratio{{node="{node}",gpu="3"}} >= 0', "gpu") == {
        "3": pytest.approx(0.0)
    }

    # Every dashboard query is valid PromQL to Prometheus, and the fleet, tenant, contract
    # and control-plane panels have data on a running demo.
    empty = []
    for path in DASHBOARDS:
        for title, expr in expressions(json.loads(path.read_text())):
            if not prometheus.query(expand(expr)):
                empty.append(f"{path.stem}: {title}")
    # Panels about things that did not happen in this run: no power cap, no API or reconcile
    # errors, nothing pending, rejected or unschedulable.
    nothing_happened = {
        "contracts: Violated or rejected now",
        "control-plane: Errors by route and code",
        "control-plane: Passes and errors",
        "fleet: Site power against budget",
        "scheduler: Pending contracts by tenant and priority",
        "scheduler: Failures by clause",
    }
    assert set(empty) <= nothing_happened, sorted(set(empty) - nothing_happened)
