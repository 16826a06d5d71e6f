"""Time to remediate: from a GPU failure under a bound contract to the workload running
again on healthy devices, with the real controller loop (lease, polling) on a real store.

    .venv/bin/python benchmarks/bench_remediation.py [--repeats 10] [--database-url URL]

Runs the demo fleet in-process (no HTTP), fails one GPU of `research/llama-finetune` per
repeat, and reports the median and p90 of (a) wall-clock seconds until the controllers see
it Running again and (b) the `lastRemediationSeconds` the workload itself records.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from stratum.backends.simulated.backend import SimulatedBackend
from stratum.core.clock import ScaledClock
from stratum.reconcile.manager import ControllerManager, ManagerSettings
from stratum.reconcile.world import World
from stratum.server.demo import demo_manifests
from stratum.server.security import system_context
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore

KEY = "research/llama-finetune"


def wait_for(store: ObjectStore, predicate: object, timeout: float = 60.0) -> World:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        world = World.read(store)
        if predicate(world):  # type: ignore[operator]
            return world
        time.sleep(0.02)
    raise TimeoutError("the fleet did not settle in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = ObjectStore.open(url, ScaledClock(60))
        service = ObjectService(store)
        service.apply_documents(demo_manifests(), ctx=system_context("bench"))
        backend = SimulatedBackend(clock=store.clock)
        manager = ControllerManager(store, {"simulated": backend}, settings=ManagerSettings())
        manager.start()
        wall: list[float] = []
        recorded: list[float] = []
        try:
            world = wait_for(
                store, lambda w: KEY in w.workloads and w.workloads[KEY].status.phase == "Running"
            )
            for i in range(args.repeats):
                attempt = world.workloads[KEY].status.attempt
                node = world.placements[KEY].spec.replicas[0].node
                fault = backend.inject({"kind": "gpu-fail", "node": node, "gpu": i % 8})
                manager.wake()  # as the fault API does
                began = time.monotonic()
                world = wait_for(
                    store,
                    lambda w, a=attempt: (
                        w.workloads[KEY].status.phase == "Running"
                        and w.workloads[KEY].status.attempt > a
                    ),
                )
                wall.append(time.monotonic() - began)
                recorded.append(world.workloads[KEY].status.last_remediation_seconds or 0.0)
                backend.clear(fault.id)
                print(
                    f"repeat {i + 1}: GPU {i % 8} on {node} failed -> running again on "
                    f"{sorted({r.node for r in world.placements[KEY].spec.replicas})} after "
                    f"{wall[-1]:.2f} s (recorded {recorded[-1]:.2f} s)"
                )
        finally:
            manager.stop()
            store.close()

    def p90(xs: list[float]) -> float:
        return sorted(xs)[min(len(xs) - 1, int(0.9 * len(xs)))]

    print(
        f"\ntime to remediate over {len(wall)} GPU failures: wall-clock median "
        f"{statistics.median(wall):.2f} s, p90 {p90(wall):.2f} s; recorded median "
        f"{statistics.median(recorded):.2f} s, p90 {p90(recorded):.2f} s"
    )


if __name__ == "__main__":
    main()
