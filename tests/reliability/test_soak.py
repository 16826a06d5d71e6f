"""A short soak in CI: arrivals, departures and random faults for a minute against a real
`stratum serve` on the simulated fleet; the invariants hold throughout and at the end, no
request gets a 5xx, and memory does not run away. (Latency is measured, not asserted: the
hour-long run is benchmarks/soak.py, and docs/reliability.md has its figures.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from stratum.testing.campaigns.soak import SoakSettings, run_soak

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_a_minute_of_arrivals_departures_and_faults_breaks_nothing(tmp_path: Path) -> None:
    settings = SoakSettings(seconds=60, window_seconds=10, seed=11)
    record = run_soak(f"sqlite:///{tmp_path / 'stratum.db'}", tmp_path, settings)
    print(record.render())
    assert record.violations == []
    assert record.findings == []
    # It did what it says: many shapes arrived, some left, faults came and were cleared.
    shapes = {k for k in record.inputs if k.startswith("apply ")}
    assert len(shapes) >= 5, record.inputs
    assert record.inputs["delete"] > 0
    assert sum(record.faults.values()) > 0 and record.survived > 0
    assert record.figures["audit"]["ok"] is True
    # Memory: the steady part (after the first quarter) grows by at most a quarter.
    first, last, _ = record.figures["rss_mib steady first/last/max"]
    assert last <= first * 1.25, record.figures["windows"]
