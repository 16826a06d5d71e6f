"""Hostile and concurrent input over real HTTP, on SQLite and PostgreSQL: quotas hold under
parallel writers, concurrent applies of one object all succeed, numbers JSON cannot carry
are refused before anything is stored, and the store's files are private."""

from __future__ import annotations

import json
import math
import stat
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from stratum.core.errors import Invalid
from stratum.store.objects import ObjectStore
from stratum.testing.harness import AUTH, LiveServer, ServerProcess

API = "/apis/stratum.dev/v1alpha1"
PARALLEL = 12


def tenant(name: str = "t1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": spec,
    }


def workload(name: str, gpus: int = 8, ns: str = "t1", **contract: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "training", "contract": {"compute": {"gpus": gpus}, **contract}},
    }


def at_once(count: int, call: Callable[[httpx.Client, int], httpx.Response]) -> list[int]:
    """Run `call` from `count` threads released together; the status codes, in order."""
    barrier = threading.Barrier(count)
    codes: list[int] = [0] * count

    def run(i: int) -> None:
        with httpx.Client(headers=AUTH, timeout=60) as http:
            barrier.wait()
            codes[i] = call(http, i).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def names(url: str, plural: str = "workloads") -> list[str]:
    response = httpx.get(f"{url}{API}/{plural}", headers=AUTH)
    assert response.status_code == 200, response.text
    return [i["metadata"]["name"] for i in response.json()["items"]]


def resource_version(url: str) -> str:
    response = httpx.get(f"{url}{API}/workloads", headers=AUTH)
    return str(response.json()["metadata"]["resourceVersion"])


# -- quotas hold under parallel writers -------------------------------------------------
@pytest.mark.parametrize("verb", ["create", "apply", "apply-list"])
def test_parallel_workloads_never_exceed_the_gpu_quota(live_server: LiveServer, verb: str) -> None:
    url = live_server.url
    httpx.post(f"{url}{API}/tenants", json=tenant(quota={"gpus": 8}), headers=AUTH)
    base = f"{url}{API}/namespaces/t1/workloads"

    def send(http: httpx.Client, i: int) -> httpx.Response:
        body = workload(f"w{i}")
        if verb == "create":
            return http.post(base, json=body)
        if verb == "apply":
            return http.patch(f"{base}/w{i}", json=body)
        return http.post(f"{url}{API}/apply", json={"kind": "List", "items": [body]})

    codes = at_once(PARALLEL, send)

    admitted = 201 if verb != "apply-list" else 200
    assert Counter(codes) == {admitted: 1, 403: PARALLEL - 1}
    assert len(names(url)) == 1
    usage = httpx.get(f"{url}{API}/tenants/t1", headers=AUTH).json()["status"]["usage"]
    assert usage["gpus"] == 8


def test_each_tenants_quota_holds_when_several_tenants_write_at_once(
    live_server: LiveServer,
) -> None:
    url = live_server.url
    for name in ("a", "b", "c"):
        httpx.post(f"{url}{API}/tenants", json=tenant(name, quota={"gpus": 16}), headers=AUTH)

    def send(http: httpx.Client, i: int) -> httpx.Response:
        ns = "abc"[i % 3]
        return http.post(f"{url}{API}/namespaces/{ns}/workloads", json=workload(f"w{i}", ns=ns))

    codes = at_once(PARALLEL, send)
    assert Counter(codes) == {201: 6, 403: 6}  # two 8-GPU workloads fit each tenant


# -- server-side apply retries a race the caller did not cause ---------------------------
@pytest.mark.parametrize("exists", [False, True], ids=["new", "existing"])
def test_concurrent_identical_applies_all_succeed(live_server: LiveServer, exists: bool) -> None:
    url = live_server.url
    httpx.post(f"{url}{API}/tenants", json=tenant(), headers=AUTH)
    target = f"{url}{API}/namespaces/t1/workloads/w1"
    if exists:
        assert httpx.patch(target, json=workload("w1", gpus=1), headers=AUTH).status_code == 201
    body = workload("w1", gpus=2)

    codes = at_once(20, lambda http, _i: http.patch(target, json=body))

    assert set(codes) <= {200, 201}, Counter(codes)
    assert codes.count(201) == (0 if exists else 1)
    stored = httpx.get(target, headers=AUTH).json()
    assert stored["spec"]["contract"]["compute"]["gpus"] == 2
    assert stored["metadata"]["generation"] == (2 if exists else 1)


def test_a_stale_resource_version_sent_to_apply_is_still_a_conflict(
    live_server: LiveServer,
) -> None:
    url = live_server.url
    httpx.post(f"{url}{API}/tenants", json=tenant(), headers=AUTH)
    target = f"{url}{API}/namespaces/t1/workloads/w1"
    first = httpx.patch(target, json=workload("w1", gpus=1), headers=AUTH).json()
    httpx.patch(target, json=workload("w1", gpus=2), headers=AUTH)
    stale = workload("w1", gpus=3)
    stale["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    response = httpx.patch(target, json=stale, headers=AUTH)
    assert response.status_code == 409
    assert httpx.get(target, headers=AUTH).json()["spec"]["contract"]["compute"]["gpus"] == 2


# -- numbers JSON cannot carry -----------------------------------------------------------
@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e309"])
def test_non_finite_numbers_are_refused_and_listing_keeps_working(
    live_server: LiveServer, literal: str
) -> None:
    url = live_server.url
    httpx.post(f"{url}{API}/tenants", json=tenant(), headers=AUTH)
    before = resource_version(url)
    body = json.dumps(workload("w1", serviceLevel={"p99LatencyMs": 250})).replace(
        '"p99LatencyMs": 250', f'"p99LatencyMs": {literal}'
    )
    for method, path in (
        ("POST", "/namespaces/t1/workloads"),
        ("PATCH", "/namespaces/t1/workloads/w1"),
    ):
        response = httpx.request(
            method,
            f"{url}{API}{path}",
            content=body,
            headers={**AUTH, "content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        causes = response.json()["details"]["causes"]
        assert [c["field"] for c in causes] == ["spec.contract.serviceLevel.p99LatencyMs"]
    assert resource_version(url) == before
    assert names(url) == []
    assert httpx.get(f"{url}{API}/namespaces/t1/workloads", headers=AUTH).status_code == 200


def test_yaml_infinity_is_refused(live_server: LiveServer) -> None:
    url = live_server.url
    httpx.post(f"{url}{API}/tenants", json=tenant(), headers=AUTH)
    manifest = (
        "apiVersion: stratum.dev/v1alpha1\nkind: Workload\n"
        "metadata: {name: w1, namespace: t1}\n"
        "spec:\n  type: inference\n  contract:\n    serviceLevel: {p99LatencyMs: .inf}\n"
    )
    response = httpx.post(
        f"{url}{API}/namespaces/t1/workloads",
        content=manifest,
        headers={**AUTH, "content-type": "application/yaml"},
    )
    assert response.status_code == 422
    assert "spec.contract.serviceLevel.p99LatencyMs" in response.json()["message"]
    assert names(url) == []


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_the_store_refuses_to_write_a_number_json_cannot_carry(
    store: ObjectStore, value: float
) -> None:
    """The last guard, under the API's validation: nothing is written, nothing breaks."""
    site = {"kind": "Site", "metadata": {"name": "s1"}, "spec": {"powerBudgetKW": value}}
    with pytest.raises(Invalid) as caught, store.write() as tx:
        tx.create(site)
    assert caught.value.causes[0].field == "spec.powerBudgetKW"
    with store.write() as tx:
        tx.create({"kind": "Site", "metadata": {"name": "s2"}, "spec": {"powerBudgetKW": 5}})
        with pytest.raises(Invalid):
            tx.replace({"kind": "Site", "metadata": {"name": "s2"}, "spec": {"x": [value]}})
    with store.read() as tx:
        assert [s["metadata"]["name"] for s in tx.list("Site").items] == ["s2"]
        assert tx.get("Site", "", "s2")["spec"] == {"powerBudgetKW": 5}


# -- input that used to answer 500 -------------------------------------------------------
def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


BAD: list[tuple[str, Callable[[], dict[str, Any]], str]] = [
    (
        "gpus-true",
        lambda: workload("w1", gpus=True),
        "spec.contract.compute.gpus",
    ),
    (
        "gpus-string",
        lambda: workload("w1", gpus="8"),  # type: ignore[arg-type]
        "spec.contract.compute.gpus",
    ),
    (
        "huge-integer",
        lambda: workload("w1", lifecycle={"maxDurationSeconds": 10**30}),
        "spec.contract.lifecycle.maxDurationSeconds",
    ),
    (
        "name-newline",
        lambda: {**workload("w1"), "metadata": {"name": "foo\n", "namespace": "t1"}},
        "metadata.name",
    ),
    (
        "label-newline",
        lambda: {
            **workload("w1"),
            "metadata": {"name": "w1", "namespace": "t1", "labels": {"team": "bar\n"}},
        },
        "metadata.labels",
    ),
    (
        "naive-creation-timestamp",
        lambda: {
            **workload("w1"),
            "metadata": {
                "name": "w1",
                "namespace": "t1",
                "creationTimestamp": "2026-01-01T00:00:00",
            },
        },
        "metadata.creationTimestamp",
    ),
    (
        "naive-status-time",
        lambda: {**workload("w1"), "status": {"boundAt": "2026-01-01T00:00:00"}},
        "status.boundAt",
    ),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD, ids=[c[0] for c in BAD])
def test_bad_values_get_a_4xx_naming_the_field_and_change_nothing(
    live_server: LiveServer, case: str, body: Callable[[], dict[str, Any]], field: str
) -> None:
    url = live_server.url
    httpx.post(f"{url}{API}/tenants", json=tenant(), headers=AUTH)
    before = resource_version(url)
    for method, path in (
        ("POST", "/namespaces/t1/workloads"),
        ("PATCH", f"/namespaces/t1/workloads/{quote(body()['metadata']['name'])}"),
    ):
        response = httpx.request(
            method,
            f"{url}{API}{path}",
            content=json.dumps(body()),
            headers={**AUTH, "content-type": "application/json"},
        )
        assert response.status_code == 422, (case, response.text)
        status = response.json()
        assert any(c["field"].startswith(field) for c in status["details"]["causes"]), status
    assert resource_version(url) == before
    assert names(url) == []


@pytest.mark.parametrize("depth", [100, 400])
def test_deep_nesting_in_a_free_form_field_is_refused_naming_it(
    live_server: LiveServer, depth: int
) -> None:
    url = live_server.url
    cluster = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "c1"},
        "spec": {"site": "s1", "backendConfig": nested(depth)},
    }
    response = httpx.post(f"{url}{API}/clusters", content=json.dumps(cluster), headers=AUTH)
    assert response.status_code == 422, response.text
    [cause] = response.json()["details"]["causes"]
    assert cause["field"].startswith("spec.backendConfig.a.a") and "levels deep" in cause["message"]
    assert names(url, "clusters") == []


# -- the store's files are private -------------------------------------------------------
def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def store_files(database: Path) -> list[Path]:
    companions = [database.with_name(database.name + s) for s in ("-wal", "-shm")]
    return [database, *(p for p in companions if p.exists())]


def test_the_sqlite_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "data" / "stratum.db"
    store = ObjectStore.open(f"sqlite:///{database}")
    with store.write() as tx:
        tx.create({"kind": "Site", "metadata": {"name": "s1"}, "spec": {}})
    files = store_files(database)
    assert len(files) == 3  # WAL mode: the database, its log and its shared memory
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    store.close()


def test_opening_an_older_world_readable_store_makes_it_private(tmp_path: Path) -> None:
    database = tmp_path / "stratum.db"
    ObjectStore.open(f"sqlite:///{database}").close()
    database.chmod(0o644)
    ObjectStore.open(f"sqlite:///{database}").close()
    assert mode(database) == 0o600


def test_the_server_creates_a_private_store(tmp_path: Path) -> None:
    database = tmp_path / "new" / "stratum.db"
    server = ServerProcess(f"sqlite:///{database}", tmp_path).start()
    try:
        created = httpx.post(f"{server.url}{API}/tenants", json=tenant(), headers=AUTH)
        assert created.status_code == 201
        assert {p.name: mode(p) for p in store_files(database)} == {
            p.name: 0o600 for p in store_files(database)
        }
    finally:
        server.stop()


# -- simulator faults --------------------------------------------------------------------
@pytest.mark.parametrize("kw", [math.nan, math.inf, True, -1])
def test_a_power_cap_must_be_a_finite_power(kw: Any) -> None:
    from stratum.backends.simulated.faults import parse_fault

    with pytest.raises(ValueError, match=r"fault\.kw: expected a finite power"):
        parse_fault({"kind": "power-cap", "site": "edge", "kw": kw}, fault_id="f1")
