"""`stratum bench trace` end to end on a slice of the openb trace: table, JSON, per-seed CSV
curves and the PNG chart appear, and the numbers are sane."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from stratum.testing.harness import run_cli
from tests import NO_OPENB, OPENB

pytestmark = pytest.mark.skipif(not OPENB.is_dir(), reason=NO_OPENB)


def _slice_of_nodes(tmp_path: Path) -> Path:
    # Every tenth node: a 121-node fleet keeps each run to about a thousand pods.
    lines = (OPENB / "openb_node_list_gpu_node.csv").read_text().splitlines()
    path = tmp_path / "nodes.csv"
    path.write_text("\n".join([lines[0], *lines[1::10]]) + "\n")
    return path


def _pods_with_a_bad_row(tmp_path: Path) -> Path:
    lines = (OPENB / "openb_pod_list_default.csv").read_text().splitlines()[:1501]
    lines.insert(3, "broken-pod,-4000,1024,1,1000,,LS,Running,0,1,0")
    # Keep the published list's name so that the comparison column is filled.
    path = tmp_path / "openb_pod_list_default.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bench_trace_writes_table_json_csv_and_chart(tmp_path: Path) -> None:
    nodes, pods, out = _slice_of_nodes(tmp_path), _pods_with_a_bad_row(tmp_path), tmp_path / "r"
    common = [
        "bench",
        "trace",
        "--nodes",
        str(nodes),
        "--pods",
        str(pods),
        "--seeds",
        "42",
        "--out",
        str(out),
    ]
    table = run_cli(*common, "--policies", "bestfit,stratum", timeout=120, env={"COLUMNS": "160"})
    assert table.returncode == 0, table.stderr
    assert "line 4" not in table.stderr and ":4: cpu_milli=-4000 is negative" in table.stderr
    assert "bestfit" in table.stdout and "stratum" in table.stdout
    assert "7.14 ± 0.14" in table.stdout  # published BestFit figure for this list name

    folder = out / "openb_pod_list_default"
    chart = folder / "unallocated.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    with (folder / "stratum_seed42.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["arrived_pct"]) for r in rows] == list(range(131))
    assert float(rows[50]["alloc_pct"]) == pytest.approx(50, abs=1.5)

    js = run_cli(*common, "--policies", "random,fgd", "--json", timeout=120)
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert data["nodes"] == 122 and data["seeds"] == [42] and data["skipped_rows"] == 1
    for name in ("random", "fgd"):
        row = data["policies"][name]
        assert 0 <= row["unalloc_pct_at_100_mean"] < 40
        assert row["unalloc_pct_at_100_sd"] == 0.0
        assert 50 <= row["first_failed_bucket_mean"] <= 101
        assert row["decisions_per_s"] > 0
    assert (
        data["policies"]["fgd"]["unalloc_pct_at_100_mean"]
        < (data["policies"]["random"]["unalloc_pct_at_100_mean"])
    )
    assert data["policies"]["fgd"]["published_mean"] == 4.773


def test_bench_trace_names_a_missing_node_list(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = run_cli("bench", "trace", "--nodes", str(missing), "--seeds", "42")
    assert result.returncode == 2
    assert f"--nodes file not found: {missing}" in " ".join(result.stderr.split())
