"""Many watchers on one server share one reader of the change feed: each still gets every
event it may see, in order; a watcher that stops reading holds nobody back; a watcher that
is behind what the server holds in memory catches up from the store. SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from stratum.client.http import StratumClient
from stratum.server import feed, watch
from stratum.testing.harness import ADMIN_TOKEN, LiveServer

API = "/apis/stratum.dev/v1alpha1"


def tenant(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {},
    }


def workload(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"type": "batch", "contract": {"compute": {"gpuMilli": 250}}},
    }


class Watcher(threading.Thread):
    """Collects (type, kind, name) of events until it has `want` of them."""

    def __init__(self, url: str, kind: str, rv: str, want: int) -> None:
        super().__init__(daemon=True)
        self.url, self.kind, self.rv, self.want = url, kind, rv, want
        self.events: list[tuple[str, str, str]] = []
        self.versions: list[int] = []
        self.open = threading.Event()

    def run(self) -> None:
        with StratumClient(self.url, ADMIN_TOKEN) as client:
            self.open.set()
            for event in client.watch(self.kind, resource_version=self.rv, timeout=30):
                if event["type"] == "BOOKMARK":
                    continue
                meta = event["object"]["metadata"]
                self.events.append((event["type"], event["object"]["kind"], meta["name"]))
                self.versions.append(int(meta["resourceVersion"]))
                if len(self.events) >= self.want:
                    return


def stalled_watch(url: str, rv: str) -> socket.socket:
    """A watch whose client never reads: its socket buffers fill after a few events."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET {API}/workloads?watch=true&resourceVersion={rv} HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
    )
    return sock


def current_rv(client: StratumClient) -> str:
    return str(client.request("GET", f"{API}/workloads")["metadata"]["resourceVersion"])


def test_many_watchers_get_every_event_in_order_and_a_stalled_one_holds_none_back(
    client: StratumClient, live_server: LiveServer
) -> None:
    client.create(tenant("team-a"))
    rv = current_rv(client)
    writes = 30
    watchers = [Watcher(live_server.url, "Workload", rv, writes) for _ in range(20)]
    stalled = [stalled_watch(live_server.url, rv) for _ in range(2)]
    for w in watchers:
        w.start()
        w.open.wait(10)
    time.sleep(0.5)
    try:
        for i in range(writes):
            client.create(workload(f"w-{i:03d}"))
        for w in watchers:
            w.join(timeout=30)
    finally:
        for sock in stalled:
            sock.close()
    expected = [("ADDED", "Workload", f"w-{i:03d}") for i in range(writes)]
    for w in watchers:
        assert w.events == expected
        assert w.versions == sorted(w.versions)


def test_watchers_behind_the_shared_window_or_of_a_quiet_kind_miss_nothing(
    client: StratumClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "KEEP", 4)  # the server holds only the newest 4 changes
    client.create(tenant("team-a"))
    before = current_rv(client)
    tenants = Watcher(live_server.url, "Tenant", before, 1)
    workloads = Watcher(live_server.url, "Workload", before, 12)
    for w in (tenants, workloads):
        w.start()
        w.open.wait(10)
    time.sleep(0.5)
    for i in range(12):  # three times what the shared window holds
        client.create(workload(f"w-{i:03d}"))
    client.create(tenant("team-b"))
    tenants.join(timeout=30)
    workloads.join(timeout=30)
    assert tenants.events == [("ADDED", "Tenant", "team-b")]
    assert [name for _, _, name in workloads.events] == [f"w-{i:03d}" for i in range(12)]
    # A watch that starts from before all of it reads its way back from the store.
    late = Watcher(live_server.url, "Workload", before, 12)
    late.run()
    assert late.events == workloads.events


def test_each_write_reaches_every_watcher_when_it_is_made_not_at_the_next_poll(
    client: StratumClient, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the poll a minute away, only the wake-up that each write sends can deliver its
    # event within the test's wait. (Watchers that shared one read used to be answered
    # from a read that had started but not finished: the last write's event then came
    # only with the next poll.)
    monkeypatch.setattr(watch, "POLL_SECONDS", 60.0)
    client.create(tenant("team-a"))
    rv = current_rv(client)
    writes = 6
    watchers = [Watcher(live_server.url, "Workload", rv, writes) for _ in range(3)]
    for w in watchers:
        w.start()
        w.open.wait(10)
    time.sleep(0.5)
    for i in range(writes):
        client.create(workload(f"w-{i:03d}"))
        time.sleep(0.05)
    for w in watchers:
        w.join(timeout=20)
    for w in watchers:
        assert [name for _, _, name in w.events] == [f"w-{i:03d}" for i in range(writes)]
