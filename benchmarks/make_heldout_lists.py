"""Held-out pod lists for B1: seeded resamplings of the openb default list into mixes this
project never tuned on (issue #15). Written at run time into a results folder; only this
generator and its seeds are committed.

Kinds of list (fractions and seeds per list in ``TUNE`` and ``REPORT`` below):

* ``spec<P>``: P% of the GPU pods pinned to GPU models. Each pinned pod gets a ``gpu_spec``
  drawn from the trace's own distribution of specs (the pinned pods of
  ``openb_pod_list_gpuspec20.csv``, the largest share the trace publishes), among the specs
  that can host it at all (a model with a node of at least its GPU count): T4 about half,
  then G2, P100, the V100s.
* ``multi<P>``: copies of the default list's multi-GPU pods (2, 4, 8 GPUs) appended until
  they ask for P% of the list's GPU demand, as the trace's own multigpu20/30/50 lists do
  (P = share of GPU *demand*, the trace's convention: its multigpu50 has 50% of demand and
  12% of GPU pods multi-GPU).
* ``shift-<a>-<b>``: a mix shift: list a's pods (resampled) until they ask for 65% of the
  fleet's GPUs, then list b's until 80%; a ``phase`` column (0, 1) makes the tuning step
  shuffle within each half and keep the halves in order, so the mix changes at about
  x = 65 for every seed.

The split: tune (choose policy parameters) on TUNE only; report on REPORT, whose lists
differ in fraction and generator seed. docs/benchmarks.md ("B1 held-out lists") records it.

Run: .venv/bin/python benchmarks/make_heldout_lists.py [--set tune|report|all] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stratum.cli.bench import data_dir
from stratum.scheduling.request import MILLI

Row = dict[str, str]
COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "phase")
SPEC_SOURCE = "openb_pod_list_gpuspec20.csv"
SHIFT_FIRST, SHIFT_SECOND = 0.65, 0.80


@dataclass(frozen=True, slots=True)
class ListSpec:
    """One held-out list: its name says what it is; seed is the generator's."""

    name: str
    seed: int


#: lists to tune on (seed 101)
TUNE = (
    ListSpec("spec25", 101),
    ListSpec("spec40", 101),
    ListSpec("multi40", 101),
    ListSpec("multi60", 101),
    ListSpec("shift-default-multi60", 101),
)
#: lists to report on, never tuned on: other fractions, other seed (202)
REPORT = (
    ListSpec("spec30", 202),
    ListSpec("spec35", 202),
    ListSpec("multi50", 202),
    ListSpec("multi70", 202),
    ListSpec("shift-multi50-spec30", 202),
)


def _read(path: Path) -> list[Row]:
    with path.open(newline="") as f:
        return [dict(r) for r in csv.DictReader(f)]


def _gpus(row: Row) -> int:
    return int(row["num_gpu"])


def _demand(row: Row) -> int:
    return int(row["num_gpu"]) * int(row["gpu_milli"])


def _fleet(root: Path) -> tuple[int, dict[str, int]]:
    """GPU capacity in milli, and per model the most GPUs one node has."""
    most: dict[str, int] = {}
    total = 0
    for n in _read(root / "openb_node_list_gpu_node.csv"):
        g = int(n["gpu"])
        total += g
        if g:
            most[n["model"]] = max(most.get(n["model"], 0), g)
    return total * MILLI, most


def pin(rows: list[Row], share: float, rng: np.random.Generator, root: Path) -> list[Row]:
    """``share`` of the GPU pods pinned to specs drawn from the trace's pinned pods."""
    _, most = _fleet(root)
    specs = Counter(r["gpu_spec"] for r in _read(root / SPEC_SOURCE) if r.get("gpu_spec"))
    names = sorted(specs)
    weight = np.array([specs[s] for s in names], dtype=np.float64)
    # The most GPUs any allowed model offers on one node, per spec.
    room = np.array([max(most.get(m, 0) for m in s.split("|")) for s in names])
    out = [dict(r, gpu_spec="") for r in rows]
    gpu_rows = [i for i, r in enumerate(out) if _gpus(r) > 0]
    chosen = rng.choice(gpu_rows, size=round(share * len(gpu_rows)), replace=False)
    for i in sorted(chosen.tolist()):
        w = np.where(room >= _gpus(out[i]), weight, 0.0)
        out[i]["gpu_spec"] = names[int(rng.choice(len(names), p=w / w.sum()))]
    return out


def add_multi(rows: list[Row], share: float, rng: np.random.Generator) -> list[Row]:
    """Copies of the multi-GPU pods appended until they ask ``share`` of the GPU demand."""
    out = [dict(r) for r in rows]
    multi = [r for r in rows if _gpus(r) > 1]
    total = sum(_demand(r) for r in out)
    have = sum(_demand(r) for r in multi)
    n = 0
    while have < share * total:
        r = dict(multi[int(rng.integers(len(multi)))])
        r["name"] = f"{r['name']}-m{n}"
        out.append(r)
        have += _demand(r)
        total += _demand(r)
        n += 1
    return out


def _resample(rows: list[Row], target: float, rng: np.random.Generator, tag: str) -> list[Row]:
    """Pods drawn from ``rows`` (without replacement while they last) until their GPU demand
    reaches ``target`` milli."""
    out: list[Row] = []
    have = 0
    while have < target:
        for i in rng.permutation(len(rows)).tolist():
            r = dict(rows[i], name=f"{rows[i]['name']}-{tag}{len(out)}")
            out.append(r)
            have += _demand(r)
            if have >= target:
                break
    return out


def build(spec: ListSpec, root: Path) -> list[Row]:
    """The rows of one held-out list."""
    rng = np.random.default_rng(spec.seed)
    base = [dict(r, gpu_spec="") for r in _read(root / "openb_pod_list_default.csv")]
    makers: dict[str, Callable[[float], list[Row]]] = {
        "default": lambda _: base,
        "spec": lambda p: pin(base, p, rng, root),
        "multi": lambda p: add_multi(base, p, rng),
    }

    def make(name: str) -> list[Row]:
        kind = name.rstrip("0123456789")
        digits = name[len(kind) :]
        if kind not in makers:
            raise ValueError(f"unknown list kind {name!r}")
        return makers[kind](int(digits) / 100 if digits else 0.0)

    if spec.name.startswith("shift-"):
        _, first, second = spec.name.split("-")
        capacity, _ = _fleet(root)
        a = _resample(make(first), SHIFT_FIRST * capacity, rng, "a")
        b = _resample(make(second), SHIFT_SECOND * capacity, rng, "b")
        return [dict(r, phase="0") for r in a] + [dict(r, phase="1") for r in b]
    return make(spec.name)


def write(rows: Sequence[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in COLUMNS})


def file_name(spec: ListSpec) -> str:
    return f"heldout_{spec.name}_s{spec.seed}.csv"


def generate(which: str, out: Path) -> list[Path]:
    root = data_dir() / "alibaba-openb"
    chosen = {"tune": TUNE, "report": REPORT, "all": TUNE + REPORT}[which]
    paths = []
    for spec in chosen:
        path = out / file_name(spec)
        write(build(spec, root), path)
        paths.append(path)
    return paths


def describe(path: Path) -> str:
    rows = _read(path)
    gpu = [r for r in rows if _gpus(r) > 0]
    demand = sum(_demand(r) for r in gpu)
    multi = sum(_demand(r) for r in gpu if _gpus(r) > 1)
    pinned = sum(1 for r in gpu if r.get("gpu_spec"))
    return (
        f"{path.name}: {len(rows)} pods, {len(gpu)} GPU pods, "
        f"{100 * pinned / len(gpu):.1f}% of GPU pods pinned, "
        f"multi-GPU {100 * multi / demand:.1f}% of GPU demand "
        f"({100 * sum(1 for r in gpu if _gpus(r) > 1) / len(gpu):.1f}% of GPU pods)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("tune", "report", "all"), default="all")
    ap.add_argument("--out", type=Path, default=Path("results/heldout-lists"))
    args = ap.parse_args()
    for path in generate(args.set, args.out):
        print(describe(path))


if __name__ == "__main__":
    main()
