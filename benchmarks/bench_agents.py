"""Agents at scale, and one agent's footprint.

heartbeats  `stratum serve --backend agent` on PostgreSQL holds N simulated agents (default
            1,000) that join with the Cluster's bootstrap token and then report every
            --interval seconds (default 10) over the real protocol (async httpx, one report
            per agent per interval, spread evenly). Reports p50/p99 heartbeat latency, errors,
            how many nodes stayed Ready, and the server's CPU over the measured window.
footprint   one real `stratum agent` (fixture hardware, the local runtime) joined to a
            server and idle: its resident memory (VmRSS and peak VmHWM, /proc).
outage      the e2e scenario of tests/e2e/test_agent_fleet.py (three hosts in network
            namespaces, a gang across them, kill -9 of the server) with the issue's full
            outage: --outage 60 (the suite uses 5 s). Needs root.

    python benchmarks/bench_agents.py [--parts heartbeats,footprint,outage] [--agents 1000]
        [--interval 10] [--duration 60] [--outage 60] [--postgres URL]

Writes results/bench-agents/results.json. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from stratum.core.secrets import Keyring
from stratum.testing.agents import (
    AgentProcess,
    agent_cluster,
    agent_site,
    eventually,
    fixture_dir,
    fixture_hardware,
    node_phase,
)
from stratum.testing.campaigns.servers import (
    POSTGRES_URL,
    ServerProcess,
    new_admin_token,
    postgres_schema,
    rss_mib,
)

REPO = Path(__file__).resolve().parent.parent
API = "/apis/stratum.dev/v1alpha1"
BOOT = "bench-bootstrap-secret"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _server(database_url: str, home: Path, interval: float, *extra: str) -> ServerProcess:
    return ServerProcess(
        database_url,
        home,
        "--backend",
        "agent",
        *extra,
        token=new_admin_token(),
        env={
            "STRATUM_SECRET_KEYS": Keyring.generate_key(),
            "STRATUM_AGENT_HEARTBEAT_SECONDS": str(interval),
        },
    )


def _setup(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as admin:
        for obj in (agent_site(), agent_cluster("fleet", BOOT)):
            r = admin.post(f"{API}/{obj['kind'].lower()}s", json=obj)
            assert r.status_code == 201, r.text


async def _join_all(url: str, count: int, hardware: dict[str, Any]) -> list[str]:
    tokens: list[str] = [""] * count
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:

        async def join(i: int) -> None:
            async with gate:
                r = await http.post(
                    "/agent/v1/join",
                    json={"node": f"sim-{i:05d}", "hardware": hardware},
                    headers={"Authorization": f"Bearer {BOOT}"},
                )
                r.raise_for_status()
                tokens[i] = r.json()["token"]

        await asyncio.gather(*(join(i) for i in range(count)))
    return tokens


def _report(i: int, seq: int) -> dict[str, Any]:
    return {
        "node": f"sim-{i:05d}",
        "seq": seq,
        "gpus": [
            {"index": g, "utilizationPct": 50.0, "memoryUsedGiB": 10.0, "powerW": 200.0}
            for g in range(2)
        ],
        "cpuUtilizationPct": 20.0,
        "memoryUsedGiB": 8.0,
    }


async def _heartbeats(
    url: str, agents: list[tuple[int, str]], interval: float, warmup: float, duration: float
) -> tuple[list[float], int]:
    """Every agent reports every `interval`; latencies of those sent in the window."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    loop = asyncio.get_running_loop()
    start = loop.time()
    window = (start + warmup, start + warmup + duration)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def agent(i: int, token: str) -> None:
            nonlocal errors
            await asyncio.sleep(random.uniform(0, interval))
            seq = 0
            headers = {"Authorization": f"Bearer {token}"}
            while loop.time() < window[1]:
                seq += 1
                sent = loop.time()
                try:
                    r = await http.post(
                        f"/agent/v1/nodes/sim-{i:05d}/reports",
                        json=_report(i, seq),
                        headers=headers,
                    )
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = loop.time() - sent
                if window[0] <= sent < window[1]:
                    if ok:
                        latencies.append(took)
                    else:
                        errors += 1
                await asyncio.sleep(max(0.0, interval - took))

        await asyncio.gather(*(agent(i, token) for i, token in agents))
    return latencies, errors


def _worker(job: tuple[str, list[tuple[int, str]], float, float, float]) -> tuple[list[float], int]:
    """One load-generating process: its share of the agents, on its own event loop."""
    return asyncio.run(_heartbeats(*job))


def _server_histogram(url: str, headers: dict[str, str]) -> dict[float, float]:
    """The server's own timing of report requests: cumulative counts by bucket bound."""
    text = httpx.get(f"{url}/metrics", headers=headers, timeout=60).text
    counts: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("stratum_api_request_duration_seconds_bucket{") and (
            'route="/agent/v1/nodes/{node}/reports"' in line
        ):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            counts[float("inf") if bound == "+Inf" else float(bound)] = float(line.split()[-1])
    return counts


def _quantile_bound(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The smallest bucket bound under which a fraction q of the window's requests fell."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    for bound in bounds:
        if after[bound] - before.get(bound, 0.0) >= q * total:
            return bound
    return float("inf")


def heartbeats(args: argparse.Namespace, out: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as scratch, postgres_schema(args.postgres) as url:
        extra = () if args.controllers else ("--no-controllers",)
        server = _server(url, Path(scratch), args.interval, *extra).start()
        try:
            _setup(server)
            hardware = fixture_hardware("workstation")
            began = time.monotonic()
            tokens = asyncio.run(_join_all(server.url, args.agents, hardware))
            joined = time.monotonic() - began
            print(f"{args.agents} agents joined in {joined:.1f}s", flush=True)
            shares = [
                [(i, t) for i, t in enumerate(tokens) if i % args.workers == w]
                for w in range(args.workers)
            ]
            jobs = [
                (server.url, share, args.interval, args.interval, args.duration) for share in shares
            ]
            # The server's CPU and its own request timings over the window, warm-up aside.
            before = _server_histogram(server.url, server.headers)
            cpu_before, wall_before = _cpu_seconds(server.pid), time.monotonic()
            with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
                parts = pool.map(_worker, jobs)
            cpu = _cpu_seconds(server.pid) - cpu_before
            wall = time.monotonic() - wall_before
            after = _server_histogram(server.url, server.headers)
            latencies = [x for part, _ in parts for x in part]
            errors = sum(e for _, e in parts)
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as admin:
                nodes = admin.get(f"{API}/nodes").json()["items"]
            ready = sum(1 for n in nodes if n.get("status", {}).get("phase") == "Ready")
            latencies.sort()
            result = {
                "agents": args.agents,
                "intervalSeconds": args.interval,
                "windowSeconds": args.duration,
                "heartbeats": len(latencies),
                "errors": errors,
                "p50Ms": round(1000 * statistics.median(latencies), 1),
                "p99Ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
                "maxMs": round(1000 * latencies[-1], 1),
                "serverP50MsAtMost": 1000 * _quantile_bound(before, after, 0.5),
                "serverP99MsAtMost": 1000 * _quantile_bound(before, after, 0.99),
                "loadWorkers": args.workers,
                "controllers": args.controllers,
                "serverCpuPctOfOneCore": round(100 * cpu / wall, 1),
                "serverRssMiB": round(rss_mib(server.pid), 1),
                "nodesReady": ready,
                "joinSeconds": round(joined, 1),
            }
        except Exception:
            print(server.read_log()[-6000:], file=sys.stderr)
            raise
        finally:
            server.stop()
    out["heartbeats"] = result
    print(json.dumps(result, indent=2), flush=True)


def footprint(args: argparse.Namespace, out: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        server = _server(f"sqlite:///{root / 's.db'}", root / "server", 2.0).start()
        agent = AgentProcess(
            name="idle-host",
            server_url=server.url,
            bootstrap=BOOT,
            hardware_dir=fixture_dir(root, "h100"),
            state_dir=root / "agent",
        )
        try:
            _setup(server)
            agent.start()
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as admin:
                eventually(
                    lambda: node_phase(admin, "idle-host") == "Ready",
                    timeout=120,
                    what="the agent to join",
                )
            time.sleep(args.idle)  # idle: heartbeats every 2 s, nothing placed
            assert agent.proc is not None
            status = Path(f"/proc/{agent.proc.pid}/status").read_text()
            fields = {
                line.split(":")[0]: int(line.split()[1])
                for line in status.splitlines()
                if line.startswith(("VmRSS", "VmHWM"))
            }
            result = {
                "idleSeconds": args.idle,
                "rssMiB": round(fields["VmRSS"] / 1024, 1),
                "peakRssMiB": round(fields["VmHWM"] / 1024, 1),
            }
        finally:
            agent.stop()
            server.stop()
    out["footprint"] = result
    print(json.dumps(result, indent=2), flush=True)


def outage(args: argparse.Namespace, out: dict[str, Any]) -> None:
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "timeout=600",
            str(REPO / "tests" / "e2e" / "test_agent_fleet.py"),
            "-k",
            "outlives_a_killed_server",
        ],
        env={**os.environ, "STRATUM_AGENT_OUTAGE_SECONDS": str(args.outage)},
        check=False,
        cwd=REPO,
    )
    out["outage"] = {
        "outageSeconds": args.outage,
        "passed": done.returncode == 0,
        "wallSeconds": round(time.monotonic() - began, 1),
    }
    print(json.dumps(out["outage"], indent=2), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="heartbeats,footprint,outage")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4, help="load-generating processes")
    parser.add_argument(
        "--no-controllers",
        dest="controllers",
        action="store_false",
        help="heartbeats only: the server runs no reconcile loop (nodes get no status)",
    )
    parser.add_argument("--idle", type=float, default=15.0)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--postgres", default=POSTGRES_URL)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    parts = {"heartbeats": heartbeats, "footprint": footprint, "outage": outage}
    for name in args.parts.split(","):
        parts[name](args, out)
    target = REPO / "results" / "bench-agents" / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
