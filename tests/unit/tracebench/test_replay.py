"""The B1 protocol on a slice of the real trace: curves, buckets and the first failure."""

from __future__ import annotations

import numpy as np
import pytest

from stratum.scheduling.fragmentation import WorkloadMix
from stratum.scheduling.policies import Policy, make_policy
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import NodeSpec, Snapshot
from stratum.tracebench.replay import bucketize, run_seed
from stratum.tracebench.trace import load_nodes, load_pods
from tests import NO_OPENB, OPENB


def test_bucketize_means_per_rounded_percent_with_window_fallback() -> None:
    arrived = np.array([0.2, 0.4, 1.6, 5.0])
    values = np.array([1.0, 3.0, 10.0, 7.0])
    out = bucketize(arrived, values)
    assert out[0] == 2.0 and out[2] == 10.0 and out[5] == 7.0
    assert out[1] == pytest.approx(np.mean([1.0, 3.0, 10.0]))  # nothing at 1: the ±1 window
    assert np.isnan(out[10])


def test_replay_accounts_every_pod_and_reports_the_first_failure() -> None:
    snap = Snapshot.build([NodeSpec(f"n{i}", 32_000, 131_072, 4, "T4") for i in range(100)])
    pods = [Request(cpu_milli=1000, gpu_count=1, gpu_milli=1000)]
    result = run_seed(snap, pods, lambda s: make_policy("bestfit", seed=s), seed=42, tune_ratio=1.3)
    assert result.pods == 520 and result.placed == 400 and result.failed == 120
    # Bucket 100 averages pods at 99.5..100.5% arrived: 99.5, 99.75, then 100 three times.
    assert result.unalloc_at(100) == pytest.approx(0.15)
    assert result.alloc_pct[130] == 100.0
    assert result.first_failed_bucket == 101.0
    assert result.final.used_gpu_milli == snap.total_gpu_milli


@pytest.mark.skipif(not OPENB.is_dir(), reason=NO_OPENB)
def test_openb_slice_fgd_beats_random() -> None:
    nodes = load_nodes(OPENB / "openb_node_list_gpu_node.csv")
    pods = load_pods(OPENB / "openb_pod_list_default.csv").pods[:1500]
    # A tenth of the fleet keeps this fast while the slice still overfills it.
    snap = Snapshot.build(nodes.nodes[::10])
    mix = WorkloadMix.typical(pods)
    out = {}
    for name in ("random", "fgd", "stratum"):

        def factory(s: int, n: str = name) -> Policy:
            return make_policy(n, seed=s, typical=mix)

        r = run_seed(snap, pods, factory, seed=42)
        assert 0 <= r.unalloc_at(100) < 40
        out[name] = r.unalloc_at(100)
    assert out["fgd"] < out["random"] and out["stratum"] < out["random"]
