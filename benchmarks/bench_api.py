"""B4 (first cut): control-plane throughput and latency on loopback, SQLite and PostgreSQL.

Starts `stratum serve` on each store and a bare FastAPI endpoint (the framework's floor) as
real processes, drives them with N concurrent async clients, and reports applies/s, GET
p50/p99 and list latency, each also as a ratio to the floor measured in the same run.

    .venv/bin/python benchmarks/bench_api.py [--clients 8] [--requests 2000] [--postgres URL]

Writes results/bench-api/results.csv. Stops by itself; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from stratum.core.tokens import new_token

REPO = Path(__file__).resolve().parent.parent
TOKEN = new_token().value
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/apis/stratum.dev/v1alpha1"

FLOOR_APP = """
from fastapi import FastAPI
app = FastAPI()
BODY = {"apiVersion": "stratum.dev/v1alpha1", "kind": "Workload",
        "metadata": {"name": "w", "namespace": "bench"}, "spec": {"type": "batch"}}
@app.get("/floor")
async def floor() -> dict:
    return BODY
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def start_stratum(database_url: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    token_file = home / "admin-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    # The controllers stay off: this measures the API and the store, not the scheduler.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stratum",
            "serve",
            "--port",
            str(port),
            "--database-url",
            database_url,
            "--log-level",
            "warning",
            "--no-controllers",
            "--admin-token-file",
            str(token_file),
        ],
        env={**os.environ, "STRATUM_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/readyz")
    return proc, url


def start_floor(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    (tmp / "floor_app.py").write_text(FLOOR_APP)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "floor_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/floor")
    return proc, url


def workload(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": f"w-{i:06d}", "namespace": "bench", "labels": {"b": "1"}},
        "spec": {"type": "batch", "contract": {"compute": {"gpuMilli": 250}}},
    }


async def drive(url: str, clients: int, total: int, make: Any) -> tuple[float, list[float]]:
    """Send `total` requests over `clients` connections; return (seconds, latencies ms)."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def one_client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60, headers=AUTH) as http:
            for i in counter:
                method, path, body = make(i)
                t0 = time.perf_counter()
                r = await http.request(method, path, json=body)
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code >= 400:
                    raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:200]}")

    began = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return time.perf_counter() - began, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def watch_latencies(url: str, n: int) -> list[float]:
    """Open a watch, then write `n` objects one at a time; for each, the time from sending
    the write to its event arriving on the watch (ms)."""
    import json
    import threading

    arrived: dict[str, float] = {}
    ready = threading.Event()

    def watch() -> None:
        with httpx.stream(
            "GET",
            f"{url}{API}/namespaces/bench/workloads",
            headers=AUTH,
            params={"watch": "true", "resourceVersion": current_rv(url)},
            timeout=60,
        ) as r:
            ready.set()
            for line in r.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                name = event["object"].get("metadata", {}).get("name", "")
                if name.startswith("watched-"):
                    arrived[name] = time.perf_counter()
                    if len(arrived) == n:
                        return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(10)
    time.sleep(0.2)
    sent: dict[str, float] = {}
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        for i in range(n):
            body = workload(i)
            name = f"watched-{i:04d}"
            body["metadata"]["name"] = name
            sent[name] = time.perf_counter()
            http.patch(f"{API}/namespaces/bench/workloads/{name}", json=body).raise_for_status()
            time.sleep(0.01)
    thread.join(30)
    return [(arrived[k] - sent[k]) * 1000 for k in sent if k in arrived]


def current_rv(url: str) -> str:
    page = httpx.get(
        f"{url}{API}/namespaces/bench/workloads", headers=AUTH, params={"limit": 1}
    ).json()
    return str(page["metadata"]["resourceVersion"])


def measure_store(
    name: str, url: str, floor_p50: float, clients: int, total: int
) -> list[dict[str, Any]]:
    httpx.patch(
        f"{url}{API}/tenants/bench",
        headers=AUTH,
        json={
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": "bench"},
            "spec": {},
        },
    ).raise_for_status()
    rows = []
    secs, lat = asyncio.run(
        drive(
            url,
            clients,
            total,
            lambda i: ("PATCH", f"{API}/namespaces/bench/workloads/w-{i:06d}", workload(i)),
        )
    )
    rows.append(
        {
            "store": name,
            "operation": "apply (PATCH, one object)",
            "requests": total,
            "per_s": total / secs,
            "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99),
        }
    )
    secs, lat = asyncio.run(
        drive(
            url,
            clients,
            total,
            lambda i: ("GET", f"{API}/namespaces/bench/workloads/w-{i % total:06d}", None),
        )
    )
    rows.append(
        {
            "store": name,
            "operation": "get",
            "requests": total,
            "per_s": total / secs,
            "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99),
            "p50_vs_floor": pct(lat, 0.5) / floor_p50,
        }
    )
    secs, lat = asyncio.run(
        drive(
            url,
            clients,
            200,
            lambda i: ("GET", f"{API}/namespaces/bench/workloads?limit=100", None),
        )
    )
    rows.append(
        {
            "store": name,
            "operation": "list (100 per page)",
            "requests": 200,
            "per_s": 200 / secs,
            "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99),
        }
    )
    lat = watch_latencies(url, 200)
    rows.append(
        {
            "store": name,
            "operation": "watch delivery (write -> event)",
            "requests": len(lat),
            "per_s": 0.0,
            "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99),
        }
    )
    batch = [workload(100_000 + i) for i in range(1000)]
    t0 = time.perf_counter()
    r = httpx.post(
        f"{url}{API}/apply",
        headers=AUTH,
        json={"apiVersion": "stratum.dev/v1alpha1", "kind": "List", "items": batch},
        timeout=300,
    )
    r.raise_for_status()
    took = time.perf_counter() - t0
    rows.append(
        {
            "store": name,
            "operation": "apply -f (1,000 objects, one transaction)",
            "requests": 1,
            "per_s": 1000 / took,
            "p50_ms": took * 1000,
            "p99_ms": took * 1000,
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "STRATUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench-api")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        floor, floor_url = start_floor(tmp)
        try:
            secs, lat = asyncio.run(
                drive(floor_url, args.clients, args.requests, lambda i: ("GET", "/floor", None))
            )
            floor_p50 = pct(lat, 0.5)
            rows.append(
                {
                    "store": "-",
                    "operation": "bare FastAPI GET (floor)",
                    "requests": args.requests,
                    "per_s": args.requests / secs,
                    "p50_ms": floor_p50,
                    "p99_ms": pct(lat, 0.99),
                    "p50_vs_floor": 1.0,
                }
            )
        finally:
            floor.terminate()
            floor.wait()
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in args.postgres else "?"
        stores = {
            "sqlite": f"sqlite:///{tmp / 'bench.db'}",
            "postgresql": f"{args.postgres}{sep}options=-csearch_path%3D{schema}",
        }
        try:
            for name, db in stores.items():
                proc, url = start_stratum(db, tmp)
                try:
                    rows += measure_store(name, url, floor_p50, args.clients, args.requests)
                finally:
                    proc.terminate()
                    proc.wait()
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    fields = ["store", "operation", "requests", "per_s", "p50_ms", "p99_ms", "p50_vs_floor"]
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{args.clients} concurrent clients on loopback, {os.cpu_count()} cores")
    print(f"{'store':<11}{'operation':<44}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p50/floor':>11}")
    for r in rows:
        ratio = f"{r['p50_vs_floor']:.2f}x" if "p50_vs_floor" in r else ""
        print(
            f"{r['store']:<11}{r['operation']:<44}{r['per_s']:>9.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{ratio:>11}"
        )
    print(f"CSV: {args.out / 'results.csv'}")


if __name__ == "__main__":
    main()
