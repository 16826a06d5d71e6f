"""B3: topology quality against a topology-blind first-fit and the exact optimum.

Fleets of 8-GPU NVSwitch servers (HGX H100) in racks and GB200 NVL72 racks (one 72-GPU
NVLink domain per rack), a seeded mix of training gangs (2-16 replicas of 4 or 8 GPUs, each
with an across-replica clause) and inference services (1-2 GPUs), arriving until the demand
reaches 110% of the fleet's GPUs. Two ways to place them: in arrival order, each once, no
retry (online); and as one batch (`scheduling.batch.place_batch`: priority and size order,
then moves of one contract that did not fit ahead of one that did, best move first).

Reported per engine: GPUs placed (% of the fleet), the share of placed gangs at the best
tier their clause allows on the empty fleet (nvlink-domain > rack > rdma > site), the
share of gangs placed looser than their clause (first-fit is blind to it), and GPUs left
stranded (free GPUs on nodes with fewer than 4 free: no training replica of the mix can
use them). On small instances: the exact optimum of placed GPUs from OR-Tools CP-SAT (every
gang all or nothing inside one domain of its clause's tier) against Stratum's.

Run: .venv/bin/python benchmarks/bench_topology.py [--quick]
Writes results/bench-topology/{large,small}.csv and prints the tables.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.batch import place_batch
from stratum.scheduling.contracts import TIERS, FleetNode, FleetState, WorkloadAsk, place_contract
from stratum.scheduling.policies import make_policy
from stratum.store.objects import ObjectStore
from stratum.testing import manifests
from stratum.testing.controlled import ControlledFleet
from stratum.testing.fleets import Gang, exact_placed_gpus, tier_domain, training_fleet

REPO = Path(__file__).resolve().parents[1]
TRAINING = (  # (replicas, GPUs per replica, across-replica clause), weight
    ((2, 8, "rack"), 3),
    ((4, 8, "rack"), 2),
    ((8, 8, "rdma"), 1),
    ((2, 4, "nvlink-domain"), 2),
    ((8, 4, "nvlink-domain"), 2),
    ((16, 4, "nvlink-domain"), 1),
    ((4, 4, "rack"), 2),
    ((4, 8, "site"), 1),
)
INFERENCE = (((1, 1, "any"), 4), ((1, 2, "any"), 2), ((1, 4, "any"), 1))
SMALL_TRAINING = (  # gangs sized for the small fleet that the exact solver handles
    ((2, 8, "rack"), 3),
    ((3, 8, "rdma"), 1),
    ((2, 4, "nvlink-domain"), 2),
    ((4, 4, "nvlink-domain"), 2),
    ((3, 4, "rack"), 1),
)
STRANDED_BELOW = 4


def mix(
    seed: int,
    capacity: int,
    load: float = 1.1,
    training: Sequence[tuple[tuple[int, int, str], int]] = TRAINING,
) -> list[Gang]:
    rng = np.random.default_rng(seed)
    out: list[Gang] = []
    total = 0
    while total < load * capacity:
        pool = training if rng.random() < 0.6 else INFERENCE
        weights = np.array([w for _, w in pool], dtype=float)
        (replicas, gpus, across), _ = pool[int(rng.choice(len(pool), p=weights / weights.sum()))]
        out.append(Gang(replicas, gpus, across))
        total += replicas * gpus
    return out


def ask_of(gang: Gang) -> WorkloadAsk:
    return WorkloadAsk(
        "bench",
        gang.replicas,
        Contract.model_validate(
            {
                "compute": {"gpus": gang.gpus, "cpuCores": 4, "memoryGiB": 32},
                "topology": {"withinReplica": "nvlink", "acrossReplicas": gang.across},
            }
        ),
    )


def tier_of(nodes: Sequence[FleetNode], names: Sequence[str]) -> str:
    by_name = {n.name: n for n in nodes}
    for tier in TIERS:
        labels = {tier_domain(by_name[x], tier) for x in names}
        if len(labels) == 1 and "" not in labels:
            return tier
    return "any"


def best_tier(nodes: Sequence[FleetNode], gang: Gang) -> str:
    """The tightest tier at which some domain of the empty fleet holds the gang."""
    for tier in TIERS:
        per: dict[str, int] = {}
        for n in nodes:
            label = tier_domain(n, tier)
            if label:
                per[label] = per.get(label, 0) + len(n.gpu_models) // gang.gpus
        if any(v >= gang.replicas for v in per.values()):
            return tier
    return "any"


Placed = list[list[str] | None]


def run_stratum(nodes: list[FleetNode], gangs: list[Gang]) -> tuple[Placed, FleetState, float]:
    state = FleetState.build(nodes)
    policy = make_policy("stratum", seed=0)
    out: list[list[str] | None] = []
    times = []
    for gang in gangs:
        t = time.perf_counter()
        d = place_contract(state, ask_of(gang), policy=policy)
        times.append(time.perf_counter() - t)
        if d.placed:
            state = state.bind("bench", d.bindings)
            out.append([b.node for b in d.bindings])
        else:
            out.append(None)
    return out, state, statistics.median(times) * 1000


def run_batch(
    nodes: list[FleetNode], gangs: list[Gang], max_orders: int = 200
) -> tuple[Placed, FleetState, float]:
    """The gangs as one batch; also the time per contract (ms)."""
    t = time.perf_counter()
    result = place_batch(FleetState.build(nodes), [ask_of(g) for g in gangs], max_orders=max_orders)
    ms = (time.perf_counter() - t) * 1000 / max(1, len(gangs))
    placed: Placed = [
        [b.node for b in d.bindings] if d is not None else None for d in result.decisions
    ]
    return placed, result.state, ms


def run_first_fit(nodes: list[FleetNode], gangs: list[Gang]) -> tuple[Placed, list[int]]:
    free = [len(n.gpu_models) for n in nodes]
    out: list[list[str] | None] = []
    for gang in gangs:
        trial = free.copy()
        where: list[str] = []
        for _ in range(gang.replicas):
            i = next((i for i, f in enumerate(trial) if f >= gang.gpus), None)
            if i is None:
                break
            trial[i] -= gang.gpus
            where.append(nodes[i].name)
        if len(where) == gang.replicas:
            free = trial
            out.append(where)
        else:
            out.append(None)
    return out, free


def figures(
    nodes: list[FleetNode], gangs: list[Gang], placed: list[list[str] | None], free: list[int]
) -> dict[str, float]:
    capacity = sum(len(n.gpu_models) for n in nodes)
    gpus = sum(g.replicas * g.gpus for g, p in zip(gangs, placed, strict=True) if p)
    multi = [(g, p) for g, p in zip(gangs, placed, strict=True) if p and g.replicas > 1]
    best = sum(1 for g, p in multi if tier_of(nodes, p) == best_tier(nodes, g))
    looser = sum(1 for g, p in multi if TIERS.index(tier_of(nodes, p)) > TIERS.index(g.across))
    stranded = sum(
        f
        for f, n in zip(free, nodes, strict=True)
        if 0 < f < STRANDED_BELOW and f < len(n.gpu_models)
    )
    return {
        "placed_gpu_pct": 100 * gpus / capacity,
        "placed_gpus": gpus,
        "gangs_placed": len(multi),
        "best_tier_pct": 100 * best / len(multi) if multi else 100.0,
        "looser_than_clause_pct": 100 * looser / len(multi) if multi else 0.0,
        "stranded_gpu_pct": 100 * stranded / capacity,
    }


def run_controller(gangs: list[Gang]) -> int:
    """GPUs the live WorkloadController binds when the gangs arrive together on the small
    fleet (the same machines as `training_fleet` below, made by a Cluster's node pools):
    what users get, measured through the store, the cycle and the writes."""
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore.open(f"sqlite:///{tmp}/b3.db")
        fleet = ControlledFleet(store)
        fleet.apply(
            [
                *manifests.profiles(),
                manifests.site("site-1"),
                manifests.tenant("bench"),
                manifests.cluster(
                    "b3",
                    "site-1",
                    [
                        {
                            "name": "hgx",
                            "profile": "hgx-h100-80gb",
                            "count": 4,
                            "rackPrefix": "hgx-r",
                            "nodesPerRack": 2,
                        },
                        {
                            "name": "nvl",
                            "profile": "gb200-nvl72-tray",
                            "count": 6,
                            "rackPrefix": "nvl-r",
                            "nodesPerRack": 18,
                        },
                    ],
                ),
            ]
        )
        fleet.settle(passes=2)
        fleet.apply(
            manifests.workload(
                f"g{i:03d}",
                "bench",
                {
                    "compute": {"gpus": g.gpus, "cpuCores": 4, "memoryGiB": 32},
                    "topology": {"withinReplica": "nvlink", "acrossReplicas": g.across},
                },
                replicas=g.replicas,
            )
            for i, g in enumerate(gangs)
        )
        fleet.settle(passes=3)
        bound = sum(
            len(r.gpus)
            for p in fleet.placements().values()
            if p.status.phase in ("Bound", "Running")
            for r in p.spec.replicas
        )
        store.close()
    return bound


def free_after(nodes: list[FleetNode], state: FleetState) -> list[int]:
    return [
        int((state.snapshot.gpu_free[i, : len(n.gpu_models)] == 1000).sum())
        for i, n in enumerate(nodes)
    ]


def large(seeds: Sequence[int], out: Path) -> None:
    nodes = training_fleet(sites=2, hgx_racks=4, hgx_per_rack=4, nvl72_racks=2)
    capacity = sum(len(n.gpu_models) for n in nodes)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        gangs = mix(seed, capacity)
        placed, state, ms = run_stratum(nodes, gangs)
        rows.append(
            {
                "seed": seed,
                "engine": "stratum",
                "median_ms": round(ms, 2),
                **figures(nodes, gangs, placed, free_after(nodes, state)),
            }
        )
        placed_b, state_b, ms_b = run_batch(nodes, gangs)
        rows.append(
            {
                "seed": seed,
                "engine": "stratum-batch",
                "median_ms": round(ms_b, 2),
                **figures(nodes, gangs, placed_b, free_after(nodes, state_b)),
            }
        )
        ff, free = run_first_fit(nodes, gangs)
        rows.append(
            {
                "seed": seed,
                "engine": "first-fit",
                "median_ms": 0.0,
                **figures(nodes, gangs, ff, free),
            }
        )
    _write(out / "large.csv", rows)
    print(
        f"\nB3 large: {len(nodes)} nodes, {capacity} GPUs (2 sites x (4 racks x 4 HGX H100 + "
        f"2 NVL72 racks)), 110% demand, seeds {seeds[0]}..{seeds[-1]} (median over seeds)"
    )
    print(
        "| engine | GPUs placed % | gangs at best tier % | gangs looser than clause % | "
        "stranded GPUs % | median decision ms (batch: ms per contract) |"
    )
    print("|---|---|---|---|---|---|")
    for engine in ("stratum", "stratum-batch", "first-fit"):
        mine = [r for r in rows if r["engine"] == engine]
        med = {
            k: statistics.median(float(r[k]) for r in mine)
            for k in (
                "placed_gpu_pct",
                "best_tier_pct",
                "looser_than_clause_pct",
                "stranded_gpu_pct",
                "median_ms",
            )
        }
        print(
            f"| {engine} | {med['placed_gpu_pct']:.1f} | {med['best_tier_pct']:.1f} | "
            f"{med['looser_than_clause_pct']:.1f} | {med['stranded_gpu_pct']:.2f} | "
            f"{med['median_ms']:.2f} |"
        )


def small(seeds: Sequence[int], out: Path) -> None:
    nodes = training_fleet(sites=1, hgx_racks=2, hgx_per_rack=2, nvl72_racks=1, trays_per_rack=6)
    capacity = sum(len(n.gpu_models) for n in nodes)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        gangs = mix(seed, capacity, load=1.3, training=SMALL_TRAINING)
        placed, _, _ = run_stratum(nodes, gangs)
        ours = sum(g.replicas * g.gpus for g, p in zip(gangs, placed, strict=True) if p)
        greedy, _, _ = run_batch(nodes, gangs, max_orders=1)
        ours_g = sum(g.replicas * g.gpus for g, p in zip(gangs, greedy, strict=True) if p)
        placed_b, _, ms_b = run_batch(nodes, gangs)
        ours_b = sum(g.replicas * g.gpus for g, p in zip(gangs, placed_b, strict=True) if p)
        ff, _ = run_first_fit(nodes, gangs)
        blind = sum(g.replicas * g.gpus for g, p in zip(gangs, ff, strict=True) if p)
        best, proved = exact_placed_gpus(nodes, gangs, seconds=20)
        live = run_controller(gangs)

        def pct(x: int, best: int = best) -> float:
            return round(100 * x / best, 2) if best else 100.0

        rows.append(
            {
                "seed": seed,
                "contracts": len(gangs),
                "optimum": best,
                "proved": proved,
                "stratum": ours,
                "stratum_batch_greedy": ours_g,
                "stratum_batch": ours_b,
                "first_fit": blind,
                "controller": live,
                "batch_ms_per_contract": round(ms_b, 2),
                "stratum_pct_of_optimum": pct(ours),
                "batch_greedy_pct_of_optimum": pct(ours_g),
                "batch_pct_of_optimum": pct(ours_b),
                "controller_pct_of_optimum": pct(live),
            }
        )
    _write(out / "small.csv", rows)
    print(
        f"\nB3 small: {len(nodes)} nodes, {capacity} GPUs (2 racks x 2 HGX H100 + 6 trays of "
        f"one NVL72 rack), 130% demand, against CP-SAT"
    )
    print(
        "| seed | contracts | optimum GPUs | proved | Stratum (arrival) | Stratum (batch, "
        "order only) | Stratum (batch) | live controller | first-fit (blind) | arrival % | batch "
        "order only % | batch % | controller % |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['contracts']} | {r['optimum']} | {r['proved']} | "
            f"{r['stratum']} | {r['stratum_batch_greedy']} | {r['stratum_batch']} | "
            f"{r['controller']} | {r['first_fit']} | {r['stratum_pct_of_optimum']} | "
            f"{r['batch_greedy_pct_of_optimum']} | {r['batch_pct_of_optimum']} | "
            f"{r['controller_pct_of_optimum']} |"
        )
    optimum = sum(float(r["optimum"]) for r in rows)
    for label, pct_col, column in (
        ("arrival order, one try each", "stratum_pct_of_optimum", "stratum"),
        (
            "batch, priority and size order only",
            "batch_greedy_pct_of_optimum",
            "stratum_batch_greedy",
        ),
        ("batch (place_batch)", "batch_pct_of_optimum", "stratum_batch"),
        ("live controller (WorkloadController)", "controller_pct_of_optimum", "controller"),
    ):
        values = [float(r[pct_col]) for r in rows]
        total = 100 * sum(float(r[column]) for r in rows) / optimum
        print(
            f"Stratum ({label}) / optimum: median {statistics.median(values):.1f}%, "
            f"min {min(values):.1f}%, mean {statistics.mean(values):.1f}%, "
            f"total {total:.1f}%"
        )
    print(
        "place_batch ms per contract: median "
        f"{statistics.median(float(r['batch_ms_per_contract']) for r in rows):.2f}"
    )


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds instead of 10")
    parser.add_argument("--small-only", action="store_true", help="only the CP-SAT instances")
    args = parser.parse_args()
    seeds = list(range(3 if args.quick else 10))
    out = REPO / "results" / "bench-topology"
    if not args.small_only:
        large(seeds, out)
    small(seeds, out)


if __name__ == "__main__":
    main()
