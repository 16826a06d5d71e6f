"""`stratum bench`: reproducible benchmarks (placement quality and speed)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from stratum.cli.output import console as output_console

if TYPE_CHECKING:
    from stratum.tracebench.replay import ReplayResult

app = typer.Typer(help="Run Stratum's benchmarks.", no_args_is_help=True)

DEFAULT_POLICIES = "random,dotproduct,clustering,packing,bestfit,fgd,stratum"
DEFAULT_SEEDS = "42,43,44,45,46,47,48,49,50,51"
#: our policy names -> the published summary's `sc_policy`
PUBLISHED_NAMES = {
    "random": "01-Random",
    "dotproduct": "02-DotProd",
    "clustering": "03-GpuClustering",
    "packing": "04-GpuPacking",
    "bestfit": "05-BestFit",
    "fgd": "06-FGD",
}


def data_dir() -> Path:
    """Where the shared data sets live: $STRATUM_DATA_DIR, else ../shared/data next to the
    checkout (found from this file, then from the working directory)."""
    env = os.environ.get("STRATUM_DATA_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    for candidate in (repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return repo.parent / "shared" / "data"


def _default_trace_file(name: str) -> Path:
    return data_dir() / "alibaba-openb" / name


def _parse_ints(text: str, option: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers, got {text!r}", param_hint=option
        ) from None
    if not values:
        raise typer.BadParameter("expected at least one value", param_hint=option)
    return values


def _published(pod_list: str) -> dict[str, tuple[float, float]]:
    """Published (mean, sd) of unallocated GPU % at 100% arrived for this pod list."""
    path = data_dir() / "fgd-published" / "derived_summary_by_workload_policy.csv"
    if not path.is_file():
        return {}
    import csv

    out: dict[str, tuple[float, float]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("workload") != pod_list:
                continue
            try:
                sd = float(row.get("unalloc_pct_at_100_sd") or "nan")
                out[row["sc_policy"]] = (float(row["unalloc_pct_at_100_mean"]), sd)
            except (KeyError, ValueError):
                continue
    return out


def _summarise(
    name: str, runs: list[ReplayResult], published: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    import numpy as np

    at100 = np.array([r.unalloc_at(100) for r in runs])
    frag100 = np.array([float(r.frag_pct[100]) for r in runs])
    first = np.array([r.first_failed_bucket for r in runs])
    rates = np.array([r.decisions_per_s for r in runs])
    sd = float(at100.std(ddof=1)) if len(at100) > 1 else 0.0
    summary: dict[str, Any] = {
        "policy": name,
        "seeds": [r.seed for r in runs],
        "unalloc_pct_at_100_mean": round(float(at100.mean()), 3),
        "unalloc_pct_at_100_sd": round(sd, 3),
        "unalloc_pct_at_100_per_seed": [round(float(v), 3) for v in at100],
        "frag_amount_pct_at_100_mean": round(float(np.nanmean(frag100)), 3),
        "frag_ratio_pct_at_100_mean": round(float(np.nanmean(100.0 * frag100 / at100)), 2),
        "first_failed_bucket_mean": round(float(np.nanmean(first)), 2)
        if np.isfinite(first).any()
        else None,
        "decisions_per_s": round(float(np.median(rates)), 1),
        "pods_per_seed": int(np.median([r.pods for r in runs])),
        "failed_per_seed_mean": round(float(np.mean([r.failed for r in runs])), 1),
    }
    pub = published.get(PUBLISHED_NAMES.get(name, ""))
    if pub is not None:
        mean, psd = pub
        summary["published_mean"] = mean
        summary["published_sd"] = psd
        summary["delta_vs_published_sd"] = (
            round((summary["unalloc_pct_at_100_mean"] - mean) / psd, 2)
            if psd == psd and psd > 0
            else None
        )
    return summary


def _write_outputs(
    out: Path,
    pod_list: str,
    results: dict[str, list[ReplayResult]],
    summaries: list[dict[str, Any]],
    meta: dict[str, Any],
) -> Path | None:
    """Per-seed curves and the summary as CSV/JSON under `out/pod_list`; the chart's path,
    or None when matplotlib (the `bench` extra) is not installed."""
    import csv

    folder = out / pod_list
    folder.mkdir(parents=True, exist_ok=True)
    for name, runs in results.items():
        for r in runs:
            with (folder / f"{name}_seed{r.seed}.csv").open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["arrived_pct", "alloc_pct", "unalloc_pct", "frag_pct"])
                for x in range(len(r.alloc_pct)):
                    w.writerow(
                        [x, _fmt(r.alloc_pct[x]), _fmt(r.unalloc_pct[x]), _fmt(r.frag_pct[x])]
                    )
    with (folder / "summary.csv").open("w", newline="") as f:
        keys = [
            "policy",
            "unalloc_pct_at_100_mean",
            "unalloc_pct_at_100_sd",
            "published_mean",
            "published_sd",
            "frag_amount_pct_at_100_mean",
            "frag_ratio_pct_at_100_mean",
            "first_failed_bucket_mean",
            "decisions_per_s",
        ]
        dw = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        dw.writeheader()
        for row in summaries:
            dw.writerow(row)
    (folder / "summary.json").write_text(json.dumps({**meta, "policies": summaries}, indent=2))
    return _chart(folder, pod_list, results, meta)


def _chart(
    folder: Path, pod_list: str, results: dict[str, list[ReplayResult]], meta: dict[str, Any]
) -> Path | None:
    try:
        import matplotlib
    except ImportError:  # an optional extra: pip install 'stratum[bench]'
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    xs = np.arange(131)
    for name, runs in results.items():
        curves = np.array([r.unalloc_pct for r in runs])
        mean = np.nanmean(curves, axis=0)
        for ax in axes:
            ax.plot(xs, mean, label=name, linewidth=1.6)
            if len(runs) > 1:
                sd = np.nanstd(curves, axis=0)
                ax.fill_between(xs, mean - sd, mean + sd, alpha=0.15)
    axes[0].set_xlim(0, 130)
    axes[1].set_xlim(80, 130)
    axes[1].set_ylim(0, 25)
    for ax in axes:
        ax.set_xlabel("Arrived workloads (% of cluster GPU capacity)")
        ax.set_ylabel("Unallocated GPU (%)")
        ax.grid(alpha=0.3)
        ax.axvline(100, color="grey", linewidth=0.8, linestyle="--")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{pod_list}: seeds {meta['seeds'][0]}..{meta['seeds'][-1]}, tune {meta['tune']}")
    fig.tight_layout()
    chart = folder / "unallocated.png"
    fig.savefig(chart, dpi=110)
    plt.close(fig)
    return chart


def _fmt(v: float) -> str:
    return "" if v != v else f"{v:.3f}"


@app.command("trace")
def trace(
    pods: Path = typer.Option(None, "--pods", help="pod list CSV [default: openb default list]"),
    nodes: Path = typer.Option(None, "--nodes", help="node list CSV [default: openb GPU nodes]"),
    seeds: str = typer.Option(DEFAULT_SEEDS, "--seeds", help="comma-separated seeds"),
    tune_ratio: float = typer.Option(
        1.3, "--tune", help="tune the list to this share of GPU capacity"
    ),
    policies: str = typer.Option(DEFAULT_POLICIES, "--policies", help="comma-separated policies"),
    limit: int = typer.Option(0, "--limit", help="use only the first N pods of the list (0: all)"),
    as_json: bool = typer.Option(False, "--json", help="print the headline table as JSON"),
    out: Path = typer.Option(Path("results/bench-trace"), "--out", help="results folder"),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="no progress bar (there is none without a terminal either)"
    ),
) -> None:
    """B1: packing quality on the Alibaba openb trace, the FGD paper's protocol."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from stratum.scheduling.fragmentation import WorkloadMix
    from stratum.scheduling.policies import POLICY_NAMES, Policy, make_policy
    from stratum.scheduling.snapshot import Snapshot
    from stratum.tracebench.replay import run_seed
    from stratum.tracebench.trace import TraceError, load_nodes, load_pods, tune

    # The CLI's consoles: no wrapping off a terminal, so a long path stays one piece.
    err = output_console(stderr=True)
    console = output_console()
    pods = pods or _default_trace_file("openb_pod_list_default.csv")
    nodes = nodes or _default_trace_file("openb_node_list_gpu_node.csv")
    for label, path in (("--nodes", nodes), ("--pods", pods)):
        if not path.is_file():
            err.print(
                f"[red]error:[/] {label} file not found: {path}\n"
                "  pass it explicitly, or set STRATUM_DATA_DIR to the folder holding alibaba-openb/"
            )
            raise typer.Exit(2)
    seed_list = _parse_ints(seeds, "--seeds")
    names = [p.strip() for p in policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICY_NAMES]
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown policy {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(POLICY_NAMES)}",
            param_hint="--policies",
        )
    if not 0 < tune_ratio <= 10:
        raise typer.BadParameter("expected a ratio in (0, 10]", param_hint="--tune")
    try:
        node_list = load_nodes(nodes)
        pod_list = load_pods(pods)
    except TraceError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    for bad in (*node_list.bad_rows, *pod_list.bad_rows)[:20]:
        err.print(f"[yellow]skipped[/] {bad}", soft_wrap=True, highlight=False)
    n_bad = len(node_list.bad_rows) + len(pod_list.bad_rows)
    if n_bad > 20:
        err.print(f"[yellow]skipped[/] {n_bad - 20} more bad rows")
    requests = pod_list.pods[:limit] if limit > 0 else pod_list.pods
    phases = pod_list.phases[: len(requests)]
    snapshot = Snapshot.build(node_list.nodes)
    typical = WorkloadMix.typical(requests)
    list_name = pods.stem

    lengths = {
        s: len(tune(requests, snapshot.total_gpu_milli, tune_ratio, s, phases)) for s in seed_list
    }
    total_steps = sum(lengths.values()) * len(names)
    results: dict[str, list[ReplayResult]] = {name: [] for name in names}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} pods"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    ) as progress:
        task = progress.add_task(list_name, total=total_steps)
        for name in names:

            def factory(seed: int, name: str = name) -> Policy:
                return make_policy(name, seed=seed, typical=typical)

            for seed in seed_list:
                progress.update(task, description=f"{list_name} {name} seed {seed}")
                done = progress.tasks[0].completed

                def tick(i: int, base: float = done) -> None:
                    if i % 512 == 0:
                        progress.update(task, completed=base + i)

                results[name].append(
                    run_seed(
                        snapshot,
                        requests,
                        factory,
                        seed=seed,
                        tune_ratio=tune_ratio,
                        measure_mix=typical,
                        clock=time.perf_counter,
                        on_progress=tick,
                        phases=phases,
                    )
                )
                progress.update(task, completed=done + lengths[seed])

    published = _published(list_name)
    summaries = [_summarise(name, runs, published) for name, runs in results.items()]
    meta = {
        "pod_list": list_name,
        "pods_file": str(pods),
        "nodes_file": str(nodes),
        "nodes": snapshot.size,
        "gpus": snapshot.total_gpu_milli // 1000,
        "seeds": seed_list,
        "tune": tune_ratio,
        "skipped_rows": n_bad,
    }
    chart = _write_outputs(out, list_name, results, summaries, meta)
    if as_json:
        sys.stdout.write(
            json.dumps({**meta, "policies": {s["policy"]: s for s in summaries}}, indent=2) + "\n"
        )
        return
    table = Table(
        title=f"{list_name}: unallocated GPU % at 100% arrived "
        f"({len(seed_list)} seeds, tune {tune_ratio})"
    )
    for col in (
        "policy",
        "unalloc % @100",
        "published",
        "Δ (SD)",
        "frag ratio %",
        "first ≥1% failed",
        "decisions/s",
    ):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for s in summaries:
        pub = (
            f"{s['published_mean']:.2f} ± {s['published_sd']:.2f}"
            if "published_mean" in s and s["published_sd"] == s["published_sd"]
            else (f"{s['published_mean']:.2f}" if "published_mean" in s else "-")
        )
        delta = s.get("delta_vs_published_sd")
        table.add_row(
            s["policy"],
            f"{s['unalloc_pct_at_100_mean']:.2f} ± {s['unalloc_pct_at_100_sd']:.2f}",
            pub,
            "-" if delta is None else f"{delta:+.2f}",
            f"{s['frag_ratio_pct_at_100_mean']:.1f}",
            "-"
            if s["first_failed_bucket_mean"] is None
            else f"{s['first_failed_bucket_mean']:.1f}",
            f"{s['decisions_per_s']:,.0f}",
        )
    console.print(table)
    folder = out / list_name
    if chart is None:
        console.print(
            f"curves and summary: {folder}  (no chart: pip install 'stratum[bench]' for "
            "matplotlib)",
            markup=False,
        )
    else:
        console.print(f"curves, summary and chart: {folder}  (chart: {chart.name})")
