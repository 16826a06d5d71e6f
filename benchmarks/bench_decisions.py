"""B2: decision speed of the placement engine (BENCHMARKS.md).

1. The openb replay: decisions per second for each policy over the seeds, on one core
   (median over seeds; the replay's own bookkeeping is not timed).
2. A synthetic fleet of mixed 8/4/2-GPU servers at 1k, 10k and 50k nodes (10k nodes = 80k
   GPUs is the headline size), half full, with a mix of whole-GPU, fractional and multi-GPU
   requests: p50 and p99 latency of one decision (place + snapshot update), and the
   snapshot's memory.

Run: .venv/bin/python benchmarks/bench_decisions.py [--quick]
Writes results/bench-decisions/{replay,synthetic}.csv and prints the tables. It stops by
itself: every loop is bounded.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from stratum.cli.bench import data_dir
from stratum.scheduling.fragmentation import WorkloadMix
from stratum.scheduling.policies import make_policy
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import NodeSpec, Snapshot
from stratum.tracebench.replay import run_seed
from stratum.tracebench.trace import load_nodes, load_pods

REPO = Path(__file__).resolve().parents[1]

# (model, GPUs, milli-CPU, MiB) with the share of the fleet each profile makes up.
PROFILES = (
    (("H100", 8, 192_000, 2_097_152), 0.35),
    (("A100", 8, 128_000, 1_048_576), 0.35),
    (("L40S", 4, 64_000, 524_288), 0.2),
    (("L4", 2, 32_000, 262_144), 0.1),
)


def synthetic_fleet(nodes: int, seed: int = 0) -> Snapshot:
    rng = np.random.default_rng(seed)
    specs = [p for p, _ in PROFILES]
    picks = rng.choice(len(specs), size=nodes, p=[w for _, w in PROFILES])
    return Snapshot.build(
        [
            NodeSpec(f"node-{i:05d}", *specs[k][2:4], specs[k][1], specs[k][0])
            for i, k in enumerate(picks)
        ]
    )


def synthetic_requests(n: int, seed: int = 1) -> list[Request]:
    rng = np.random.default_rng(seed)
    out: list[Request] = []
    for _ in range(n):
        u = rng.random()
        if u < 0.35:
            out.append(Request(cpu_milli=8000, memory_mib=65_536, gpu_count=1, gpu_milli=1000))
        elif u < 0.7:
            milli = int(rng.choice([100, 250, 500, 750]))
            out.append(Request(cpu_milli=4000, memory_mib=16_384, gpu_count=1, gpu_milli=milli))
        elif u < 0.85:
            k = int(rng.choice([2, 4, 8]))
            out.append(
                Request(
                    cpu_milli=16_000 * k,
                    memory_mib=131_072 * k,
                    gpu_count=k,
                    gpu_milli=1000,
                    gpu_models=frozenset({"H100", "A100"}),
                )
            )
        else:
            out.append(Request(cpu_milli=int(rng.choice([2000, 8000])), memory_mib=8192))
    return out


def snapshot_bytes(s: Snapshot) -> int:
    return sum(
        v.nbytes for v in (getattr(s, f) for f in Snapshot.__slots__) if isinstance(v, np.ndarray)
    )


def bench_replay(seeds: list[int], policies: list[str], out: Path) -> None:
    root = data_dir() / "alibaba-openb"
    nodes, pods = root / "openb_node_list_gpu_node.csv", root / "openb_pod_list_default.csv"
    if not nodes.is_file() or not pods.is_file():
        print(f"replay skipped: {root} not found (set STRATUM_DATA_DIR)")
        return
    snap = Snapshot.build(load_nodes(nodes).nodes)
    requests = load_pods(pods).pods
    mix = WorkloadMix.typical(requests)
    rows = []
    print(f"\nB2 replay: openb default list, {len(seeds)} seeds, decisions/s (median over seeds)")
    print(f"{'policy':12s} {'decisions/s':>12s} {'min':>9s} {'max':>9s}")
    for name in policies:
        rates = []
        for seed in seeds:
            r = run_seed(
                snap,
                requests,
                lambda s, n=name: make_policy(n, seed=s, typical=mix),
                seed=seed,
                clock=time.perf_counter,
            )
            rates.append(r.decisions_per_s)
        rows.append(
            {
                "policy": name,
                "decisions_per_s_median": round(statistics.median(rates)),
                "min": round(min(rates)),
                "max": round(max(rates)),
                "seeds": len(seeds),
            }
        )
        print(
            f"{name:12s} {statistics.median(rates):12,.0f} {min(rates):9,.0f} {max(rates):9,.0f}",
            flush=True,
        )
    with (out / "replay.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def bench_synthetic(sizes: list[int], policies: list[str], decisions: int, out: Path) -> None:
    rows = []
    print(f"\nB2 synthetic fleet, half full; latency of one decision over {decisions} decisions")
    print(
        f"{'nodes':>7s} {'GPUs':>7s} {'policy':10s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'max ms':>8s} {'snapshot MB':>12s}"
    )
    for size in sizes:
        base = synthetic_fleet(size)
        # Fill to about half the GPUs with the same mix, through the cheap best-fit policy.
        filler = make_policy("bestfit", seed=0)
        target = base.total_gpu_milli // 2
        for r in synthetic_requests(10 * size, seed=2):
            if base.used_gpu_milli >= target:
                break
            d = filler.place(base, r)
            if d.placed:
                base = base.allocate(d, request=r)
        stream = synthetic_requests(decisions + 200, seed=3)
        for name in policies:
            policy = make_policy(name, seed=0, typical=WorkloadMix.typical(stream))
            snap = base
            lat = []
            for i, r in enumerate(stream):
                t0 = time.perf_counter()
                d = policy.place(snap, r)
                if d.placed:
                    snap = snap.allocate(d, request=r)
                if i >= 200:  # the first requests of each shape fill the policy's caches
                    lat.append(time.perf_counter() - t0)
            a = np.array(lat) * 1e3
            row = {
                "nodes": size,
                "gpus": base.total_gpu_milli // 1000,
                "policy": name,
                "p50_ms": round(float(np.percentile(a, 50)), 3),
                "p99_ms": round(float(np.percentile(a, 99)), 3),
                "max_ms": round(float(a.max()), 3),
                "snapshot_mb": round(snapshot_bytes(snap) / 2**20, 2),
            }
            rows.append(row)
            print(
                f"{size:7d} {row['gpus']:7d} {name:10s} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} "
                f"{row['max_ms']:8.2f} {row['snapshot_mb']:12.2f}",
                flush=True,
            )
    with (out / "synthetic.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="3 seeds, 1k/10k nodes, fewer decisions")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "bench-decisions")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as B2 asks
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [42, 43, 44] if args.quick else list(range(42, 52))
    bench_replay(
        seeds,
        ["random", "dotproduct", "clustering", "packing", "bestfit", "fgd", "stratum"],
        args.out,
    )
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 50_000]
    bench_synthetic(sizes, ["bestfit", "fgd", "stratum"], 500 if args.quick else 2000, args.out)
    print(f"\nCSV in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
