"""B4: control-plane throughput and latency on loopback, SQLite and PostgreSQL.

Starts `stratum serve` on each store and a bare FastAPI endpoint (the framework's floor) as
real processes, drives them with N concurrent async clients, and reports applies/s, GET
p50/p99 and list latency, and watch delivery to many concurrent watchers. GETs are measured
in rounds that alternate floor and store back to back, so that each store's ratio to the
floor compares two things measured under the same load on a shared machine.

    .venv/bin/python benchmarks/bench_api.py [--clients 8] [--requests 2000] [--watchers 100]
        [--repeats 3] [--parts list,watch,apply-file] [--postgres URL]

Writes results/bench-api/results.csv (every repeat). Stops by itself; traffic goes to
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import socket
import statistics
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def interleaved_gets(
    floor: tuple[int, str], store: tuple[int, str], clients: int, total: int, rounds: int = 10
) -> tuple[list[float], list[float], float, float, float]:
    """GET the floor and the store in alternating blocks (after a short warm-up of each),
    so that both see the same load on a shared machine. Returns the floor's and the store's
    latencies (ms), the store's seconds, and each server process's CPU ms per request."""
    names = max(1, min(total, 1000))
    floor_pid, floor_url = floor
    store_pid, url = store

    def floor_get(i: int) -> tuple[str, str, None]:
        return ("GET", "/floor", None)

    def store_get(i: int) -> tuple[str, str, None]:
        return ("GET", f"{API}/namespaces/bench/workloads/w-{i % names:06d}", None)

    await drive(floor_url, clients, 100, floor_get)
    await drive(url, clients, 100, store_get)
    floor_lat: list[float] = []
    store_lat: list[float] = []
    store_secs = floor_cpu = store_cpu = 0.0
    per = max(1, total // rounds)
    for _ in range(rounds):
        before = cpu_seconds(floor_pid)
        _, lat = await drive(floor_url, clients, per, floor_get)
        floor_cpu += cpu_seconds(floor_pid) - before
        floor_lat += lat
        before = cpu_seconds(store_pid)
        secs, lat = await drive(url, clients, per, store_get)
        store_cpu += cpu_seconds(store_pid) - before
        store_lat += lat
        store_secs += secs
    n = per * rounds
    return floor_lat, store_lat, store_secs, floor_cpu * 1000 / n, store_cpu * 1000 / n


async def _open_watch(
    host: str, port: int, rv: str, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A watch over a raw socket: less client work per event than an HTTP library, so the
    figure is the server's delivery rather than the client's parsing."""
    sock = socket.socket()
    if rcvbuf is not None:  # a slow reader: its socket fills after a few events
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET {API}/namespaces/bench/workloads?watch=true&resourceVersion={rv} HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"watch refused: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    return reader, writer


async def watch_delivery(
    url: str, watchers: int, writes: int, stalled: int = 1
) -> tuple[list[float], list[float], int]:
    """Open `watchers` watches (and `stalled` more that never read), then apply `writes`
    workloads one at a time. For each write and each reading watcher: ms from the write
    being sent to its event arriving (an upper bound on commit -> delivery) and from the
    write's answer arriving (a lower bound: the commit came before the answer). Also
    returns how many (write, watcher) events never arrived."""
    host, port = url.removeprefix("http://").split(":")
    rv = current_rv(url)
    sent: dict[bytes, float] = {}
    acked: dict[bytes, float] = {}
    arrivals: list[dict[bytes, float]] = [{} for _ in range(watchers)]
    streams = [await _open_watch(host, int(port), rv) for _ in range(watchers)]
    slow = [await _open_watch(host, int(port), rv, rcvbuf=2048) for _ in range(stalled)]
    marker = b'"name":"watched-'

    async def read(i: int) -> None:
        reader = streams[i][0]
        got = arrivals[i]
        while len(got) < writes:
            line = await reader.readline()
            if not line:
                return
            at = time.perf_counter()
            start = line.find(marker)
            if start >= 0:
                start += len(b'"name":"')
                got.setdefault(line[start : line.index(b'"', start)], at)

    readers = [asyncio.create_task(read(i)) for i in range(watchers)]
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as http:
        for i in range(writes):
            body = workload(i)
            name = f"watched-{i:04d}"
            body["metadata"]["name"] = name
            key = name.encode()
            sent[key] = time.perf_counter()
            r = await http.patch(f"{API}/namespaces/bench/workloads/{name}", json=body)
            acked[key] = time.perf_counter()
            r.raise_for_status()
            await asyncio.sleep(0.02)
    await asyncio.wait(readers, timeout=30)
    for task in readers:
        task.cancel()
    for _, writer in streams + slow:
        writer.close()
    from_sent = [(got[k] - sent[k]) * 1000 for got in arrivals for k in got]
    from_ack = [(got[k] - acked[k]) * 1000 for got in arrivals for k in got]
    missing = watchers * writes - len(from_sent)
    return from_sent, from_ack, missing


def current_rv(url: str) -> str:
    page = httpx.get(
        f"{url}{API}/namespaces/bench/workloads", headers=AUTH, params={"limit": 1}
    ).json()
    return str(page["metadata"]["resourceVersion"])


def row(name: str, operation: str, lat: list[float], requests: int, secs: float) -> dict[str, Any]:
    return {
        "store": name,
        "operation": operation,
        "requests": requests,
        "per_s": requests / secs if secs else 0.0,
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
    }


def measure_store(
    name: str, pid: int, url: str, floor: tuple[int, str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    clients, total = args.clients, args.requests
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
    rows.append(row(name, "apply (PATCH, one object)", lat, total, secs))
    floor_lat, lat, secs, floor_cpu, store_cpu = asyncio.run(
        interleaved_gets(floor, (pid, url), clients, total)
    )
    rows.append(
        {
            **row("-", f"bare FastAPI GET (floor, alternating with {name})", floor_lat, 0, 0),
            "requests": len(floor_lat),
            "cpu_ms": floor_cpu,
        }
    )
    rows.append(
        {
            **row(name, "get", lat, len(lat), secs),
            "p50_vs_floor": pct(lat, 0.5) / pct(floor_lat, 0.5),
            "cpu_ms": store_cpu,
            "cpu_vs_floor": store_cpu / floor_cpu if floor_cpu else 0.0,
        }
    )
    if "list" in args.parts:
        secs, lat = asyncio.run(
            drive(
                url,
                clients,
                200,
                lambda i: ("GET", f"{API}/namespaces/bench/workloads?limit=100", None),
            )
        )
        rows.append(row(name, "list (100 per page)", lat, 200, secs))
    if "watch" not in args.parts:
        return rows
    from_sent, from_ack, missing = asyncio.run(
        watch_delivery(url, args.watchers, args.watch_writes)
    )
    what = f"{args.watchers} watchers + 1 stalled"
    rows.append(row(name, f"watch: write sent -> event, {what}", from_sent, len(from_sent), 0))
    rows.append(
        {
            **row(name, f"watch: write answered -> event, {what}", from_ack, len(from_ack), 0),
            "missing": missing,
        }
    )
    if "apply-file" in args.parts:
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
                **row(name, "apply -f (1,000 objects, one transaction)", [took * 1000], 1, took),
                "per_s": 1000 / took,
            }
        )
    return rows


def run_once(args: argparse.Namespace, repeat: int) -> list[dict[str, Any]]:
    import psycopg

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        floor, floor_url = start_floor(tmp)
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
                if name not in args.stores:
                    continue
                proc, url = start_stratum(db, tmp)
                try:
                    rows += measure_store(name, proc.pid, url, (floor.pid, floor_url), args)
                finally:
                    proc.terminate()
                    proc.wait()
        finally:
            floor.terminate()
            floor.wait()
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    for r in rows:
        r["repeat"] = repeat
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--watch-writes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument(
        "--parts",
        default="list,watch,apply-file",
        help="what to measure besides applies and GETs (comma-separated)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "STRATUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench-api")
    args = parser.parse_args()
    args.stores = set(args.stores.split(","))
    args.parts = set(args.parts.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for repeat in range(1, args.repeats + 1):
        got = run_once(args, repeat)
        rows += got
        print(f"-- repeat {repeat} of {args.repeats}", flush=True)
        print_rows(got)
    fields = [
        "repeat",
        "store",
        "operation",
        "requests",
        "per_s",
        "p50_ms",
        "p99_ms",
        "p50_vs_floor",
        "cpu_ms",
        "cpu_vs_floor",
        "missing",
    ]
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{args.clients} concurrent clients on loopback, {os.cpu_count()} cores")
    print("GET p50 / floor p50 (floor measured in alternating rounds with each store):")
    for store in sorted(args.stores):
        ratios = sorted(
            r["p50_vs_floor"] for r in rows if r["store"] == store and "p50_vs_floor" in r
        )
        print(
            f"  {store:<11} median {statistics.median(ratios):.2f}x "
            f"(runs: {', '.join(f'{x:.2f}x' for x in ratios)})"
        )
    print("server CPU per GET / floor's (the server process only; load-independent):")
    for store in sorted(args.stores):
        ratios = sorted(
            r["cpu_vs_floor"] for r in rows if r["store"] == store and "cpu_vs_floor" in r
        )
        print(
            f"  {store:<11} median {statistics.median(ratios):.2f}x "
            f"(runs: {', '.join(f'{x:.2f}x' for x in ratios)})"
        )
    print(f"CSV: {args.out / 'results.csv'}")


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'store':<11}{'operation':<56}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'/floor':>8}")
    for r in rows:
        ratio = f"{r['p50_vs_floor']:.2f}x" if "p50_vs_floor" in r else ""
        extra = f"  ({r['missing']} missing)" if r.get("missing") else ""
        if "cpu_ms" in r:
            extra += f"  CPU {r['cpu_ms']:.2f} ms/request"
        print(
            f"{r['store']:<11}{r['operation']:<56}{r['per_s']:>9.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{ratio:>8}{extra}",
            flush=True,
        )


if __name__ == "__main__":
    main()
