"""Multi-replica campaign: three `stratum serve` replicas on one PostgreSQL schema with a
short controller lease; applies, deletes and reads spread over all of them; kill -9 the
lease holder mid-load.

What it checks:
- nothing acknowledged is lost: every workload whose apply got a 2xx exists at the end
  (unless a later delete of it got a 2xx), and every acknowledged delete stays deleted;
- no object is reconciled by two replicas at once: each replica logs (as JSON) every
  event its controllers record, with the time; merged, the replica that acts changes no
  more often than the lease changed hands (read from the lease table every 100 ms and at
  the end), and no workload has more Placements created (audit log) than its attempts;
- the invariants hold once the survivors have settled the fleet.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from stratum.client.http import StratumClient
from stratum.core.clock import SystemClock
from stratum.reconcile.manager import LEASE_NAME
from stratum.server.demo import demo_manifests
from stratum.store import audit, leases
from stratum.store.objects import ObjectStore
from stratum.testing.campaigns import checks, fleet
from stratum.testing.campaigns.record import Record, percentile
from stratum.testing.campaigns.servers import ServerProcess, new_admin_token, new_audit_secret

API = "/apis/stratum.dev/v1alpha1"
# Lease changes are polled every 100 ms: events this close to one are not judged.
GRACE = 0.3


@dataclass(frozen=True, slots=True)
class ReplicaSettings:
    replicas: int = 3
    seed: int = 4
    speed: float = 120.0
    lease_seconds: float = 3.0
    load_seconds: float = 30.0
    # Kill the lease holder this many seconds into the load, `kills` times, evenly spaced.
    kills: int = 1
    writers: int = 2
    quiet_timeout: float = 120.0


@dataclass
class _Load:
    acked_creates: set[tuple[str, str]]
    acked_deletes: set[tuple[str, str]]
    # Deletes sent without an answer (the replica died): they may or may not have happened.
    tried_deletes: set[tuple[str, str]]
    latencies: list[float]
    failures: int = 0


def run_multi_replica(
    database_url: str, home: Path, settings: ReplicaSettings | None = None
) -> Record:
    s = settings or ReplicaSettings()
    record = Record("multi-replica", s.seed)
    token = new_admin_token()
    args = (
        "--speed",
        str(s.speed),
        "--seed",
        str(s.seed),
        "--lease-seconds",
        str(s.lease_seconds),
        "--log-format",
        "json",
    )
    began = time.monotonic()
    # One audit key for all replicas: they append to one chain.
    env = {"STRATUM_AUDIT_KEYS": new_audit_secret()}
    servers = [
        ServerProcess(
            database_url, home / f"replica-{i}", *args, token=token, log_level="info", env=env
        )
        for i in range(s.replicas)
    ]
    all_servers = list(servers)  # every process started, killed ones too: their logs count
    store = ObjectStore.open(database_url)
    stop = threading.Event()
    poll_stop = threading.Event()  # the lease is watched until the very end
    holders: list[tuple[float, str, int]] = []
    polled_until = [0.0]
    try:
        for server in servers:
            server.start()
        with StratumClient(servers[0].url, token) as client:
            client.apply_list(demo_manifests())
            fleet_map = fleet.wait_for_fleet(client)
        poller = threading.Thread(
            target=_poll_lease, args=(store, poll_stop, holders, polled_until), daemon=True
        )
        poller.start()
        load = _Load(set(), set(), set(), [])
        lock = threading.Lock()
        workers = [
            threading.Thread(
                target=_writer,
                args=(w, s, servers, token, stop, load, lock, fleet_map),
                daemon=True,
            )
            for w in range(s.writers)
        ]
        for t in workers:
            t.start()
        kill_times: list[str] = []
        for k in range(s.kills):
            time.sleep(s.load_seconds / (s.kills + 1))
            victim = _holder(store, servers)
            if victim is None:
                record.violation(f"kill {k + 1}: no live replica holds the lease")
                continue
            victim.kill9()
            kill_times.append(SystemClock().now().astimezone().isoformat(timespec="milliseconds"))
            record.inputs["kill -9 of the lease holder"] += 1
            if k + 1 < s.kills:
                # A crashed replica comes back (on a new port), so the next kill again
                # leaves two replicas to take over.
                slot = servers.index(victim)
                home_k = home / f"replica-{slot}-restart-{k + 1}"
                servers[slot] = ServerProcess(
                    database_url, home_k, *args, token=token, log_level="info", env=env
                )
                all_servers.append(servers[slot])
                servers[slot].start()
        time.sleep(s.load_seconds / (s.kills + 1))
        stop.set()
        for t in workers:
            t.join(timeout=60)
        # The replica that leads now: its controllers' passes tell when the fleet is quiet.
        leader = _holder(store, servers) or next(x for x in servers if x.alive)
        with StratumClient(leader.url, token) as client:
            if not checks.wait_quiet(client, timeout=s.quiet_timeout):
                record.violation("the fleet did not go quiet after the failover")
        # Not checked here: leftover simulated runs. Each replica simulates the data plane
        # in its own process, so a run one leader started lives on in its memory after
        # another takes over; only the store is shared. (The soak and crash campaigns,
        # with one server, check it.)
        for p in checks.settle(store, audit_secret=env["STRATUM_AUDIT_KEYS"]):
            record.violation(f"after the failover: {p}")
        record.figures["reconcile pass seconds by replica (mean, passes over lease)"] = {
            str(i): _pass_seconds(x, token, s.lease_seconds)
            for i, x in enumerate(servers)
            if x.alive
        }
        poll_stop.set()
        poller.join(timeout=10)
        _lost(store, load, record)
        last = leases.find(store, LEASE_NAME)
        # `transitions` counts holders since the lease was made: changes of hand are one less.
        transitions = (last.transitions - 1) if last else 0
        _one_at_a_time(all_servers, transitions, holders, polled_until[0], record)
        _placed_once(store, record)
        if not record.violations:
            record.survived = s.kills
        record.inputs["acknowledged creates"] = len(load.acked_creates)
        record.inputs["acknowledged deletes"] = len(load.acked_deletes)
        record.inputs["requests refused or unanswered"] = load.failures
        lat = [x * 1000 for x in load.latencies]
        record.figures["request ms p50/p99/max"] = [
            round(percentile(lat, 50), 1),
            round(percentile(lat, 99), 1),
            round(max(lat, default=0.0), 1),
        ]
        record.figures["lease changes of hand"] = transitions
        record.figures["lease holders seen"] = len({h for _, h, _ in holders})
        record.figures["kills at"] = kill_times
    finally:
        stop.set()
        poll_stop.set()
        store.close()
        for server in all_servers:
            if server.alive:
                server.stop()
        record.seconds = time.monotonic() - began
    return record


def _poll_lease(
    store: ObjectStore,
    stop: threading.Event,
    holders: list[tuple[float, str, int]],
    polled_until: list[float],
) -> None:
    while not stop.is_set():
        try:
            lease = leases.find(store, LEASE_NAME)
        except Exception:  # the store is shared and busy: a missed sample is fine
            lease = None
        if lease is not None and (not holders or holders[-1][1] != lease.holder):
            holders.append((SystemClock().now().timestamp(), lease.holder, lease.transitions))
        if lease is not None:
            polled_until[0] = SystemClock().now().timestamp()
        stop.wait(0.1)


def _holder(store: ObjectStore, servers: list[ServerProcess]) -> ServerProcess | None:
    """The live replica whose controllers hold the lease (its pid is in the holder id)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lease = leases.find(store, LEASE_NAME)
        for server in servers:
            if server.alive and lease is not None and f"-{server.pid}-" in lease.holder:
                return server
        time.sleep(0.2)
    return None


def _writer(
    w: int,
    s: ReplicaSettings,
    servers: list[ServerProcess],
    token: str,
    stop: threading.Event,
    load: _Load,
    lock: threading.Lock,
    fleet_map: fleet.FleetMap,
) -> None:
    rng = random.Random(s.seed * 100 + w)
    headers = {"Authorization": f"Bearer {token}"}
    clients: dict[str, httpx.Client] = {}
    made = 0
    try:
        while not stop.is_set():
            url = servers[rng.randrange(len(servers))].url  # a restarted replica: new port
            if url not in clients:
                clients[url] = httpx.Client(base_url=url, headers=headers, timeout=30)
            http = clients[url]
            roll = rng.random()
            began = time.monotonic()
            try:
                if roll < 0.6:
                    made += 1
                    body = fleet.workload(
                        f"rep-{w}-{made:05d}",
                        fleet.draw_shape(rng),
                        rng,
                        duration=rng.uniform(600, 3600),
                    )
                    key = (body["metadata"]["namespace"], body["metadata"]["name"])
                    r = http.patch(f"{API}/namespaces/{key[0]}/workloads/{key[1]}", json=body)
                    if r.status_code < 300:
                        with lock:
                            load.acked_creates.add(key)
                    else:
                        load.failures += 1
                elif roll < 0.75:
                    with lock:
                        live = sorted(load.acked_creates - load.acked_deletes)
                    if live:
                        key = rng.choice(live)
                        with lock:
                            load.tried_deletes.add(key)
                        r = http.delete(f"{API}/namespaces/{key[0]}/workloads/{key[1]}")
                        with lock:
                            if r.status_code < 300:
                                load.acked_deletes.add(key)
                            else:  # answered and refused: it did not happen
                                load.tried_deletes.discard(key)
                else:
                    http.get(f"{API}/workloads", params={"limit": 50})
                load.latencies.append(time.monotonic() - began)
            except httpx.TransportError:
                load.failures += 1  # the replica died under the request: not acknowledged
            stop.wait(0.05)
    finally:
        for c in clients.values():
            c.close()


def _lost(store: ObjectStore, load: _Load, record: Record) -> None:
    with store.read() as tx:
        exists = {
            (w["metadata"]["namespace"], w["metadata"]["name"]) for w in tx.list("Workload").items
        }
    for key in sorted(load.acked_creates - load.acked_deletes - load.tried_deletes):
        if key not in exists:
            record.violation(f"acknowledged workload {key[0]}/{key[1]} is lost")
    for key in sorted(load.acked_deletes):
        if key in exists:
            record.violation(f"acknowledged delete of {key[0]}/{key[1]} was undone")


def _one_at_a_time(
    servers: list[ServerProcess],
    transitions: int,
    holders: list[tuple[float, str, int]],
    polled_until: float,
    record: Record,
) -> None:
    """Merge the replicas' event logs by time: the acting replica may change only when the
    lease changed hands, and a replica acts only while the lease table names it (as
    polled every 100 ms; an event within `GRACE` of a change of hand is not judged)."""
    timeline: list[tuple[float, int, dict[str, Any]]] = []
    for i, server in enumerate(servers):
        for line in server.read_log().splitlines():
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("logger") == "stratum.events":
                at = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
                timeline.append((at, i, entry))
    timeline.sort(key=lambda x: (x[0], x[1]))
    switches = []
    for (t0, a, _), (t1, b, _) in itertools.pairwise(timeline):
        if a != b:
            switches.append(f"{_hms(t0)} replica {a} -> {_hms(t1)} replica {b}")
    record.figures["events logged by replica"] = {
        str(i): sum(1 for _, r, _ in timeline if r == i) for i in range(len(servers))
    }
    record.figures["acting replica changes"] = len(switches)
    if len(switches) > transitions:
        record.violation(
            f"the acting replica changed {len(switches)} times but the lease only "
            f"{transitions}: two replicas reconciled at once ({'; '.join(switches[:5])})"
        )
    if not timeline:
        record.violation("no replica logged any controller event: nothing was reconciled")
    pids = {i: f"-{server.pid}-" for i, server in enumerate(servers) if server.proc}
    outside = []
    for at, i, entry in timeline:
        if not holders or at < holders[0][0] or at > polled_until:
            continue
        if any(abs(at - changed) < GRACE for changed, _, _ in holders[1:]):
            continue
        holder = [h for changed, h, _ in holders if changed <= at][-1]
        if pids.get(i, "?") not in holder:
            outside.append(f"{_hms(at)} replica {i}: {entry.get('message', '')[:70]}")
    record.figures["events by a replica not holding the lease"] = len(outside)
    if outside:
        record.violation(
            f"{len(outside)} controller event(s) came from a replica that did not hold the "
            f"lease then: {'; '.join(outside[:5])}"
        )


def _hms(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3]


def _placed_once(store: ObjectStore, record: Record) -> None:
    """No workload has more Placements created (per the audit log) than placement attempts."""
    with store.read() as tx:
        creates: dict[str, int] = {}
        for r in audit.records(tx):
            spec = r["spec"]
            obj = spec.get("object") or {}
            if spec.get("action") == "create" and obj.get("kind") == "Placement":
                key = f"{obj.get('namespace')}/{obj.get('name')}"
                creates[key] = creates.get(key, 0) + 1
        attempts = {
            f"{w['metadata']['namespace']}/{w['metadata']['name']}": int(
                (w.get("status") or {}).get("attempt") or 0
            )
            for w in tx.list("Workload").items
        }
    for key, made in sorted(creates.items()):
        if key in attempts and made > attempts[key]:
            record.violation(
                f"workload {key}: {made} placements created for {attempts[key]} attempts"
            )


def _pass_seconds(server: ServerProcess, token: str, lease: float) -> list[float]:
    """Mean reconcile pass time, and how many passes took longer than the largest histogram
    bucket within the lease (a pass longer than the lease outlives the lease)."""
    text = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("stratum_reconcile_duration_seconds") and 'controller="pass"' in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    count = next((v for k, v in values.items() if "_count" in k), 0.0)
    total = next((v for k, v in values.items() if "_sum" in k), 0.0)
    buckets = sorted(
        (float(k.split('le="')[1].split('"')[0]), v)
        for k, v in values.items()
        if "_bucket" in k and 'le="+Inf"' not in k
    )
    within = [v for le, v in buckets if le <= lease]
    over = count - (within[-1] if within else 0.0)
    return [round(total / count, 3) if count else 0.0, over]
