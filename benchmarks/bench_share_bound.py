"""How low can B1's headline go? A lower bound from the GPU shares alone.

At 100% arrived the fleet is saturated: every whole GPU is taken and what stays unallocated
is, nearly all of it, the milli-GPU left over on GPUs that hold shares. For the shares that
arrive up to x = 100 (one seed of the B1 protocol), this script packs them offline, knowing
them all in advance and ignoring CPU, memory, GPU models and arrival order:

* LP: the cutting-stock LP relaxation (Gilmore-Gomory, solved by
  ``stratum.scheduling.gapvalue.pattern_prices``); its value rounded up is a lower bound on
  the GPUs the shares need, so (GPUs x 1000 - share milli) / capacity is a lower bound on the
  unallocated % of any policy that places every one of these shares;
* BFD: best-fit decreasing, an offline heuristic (an upper bound on the optimal packing).

A policy can end below the LP line only by failing shares (a share that fits nowhere at the
end is not placed). Run: .venv/bin/python benchmarks/bench_share_bound.py [--list default]
[--seeds 42,43,44] [--pods results/heldout-lists/heldout_multi50_s202.csv]
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np

from stratum.cli.bench import data_dir
from stratum.scheduling.gapvalue import pattern_prices
from stratum.scheduling.request import MILLI
from stratum.scheduling.snapshot import Snapshot
from stratum.tracebench.trace import load_nodes, load_pods, tune


def best_fit_decreasing(items: list[int]) -> int:
    """GPUs used by best-fit decreasing."""
    gaps: list[int] = []
    for m in sorted(items, reverse=True):
        best, best_left = -1, MILLI + 1
        for i, g in enumerate(gaps):
            if m <= g < best_left + m:
                best, best_left = i, g - m
        if best < 0:
            gaps.append(MILLI - m)
        else:
            gaps[best] -= m
    return len(gaps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", default="default", help="pod list name (openb_pod_list_<name>)")
    ap.add_argument("--pods", default="", help="a pod list CSV instead (e.g. a held-out list)")
    ap.add_argument("--seeds", default="42,43,44,45,46,47,48,49,50,51")
    ap.add_argument("--tune", type=float, default=1.3)
    args = ap.parse_args()
    root = data_dir() / "alibaba-openb"
    snap = Snapshot.build(load_nodes(root / "openb_node_list_gpu_node.csv").nodes)
    pod_list = load_pods(args.pods or root / f"openb_pod_list_{args.list}.csv")
    pods, phases = pod_list.pods, pod_list.phases
    if args.pods:
        args.list = args.pods
    capacity = snap.total_gpu_milli
    print(f"{args.list}: shares arrived by x = 100, packed offline (unallocated % of capacity)")
    print(f"{'seed':>5s} {'shares':>7s} {'LP GPUs':>8s} {'LP bound %':>11s} {'BFD %':>7s}")
    lows, bfds = [], []
    for seed in [int(s) for s in args.seeds.split(",")]:
        arrived, items = 0, []
        for i in tune(pods, capacity, args.tune, seed, phases):
            arrived += pods[i].gpu_total_milli
            if arrived > capacity:
                break
            if pods[i].is_sharing:
                items.append(pods[i].gpu_milli)
        counts = Counter(items)
        sizes = np.array(sorted(counts), dtype=np.int64)
        n = np.array([counts[int(s)] for s in sizes], dtype=np.float64)
        prices, _ = pattern_prices(sizes, n)
        lp_gpus = math.ceil(float(n @ prices) - 1e-6)
        low = 100.0 * (lp_gpus * MILLI - sum(items)) / capacity
        bfd = 100.0 * (best_fit_decreasing(items) * MILLI - sum(items)) / capacity
        lows.append(low)
        bfds.append(bfd)
        print(f"{seed:5d} {len(items):7d} {lp_gpus:8d} {low:11.2f} {bfd:7.2f}", flush=True)
    print(f"{'mean':>5s} {'':7s} {'':8s} {np.mean(lows):11.2f} {np.mean(bfds):7.2f}")


if __name__ == "__main__":
    main()
