"""The sovereignty report on a large fleet, in process: what the API, `stratum report
sovereignty` and the portal's audit page and CSV export wait for.

    .venv/bin/python benchmarks/bench_sovereignty_report.py [--workloads 2000]
        [--idle-nodes 10000] [--repeats 5] [--postgres]

Seeds a store (a new SQLite file, or with --postgres a private schema of the PostgreSQL at
$STRATUM_TEST_POSTGRES_URL, dropped afterwards) with the report
fleet of stratum.testing.sovereignty: three sites, two tenants and a namespace without one,
four policies, WORKLOADS workloads in every phase (two in three placed, some where their
contract or a policy forbids) and IDLE_NODES more nodes with GPU telemetry. Then times
GovernanceService.sovereignty: the first call of a new service (nothing cached but CEL's
grammar, which the server loads at startup: every object read and validated, every policy
compiled), the median and worst of REPEATS more,
and a tenant member's report (the same workloads filtered to one tenant, no policy named).
Prints a table; writes nothing else.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stratum.core.access import Principal
from stratum.core.policies import warm
from stratum.server.services.governance import GovernanceService
from stratum.store.objects import ObjectStore
from stratum.testing.clock import FakeClock
from stratum.testing.harness import postgres_schema
from stratum.testing.sovereignty import ADMIN, NOW, seed_report_fleet

MEMBER = Principal("grace", tenant_roles={"research": "member"})


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", type=int, default=2_000)
    parser.add_argument("--idle-nodes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if args.postgres:
        with postgres_schema() as url:
            run(url, args)
    else:
        run(f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-sov-')) / 's.db'}", args)


def run(url: str, args: argparse.Namespace) -> None:
    store = ObjectStore.open(url, clock=FakeClock(NOW))
    seeding, _ = _timed(lambda: seed_report_fleet(store, args.workloads, args.idle_nodes))
    print(
        f"seeded {args.workloads} workloads and {args.idle_nodes} idle nodes "
        f"in {seeding / 1000:.1f} s ({store.engine.dialect.name})"
    )
    warm()  # as `stratum serve` does at startup: CEL's grammar is loaded before any request
    service = GovernanceService(store)
    first, rows = _timed(lambda: service.sovereignty(ADMIN))
    again = [_timed(lambda: service.sovereignty(ADMIN))[0] for _ in range(args.repeats)]
    member = [_timed(lambda: service.sovereignty(MEMBER)) for _ in range(args.repeats)]
    store.close()
    print(f"{'call':40} {'rows':>6} {'ms':>8} {'worst ms':>9}")
    print(f"{'platform-admin, first (cold)':40} {len(rows):6} {first:8.0f} {first:9.0f}")
    print(
        f"{'platform-admin, again (median)':40} {len(rows):6} "
        f"{statistics.median(again):8.0f} {max(again):9.0f}"
    )
    print(
        f"{'member of one tenant (median)':40} {len(member[0][1]):6} "
        f"{statistics.median(t for t, _ in member):8.0f} {max(t for t, _ in member):9.0f}"
    )


if __name__ == "__main__":
    main()
