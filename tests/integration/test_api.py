"""The API over real HTTP on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import httpx
import pytest

from stratum.api.v1alpha1 import KINDS
from stratum.client.http import StratumClient
from stratum.core.errors import AlreadyExists, Conflict, Forbidden, Gone, Invalid, NotFound
from stratum.testing.harness import ADMIN_TOKEN, AUTH, LiveServer
from stratum.testing.manifests import examples, tenant, workload
from tests import EXAMPLES

API = "/apis/stratum.dev/v1alpha1"


def everything(client: StratumClient) -> list[dict[str, Any]]:
    return [o for k in KINDS for o in client.list(k)]


def test_apply_examples_then_read_them_back(client: StratumClient) -> None:
    docs = examples(EXAMPLES)
    results = client.apply_list(docs)
    assert [r["action"] for r in results] == ["created"] * len(docs)
    assert {r["kind"] for r in results} >= {"Site", "Cluster", "Tenant", "Workload", "Policy"}
    again = client.apply_list(docs)
    assert [r["action"] for r in again] == ["unchanged"] * len(docs)
    wl = client.get("Workload", "llama-pretrain", "research")
    assert wl["spec"]["contract"]["topology"]["withinReplica"] == "nvlink"
    assert wl["metadata"]["generation"] == 1
    assert len(client.list("Workload")) == 3
    assert len(client.list("Workload", namespace="research")) == 2
    assert [
        s["metadata"]["name"] for s in client.list("Site", label_selector="region=eu-central")
    ] == ["fra-1"]


def test_apply_changes_bump_generation_and_report_configured(client: StratumClient) -> None:
    client.apply_list([tenant("team-a"), workload("w", replicas=2)])
    changed = workload("w", replicas=4)
    result = client.apply_list([changed])
    assert result[0]["action"] == "configured"
    assert client.get("Workload", "w", "team-a")["metadata"]["generation"] == 2
    via_patch = client.apply(workload("w", replicas=8))
    assert via_patch["metadata"]["generation"] == 3


def test_a_file_is_applied_all_or_nothing(client: StratumClient) -> None:
    docs = [tenant("team-a")] + [workload(f"w{i}") for i in range(9)]
    docs[6]["spec"]["replicas"] = "many"
    with pytest.raises(Invalid) as err:
        client.apply_list(docs)
    assert err.value.message.startswith("items[6] (Workload team-a/w5)")
    assert [c.field for c in err.value.causes] == ["items[6].spec.replicas"]
    assert everything(client) == []


def test_a_late_semantic_failure_rolls_back_the_earlier_writes(client: StratumClient) -> None:
    docs = [tenant("team-a"), workload("ok"), workload("orphan", ns="no-such-tenant")]
    with pytest.raises(NotFound) as err:
        client.apply_list(docs)
    assert "items[2] (Workload no-such-tenant/orphan)" in err.value.message
    assert 'create Tenant "no-such-tenant" first' in err.value.message
    assert everything(client) == []


def test_duplicate_objects_in_one_file_are_refused(client: StratumClient) -> None:
    with pytest.raises(Invalid, match="appears twice"):
        client.apply_list([tenant("a"), tenant("a")])


def test_create_replace_conflict_and_delete(client: StratumClient) -> None:
    client.create(tenant("team-a"))
    created = client.create(workload("w"))
    with pytest.raises(AlreadyExists):
        client.create(workload("w"))
    stale = copy.deepcopy(created)
    created["spec"]["replicas"] = 2
    updated = client.replace(created)
    assert updated["metadata"]["generation"] == 2
    stale["spec"]["replicas"] = 3
    with pytest.raises(Conflict, match="has been modified"):
        client.replace(stale)
    assert client.get("Workload", "w", "team-a")["spec"]["replicas"] == 2
    unconditional = workload("w", replicas=5)
    assert client.replace(unconditional)["spec"]["replicas"] == 5
    with pytest.raises(Conflict, match="still owns Workload"):
        client.delete("Tenant", "team-a")
    deleted = client.delete("Workload", "w", "team-a")
    assert deleted["metadata"]["name"] == "w"
    with pytest.raises(NotFound):
        client.get("Workload", "w", "team-a")
    client.delete("Tenant", "team-a")


def test_status_is_written_only_through_the_status_endpoint(client: StratumClient) -> None:
    client.create(tenant("team-a"))
    body = workload("w")
    body["status"] = {"phase": "Running"}
    created = client.create(body)
    assert "phase" not in created["status"], "create must not take a status from the caller"
    created["status"] = {"phase": "Bound", "observedGeneration": 1}
    created["spec"]["replicas"] = 99
    after = client.replace_status(created)
    assert after["status"]["phase"] == "Bound"
    assert after["spec"]["replicas"] == 1 and after["metadata"]["generation"] == 1
    after["spec"]["replicas"] = 2
    after["status"] = {"phase": "Failed"}
    replaced = client.replace(after)
    assert replaced["status"]["phase"] == "Bound", "a spec write must not touch the status"


def test_scope_rules(client: StratumClient, live_server: LiveServer) -> None:
    with pytest.raises(Invalid, match="cluster-scoped: remove metadata.namespace"):
        client.create({**tenant("x"), "metadata": {"name": "x", "namespace": "y"}})
    client.create(tenant("team-a"))
    r = httpx.post(
        f"{live_server.url}{API}/namespaces/team-b/workloads",
        json=workload("w", ns="team-a"),
        headers=AUTH,
    )
    assert r.status_code == 422
    assert "URL says 'team-b'" in r.json()["message"]
    r = httpx.put(
        f"{live_server.url}{API}/namespaces/team-a/workloads/other",
        json=workload("w"),
        headers=AUTH,
    )
    assert r.status_code == 422 and "metadata.name" in r.json()["message"]
    with pytest.raises(Forbidden, match="written by the server only"):
        client.create(
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "AuditRecord",
                "metadata": {"name": "a"},
                "spec": {
                    "sequence": 1,
                    "timestamp": "2026-01-01T00:00:00Z",
                    "actor": "me",
                    "action": "create",
                    "object": {"kind": "Site", "name": "x"},
                },
            }
        )


def test_published_templates_are_immutable(client: StratumClient) -> None:
    tmpl: dict[str, Any] = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "ClusterTemplate",
        "metadata": {"name": "pod-1.0.0"},
        "spec": {"version": "1.0.0", "published": True, "body": {"site": "x"}},
    }
    client.create(tmpl)
    tmpl["spec"]["body"] = {"site": "y"}
    with pytest.raises(Invalid, match="published and immutable"):
        client.apply(tmpl)
    tmpl["metadata"]["labels"] = {"featured": "yes"}
    tmpl["spec"]["body"] = {"site": "x"}
    assert client.apply(tmpl)["metadata"]["labels"] == {"featured": "yes"}


def test_list_pages_and_selectors_over_http(client: StratumClient, live_server: LiveServer) -> None:
    client.apply_list(
        [
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Site",
                "metadata": {"name": f"s{i:02d}", "labels": {"odd": str(i % 2)}},
                "spec": {"kind": "edge", "provider": "p", "country": "FR"},
            }
            for i in range(12)
        ]
    )
    r = httpx.get(f"{live_server.url}{API}/sites", params={"limit": 5}, headers=AUTH)
    page = r.json()
    assert len(page["items"]) == 5 and page["metadata"]["continue"]
    assert page["kind"] == "SiteList"
    assert len(client.list("Site", limit=5)) == 12
    assert len(client.list("Site", label_selector="odd=1")) == 6
    r = httpx.get(
        f"{live_server.url}{API}/sites", params={"labelSelector": "odd in ("}, headers=AUTH
    )
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"


def test_watch_streams_changes_and_resumes(client: StratumClient) -> None:
    client.create(tenant("team-a"))
    start = client.request("GET", f"{API}/workloads")["metadata"]["resourceVersion"]
    events: list[dict[str, Any]] = []

    def watch() -> None:
        for event in client.watch("Workload", resource_version=start, timeout=20):
            events.append(event)
            if len(events) == 3:
                return

    with StratumClient(client.server, ADMIN_TOKEN) as writer:
        thread = threading.Thread(target=watch)
        thread.start()
        time.sleep(0.3)
        created = writer.create(workload("w"))
        created["spec"]["replicas"] = 2
        writer.replace(created)
        writer.delete("Workload", "w", "team-a")
        thread.join(timeout=20)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["spec"]["replicas"] == 2
    # A watcher that reconnects from the first event's version sees only what came after.
    resumed = []
    for event in client.watch(
        "Workload", resource_version=events[0]["object"]["metadata"]["resourceVersion"], timeout=20
    ):
        resumed.append(event["type"])
        if len(resumed) == 2:
            break
    assert resumed == ["MODIFIED", "DELETED"]


def test_watch_from_a_compacted_version_is_gone(
    client: StratumClient, live_server: LiveServer
) -> None:
    for i in range(3):
        client.create(tenant(f"t{i}"))
    with live_server.app.state.store.write() as tx:
        tx.compact(keep=1)
    with pytest.raises(Gone, match="too old"):
        next(client.watch("Tenant", resource_version="1", timeout=5))


def test_health_readiness_and_openapi(live_server: LiveServer) -> None:
    assert httpx.get(f"{live_server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{live_server.url}/readyz").status_code == 200
    spec = httpx.get(f"{live_server.url}/openapi.json").json()
    assert f"{API}/namespaces/{{namespace}}/workloads/{{name}}/status" in spec["paths"]
    assert "Workload" in spec["components"]["schemas"]
    post = spec["paths"][f"{API}/sites"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Site")
    discovery = httpx.get(f"{live_server.url}{API}", headers=AUTH).json()
    assert {r["kind"] for r in discovery["resources"]} == {k.KIND for k in KINDS}


def test_many_clients_updating_one_object_lose_no_update(
    client: StratumClient, live_server: LiveServer
) -> None:
    client.create(tenant("team-a"))
    client.create(
        {
            **workload("counter"),
            "metadata": {"name": "counter", "namespace": "team-a", "labels": {"n": "0"}},
        }
    )
    conflicts = [0]

    def bump(times: int) -> None:
        with StratumClient(live_server.url, live_server.token) as c:
            for _ in range(times):
                while True:
                    obj = c.get("Workload", "counter", "team-a")
                    obj["metadata"]["labels"]["n"] = str(int(obj["metadata"]["labels"]["n"]) + 1)
                    try:
                        c.replace(obj)
                        break
                    except Conflict:
                        conflicts[0] += 1

    threads = [threading.Thread(target=bump, args=(6,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.get("Workload", "counter", "team-a")["metadata"]["labels"]["n"] == "36"
