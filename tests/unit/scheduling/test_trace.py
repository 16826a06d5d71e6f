"""Trace loading (bad rows reported by line and skipped) and the paper's tuning step."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratum.scheduling.request import Request
from stratum.scheduling.trace import TraceError, load_nodes, load_pods, tune


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.lstrip())
    return path


def test_bad_pod_rows_are_reported_by_line_and_skipped(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "pods.csv",
        """
name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec
p0,4000,1024,1,500,
p1,-5,1024,1,500,
p2,4000,1024
p3,4000,1024,2,1000,V100M16|V100M32
p4,abc,1,0,0,
p5,1000,10,2,300,
p6,1000,10,0,0,nan
""",
    )
    pods = load_pods(path)
    assert [p.name for p in pods.pods] == ["p0", "p3", "p6"]
    assert pods.pods[1].gpu_models == frozenset({"V100M16", "V100M32"})
    assert pods.pods[2].gpu_models == frozenset()
    assert [(b.line, b.reason) for b in pods.bad_rows] == [
        (3, "cpu_milli=-5 is negative"),
        (4, "missing column num_gpu"),
        (6, "cpu_milli='abc' is not a number"),
        (7, "a GPU share (gpu_milli=300) with num_gpu=2"),
    ]
    assert str(pods.bad_rows[0]).endswith("pods.csv:3: cpu_milli=-5 is negative")


def test_nodes_and_missing_files(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "nodes.csv",
        "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,1,1,2,\n",
    )
    nodes = load_nodes(path)
    assert len(nodes.nodes) == 1 and nodes.gpu_capacity_milli == 2000
    assert nodes.bad_rows[0].line == 3
    with pytest.raises(TraceError, match="not found"):
        load_nodes(tmp_path / "absent.csv")
    with pytest.raises(TraceError, match="lacks column"):
        load_pods(write_csv(tmp_path / "x.csv", "name,cpu_milli\np,1\n"))


def test_tune_appends_until_target_and_cuts_when_over() -> None:
    pods = [Request(cpu_milli=1, gpu_count=1, gpu_milli=500), Request(cpu_milli=1)]
    order = tune(pods, capacity_milli=10_000, ratio=1.3, seed=42)
    demand = sum(pods[i].gpu_total_milli for i in order)
    assert 13_000 <= demand < 13_500
    assert order == tune(pods, capacity_milli=10_000, ratio=1.3, seed=42)
    big = [Request(cpu_milli=1, gpu_count=1, gpu_milli=1000)] * 30
    cut = tune(big, capacity_milli=10_000, ratio=1.3, seed=1)
    assert len(cut) == 13


def test_tune_shuffles_within_phases_and_keeps_them_in_order(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "pods.csv",
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,phase\n"
        + "".join(f"a{i},1,1,1,1000,0\n" for i in range(10))
        + "".join(f"b{i},1,1,1,500,1\n" for i in range(10)),
    )
    pods = load_pods(path)
    assert pods.phases == (0,) * 10 + (1,) * 10
    order = tune(pods.pods, capacity_milli=10_000, ratio=1.3, seed=7, phases=pods.phases)
    names = [pods.pods[i].name for i in order]
    # Phase 0 (10,000 milli) comes first, shuffled; phase 1 fills up to 13,000 after it.
    assert sorted(names[:10]) == sorted(f"a{i}" for i in range(10)) and names[:10] != [
        f"a{i}" for i in range(10)
    ]
    assert len(names) == 16 and all(n.startswith("b") for n in names[10:])
    # A list without the column tunes exactly as before.
    plain = load_pods(
        write_csv(
            tmp_path / "plain.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1000\n"
        )
    )
    assert plain.phases == ()
