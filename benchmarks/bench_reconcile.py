"""B4: time from applying N workloads (1,000 by default, 10,000 for the goal at scale) to all
of them Bound, with the real controller loop on a real store (an SQLite file, or PostgreSQL
with --database-url).

    .venv/bin/python benchmarks/bench_reconcile.py [--workloads 1000] [--database-url URL]

The fleet is the demo fleet plus an L40S cluster of 15 nodes (120 GPUs) per 100 workloads
(150 nodes for 1,000; 1,500 nodes and 12,000 GPUs for 10,000), so every contract fits; each
workload asks for a quarter to a half of one GPU.

To see where the time goes (controllers run in threads, so cProfile would miss them):

    py-spy record -f raw -o profile.txt -- .venv/bin/python benchmarks/bench_reconcile.py
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from stratum.backends.simulated.backend import SimulatedBackend
from stratum.core.clock import ScaledClock
from stratum.reconcile.manager import ControllerManager
from stratum.reconcile.world import World
from stratum.server.demo import demo_manifests
from stratum.server.security import system_context
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore

NODES_PER_100_WORKLOADS = 15


def big_nodes(workloads: int) -> int:
    return max(150, math.ceil(workloads * NODES_PER_100_WORKLOADS / 100))


def fleet(nodes: int) -> list[dict[str, Any]]:
    return [
        *demo_manifests(),
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": "use1-big"},
            "spec": {
                "site": "us-east-1",
                "nodePools": [{"name": "l40s", "profile": "pcie-l40s-8gpu", "count": nodes}],
            },
        },
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": "load"},
            "spec": {"displayName": "Load test (no quota)"},
        },
    ]


def workloads(n: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": f"load-{i:05d}", "namespace": "load"},
            "spec": {
                "type": "inference",
                "contract": {
                    "compute": {"gpuMilli": 250 + (i % 3) * 125, "cpuCores": 2, "memoryGiB": 8}
                },
            },
        }
        for i in range(n)
    ]


class BoundCounter:
    """How many of the load workloads are Bound (or already Running), kept up to date from
    the change feed: watching the run must not cost the controllers a list of every body."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.phases: dict[str, str] = {}
        with store.read() as tx:
            self.since = tx.current_resource_version()

    def count(self) -> int:
        with self.store.read() as tx:
            changes = tx.changes_since(self.since, kind="Workload", namespace="load", limit=5000)
        for change in changes:
            self.since = change.resource_version
            name = change.object["metadata"]["name"]
            self.phases[name] = str((change.object.get("status") or {}).get("phase"))
        return sum(phase in ("Bound", "Running") for phase in self.phases.values())


def run(args: argparse.Namespace, url: str) -> tuple[float, float | None, str]:
    store = ObjectStore.open(url, ScaledClock(60))
    service = ObjectService(store)
    nodes = big_nodes(args.workloads)
    began = time.monotonic()
    service.apply_documents(fleet(nodes), ctx=system_context("bench"))
    manager = ControllerManager(store, {"simulated": SimulatedBackend(clock=store.clock)})
    manager.start()
    try:
        deadline = time.monotonic() + 120 + nodes / 5
        while time.monotonic() < deadline:  # the fleet's nodes registered and Ready
            world = World.read(store)
            if len(world.nodes) >= nodes + 20 and all(
                w.status.phase == "Running" for w in world.workloads.values()
            ):
                break
            time.sleep(0.5)
        print(f"fleet of {len(world.nodes)} nodes ready in {time.monotonic() - began:.1f} s")
        counter = BoundCounter(store)
        began = time.monotonic()
        service.apply_documents(workloads(args.workloads), ctx=system_context("bench"))
        applied = time.monotonic() - began
        print(f"applied {args.workloads} workloads in {applied:.2f} s", flush=True)
        bound_at = None
        last_report = began
        deadline = time.monotonic() + 300 + args.workloads / 10
        while time.monotonic() < deadline:
            done = counter.count()
            if done == args.workloads:
                bound_at = time.monotonic() - began
                break
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                print(f"  {done} Bound after {last_report - began:.0f} s", flush=True)
            time.sleep(0.2)
    finally:
        manager.stop()
        store.close()
    return applied, bound_at, store.engine.url.get_backend_name()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        applied, bound_at, backend = run(args, url)
    if bound_at is None:
        raise SystemExit("not every workload was bound in time")
    print(
        f"{args.workloads} workloads on {backend}: applied in {applied:.2f} s (one "
        f"transaction); all Bound {bound_at:.2f} s after the apply began "
        f"({args.workloads / bound_at:.0f} workloads/s end to end)"
    )


if __name__ == "__main__":
    main()
