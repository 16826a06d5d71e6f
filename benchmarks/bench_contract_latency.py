"""B2's contract cases at fleet scale: latency of `place_contract` for gangs, a MIG slice and
single-GPU requests on a synthetic fleet of built-in machines.

Fleet (per 10k nodes): 5 sites in two jurisdictions; at each site HGX H100 and HGX A100
servers and PCIe L40S servers in racks of 4, and GB200 NVL72 racks of 18 trays (one 72-GPU
NVLink domain per rack). Before the cases, a seeded 40% of the nodes hold work (a random
number of their GPUs). Each case makes N decisions (default 200) on an evolving fleet: a
placed contract is bound, and every `--reset-every` decisions the pre-filled fleet is built
again (a new FleetState, as the controller builds one per pass), so that large gangs do not
exhaust it. The first decision on a new FleetState is "cold" (the policy scores every
eligible node; later ones rescore only the nodes that changed): reported apart too.

Run: .venv/bin/python benchmarks/bench_contract_latency.py [--nodes 10000] [--decisions 200]
Writes results/bench-contract-latency/latency.csv and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.contracts import FleetNode, FleetState, Held, WorkloadAsk, place_contract
from stratum.scheduling.policies import make_policy
from stratum.testing.fleets import fleet_node

REPO = Path(__file__).resolve().parents[1]
SITES = (
    ("eu-1", "DE", ("EU",)),
    ("eu-2", "FR", ("EU",)),
    ("eu-3", "NL", ("EU",)),
    ("us-1", "US", ("US",)),
    ("us-2", "US", ("US",)),
)
TRAYS_PER_RACK = 18  # GB200 NVL72: 18 compute trays of 4 GPUs = 72 GPUs in one NVLink domain
SERVERS_PER_RACK = 4


def synthetic_fleet(total: int) -> list[FleetNode]:
    """`total` nodes over 5 sites: about a quarter each of GB200 trays (whole NVL72 racks),
    HGX H100, HGX A100 and PCIe L40S servers."""
    nodes: list[FleetNode] = []
    per_site = total // len(SITES)
    for site, country, law in SITES:
        racks = max(1, per_site // 4 // TRAYS_PER_RACK)
        for r in range(racks):
            for t in range(TRAYS_PER_RACK):
                nodes.append(
                    fleet_node(
                        f"{site}-nvl{r:03d}-{t:02d}",
                        "gb200-nvl72-tray",
                        site=site,
                        rack=f"nvl{r:03d}",
                        country=country,
                        jurisdictions=law,
                    )
                )
        rest = per_site - racks * TRAYS_PER_RACK
        for i in range(rest):
            profile = ("hgx-h100-80gb", "hgx-a100-80gb", "pcie-l40s-8gpu")[i % 3]
            rack = f"{profile.split('-')[1]}{i // 3 // SERVERS_PER_RACK:03d}"
            nodes.append(
                fleet_node(
                    f"{site}-{profile.split('-')[1]}-{i:05d}",
                    profile,
                    site=site,
                    rack=rack,
                    country=country,
                    jurisdictions=law,
                )
            )
    return nodes


def prefill(nodes: list[FleetNode], share: float = 0.4, seed: int = 0) -> list[Held]:
    rng = np.random.default_rng(seed)
    held = []
    for i in np.flatnonzero(rng.random(len(nodes)) < share):
        n = nodes[int(i)]
        k = int(rng.integers(1, len(n.gpu_models) + 1))
        held.append(Held(n.name, tuple(range(k)), cpu_milli=4000 * k, memory_mib=32768 * k))
    return held


def ask(replicas: int, contract: dict[str, object]) -> WorkloadAsk:
    return WorkloadAsk("bench", replicas, Contract.model_validate(contract))


CASES = {
    "64-replica gang, 8 GPUs each, NVLink within, up to rdma across": ask(
        64,
        {
            "compute": {"gpus": 8, "cpuCores": 32, "memoryGiB": 256},
            "topology": {"withinReplica": "nvlink", "acrossReplicas": "rdma"},
        },
    ),
    "64-replica gang, 1 GPU each, one NVLink domain (an NVL72 rack)": ask(
        64,
        {
            "compute": {"gpus": 1, "cpuCores": 4, "memoryGiB": 32},
            "topology": {"acrossReplicas": "nvlink-domain"},
        },
    ),
    "8-replica gang, 4 GPUs each, rack tier": ask(
        8,
        {
            "compute": {"gpus": 4, "cpuCores": 16, "memoryGiB": 128},
            "topology": {"withinReplica": "nvlink", "acrossReplicas": "rack"},
        },
    ),
    "one MIG 1g.10gb": ask(1, {"compute": {"migProfile": "1g.10gb"}}),
    "one whole GPU": ask(1, {"compute": {"gpus": 1, "cpuCores": 4, "memoryGiB": 32}}),
    "one whole GPU, EU, NUMA-aligned": ask(
        1,
        {
            "compute": {"gpus": 1, "cpuCores": 4, "memoryGiB": 32},
            "topology": {"numaAligned": True},
            "sovereignty": {"jurisdictions": ["EU"]},
        },
    ),
}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q, method="higher"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--reset-every", type=int, default=10)
    args = parser.parse_args()
    nodes = synthetic_fleet(args.nodes)
    gpus = sum(len(n.gpu_models) for n in nodes)
    held = prefill(nodes)
    started = time.perf_counter()
    base = FleetState.build(nodes, held)
    build_s = time.perf_counter() - started
    print(
        f"{len(nodes)} nodes, {gpus} GPUs, {len(held)} nodes pre-filled; "
        f"FleetState.build {build_s:.2f} s"
    )
    rows = []
    for name, a in CASES.items():
        policy = make_policy("stratum", seed=0)
        state = base
        times: list[float] = []
        cold: list[float] = []
        placed = 0
        tiers: dict[str, int] = {}
        for n in range(args.decisions):
            if n % args.reset_every == 0:
                state = base if n == 0 else FleetState.build(nodes, held)
            t = time.perf_counter()
            d = place_contract(state, a, policy=policy)
            times.append((time.perf_counter() - t) * 1000)
            if n % args.reset_every == 0:
                cold.append(times[-1])
            if d.placed:
                placed += 1
                tiers[d.tier or "-"] = tiers.get(d.tier or "-", 0) + 1
                state = state.bind("bench", d.bindings)
        rows.append(
            {
                "case": name,
                "decisions": len(times),
                "placed": placed,
                "tiers": " ".join(f"{k}:{v}" for k, v in sorted(tiers.items())),
                "p50_ms": round(statistics.median(times), 2),
                "p99_ms": round(percentile(times, 99), 2),
                "max_ms": round(max(times), 2),
                "cold_p50_ms": round(statistics.median(cold), 2),
            }
        )
    out = REPO / "results" / "bench-contract-latency"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "latency.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print("| case | decisions | placed | tiers | p50 ms | p99 ms | max ms | cold p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['decisions']} | {r['placed']} | {r['tiers']} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['cold_p50_ms']} |"
        )


if __name__ == "__main__":
    main()
