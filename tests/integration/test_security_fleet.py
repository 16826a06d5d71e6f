"""Security of what touches the whole fleet, on the running demo (controllers and the
simulator in the server) on SQLite and PostgreSQL: fault injection is for platform admins
and audited, a server without the simulator says so, and a tenant's sovereignty report
names no platform policy."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from stratum.client.http import StratumClient
from stratum.core.errors import Forbidden, NotFound
from stratum.server.demo import demo_manifests
from stratum.testing.harness import LiveServer

FAULTS = "/apis/sim.stratum.dev/v1alpha1/faults"
POLICY = "personal-data-stays-in-eu"  # the demo's one policy


def _until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def demo(database_url: str) -> Iterator[tuple[LiveServer, StratumClient]]:
    server = LiveServer(database_url, controllers=True).start()
    client = StratumClient(server.url, server.token)
    try:
        client.apply_list(demo_manifests())
        _until(
            lambda: (
                (ws := client.list("Workload", namespace="research"))
                and all(w.get("status", {}).get("phase") == "Running" for w in ws)
            ),
            "research's workloads to run",
        )
        yield server, client
    finally:
        client.close()
        server.stop()


def _as(server: LiveServer, admin: StratumClient, subject: str, **grant: Any) -> StratumClient:
    made = admin.create_token(f"{subject}-token", subject=subject, **grant)
    return StratumClient(server.url, made["token"])


def test_fault_injection_is_for_platform_admins_and_audited(
    demo: tuple[LiveServer, StratumClient],
) -> None:
    server, admin = demo
    node = admin.list("Node")[0]["metadata"]["name"]
    fault = {"kind": "gpu-fail", "node": node, "gpu": 0}
    others = [
        _as(server, admin, "ada@example.org"),  # tenant-admin of research
        _as(server, admin, "grace@example.org"),  # member of research
        _as(server, admin, "ro", tenant="research", role="viewer"),
        _as(server, admin, "auditor", role="platform-viewer"),
    ]
    for caller in others:
        with caller:
            with pytest.raises(Forbidden, match="platform admins only"):
                caller.inject_fault(fault)
            with pytest.raises(Forbidden):
                caller.clear_faults()
    assert admin.faults()["items"] == []
    made = admin.inject_fault(fault)
    assert [f["id"] for f in admin.faults()["items"]] == [made["id"]]
    admin.clear_faults(made["id"])
    records = [
        r["spec"] for r in admin.list("AuditRecord") if r["spec"]["object"]["kind"] == "Fault"
    ]
    assert [(r["action"], r["object"]["name"], r["actor"]) for r in records] == [
        ("create", made["id"], "admin"),
        ("delete", made["id"], "admin"),
    ]
    assert records[0]["sourceAddress"] == "127.0.0.1"
    assert admin.verify_audit()["ok"]


def test_a_tenants_sovereignty_report_names_no_platform_policy(
    demo: tuple[LiveServer, StratumClient],
) -> None:
    server, admin = demo
    mine = admin.sovereignty_report(tenant="research")
    assert mine and all(POLICY in row["allowedBy"] for row in mine if row["sites"])
    with _as(server, admin, "ada@example.org") as ada:
        for rows in (ada.sovereignty_report(), ada.sovereignty_report(tenant="research")):
            assert rows and {r["tenant"] for r in rows} == {"research"}
            assert POLICY not in str(rows)
            placed = [r for r in rows if r["sites"]]
            assert placed and all(r["allowedBy"] == ["platform policies"] for r in placed)


def test_fault_routes_say_when_the_server_runs_no_simulator(live_server: LiveServer) -> None:
    for method in ("GET", "POST", "DELETE"):
        r = httpx.request(
            method,
            live_server.url + FAULTS,
            json={"kind": "node-down", "node": "n"},
            headers=live_server.headers,
        )
        assert r.status_code == 404, (method, r.text)
        assert "this server runs no simulator" in r.json()["message"]
    with StratumClient(live_server.url, live_server.token) as admin, pytest.raises(NotFound):
        admin.clear_faults("f1")
