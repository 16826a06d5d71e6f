"""B1 on held-out lists: FGD against Stratum on the lists of make_heldout_lists.py (TUNE or
REPORT) and/or on shared openb lists, printed as one markdown table with the goals of issue
#15 checked per list:

* unallocated GPU % at 100% arrived below FGD's;
* first bucket with >= 1% of capacity failed no earlier than FGD's minus 2;
* >= 5,000 decisions/s.

Each (list, policy) is one `stratum bench trace --json` run (the B1 protocol), so every
figure here can be rerun alone; its JSON is kept under --out and reused by later runs with
the same seeds unless the policy is named in --fresh (FGD's code does not change while
Stratum is tuned). Run:
  .venv/bin/python benchmarks/bench_heldout.py --set report --seeds 42,43,44
  .venv/bin/python benchmarks/bench_heldout.py --set none --shared default,gpuspec20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from make_heldout_lists import generate

from stratum.cli.bench import data_dir


def run_list(pods: Path, seeds: str, policies: str, out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "stratum",
        "bench",
        "trace",
        "--pods",
        str(pods),
        "--policies",
        policies,
        "--seeds",
        seeds,
        "--out",
        str(out),
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_cached(pods: Path, seeds: str, policy: str, out: Path, fresh: set[str]) -> dict[str, Any]:
    name = pods.stem.removeprefix("openb_pod_list_").removeprefix("heldout_")
    cache = out / "json" / f"{name}__{policy}__{seeds.replace(',', '-')}.json"
    if policy not in fresh and cache.is_file():
        kept: dict[str, Any] = json.loads(cache.read_text())
        return kept
    result = run_list(pods, seeds, policy, out)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=2))
    return result


def row(name: str, p: dict[str, Any], policies: list[str]) -> str:
    cells = [name]
    for pol in policies:
        s = p[pol]
        cells.append(f"{s['unalloc_pct_at_100_mean']:.2f} ± {s['unalloc_pct_at_100_sd']:.2f}")
    for pol in policies:
        first = p[pol]["first_failed_bucket_mean"]
        cells.append("-" if first is None else f"{first:.1f}")
    for pol in policies:
        cells.append(f"{p[pol]['decisions_per_s']:,.0f}")
    if "fgd" in p and "stratum" in p:
        f, s = p["fgd"], p["stratum"]
        delta = s["unalloc_pct_at_100_mean"] - f["unalloc_pct_at_100_mean"]
        ff, sf = f["first_failed_bucket_mean"], s["first_failed_bucket_mean"]
        early_ok = sf is None or (ff is not None and sf >= ff - 2.0)
        goals = [delta < 0, early_ok, s["decisions_per_s"] >= 5000]
        cells.append(f"{delta:+.2f}")
        cells.append(" ".join("yes" if g else "**no**" for g in goals))
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("tune", "report", "all", "none"), default="tune")
    ap.add_argument("--shared", default="", help="comma-separated shared list names too")
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--policies", default="fgd,stratum")
    ap.add_argument("--lists", type=Path, default=Path("results/heldout-lists"))
    ap.add_argument("--out", type=Path, default=Path("results/bench-heldout"))
    ap.add_argument("--fresh", default="stratum", help="policies to rerun even if cached")
    args = ap.parse_args()
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    files = [] if args.set == "none" else generate(args.set, args.lists)
    root = data_dir() / "alibaba-openb"
    files += [root / f"openb_pod_list_{n.strip()}.csv" for n in args.shared.split(",") if n]
    head = (
        ["list"]
        + [f"{p} unalloc % @100" for p in policies]
        + [f"{p} first ≥1% failed" for p in policies]
        + [f"{p} decisions/s" for p in policies]
    )
    if "fgd" in policies and "stratum" in policies:
        head += ["Stratum - FGD", "goals (below FGD, failed ≥ FGD-2, ≥5k/s)"]
    print(f"seeds {args.seeds}")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head), flush=True)
    fresh = {p.strip() for p in args.fresh.split(",") if p.strip()}
    results: dict[str, dict[str, Any]] = {}
    for path in files:
        name = path.stem.removeprefix("openb_pod_list_").removeprefix("heldout_")
        results[name] = {
            pol: run_cached(path, args.seeds, pol, args.out, fresh)["policies"][pol]
            for pol in policies
        }
        print(row(name, results[name], policies), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"heldout_{args.set}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
