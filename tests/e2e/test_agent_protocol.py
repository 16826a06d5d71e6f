"""The agent protocol's security and input rules, against a real server on SQLite and
PostgreSQL: a node-bound token touches its own Node and nothing else, a wrong, foreign or
revoked token is refused, and a malformed report is a 422 that changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stratum.core.secrets import Keyring
from stratum.testing.agents import TIMEOUT, agent_cluster, agent_site, join, report
from stratum.testing.harness import LiveServer

API = "/apis/stratum.dev/v1alpha1"
BOOT = "boot-secret-fleet-1"


_OPEN: list[httpx.Client] = []


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    live = LiveServer(
        database_url, secret_keys=Keyring.generate_key(), backends=("simulated", "agent")
    ).start()
    admin = _as(live.token, live)
    for obj in (
        agent_site(),
        agent_cluster("fleet", BOOT),
        agent_cluster("other", "boot-secret-other"),
    ):
        assert admin.post(f"{API}/{obj['kind'].lower()}s", json=obj).status_code == 201
    yield live
    while _OPEN:
        _OPEN.pop().close()
    live.stop()


def _token(server: LiveServer, node: str, cluster: str | None = None) -> str:
    r = join(server.url, BOOT, node, cluster=cluster)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["node"] == node and body["cluster"] == "fleet"
    return str(body["token"])


def _as(token: str, server: LiveServer) -> httpx.Client:
    client = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )
    _OPEN.append(client)
    return client


def _placement(node: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Placement",
        "metadata": {"name": "job", "namespace": "team-a"},
        "spec": {"workload": "job", "replicas": [{"replica": 0, "node": node, "gpus": [0]}]},
    }


def test_a_node_token_reaches_its_own_node_only(server: LiveServer) -> None:
    a, b = _token(server, "host-a"), _token(server, "host-b")
    node_a = _as(a, server)
    # Its own Node: read and write (discovery updates spec.hardware).
    own = node_a.get(f"{API}/nodes/host-a")
    assert own.status_code == 200
    assert own.json()["spec"]["cluster"] == "fleet" and own.json()["spec"]["hardware"]["gpus"]
    own_body = own.json()
    own_body["spec"]["rack"] = "r7"
    assert node_a.put(f"{API}/nodes/host-a", json=own_body).status_code == 200
    # Another node: neither read nor written, nor its runs, nor its reports.
    assert node_a.get(f"{API}/nodes/host-b").status_code == 403
    other = _as(server.token, server).get(f"{API}/nodes/host-b").json()
    other["spec"]["unschedulable"] = True
    assert node_a.put(f"{API}/nodes/host-b", json=other).status_code == 403
    assert node_a.get("/agent/v1/nodes/host-b/runs").status_code == 403
    assert report(server.url, a, "host-b").status_code == 403
    # Nothing else: no lists, no other kinds, no placements, no tokens.
    assert node_a.get(f"{API}/nodes").status_code == 403
    assert node_a.get(f"{API}/placements").status_code == 403
    assert node_a.get(f"{API}/namespaces/team-a/placements/job").status_code == 403
    assert (
        node_a.post(f"{API}/namespaces/team-a/placements", json=_placement("host-a")).status_code
        == 403
    )
    assert node_a.get(f"{API}/sites").status_code == 403
    assert node_a.get(f"{API}/clusters/fleet").status_code == 403
    r = node_a.post(f"{API}/tokens", json={"name": "more"})
    assert r.status_code == 403, r.text
    assert _as(b, server).get(f"{API}/nodes/host-b").status_code == 200


def test_wrong_foreign_and_revoked_tokens_are_refused(server: LiveServer) -> None:
    assert join(server.url, "not-the-secret", "host-x").status_code == 401
    # The right secret for another cluster does not open this one.
    r = join(server.url, "boot-secret-other", "host-x", cluster="fleet")
    assert r.status_code == 401
    assert _as(server.token, server).get(f"{API}/nodes/host-x").status_code == 404
    first = _token(server, "host-a")
    assert report(server.url, first, "host-a").status_code == 200
    # Joining again revokes the node's earlier token.
    second = _token(server, "host-a")
    assert report(server.url, first, "host-a").status_code == 401
    assert report(server.url, second, "host-a").status_code == 200
    admin = _as(server.token, server)
    mine = [t for t in admin.get(f"{API}/tokens").json()["items"] if t["subject"] == "node:host-a"]
    active = [t for t in mine if t["state"] == "active"]
    assert len(active) == 1 and active[0]["role"] == "node"
    assert admin.delete(f"{API}/tokens/{active[0]['id']}").status_code == 200
    refused = report(server.url, second, "host-a")
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    assert _as(second, server).get(f"{API}/nodes/host-a").status_code == 401
    # A node's name held by another kind of node is not taken over.
    r = join(server.url, "boot-secret-other", "host-a", cluster="other")
    assert r.status_code == 409 and "fleet" in r.json()["message"]


def test_a_malformed_report_names_the_field_and_changes_nothing(server: LiveServer) -> None:
    a, b = _token(server, "host-a"), _token(server, "host-b")
    good = {"gpus": [{"index": 0, "utilizationPct": 40.0}], "cpuUtilizationPct": 12.5}
    assert report(server.url, b, "host-b", **good).status_code == 200
    assert report(server.url, a, "host-a", **good).status_code == 200
    backend = server.app.state.agents.backend
    before = backend.observe().nodes
    bad = report(server.url, a, "host-a", gpus=[{"index": 0, "utilizationPct": 250}])
    assert bad.status_code == 422
    body = bad.json()
    assert body["details"]["causes"][0]["field"] == "gpus[0].utilizationPct", body
    assert "250" in body["message"]
    odd = report(server.url, a, "host-a", runs=[{"key": "no slash", "uid": "u", "attempt": 1}])
    assert odd.status_code == 422 and "runs[0]" in odd.json()["message"]
    unknown = report(server.url, a, "host-a", gpuz=[])
    assert unknown.status_code == 422 and "gpuz" in unknown.json()["message"]
    wrong_node = _as(a, server).post(
        "/agent/v1/nodes/host-a/reports", json={"node": "host-b", "seq": 2}
    )
    assert (
        wrong_node.status_code == 422
        and wrong_node.json()["details"]["causes"][0]["field"] == "node"
    )
    not_json = _as(a, server).post("/agent/v1/nodes/host-a/reports", content=b"{nope")
    assert not_json.status_code == 422
    after = backend.observe().nodes
    assert [(n.name, n.gpus) for n in after] == [(n.name, n.gpus) for n in before]


def test_a_node_lists_the_runs_placed_on_it_and_no_others(server: LiveServer) -> None:
    a, b = _token(server, "host-a"), _token(server, "host-b")
    admin = _as(server.token, server)
    assert (
        admin.post(
            f"{API}/tenants",
            json={
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Tenant",
                "metadata": {"name": "team-a"},
                "spec": {},
            },
        ).status_code
        == 201
    )
    workload = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "job", "namespace": "team-a"},
        "spec": {"type": "batch", "run": {"command": ["echo", "hello"], "env": {"A": "1"}}},
    }
    wl = admin.post(f"{API}/namespaces/team-a/workloads", json=workload)
    assert wl.status_code == 201, wl.text
    placement = _placement("host-a")
    placement["spec"]["workloadUid"] = wl.json()["metadata"]["uid"]
    p = admin.post(f"{API}/namespaces/team-a/placements", json=placement)
    assert p.status_code == 201, p.text
    p_body = p.json()
    p_body["status"] = {"phase": "Bound"}
    assert (
        admin.put(f"{API}/namespaces/team-a/placements/job/status", json=p_body).status_code == 200
    )
    runs_a = _as(a, server).get("/agent/v1/nodes/host-a/runs").json()["items"]
    assert [(r["key"], r["active"]) for r in runs_a] == [("team-a/job", True)]
    spec = runs_a[0]["spec"]
    assert spec["command"] == ["echo", "hello"] and spec["env"] == [["A", "1"]]
    assert spec["replicas"][0]["node"] == "host-a" and runs_a[0]["onPartition"] == "keep"
    assert _as(b, server).get("/agent/v1/nodes/host-b/runs").json()["items"] == []


def test_hosts_joining_at_once_each_get_a_token(server: LiveServer) -> None:
    """The first token writes of a store race for its token counter: every join wins."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: join(server.url, BOOT, f"burst-{i}"), range(8)))
    assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers]


def test_the_agent_role_no_longer_rebinds_the_fleet(server: LiveServer) -> None:
    """The platform `agent` role once wrote any Node or Placement: a telemetry service's
    token could move every workload. It now writes Events and Node status only."""
    _token(server, "host-a")
    admin = _as(server.token, server)
    made = admin.post(f"{API}/tokens", json={"name": "telemetry", "role": "agent"})
    assert made.status_code == 201, made.text
    service = _as(made.json()["token"], server)
    node = service.get(f"{API}/nodes/host-a").json()
    node["spec"]["unschedulable"] = True
    assert service.put(f"{API}/nodes/host-a", json=node).status_code == 403
    placement = _placement("host-a")
    assert service.post(f"{API}/namespaces/team-a/placements", json=placement).status_code == 403
    node = service.get(f"{API}/nodes/host-a").json()
    node["status"] = {"phase": "Ready"}
    assert service.put(f"{API}/nodes/host-a/status", json=node).status_code == 200
