"""Crash campaign: kill -9 the server at seeded random points while it applies manifests,
places workloads, remediates a broken contract or deletes workloads; check the store as
the crash left it, restart, let the fleet go quiet, and check again. Repeat.

What a crash may not do, whatever the moment:
- break an always-invariant (checked on the store the dead server left);
- lose an acknowledged write: an apply answered 2xx has all its objects afterwards, a
  delete answered 2xx leaves none; an apply in flight is all there or not at all;
- leave anything the restarted server does not repair (the settled invariants).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stratum.client.http import StratumClient
from stratum.server.demo import demo_manifests
from stratum.store.objects import ObjectStore
from stratum.testing.campaigns import checks, fleet
from stratum.testing.campaigns.record import Record
from stratum.testing.campaigns.servers import ServerProcess, new_admin_token, new_audit_secret

API = "/apis/stratum.dev/v1alpha1"
SIM = "/apis/sim.stratum.dev/v1alpha1"
PHASES = ("apply", "placement", "remediation", "deletion")


@dataclass(frozen=True, slots=True)
class CrashSettings:
    kills: int = 8
    seed: int = 2
    speed: float = 120.0
    batch: int = 15
    # The kill comes this many ms (uniformly drawn, 0..max) after the phase is set off.
    max_delay_ms: dict[str, int] = field(
        default_factory=lambda: {
            "apply": 200,
            "placement": 1500,
            "remediation": 1500,
            "deletion": 300,
        }
    )
    quiet_timeout: float = 120.0


@dataclass
class _Trigger:
    """One phase set off in a thread: what it asked, and what the server acknowledged."""

    phase: str
    acked_applies: list[list[tuple[str, str]]] = field(default_factory=list)
    pending_applies: list[list[tuple[str, str]]] = field(default_factory=list)
    acked_deletes: list[tuple[str, str]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)


def run_crash(
    database_url: str,
    home: Path,
    settings: CrashSettings | None = None,
    on_kill: Callable[[str], None] | None = None,
) -> Record:
    """`on_kill` hears one line per kill as it is checked (a long run's progress)."""
    s = settings or CrashSettings()
    record = Record("crash", s.seed)
    rng = random.Random(s.seed)
    token = new_admin_token()
    args = ("--speed", str(s.speed), "--seed", str(s.seed), "--lease-seconds", "3")
    began = time.monotonic()
    env = {"STRATUM_AUDIT_KEYS": new_audit_secret()}
    server = ServerProcess(database_url, home, *args, token=token, env=env).start()
    delays: dict[str, list[int]] = {p: [] for p in PHASES}
    made = [0]
    store = ObjectStore.open(database_url)
    try:
        with StratumClient(server.url, token) as client:
            client.apply_list(demo_manifests())
            fleet_map = fleet.wait_for_fleet(client)
            checks.wait_quiet(client, timeout=s.quiet_timeout)
        for kill in range(s.kills):
            phase = PHASES[kill % len(PHASES)] if kill < len(PHASES) else rng.choice(PHASES)
            delay = rng.randint(0, s.max_delay_ms[phase])
            delays[phase].append(delay)
            trigger = _Trigger(phase)
            work = _work(phase, trigger, server, token, rng, fleet_map, made, s)
            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            time.sleep(delay / 1000)
            server.kill9()
            record.inputs[f"kill during {phase}"] += 1
            thread.join(timeout=60)
            before = len(record.violations)
            for p in checks.always(store, env["STRATUM_AUDIT_KEYS"]):
                record.violation(f"kill {kill + 1} ({phase}, +{delay} ms), on the dead store: {p}")
            _durable(store, trigger, record, f"kill {kill + 1} ({phase}, +{delay} ms)")
            server = ServerProcess(database_url, home, *args, token=token, env=env).start()
            with StratumClient(server.url, token) as client:
                if not checks.wait_quiet(client, timeout=s.quiet_timeout):
                    record.violation(f"kill {kill + 1} ({phase}): no quiet after the restart")
            for p in checks.settle(
                store,
                audit_secret=env["STRATUM_AUDIT_KEYS"],
                server_url=server.url,
                token=token,
            ):
                record.violation(f"kill {kill + 1} ({phase}, +{delay} ms), after restart: {p}")
            if len(record.violations) == before:
                record.survived += 1
            if on_kill is not None:
                on_kill(
                    f"kill {kill + 1} during {phase} at +{delay} ms: "
                    f"{'ok' if len(record.violations) == before else 'VIOLATIONS'} "
                    f"({len(record.violations)} so far)"
                )
        with StratumClient(server.url, token) as client:
            verified = client.verify_audit()
            record.figures["audit"] = {k: v for k, v in verified.items() if k != "problems"}
            record.figures["workloads at the end"] = len(checks.phases(client))
    finally:
        store.close()
        if server.alive:
            server.stop()
        record.seconds = time.monotonic() - began
    record.figures["kill delays ms by phase"] = {p: sorted(d) for p, d in delays.items() if d}
    return record


def _work(
    phase: str,
    trigger: _Trigger,
    server: ServerProcess,
    token: str,
    rng: random.Random,
    fleet_map: fleet.FleetMap,
    made: list[int],
    s: CrashSettings,
) -> Callable[[], None]:
    """The requests that set a phase off; drawn now (seeded), sent in the thread."""
    http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
    batch: list[dict[str, Any]] = []
    if phase in ("apply", "placement"):
        for _ in range(s.batch):
            made[0] += 1
            shape = fleet.draw_shape(rng)
            duration = rng.uniform(300, 3600)
            batch.append(
                fleet.workload(f"crash-{s.seed}-{made[0]:05d}", shape, rng, duration=duration)
            )
    picks = rng.random()
    fault_kind = rng.choice(["gpu-fail", "node-down"])
    # Targets are looked up now, so that the drawn delay runs from the request that
    # sets the phase off, not from the reads that choose it.
    targets: list[tuple[str, str]] = []
    fault_body: dict[str, Any] | None = None
    if phase == "deletion":
        items = http.get(f"{API}/workloads", timeout=30).json()["items"]
        ours = [w for w in items if w["metadata"]["name"].startswith("crash-")]
        # Finished jobs first (they would pile up), then a seeded pick of the rest.
        ours.sort(key=lambda w: (w["status"].get("phase") != "Succeeded", rng.random()))
        targets = [(w["metadata"]["namespace"], w["metadata"]["name"]) for w in ours[: s.batch]]
    if phase == "remediation":
        placements = http.get(f"{API}/placements", timeout=30).json()["items"]
        held = sorted(
            (r["node"], g)
            for p in placements
            if p.get("status", {}).get("phase") in ("Bound", "Running")
            for r in p["spec"]["replicas"]
            for g in r.get("gpus", [])
        )
        if held:
            node, gpu = held[int(picks * len(held))]
            fault_body = {"kind": fault_kind, "node": node}
            if fault_kind == "gpu-fail":
                fault_body["gpu"] = gpu

    def apply_batch() -> None:
        keys = [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in batch]
        trigger.pending_applies.append(keys)
        body = {"apiVersion": "stratum.dev/v1alpha1", "kind": "List", "items": batch}
        r = http.post(f"{API}/apply", json=body, timeout=60)
        if r.status_code < 300:
            trigger.acked_applies.append(keys)
            trigger.pending_applies.remove(keys)

    def remediate() -> None:
        if fault_body is None:
            return
        r = http.post(f"{SIM}/faults", json=fault_body, timeout=30)
        if r.status_code == 201:
            trigger.faults.append(fault_body["kind"])

    def delete_some() -> None:
        for ns, name in targets:
            r = http.delete(f"{API}/namespaces/{ns}/workloads/{name}", timeout=30)
            if r.status_code < 300:
                trigger.acked_deletes.append((ns, name))

    def run() -> None:
        try:
            if phase in ("apply", "placement"):
                apply_batch()
            elif phase == "remediation":
                remediate()
            else:
                delete_some()
        except (httpx.TransportError, ValueError, KeyError):
            pass  # the server died under the request: what it acknowledged is recorded
        finally:
            http.close()

    if phase == "placement":
        # The kill should land while the controllers bind, not while the apply commits:
        # apply first (unhurried), then the drawn delay runs from the acknowledgement.
        run()
        return lambda: None
    return run


def _durable(store: ObjectStore, trigger: _Trigger, record: Record, label: str) -> None:
    """What the server acknowledged before it died is there; an unacknowledged apply is
    all there or not at all."""
    with store.read() as tx:
        exists = {
            (w["metadata"]["namespace"], w["metadata"]["name"]) for w in tx.list("Workload").items
        }
    for keys in trigger.acked_applies:
        lost = [k for k in keys if k not in exists]
        if lost:
            record.violation(f"{label}: an acknowledged apply lost {len(lost)} object(s)")
    for keys in trigger.pending_applies:
        there = sum(k in exists for k in keys)
        if 0 < there < len(keys):
            record.violation(f"{label}: an apply in flight was half written ({there}/{len(keys)})")
    for key in trigger.acked_deletes:
        if key in exists:
            record.violation(f"{label}: acknowledged delete of {key[0]}/{key[1]} undone")
    record.inputs["acknowledged applies"] += len(trigger.acked_applies)
    record.inputs["acknowledged deletes"] += len(trigger.acked_deletes)
    for kind in trigger.faults:
        record.faults[kind] += 1
