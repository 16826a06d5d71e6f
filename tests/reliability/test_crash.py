"""The crash campaign at CI size: kill -9 at seeded random points during apply, placement,
remediation and deletion, on SQLite and on PostgreSQL; after each kill the store the dead
server left holds the invariants, nothing acknowledged is lost, an apply in flight is all
there or not at all, and the restarted server settles the fleet with every invariant
holding. The long run is benchmarks/crash_campaign.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratum.testing.campaigns.crash import PHASES, CrashSettings, run_crash

pytestmark = pytest.mark.slow


@pytest.mark.timeout(420)
def test_kill_9_at_random_points_loses_nothing_and_leaves_nothing(
    database_url: str, tmp_path: Path
) -> None:
    record = run_crash(database_url, tmp_path, CrashSettings(kills=4, seed=21))
    print(record.render())
    assert record.violations == []
    assert record.findings == []
    assert {f"kill during {p}" for p in PHASES} <= set(record.inputs)
    assert record.survived == 4
    assert record.figures["audit"]["ok"] is True
