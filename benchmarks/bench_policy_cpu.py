"""Decisions per CPU-second of one process, for a policy at two revisions (or two policies:
``--old-policy``), run interleaved in the same minutes (B2 on a loaded machine): wall-clock
decisions/s say little when the machine's cores are shared, CPU time of the process says
more, and running the old and the new code in turn, list by list, puts the same load on both.

Each (revision, list, seed) is one subprocess that replays the list with the B1 protocol
(tuned to 130%) and times ``place`` + ``allocate`` with the process's CPU clock. The older
revision's ``src`` is taken with ``git archive`` into a temporary folder. Run:
  PYTHONPATH=src .venv/bin/python benchmarks/bench_policy_cpu.py --old HEAD~1 \
      --lists default,gpuspec20 --seeds 44 --rounds 2
  # the working tree's Stratum against FGD as an older revision ran it:
  PYTHONPATH=src .venv/bin/python benchmarks/bench_policy_cpu.py --old b1fd512 \
      --old-policy fgd --seeds 42,43,44,45 --rounds 3
List names are shared openb lists or paths to pod CSVs (held-out lists).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# The sibling script (benchmarks/ is this script's first import path): one rule for list
# names and one way to take an older revision out of git.
from bench_policy_ab import extract, pods_path

CHILD = """
import json, sys, time
from stratum.cli.bench import data_dir
from stratum.scheduling.fragmentation import WorkloadMix
from stratum.scheduling.policies import make_policy
from stratum.scheduling.snapshot import Snapshot
from stratum.tracebench.replay import run_seed
from stratum.tracebench.trace import load_nodes, load_pods

pods, seed, policy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
nodes = load_nodes(data_dir() / "alibaba-openb" / "openb_node_list_gpu_node.csv")
pl = load_pods(pods)
snap = Snapshot.build(nodes.nodes)
typical = WorkloadMix.typical(pl.pods)
r = run_seed(snap, pl.pods, lambda s: make_policy(policy, seed=s, typical=typical), seed=seed,
             clock=time.process_time, phases=pl.phases)
print(json.dumps({"pods": r.pods, "cpu_s": r.decision_seconds,
                  "unalloc_100": r.unalloc_at(100)}))
"""


def measure(src: Path, pods: Path, seed: int, policy: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-c", CHILD, str(pods), str(seed), policy]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{pods} at {src} failed:\n{done.stderr}")
    out: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", default="HEAD~1", help="git revision of the older policy")
    ap.add_argument("--lists", default="default")
    ap.add_argument("--seeds", default="44", help="comma-separated; each round runs them all")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--policy", default="stratum")
    ap.add_argument("--old-policy", help="the policy the older revision runs (default: --policy)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    policies = {"old": args.old_policy or args.policy, "new": args.policy}
    new_src = Path(__file__).resolve().parents[1] / "src"
    with tempfile.TemporaryDirectory() as tmp:
        extract(args.old, "src", Path(tmp))
        trees = {"old": Path(tmp) / "src", "new": new_src}
        print(
            f"old = {policies['old']} at {args.old}, new = {policies['new']} in the working "
            f"tree; seeds {args.seeds}, {args.rounds} round(s)"
        )
        print("| list | old decisions/CPU-s | new decisions/CPU-s | new / old |")
        print("|---|---|---|---|", flush=True)
        for name in [n.strip() for n in args.lists.split(",") if n.strip()]:
            rates: dict[str, list[float]] = {"old": [], "new": []}
            for i in range(args.rounds):
                for seed in seeds:
                    # Alternate which goes first, so that neither always meets the same load.
                    for which in ("old", "new") if i % 2 == 0 else ("new", "old"):
                        r = measure(trees[which], pods_path(name), seed, policies[which])
                        rates[which].append(r["pods"] / r["cpu_s"])
            old, new = statistics.median(rates["old"]), statistics.median(rates["new"])
            label = Path(name).stem.removeprefix("heldout_")
            print(f"| {label} | {old:,.0f} | {new:,.0f} | {new / old:.2f} |", flush=True)


if __name__ == "__main__":
    main()
