"""Tenancy and governance over real HTTP, on SQLite and PostgreSQL: authentication, tenant
scoping on every route, roles, admission (quota, budget, policies), the audit chain."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stratum.client.http import StratumClient
from stratum.core.errors import Forbidden, Invalid, NotFound, Unauthorized
from stratum.server.security import OPEN_PATHS
from stratum.testing.harness import LiveServer
from stratum.testing.manifests import examples, tenant, workload
from tests import EXAMPLES

API = "/apis/stratum.dev/v1alpha1"


def member_tenant(name: str, **members: str) -> dict[str, Any]:
    body = tenant(name)
    body["spec"] = {"members": [{"user": u, "role": r} for u, r in members.items()]}
    return body


@pytest.fixture
def two_tenants(
    client: StratumClient, live_server: LiveServer
) -> Iterator[dict[str, StratumClient]]:
    """Tenants a and b, each with a workload named x; clients for ada (member of a), vic
    (viewer of a) and bob (member of b)."""
    client.apply_list(
        [
            member_tenant("a", ada="member", vic="viewer"),
            member_tenant("b", bob="member"),
            workload("x", ns="a"),
            workload("x", ns="b"),
            workload("secret-b", ns="b"),
        ]
    )
    clients = {}
    for user in ("ada", "vic", "bob"):
        made = client.create_token(f"{user}-laptop", subject=user)
        clients[user] = StratumClient(live_server.url, made["token"])
    yield clients
    for c in clients.values():
        c.close()


def routes(live_server: LiveServer) -> list[tuple[str, str]]:
    """(method, path) of every route the server serves, from its own OpenAPI document."""
    paths = live_server.app.openapi()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def _fill(path: str, namespace: str, name: str) -> str:
    return (
        path.replace("{namespace}", namespace).replace("{name}", name).replace("{token_id}", name)
    )


def test_every_route_but_health_and_docs_needs_a_token(live_server: LiveServer) -> None:
    checked = 0
    for method, path in routes(live_server):
        if path in OPEN_PATHS:
            continue
        r = httpx.request(
            method,
            live_server.url + _fill(path, "a", "x"),
            json={},
            headers={"Authorization": "Bearer stt_nope"},
        )
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["www-authenticate"].startswith("Bearer")
        checked += 1
    assert checked > 50
    assert httpx.get(f"{live_server.url}/healthz").status_code == 200


def test_a_tenant_cannot_see_or_guess_another_tenants_objects(
    two_tenants: dict[str, StratumClient], live_server: LiveServer
) -> None:
    ada = two_tenants["ada"]
    headers = dict(ada._http.headers)
    # Generated over the route table: every namespaced route answers for tenant b (which
    # exists, with an object named x) exactly as for a namespace that does not exist.
    compared = 0
    for method, path in routes(live_server):
        if "{namespace}" not in path:
            continue
        answers = []
        for ns in ("b", "zz-nowhere"):
            body = workload("x", ns=ns) if "/workloads" in path else {}
            params = {"watch": "true"} if method == "GET" and path.endswith("s") else {}
            r = httpx.request(
                method,
                live_server.url + _fill(path, ns, "x"),
                params=params,
                json=body,
                headers=headers,
            )
            answers.append((r.status_code, r.text.replace(ns, "NS")))
        assert answers[0] == answers[1], (method, path, answers)
        if "/workloads" in path:
            assert answers[0][0] == 404, (method, path, answers)
        compared += 1
    assert compared > 30
    # Lists and gets across namespaces show only a's objects.
    assert [(w["metadata"]["namespace"], w["metadata"]["name"]) for w in ada.list("Workload")] == [
        ("a", "x")
    ]
    assert [t["metadata"]["name"] for t in ada.list("Tenant")] == ["a"]
    with pytest.raises(NotFound) as err:
        ada.get("Tenant", "b")
    with pytest.raises(NotFound) as none:
        ada.get("Tenant", "zz")
    assert err.value.message.replace('"b"', "") == none.value.message.replace('"zz"', "")
    with pytest.raises(Forbidden):
        ada.list("Node")
    with pytest.raises(Forbidden):
        ada.list("AuditRecord")
    assert ada.list("Site") == []
    # Even the continue token of a page must not name b.
    r = httpx.get(f"{live_server.url}{API}/workloads", params={"limit": 1}, headers=headers)
    assert "b" not in str(r.json()["metadata"].get("continue") or "")


def test_watches_and_events_stay_inside_the_tenant(
    two_tenants: dict[str, StratumClient], client: StratumClient
) -> None:
    ada = two_tenants["ada"]
    seen: list[tuple[str, str]] = []

    def watch() -> None:
        for event in ada.watch("Workload", timeout=20):
            if event["type"] == "BOOKMARK":
                continue
            seen.append((event["type"], event["object"]["metadata"]["namespace"]))
            if event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "done":
                return

    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(0.5)
    client.create(workload("new-b", ns="b"))
    client.create(
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Event",
            "metadata": {"name": "e1", "namespace": "b"},
            "spec": {
                "involvedObject": {"kind": "Workload", "name": "x"},
                "reason": "Secret",
                "message": "b's business",
            },
        }
    )
    client.create(workload("done", ns="a"))
    thread.join(timeout=20)
    assert seen == [("ADDED", "a"), ("ADDED", "a")]
    assert ada.list("Event") == []
    with pytest.raises(NotFound):
        ada.list("Event", namespace="b")
    with pytest.raises(NotFound):
        next(ada.watch("Workload", namespace="b", timeout=5))


def test_roles(
    two_tenants: dict[str, StratumClient], client: StratumClient, live_server: LiveServer
) -> None:
    ada, vic, bob = two_tenants["ada"], two_tenants["vic"], two_tenants["bob"]
    assert ada.whoami()["tenantRoles"] == {"a": "member"}
    ada.create(workload("mine", ns="a"))
    assert vic.get("Workload", "mine", "a")["metadata"]["name"] == "mine"
    with pytest.raises(Forbidden, match="viewer"):
        vic.create(workload("nope", ns="a"))
    with pytest.raises(Forbidden):
        ada.create(
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Site",
                "metadata": {"name": "s"},
                "spec": {"kind": "edge", "provider": "p", "country": "FR"},
            }
        )
    with pytest.raises(Forbidden):
        ada.replace_status({**ada.get("Workload", "mine", "a"), "status": {"phase": "Running"}})
    with pytest.raises(NotFound):
        bob.delete("Workload", "mine", "a")
    # A tenant-admin makes service tokens bound to its tenant, and nothing more.
    client.apply(member_tenant("a", ada="tenant-admin", vic="viewer"))
    agent = ada.create_token("ci", service=True, tenant="a", role="member")
    assert agent["subject"] == "service:ci"
    with StratumClient(live_server.url, agent["token"]) as ci:
        ci.create(workload("from-ci", ns="a"))
    with pytest.raises(NotFound):
        ada.create_token("ci", service=True, tenant="b", role="member")
    with pytest.raises(Forbidden):
        ada.create_token("root", role="platform-admin")
    assert {t["subject"] for t in bob.list_tokens()} == {"bob"}


def test_token_lifecycle_expiry_and_revocation(
    client: StratumClient, live_server: LiveServer
) -> None:
    made = client.create_token("short", subject="ada", expires_in_seconds=1)
    assert made["token"].startswith("stt_") and made["state"] == "active"
    listed = {t["id"]: t for t in client.list_tokens()}
    assert "token" not in listed[made["id"]] and "secretHash" not in str(listed)
    with StratumClient(live_server.url, made["token"]) as short:
        assert short.whoami()["subject"] == "ada"
        time.sleep(1.2)
        with pytest.raises(Unauthorized, match="expired"):
            short.whoami()
    long = client.create_token("long", subject="ada")
    with StratumClient(live_server.url, long["token"]) as user:
        assert user.whoami()["subject"] == "ada"
        assert client.revoke_token(long["id"])["state"] == "revoked"
        with pytest.raises(Unauthorized, match="revoked"):
            user.whoami()
    forged = long["token"][:-4] + "AAAA"
    with StratumClient(live_server.url, forged) as bad, pytest.raises(Unauthorized):
        bad.whoami()
    with StratumClient(live_server.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.list("Site")


def test_policies_deny_warn_and_refuse_bad_expressions(client: StratumClient) -> None:
    client.apply_list(
        examples(EXAMPLES)[:0]
        + [d for d in examples(EXAMPLES) if d["kind"] in ("Site", "Tenant", "Policy")]
    )
    personal_us = workload("pii", ns="research")
    personal_us["spec"]["contract"] = {
        "sovereignty": {"jurisdictions": ["US"], "dataClassification": "personal"}
    }
    with pytest.raises(Forbidden) as err:
        client.create(personal_us)
    assert "policy personal-data-stays-in-eu" in err.value.message
    assert "rules out us-east-1" in err.value.message
    preemptible = workload("cheap", ns="research")
    preemptible["spec"]["contract"] = {"lifecycle": {"preemptible": True}}
    client.create(preemptible)
    assert client.warnings == [
        "policy no-preemptible-at-the-edge: preemptible work on edge "
        "sites is discouraged (little spare capacity) (at edge-lyon)"
    ]
    with pytest.raises(Forbidden, match="health-eu-on-dedicated-nodes"):
        client.create(workload("shared", ns="health-eu"))
    # Sovereignty no site of the fleet meets: accepted (a lawful site may join), and said.
    mars = workload("mars", ns="research")
    mars["spec"]["contract"] = {"sovereignty": {"countries": ["AQ"]}}
    client.create(mars)
    (said,) = client.warnings
    assert said.startswith("no site satisfies the workload's sovereignty (")
    assert "sovereignty.countries: outside AQ" in said and said.endswith("joins the fleet")
    bad = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Policy",
        "metadata": {"name": "bad"},
        "spec": {
            "expression": "workload.spec.type == 'training' &&\n (site.spec.kind ==",
            "message": "m",
        },
    }
    with pytest.raises(Invalid) as compile_err:
        client.create(bad)
    assert "line 2, column" in compile_err.value.message
    assert compile_err.value.causes[0].field == "spec.expression"


def test_quota_and_budget_refuse_at_the_boundary(client: StratumClient) -> None:
    client.apply_list([d for d in examples(EXAMPLES) if d["kind"] in ("Site", "Tenant")])

    def h100s(name: str, gpus: int, replicas: int = 1, hours: int | None = None) -> dict[str, Any]:
        w = workload(name, ns="research", replicas=replicas)
        w["spec"]["contract"] = {"compute": {"gpus": gpus, "models": ["H100-SXM5-80GB"]}}
        if hours:
            w["spec"]["contract"]["lifecycle"] = {"maxDurationSeconds": hours * 3600}
        return w

    client.create(h100s("big", 8, replicas=5))  # 40 of the 48 H100 allowed
    client.create(h100s("fits", 8))  # exactly 48
    with pytest.raises(Forbidden, match="may hold 48 H100-SXM5-80GB; it holds 48"):
        client.create(h100s("one-more", 1))
    tenants = {t["metadata"]["name"]: t for t in client.list("Tenant")}
    assert tenants["research"]["status"]["usage"]["gpusByModel"] == {"H100-SXM5-80GB": 48}
    client.delete("Workload", "fits", "research")
    # Budget: 30000 GPU-hours a month, 80% soft limit.
    research = client.get("Tenant", "research")
    research["status"] = {"usage": {"gpuHours": 23000}}
    client.replace_status(research)
    client.create(h100s("soft", 1, hours=1000))
    assert client.warnings and "soft limit 24000" in client.warnings[0]
    with pytest.raises(Forbidden, match="used 23000 of 30000 GPU-hours"):
        client.create(h100s("hard", 1, hours=7001))
    research = client.get("Tenant", "research")
    research["status"] = {"usage": {"gpuHours": 30000}}
    client.replace_status(research)
    with pytest.raises(Forbidden, match="no new work is admitted"):
        client.create(h100s("any", 1))


def test_a_cpu_quota_refuses_the_core_that_would_pass_it(client: StratumClient) -> None:
    lab = tenant("lab")
    lab["spec"] = {"quota": {"cpuCores": 16}}
    client.create(lab)

    def cpus(name: str, cores: float, replicas: int = 1) -> dict[str, Any]:
        w = workload(name, ns="lab", replicas=replicas)
        w["spec"]["contract"] = {"compute": {"cpuCores": cores}}
        return w

    client.create(cpus("pair", 6, replicas=2))  # 12 of 16
    client.create(cpus("rest", 4))  # exactly 16
    with pytest.raises(Forbidden, match="may use 16 CPU cores; it uses 16 and this workload"):
        client.create(cpus("one-more", 1))
    assert client.get("Tenant", "lab")["status"]["usage"]["cpuCores"] == 16
    client.delete("Workload", "rest", "lab")
    client.create(cpus("smaller", 2))  # what a deleted workload held is free again


def test_audit_chain_records_writes_and_catches_tampering(
    client: StratumClient, live_server: LiveServer
) -> None:
    from sqlalchemy import delete, select, update

    from stratum.store.tables import ObjectRow

    client.create(tenant("team-a"))
    created = client.create(workload("w"))
    created["spec"]["replicas"] = 3
    client.replace(created)
    client.delete("Workload", "w", "team-a")
    records = client.list("AuditRecord")
    assert [(r["spec"]["action"], r["spec"]["object"]["kind"]) for r in records] == [
        ("create", "Tenant"),
        ("create", "Workload"),
        ("update", "Workload"),
        ("delete", "Workload"),
    ]
    assert records[0]["spec"]["actor"] == "admin"
    assert records[0]["spec"]["sourceAddress"] == "127.0.0.1"
    assert records[2]["spec"]["beforeDigest"] == records[1]["spec"]["afterDigest"]
    assert records[3]["spec"]["afterDigest"] is None
    assert client.verify_audit()["ok"]
    # Through the API, the log cannot change.
    with pytest.raises(Forbidden):
        client.delete("AuditRecord", records[0]["metadata"]["name"])
    with pytest.raises(Forbidden):
        client.replace(records[1])
    # Straight in the database, it can: and verification says which record.
    engine = live_server.app.state.store.engine
    with engine.begin() as conn:
        row = conn.execute(
            select(ObjectRow.id, ObjectRow.body).where(
                ObjectRow.kind == "AuditRecord", ObjectRow.name == "000000000002"
            )
        ).one()
        body = dict(row.body)
        body["spec"] = {**body["spec"], "actor": "mallory"}
        conn.execute(update(ObjectRow).where(ObjectRow.id == row.id).values(body=body))
    result = client.verify_audit()
    assert not result["ok"]
    assert [p["sequence"] for p in result["problems"]] == [2]
    assert "edited" in result["problems"][0]["message"]
    with engine.begin() as conn:
        conn.execute(
            delete(ObjectRow).where(
                ObjectRow.kind == "AuditRecord", ObjectRow.name == "000000000003"
            )
        )
    problems = client.verify_audit()["problems"]
    assert any(p["sequence"] == 3 and "missing" in p["message"] for p in problems)
    assert re.search(r"record 2 was edited", str(problems))
