"""Crash campaign: kill -9 the server at seeded random points during apply, placement,
remediation and deletion, restart, check the invariants; `--kills` times. Prints the
record: kills by phase, faults injected and survived, invariant violations (target 0).

    .venv/bin/python benchmarks/crash_campaign.py [--kills 100] [--seed 2]
        [--database-url URL]

Stops by itself. Exit status 1 when an invariant broke.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from stratum.testing.campaigns.crash import CrashSettings, run_crash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratum-crash-") as tmp:
        home = Path(tmp)
        url = args.database_url or f"sqlite:///{home / 'stratum.db'}"
        print(f"crash campaign: {args.kills} kills on {url.split('://')[0]}", flush=True)
        record = run_crash(
            url,
            home,
            CrashSettings(kills=args.kills, seed=args.seed),
            on_kill=lambda line: print(line, flush=True),
        )
    print(record.render())
    sys.exit(0 if record.ok else 1)


if __name__ == "__main__":
    main()
