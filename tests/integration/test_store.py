"""The object store on a real SQLite file and a real PostgreSQL: concurrency, generations,
selectors, pagination and the change feed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from stratum.core.errors import AlreadyExists, Conflict, Gone, Invalid, NotFound
from stratum.core.selectors import parse_selector
from stratum.store.objects import ObjectStore


def site(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Site",
        "metadata": {"name": name, "labels": labels},
        "spec": {"kind": "datacenter", "provider": "equinix", "country": "DE"},
        "status": {"nodes": 0},
    }


def test_create_get_and_duplicate(store: ObjectStore) -> None:
    with store.write() as tx:
        created = tx.create(site("fra-1"))
    meta = created["metadata"]
    assert meta["generation"] == 1 and int(meta["resourceVersion"]) > 0 and meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    with store.read() as tx:
        assert tx.get("Site", "", "fra-1") == created
    with pytest.raises(AlreadyExists), store.write() as tx:
        tx.create(site("fra-1"))
    with pytest.raises(NotFound, match='Site "nope" not found'), store.read() as tx:
        tx.get("Site", "", "nope")


def test_server_fields_from_the_caller_are_ignored(store: ObjectStore) -> None:
    forged = site("fra-1")
    forged["metadata"].update(uid="forged", generation=99, resourceVersion="12345")
    with store.write() as tx:
        created = tx.create(forged)
    assert created["metadata"]["uid"] != "forged"
    assert created["metadata"]["generation"] == 1


def test_generation_bumps_on_spec_change_only(store: ObjectStore) -> None:
    with store.write() as tx:
        obj = tx.create(site("fra-1"))
    obj["metadata"]["labels"] = {"tier": "gold"}
    with store.write() as tx:
        relabelled = tx.replace(obj)
    assert relabelled["metadata"]["generation"] == 1
    assert int(relabelled["metadata"]["resourceVersion"]) > int(obj["metadata"]["resourceVersion"])
    relabelled["status"] = {"nodes": 4}
    with store.write() as tx:
        status = tx.replace(relabelled, status_only=True)
    assert status["metadata"]["generation"] == 1 and status["status"] == {"nodes": 4}
    status["spec"]["country"] = "FR"
    with store.write() as tx:
        respecced = tx.replace(status)
    assert respecced["metadata"]["generation"] == 2
    assert respecced["status"] == {"nodes": 4}, "a spec write must keep the status"


def test_unchanged_write_is_not_a_new_version(store: ObjectStore) -> None:
    with store.write() as tx:
        obj = tx.create(site("fra-1"))
    with store.write() as tx:
        again = tx.replace(obj)
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_stale_resource_version_is_a_conflict_and_changes_nothing(store: ObjectStore) -> None:
    with store.write() as tx:
        obj = tx.create(site("fra-1"))
    first, second = dict(obj), dict(obj)
    first = {**obj, "spec": {**obj["spec"], "country": "FR"}}
    second = {**obj, "spec": {**obj["spec"], "country": "NL"}}
    with store.write() as tx:
        tx.replace(first)
    with pytest.raises(Conflict, match="has been modified"), store.write() as tx:
        tx.replace(second)
    with store.read() as tx:
        assert tx.get("Site", "", "fra-1")["spec"]["country"] == "FR"
    with pytest.raises(Conflict), store.write() as tx:
        tx.delete("Site", "", "fra-1", resource_version=obj["metadata"]["resourceVersion"])
    with pytest.raises(Invalid, match="not a resourceVersion"), store.write() as tx:
        tx.replace({**first, "metadata": {**first["metadata"], "resourceVersion": "abc"}})


def test_a_failed_transaction_writes_nothing(store: ObjectStore) -> None:
    with pytest.raises(AlreadyExists), store.write() as tx:
        tx.create(site("a"))
        tx.create(site("b"))
        tx.create(site("a"))
    with store.read() as tx:
        assert tx.list("Site").items == []
        assert tx.changes_since(0) == []


def test_dry_run_checks_but_keeps_nothing(store: ObjectStore) -> None:
    with store.write(dry_run=True) as tx:
        tx.create(site("a"))
    with store.read() as tx:
        assert tx.find("Site", "", "a") is None


def test_list_with_selector_and_pagination(store: ObjectStore) -> None:
    with store.write() as tx:
        for i in range(25):
            tx.create(site(f"site-{i:02d}", tier="gold" if i % 3 == 0 else "silver"))
    gold = parse_selector("tier=gold")
    names: list[str] = []
    token = None
    pages = 0
    while True:
        with store.read() as tx:
            page = tx.list("Site", selector=gold, limit=4, continue_token=token)
        names += [o["metadata"]["name"] for o in page.items]
        pages += 1
        token = page.continue_token
        if not token:
            break
    assert names == [f"site-{i:02d}" for i in range(0, 25, 3)]
    assert pages == 3
    with pytest.raises(Invalid, match="continue token"), store.read() as tx:
        tx.list("Site", continue_token="garbage!")


def test_namespaces_keep_same_names_apart(store: ObjectStore) -> None:
    def wl(ns: str) -> dict[str, Any]:
        return {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": "train", "namespace": ns},
            "spec": {"type": "training"},
        }

    with store.write() as tx:
        tx.create(wl("a"))
        tx.create(wl("b"))
    with store.read() as tx:
        assert [o["metadata"]["namespace"] for o in tx.list("Workload").items] == ["a", "b"]
        assert len(tx.list("Workload", namespace="b").items) == 1


def test_change_feed_resumes_from_a_resource_version(store: ObjectStore) -> None:
    with store.write() as tx:
        a = tx.create(site("a"))
        tx.create(site("b"))
    mark = int(a["metadata"]["resourceVersion"])
    with store.write() as tx:
        tx.delete("Site", "", "a")
    with store.read() as tx:
        changes = tx.changes_since(mark)
    assert [(c.type, c.object["metadata"]["name"]) for c in changes] == [
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    assert [c.resource_version for c in changes] == sorted(c.resource_version for c in changes)
    with store.write() as tx:
        tx.compact(keep=1)
    with pytest.raises(Gone, match="too old"), store.read() as tx:
        tx.changes_since(0)
    with pytest.raises(Invalid, match="in the future"), store.read() as tx:
        tx.changes_since(10_000)


def test_concurrent_writers_never_lose_an_update(store: ObjectStore) -> None:
    """Eight threads each add 10 to a counter label with read-modify-write and retry on 409:
    the total must be exact."""
    with store.write() as tx:
        tx.create(site("counter", n="0"))
    conflicts = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal conflicts
        for _ in range(10):
            while True:
                with store.read() as tx:
                    obj = tx.get("Site", "", "counter")
                obj["metadata"]["labels"]["n"] = str(int(obj["metadata"]["labels"]["n"]) + 1)
                try:
                    with store.write() as tx:
                        tx.replace(obj)
                    break
                except Conflict:
                    with lock:
                        conflicts += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with store.read() as tx:
        final = tx.get("Site", "", "counter")
        changes = tx.changes_since(0, kind="Site", limit=1000)
    assert final["metadata"]["labels"]["n"] == "80"
    assert len(changes) == 81
    rvs = [c.resource_version for c in changes]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)


def test_reopening_keeps_everything(database_url: str) -> None:
    first = ObjectStore.open(database_url)
    with first.write() as tx:
        tx.create(site("kept"))
    first.close()
    second = ObjectStore.open(database_url)  # migrations run again: must be a no-op
    with second.read() as tx:
        assert tx.get("Site", "", "kept")["spec"]["country"] == "DE"
    second.close()
