"""The portal on a 10,000-node fleet: server render time of each page, and the browser's
time to a loaded page (Debian's chromium), so that no page stalls on a large fleet.

    .venv/bin/python benchmarks/bench_portal.py [--nodes 10000] [--workloads 2000] [--repeats 5]

Seeds an SQLite store with the demo fleet plus NODES simulated 8-GPU nodes (status with GPU
telemetry, a third of them holding work) and WORKLOADS workloads, serves it with `stratum
serve --no-controllers` (a still fleet: every repeat renders the same data), logs in with the
admin token's cookie and times each page: the median of REPEATS server round trips, then one
browser load (navigation start to the load event). Prints a table; writes nothing else.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from stratum.testing.campaigns.servers import ServerProcess, new_admin_token

PAGES = (
    "/",
    "/fleet",
    "/fleet/clusters/fra-1-hgx",
    "/fleet/nodes/bench-00042",
    "/workloads",
    "/workloads?phase=Running&page=3",
    "/tenants",
    "/audit",
)
CLUSTERS = (
    ("fra-1-hgx", "fra-1", "hgx-h100-80gb"),
    ("us-east-1-l40s", "us-east-1", "pcie-l40s-8gpu"),
)


def node(i: int) -> dict[str, Any]:
    cluster, site, profile = CLUSTERS[i % len(CLUSTERS)]
    gpus = [
        {
            "index": g,
            "health": "Failed" if (i * 8 + g) % 997 == 0 else "Healthy",
            "utilizationPct": float((i * 7 + g * 13) % 100),
            "powerW": 300.0,
            "memoryUsedGiB": 10.0,
        }
        for g in range(8)
    ]
    allocations = (
        [
            {
                "workload": f"w{i % 2000}",
                "namespace": ("research", "health-eu")[i % 2],
                "replica": 0,
                "gpus": [0, 1, 2, 3],
            }
        ]
        if i % 3 == 0
        else []
    )
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Node",
        "metadata": {
            "name": f"bench-{i:05d}",
            "labels": {
                "stratum.dev/cluster": cluster,
                "stratum.dev/site": site,
                "stratum.dev/rack": f"bench-r{i // 16}",
            },
        },
        "spec": {"cluster": cluster, "site": site, "profile": profile, "rack": f"bench-r{i // 16}"},
        "status": {"phase": "Ready", "gpus": gpus, "allocations": allocations},
    }


def workload(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": f"w{i}", "namespace": ("research", "health-eu")[i % 2]},
        "spec": {"type": "batch", "contract": {"compute": {"gpus": 4}}},
        "status": {"phase": ("Running", "Pending", "Bound")[i % 3], "message": "bench"},
    }


def seed(url: str, nodes: int, workloads: int) -> None:
    from stratum.server.demo import demo_manifests
    from stratum.server.security import system_context
    from stratum.server.services.objects import ObjectService
    from stratum.store.objects import ObjectStore

    store = ObjectStore.open(url)
    ObjectService(store).apply_documents(demo_manifests(), ctx=system_context("bench"))
    with store.write() as tx:
        for i in range(nodes):
            tx.create(node(i))
        for i in range(workloads):
            tx.create(workload(i))
    store.close()


def browser_load_ms(base: str, token: str, paths: tuple[str, ...]) -> dict[str, float]:
    from stratum.testing import browser

    if browser.missing():
        return {}
    out = {}
    with browser.chromium() as b:
        context = b.new_context(viewport=browser.VIEWPORT, base_url=base)
        context.add_cookies([{"name": "stratum_session", "value": token, "url": base}])
        page = context.new_page()
        for path in paths:
            page.goto(path, wait_until="load")
            out[path] = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--workloads", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-portal-"))
    url = f"sqlite:///{home / 'portal.db'}"
    started = time.perf_counter()
    seed(url, args.nodes, args.workloads)
    took = time.perf_counter() - started
    print(f"seeded {args.nodes} nodes, {args.workloads} workloads in {took:.1f} s")
    token = new_admin_token()
    # The controllers stay off: this measures the pages, not the scheduler.
    server = ServerProcess(url, home, "--no-controllers", token=token).start(timeout=120)
    base = server.url
    try:
        with httpx.Client(base_url=base, cookies={"stratum_session": token}, timeout=120) as http:
            rows = []
            for path in PAGES:
                times, size = [], 0
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    response = http.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200, (
                        path,
                        response.status_code,
                        response.text[:300],
                    )
                    size = len(response.content)
                rows.append((path, statistics.median(times), max(times), size))
        loads = browser_load_ms(base, token, PAGES)
    finally:
        server.stop()
    print(f"{'page':36} {'server p50 ms':>14} {'max ms':>8} {'KiB':>7} {'browser load ms':>16}")
    for path, p50, worst, size in rows:
        load = loads.get(path, float("nan"))
        print(f"{path:36} {p50:14.0f} {worst:8.0f} {size / 1024:7.0f} {load:16.0f}")


if __name__ == "__main__":
    main()
