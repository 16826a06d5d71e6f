"""Speed work on a placement policy, checked two ways in one process: the working tree's
policy and an older revision's (or two policies) replay the same list at once, decision by
decision, so that both meet the same machine at the same moments (a ratio that holds on a
loaded, noisy 2-core machine where separate runs drift by +-10%).

* ``--mode same`` (default): both see the same snapshots (the working tree's, updated with the
  working tree's decisions) and every decision must be identical; it stops at the first that
  differs. This is how a change "for speed only" is shown to change no placement.
* ``--mode own``: each replays its own states (its own Snapshot code, its own decisions), as
  B2 times a policy: place + allocate. Use it to compare different policies (Stratum against
  FGD at the revision whose quiet-machine figure B2 records).
* ``--mode lists``: the working tree's policy on each list against the same policy on
  ``--reference`` (default: the default list), replayed side by side (the shorter replay
  starts again until the longer ends): how fast a list runs relative to the reference, with
  the machine's drift from minute to minute taken out. ``--old`` is not used.

Each decision is timed with ``perf_counter`` around the calls, the two sides alternating which
goes first. The older revision's ``src/stratum`` is unpacked with ``git archive`` into a
temporary folder as package ``stratum_base`` (imports renamed), so both load side by side.

Run:
  PYTHONPATH=src .venv/bin/python benchmarks/bench_policy_ab.py --old HEAD~1 \\
      --lists default,multigpu50 --seeds 42,43
  PYTHONPATH=src .venv/bin/python benchmarks/bench_policy_ab.py --old b1fd512 --mode own \\
      --old-policy fgd --lists default --seeds 42,43
List names are shared openb lists or paths to pod CSVs (held-out lists).
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from stratum.cli.bench import data_dir
from stratum.scheduling.fragmentation import WorkloadMix
from stratum.scheduling.policies import make_policy
from stratum.scheduling.snapshot import Snapshot
from stratum.tracebench.replay import tune
from stratum.tracebench.trace import load_nodes, load_pods

_IMPORT = re.compile(r"\b(from|import) stratum(?=[\s.])")


def extract(revision: str, path: str, into: Path) -> None:
    """The repository's ``path`` at ``revision``, written under ``into`` (``into/path``)."""
    archive = subprocess.run(
        ["git", "archive", revision, path], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def unpack(revision: str, into: Path) -> None:
    """``src/stratum`` at ``revision`` as package ``stratum_base`` under ``into``."""
    extract(revision, "src/stratum", into)
    package = into / "stratum_base"
    (into / "src" / "stratum").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        path.write_text(_IMPORT.sub(r"\1 stratum_base", text))


def pods_path(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".csv":
        return path
    return data_dir() / "alibaba-openb" / f"openb_pod_list_{name}.csv"


def base_modules() -> dict[str, ModuleType]:
    names = ("scheduling.policies", "scheduling.snapshot", "scheduling.fragmentation")
    names += ("tracebench.trace",)
    return {n: importlib.import_module(f"stratum_base.{n}") for n in names}


def run_same(base: dict[str, ModuleType], pods: Path, seed: int, policies: tuple[str, str]) -> Any:
    """Both policies on the working tree's snapshots; decisions must match."""
    trace = load_pods(pods)
    node_csv = data_dir() / "alibaba-openb" / "openb_node_list_gpu_node.csv"
    snap = Snapshot.build(load_nodes(node_csv).nodes)
    order = tune(trace.pods, snap.total_gpu_milli, 1.3, seed, trace.phases)
    old_mix = base["scheduling.fragmentation"].WorkloadMix.typical(trace.pods)
    old = base["scheduling.policies"].make_policy(policies[0], seed=seed, typical=old_mix)
    new = make_policy(policies[1], seed=seed, typical=WorkloadMix.typical(trace.pods))
    times = np.zeros((2, len(order)))
    clock = time.perf_counter
    for i, p in enumerate(order):
        request = trace.pods[p]
        decisions: list[Any] = [None, None]
        for side in (0, 1) if i % 2 else (1, 0):
            policy = old if side == 0 else new
            t0 = clock()
            decisions[side] = policy.place(snap, request)
            times[side, i] = clock() - t0
        a, b = decisions
        if (a.node, a.gpus) != (b.node, b.gpus):
            raise SystemExit(
                f"{pods.name} seed {seed}: decision {i} differs: old {a.node} {a.gpus}, "
                f"new {b.node} {b.gpus}"
            )
        if b.placed:
            snap = snap.allocate(b, request=request)
    return times


def run_own(base: dict[str, ModuleType], pods: Path, seed: int, policies: tuple[str, str]) -> Any:
    """Each side replays its own states with its own code: place + allocate timed."""
    node_csv = data_dir() / "alibaba-openb" / "openb_node_list_gpu_node.csv"
    traces = (base["tracebench.trace"].load_pods(pods), load_pods(pods))
    snaps: list[Any] = [
        base["scheduling.snapshot"].Snapshot.build(
            base["tracebench.trace"].load_nodes(node_csv).nodes
        ),
        Snapshot.build(load_nodes(node_csv).nodes),
    ]
    order = tune(traces[1].pods, snaps[1].total_gpu_milli, 1.3, seed, traces[1].phases)
    old_mix = base["scheduling.fragmentation"].WorkloadMix.typical(traces[0].pods)
    sides = (
        base["scheduling.policies"].make_policy(policies[0], seed=seed, typical=old_mix),
        make_policy(policies[1], seed=seed, typical=WorkloadMix.typical(traces[1].pods)),
    )
    times = np.zeros((2, len(order)))
    clock = time.perf_counter
    for i, p in enumerate(order):
        for side in (0, 1) if i % 2 else (1, 0):
            request = traces[side].pods[p]
            t0 = clock()
            decision = sides[side].place(snaps[side], request)
            if decision.placed:
                snaps[side] = snaps[side].allocate(decision, request=request)
            times[side, i] = clock() - t0
    return times


class _Replay:
    """One list replayed with the working tree's policy, a decision at a time, started again
    from an empty fleet when it ends."""

    def __init__(self, pods: Path, seed: int, policy: str) -> None:
        node_csv = data_dir() / "alibaba-openb" / "openb_node_list_gpu_node.csv"
        self._nodes = load_nodes(node_csv).nodes
        self._trace = load_pods(pods)
        self._seed = seed
        self._policy = policy
        self.decisions = 0
        self.seconds = 0.0
        self._start()

    def _start(self) -> None:
        self._snap = Snapshot.build(self._nodes)
        self._order = tune(
            self._trace.pods, self._snap.total_gpu_milli, 1.3, self._seed, self._trace.phases
        )
        mix = WorkloadMix.typical(self._trace.pods)
        self._place = make_policy(self._policy, seed=self._seed, typical=mix).place
        self._at = 0

    @property
    def length(self) -> int:
        return len(self._order)

    def step(self) -> None:
        if self._at == len(self._order):
            self._start()
        request = self._trace.pods[self._order[self._at]]
        t0 = time.perf_counter()
        decision = self._place(self._snap, request)
        if decision.placed:
            self._snap = self._snap.allocate(decision, request=request)
        self.seconds += time.perf_counter() - t0
        self.decisions += 1
        self._at += 1


def run_lists(reference: Path, pods: Path, seed: int, policy: str) -> tuple[float, float]:
    """Decisions/s of ``policy`` on ``reference`` and on ``pods``, replayed side by side."""
    sides = (_Replay(reference, seed, policy), _Replay(pods, seed, policy))
    for i in range(max(side.length for side in sides)):
        for side in sides if i % 2 else sides[::-1]:
            side.step()
    ref, other = (side.decisions / side.seconds for side in sides)
    return ref, other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", default="HEAD~1", help="git revision of the older policy")
    ap.add_argument("--mode", choices=("same", "own", "lists"), default="same")
    ap.add_argument("--reference", default="default", help="--mode lists: the list to compare to")
    ap.add_argument("--lists", default="default")
    ap.add_argument("--seeds", default="42")
    ap.add_argument("--policy", default="stratum")
    ap.add_argument("--old-policy", help="the policy the older revision runs (default: --policy)")
    args = ap.parse_args()
    policies = (args.old_policy or args.policy, args.policy)
    if args.mode == "lists":
        print(f"{args.policy} in the working tree on each list against {args.reference}")
        print("| list | seed | reference decisions/s | list decisions/s | list / reference |")
        print("|---|---|---|---|---|", flush=True)
        for name in [n.strip() for n in args.lists.split(",") if n.strip()]:
            for seed in [int(s) for s in args.seeds.split(",")]:
                ref, other = run_lists(
                    pods_path(args.reference), pods_path(name), seed, args.policy
                )
                label = Path(name).stem.removeprefix("heldout_")
                print(f"| {label} | {seed} | {ref:,.0f} | {other:,.0f} | {other / ref:.2f} |")
        return
    if args.mode == "same" and policies[0] != policies[1]:
        raise SystemExit("--mode same compares one policy at two revisions; use --mode own")
    run = run_same if args.mode == "same" else run_own
    with tempfile.TemporaryDirectory() as tmp:
        unpack(args.old, Path(tmp))
        sys.path.insert(0, tmp)
        base = base_modules()
        print(
            f"old = {policies[0]} at {args.old}, new = {policies[1]} in the working tree; "
            f"mode {args.mode}"
        )
        print("| list | seed | old decisions/s | new decisions/s | new / old |")
        print("|---|---|---|---|---|", flush=True)
        total = np.zeros(2)
        count = 0
        for name in [n.strip() for n in args.lists.split(",") if n.strip()]:
            for seed in [int(s) for s in args.seeds.split(",")]:
                times = run(base, pods_path(name), seed, policies)
                n = times.shape[1]
                old, new = n / times[0].sum(), n / times[1].sum()
                total += times.sum(axis=1)
                count += n
                label = Path(name).stem.removeprefix("heldout_")
                print(f"| {label} | {seed} | {old:,.0f} | {new:,.0f} | {new / old:.2f} |")
        print(f"all: new / old = {total[0] / total[1]:.2f} over {count:,} decisions")
        if args.mode == "same":
            print("every decision identical")


if __name__ == "__main__":
    main()
