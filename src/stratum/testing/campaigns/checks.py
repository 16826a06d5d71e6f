"""Waiting for a fleet to go quiet, and the end-of-campaign checks: the store's invariants,
and no simulated run left burning a GPU that no live placement holds."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from stratum.api.v1alpha1 import Placement
from stratum.client.http import StratumClient
from stratum.core.errors import Unavailable
from stratum.scheduling.fleet import HOLDING_PHASES
from stratum.store.objects import ObjectStore
from stratum.testing.invariants import keys_from, settled_problems, store_problems

# Phases a workload leaves by itself (the controllers have more to do).
MOVING = frozenset({None, "Bound"})
# A GPU with a run on it reports at least half its memory used; an idle one 0.4 GiB.
BUSY_BYTES = 1.5 * 2**30
_GPU_MEMORY = re.compile(r"^stratum_gpu_memory_used_bytes\{([^}]*)\}\s+(\S+)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_PASSES = re.compile(r'^stratum_reconcile_passes_total\{result="ok"\}\s+(\S+)$', re.M)


def phases(client: StratumClient) -> dict[str, str | None]:
    return {
        f"{w['metadata']['namespace']}/{w['metadata']['name']}": w["status"].get("phase")
        for w in client.list("Workload")
    }


def wait_quiet(client: StratumClient, *, timeout: float, hold: float = 3.0) -> bool:
    """Until the server's controllers have run two whole passes since this call (a server
    just restarted may still wait for the dead one's lease, and then phases stay put only
    because nobody acts), no workload is on its way somewhere, and the phases stay put for
    `hold` s."""
    deadline = time.monotonic() + timeout
    last: dict[str, str | None] | None = None
    since = time.monotonic()
    start = _passes(client)
    while time.monotonic() < deadline and _passes(client) < start + 2:
        time.sleep(0.5)
    while time.monotonic() < deadline:
        try:
            now = phases(client)
        except Unavailable:  # a server still starting: keep waiting
            time.sleep(0.5)
            continue
        moving = any(p in MOVING for p in now.values())
        if now != last or moving:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= hold:
            return True
        time.sleep(0.3)
    return False


def _passes(client: StratumClient) -> float:
    """Reconcile passes this server has completed (0 when it cannot say)."""
    try:
        text = client._http.get("/metrics", timeout=30).text
    except httpx.TransportError:
        return 0.0
    match = _PASSES.search(text)
    return float(match.group(1)) if match else 0.0


def leftover_runs(store: ObjectStore, metrics_text: str) -> list[str]:
    """GPUs the simulator reports busy (memory in use) that no live placement holds: a run
    of a deleted or released workload still going."""
    with store.read() as tx:
        placements = [Placement.model_validate(p) for p in tx.list("Placement").items]
    held = {
        (r.node, g)
        for p in placements
        if p.status.phase in HOLDING_PHASES
        for r in p.spec.replicas
        for g in r.gpus
    }
    problems = []
    for labels, value in _GPU_MEMORY.findall(metrics_text):
        fields = dict(_LABEL.findall(labels))
        key = (fields.get("node", ""), int(fields.get("gpu", "-1")))
        if float(value) > BUSY_BYTES and key not in held:
            problems.append(f"GPU {key[1]} on {key[0]} is busy but no live placement holds it")
    return problems


def settle(
    store: ObjectStore,
    *,
    audit_secret: str,
    server_url: str | None = None,
    token: str | None = None,
    timeout: float = 60.0,
) -> list[str]:
    """The settled invariants (and, given the leading server, no leftover runs), polled
    until they hold or `timeout` passes: the controllers may be a pass behind the last
    write. What still fails at the end is returned."""
    deadline = time.monotonic() + timeout
    while True:
        problems = settled_problems(store, audit_keys=keys_from(audit_secret))
        if server_url is not None and not problems:
            problems = leftover_runs(store, _metrics(server_url, token))
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(1.0)


def always(store: ObjectStore, audit_secret: str) -> list[str]:
    """The invariants that hold at every instant, the audit chain checked with its key."""
    return store_problems(store, audit_keys=keys_from(audit_secret))


def _metrics(url: str, token: str | None) -> str:
    headers: dict[str, Any] = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/metrics", headers=headers, timeout=30).text
