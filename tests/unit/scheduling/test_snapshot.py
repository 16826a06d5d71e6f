"""The fleet snapshot: filters, explanations, exact allocate and release."""

from __future__ import annotations

import numpy as np
import pytest

from stratum.scheduling.decision import Decision
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import Snapshot


def test_feasible_applies_every_fit_rule(small_fleet: Snapshot) -> None:
    assert small_fleet.feasible(Request(cpu_milli=4000, gpu_count=2, gpu_milli=1000)).tolist() == [
        True,
        True,
        False,
        False,
    ]
    # CPU: only b has 64 cores; memory: only b has 300 GiB.
    assert small_fleet.feasible(Request(cpu_milli=64_000)).tolist() == [False, True, False, False]
    assert small_fleet.feasible(Request(cpu_milli=0, memory_mib=300_000)).tolist() == [
        False,
        True,
        False,
        False,
    ]
    only_v100 = Request(
        cpu_milli=1000, gpu_count=1, gpu_milli=500, gpu_models=frozenset({"V100M16"})
    )
    assert small_fleet.feasible(only_v100).tolist() == [False, False, True, False]


def test_explanation_counts_each_node_once_in_filter_order(small_fleet: Snapshot) -> None:
    request = Request(cpu_milli=40_000, gpu_count=2, gpu_milli=1000)
    explanation = small_fleet.explain(request)
    assert explanation.total == 4
    assert explanation.feasible == 1
    assert dict(explanation.excluded) == {
        "lack model ": 0,
        "lack 2 free whole GPUs": 2,
        "lack 40000 milli-CPU": 1,
        "lack 0 MiB memory": 0,
    }
    failed = small_fleet.fail(Request(cpu_milli=200_000, gpu_count=8, gpu_milli=1000))
    assert not failed.placed
    assert (
        str(failed) == "unschedulable: 0/4 nodes: 3 lack 8 free whole GPUs, 1 lack 200000 milli-CPU"
    )


def test_allocate_changes_one_row_and_release_restores_exactly(small_fleet: Snapshot) -> None:
    request = Request(cpu_milli=4000, memory_mib=1024, gpu_count=1, gpu_milli=300)
    decision = small_fleet.decide(1, (3,), request, 0.0)
    after = small_fleet.allocate(decision, request=request)
    assert after.gpu_free[1].tolist() == [1000, 1000, 1000, 700, 1000, 1000, 1000, 1000]
    assert after.cpu_free[1] == 92_000 and after.memory_free[1] == 393_216 - 1024
    assert after.gpu_full[1] == 7 and after.gpu_max[1] == 1000 and after.gpu_free_total[1] == 7700
    assert after.pods_by_class[1, 0] == 1
    assert after.node_generation.tolist() == [0, 1, 0, 0]
    # The original is untouched and read-only.
    assert small_fleet.gpu_free[1, 3] == 1000
    with pytest.raises(ValueError):
        small_fleet.gpu_free[1, 3] = 5
    assert after.release(decision, request=request).same_state(small_fleet)


def test_over_allocation_is_refused(small_fleet: Snapshot) -> None:
    request = Request(cpu_milli=1000, gpu_count=1, gpu_milli=700)
    once = small_fleet.allocate(small_fleet.decide(2, (0,), request, 0.0), request=request)
    with pytest.raises(ValueError, match="over-allocate"):
        once.allocate(once.decide(2, (0,), request, 0.0), request=request)
    with pytest.raises(ValueError, match="no GPU 5"):
        small_fleet.allocate(small_fleet.decide(0, (5,), request, 0.0))
    with pytest.raises(ValueError):
        small_fleet.release(small_fleet.decide(0, (0,), request, 0.0), request=request)


def test_tightest_gpus_prefers_least_free_then_lowest_index(small_fleet: Snapshot) -> None:
    snap = small_fleet
    for gpu, milli in ((5, 600), (2, 300), (6, 300)):
        r = Request(cpu_milli=0, gpu_count=1, gpu_milli=milli)
        snap = snap.allocate(snap.decide(1, (gpu,), r, 0.0), request=r)
    # free: [1000,1000,700,1000,1000,400,700,1000]
    assert snap.tightest_gpus(1, Request(cpu_milli=0, gpu_count=1, gpu_milli=350)) == (5,)
    assert snap.tightest_gpus(1, Request(cpu_milli=0, gpu_count=1, gpu_milli=500)) == (2,)
    assert snap.tightest_gpus(1, Request(cpu_milli=0, gpu_count=3, gpu_milli=1000)) == (0, 1, 3)


def test_request_validation() -> None:
    with pytest.raises(ValueError):
        Request(cpu_milli=-1)
    with pytest.raises(ValueError):
        Request(cpu_milli=0, gpu_count=1, gpu_milli=0)
    with pytest.raises(ValueError):
        Request(cpu_milli=0, gpu_count=1, gpu_milli=1001)
    assert Request(cpu_milli=0, gpu_count=2, gpu_milli=1000).describe_gpu() == "2 free whole GPUs"


def test_decision_str(small_fleet: Snapshot) -> None:
    r = Request(cpu_milli=0, gpu_count=2, gpu_milli=1000)
    assert str(small_fleet.decide(1, (0, 1), r, 1.0)) == "node b gpus [0,1] (1000 milli each)"
    assert Decision(node=-1).placed is False
    assert np.array_equal(small_fleet.gpu_count, [2, 8, 1, 0])
