"""B4: time from applying 1,000 workloads to all of them Bound, with the real controller loop
on a real store (SQLite file, or PostgreSQL with --database-url).

    .venv/bin/python benchmarks/bench_reconcile.py [--workloads 1000] [--database-url URL]

The fleet is the demo fleet plus a 150-node L40S cluster (1,200 more GPUs), so every
contract fits; each workload asks for a share of one GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from stratum.backends.simulated.backend import SimulatedBackend
from stratum.core.clock import ScaledClock
from stratum.reconcile.manager import ControllerManager
from stratum.reconcile.world import World
from stratum.server.demo import demo_manifests
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore


def fleet() -> list[dict[str, Any]]:
    return [
        *demo_manifests(),
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": "use1-big"},
            "spec": {
                "site": "us-east-1",
                "nodePools": [{"name": "l40s", "profile": "pcie-l40s-8gpu", "count": 150}],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = ObjectStore.open(url, ScaledClock(60))
        service = ObjectService(store)
        service.apply_documents(fleet())
        manager = ControllerManager(store, {"simulated": SimulatedBackend(clock=store.clock)})
        manager.start()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the fleet's nodes registered and Ready
                world = World.read(store)
                if len(world.nodes) >= 170 and all(
                    w.status.phase == "Running" for w in world.workloads.values()
                ):
                    break
                time.sleep(0.1)
            began = time.monotonic()
            service.apply_documents(workloads(args.workloads))
            applied = time.monotonic() - began
            bound_at = None
            while time.monotonic() < deadline + 300:
                with store.read() as tx:
                    items = tx.list("Workload", namespace="load").items
                load = [w for w in items if w["metadata"]["name"].startswith("load-")]
                done = sum(w["status"].get("phase") in ("Bound", "Running") for w in load)
                if done == args.workloads:
                    bound_at = time.monotonic() - began
                    break
                time.sleep(0.05)
        finally:
            manager.stop()
            store.close()
    if bound_at is None:
        raise SystemExit("not every workload was bound in time")
    print(
        f"{args.workloads} workloads on {store.engine.url.get_backend_name()}: applied in "
        f"{applied:.2f} s (one transaction); all Bound {bound_at:.2f} s after the apply "
        f"began ({args.workloads / bound_at:.0f} workloads/s end to end)"
    )


if __name__ == "__main__":
    main()
