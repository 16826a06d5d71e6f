"""The control plane dies at the worst moments and nothing is lost or bound twice:
kill -9 in the middle of reconciling, and two replicas on one PostgreSQL at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum.client.http import StratumClient
from stratum.server.demo import demo_manifests
from stratum.store.objects import ObjectStore
from stratum.testing.harness import ADMIN_TOKEN, ServerProcess, postgres_schema
from stratum.testing.invariants import store_problems
from stratum.testing.waits import wait_for

FAST = ("--speed", "600", "--lease-seconds", "3")


def small_jobs(n: int, prefix: str = "job") -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Workload",
            "metadata": {
                "name": f"{prefix}-{i:04d}",
                "namespace": "research",
                "annotations": {"sim.stratum.dev/duration-seconds": "36000"},
            },
            "spec": {
                "type": "batch",
                "contract": {"compute": {"gpuMilli": 100 + (i * 37) % 400, "cpuCores": 1}},
            },
        }
        for i in range(n)
    ]


def phases(client: StratumClient) -> dict[str, str | None]:
    return {
        f"{w['metadata']['namespace']}/{w['metadata']['name']}": w["status"].get("phase")
        for w in client.list("Workload")
    }


def settled(workloads: dict[str, Any], expected: int) -> bool:
    p = [(w.get("status") or {}).get("phase") for w in workloads.values()]
    return len(p) == expected and all(v in ("Running", "Rejected") for v in p)


@pytest.mark.timeout(600)  # waits on events, each bounded by its own deadline
def test_kill_9_mid_reconcile_loses_nothing_and_binds_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(database_url, tmp_path, *FAST).start()
    docs = demo_manifests() + small_jobs(150)
    expected = sum(d["kind"] == "Workload" for d in docs)
    with StratumClient(server.url, ADMIN_TOKEN) as client:
        client.apply_list(docs)
        # Let the controllers get well into binding, then pull the plug.
        wait_for(
            client,
            "Workload",
            lambda w: (
                sum(
                    (o.get("status") or {}).get("phase") in ("Bound", "Running") for o in w.values()
                )
                >= 10
            ),
        )
    assert server.proc is not None
    server.proc.kill()
    assert server.stop() == -signal.SIGKILL
    store = ObjectStore.open(database_url)
    try:
        assert store_problems(store) == [], "the store is inconsistent right after the crash"
    finally:
        store.close()
    restarted = ServerProcess(database_url, tmp_path, *FAST).start()
    try:
        with StratumClient(restarted.url, ADMIN_TOKEN) as client:
            wait_for(client, "Workload", lambda w: settled(w, expected))
            final = phases(client)
        assert final["research/llama-finetune"] == "Running"
        assert sum(v == "Running" for v in final.values()) == expected
    finally:
        restarted.stop()
    store = ObjectStore.open(database_url)
    try:
        assert store_problems(store) == []
    finally:
        store.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Several replicas share one store only on PostgreSQL (SQLite is one file for one
    server), so this test runs there alone, on a private schema."""
    with postgres_schema() as url:
        yield url


@pytest.mark.timeout(600)
def test_two_replicas_on_one_postgres_act_once_and_fail_over(
    postgres_url: str, tmp_path: Path
) -> None:
    database_url = postgres_url
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = ServerProcess(database_url, tmp_path / "a", *FAST).start()
    b = ServerProcess(database_url, tmp_path / "b", *FAST).start()
    docs = demo_manifests() + small_jobs(100)
    expected = sum(d["kind"] == "Workload" for d in docs)
    try:
        with StratumClient(a.url, ADMIN_TOKEN) as ca, StratumClient(b.url, ADMIN_TOKEN) as cb:
            ca.apply_list(docs[: len(docs) // 2])
            cb.apply_list(docs[len(docs) // 2 :])
            wait_for(ca, "Workload", lambda w: settled(w, expected))
        store = ObjectStore.open(database_url)
        try:
            assert store_problems(store) == []
            from stratum.store import leases

            lease = leases.find(store, "controller-manager")
            assert lease is not None
        finally:
            store.close()
        # Kill whichever replica leads; the other must take over and keep binding.
        a_pid = a.proc.pid if a.proc else -1
        leader, follower = (a, b) if f"-{a_pid}-" in lease.holder else (b, a)
        assert leader.proc is not None
        leader.proc.kill()
        leader.stop()
        with StratumClient(follower.url, ADMIN_TOKEN) as client:
            client.apply_list(small_jobs(5, prefix="after-failover"))
            # Waits on the watch stream (each event re-checks), not on a fixed 60 s budget.
            wait_for(client, "Workload", lambda w: settled(w, expected + 5))
        store = ObjectStore.open(database_url)
        try:
            assert store_problems(store) == []
            lease = leases.find(store, "controller-manager")
            assert lease is not None and lease.transitions >= 2
        finally:
            store.close()
    finally:
        for server in (a, b):
            if server.proc is not None and server.proc.poll() is None:
                server.stop()
