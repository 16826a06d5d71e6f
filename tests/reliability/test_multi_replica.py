"""Three replicas on one PostgreSQL with a short lease, load spread over all three, and
kill -9 of the lease holder mid-load: nothing acknowledged is lost, the survivors settle
the fleet with every invariant holding, no workload is placed more often than its
attempts, and one replica acts at a time. The long run is benchmarks/multi_replica.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratum.testing.campaigns.replicas import ReplicaSettings, run_multi_replica
from stratum.testing.campaigns.servers import postgres_schema

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# A replica acting after its lease passed to another: see docs/reliability.md, "Findings"
# (R2). The controller manager renews its lease only between passes, so a pass longer than
# the lease (seen here on a loaded 2-core machine) outlives it. Not fixed on this branch
# (the fix belongs to the reconcile loop and the store's write path): when that is the
# only violation the test is reported as an expected failure naming it, never skipped;
# every other check fails the test outright.
ACTED_WITHOUT_LEASE = ("controller event(s) came from a replica", "the acting replica changed")


@pytest.mark.timeout(420)
def test_killing_the_lease_holder_under_load_loses_nothing(tmp_path: Path) -> None:
    with postgres_schema() as url:
        record = run_multi_replica(
            url, tmp_path, ReplicaSettings(load_seconds=24, lease_seconds=5, seed=31)
        )
    print(record.render())
    assert record.findings == []
    hard = [v for v in record.violations if not any(m in v for m in ACTED_WITHOUT_LEASE)]
    assert hard == []
    assert record.inputs["acknowledged creates"] > 0
    assert record.inputs["kill -9 of the lease holder"] == 1
    # R2 (a replica acting after losing its lease) is fixed by fencing: none is tolerated.
    assert record.violations == []
