"""Hostile-input campaign: generated requests over every route of the OpenAPI schema, as
a tenant member, as no role and as the platform admin. Prints the record: requests by
role and body family, statuses, /healthz prober latency (baseline and during), stalls
confirmed by replay, RSS, and every finding (known ones named).

    .venv/bin/python benchmarks/hostile_campaign.py [--requests 20000] [--seed 3]

Stops by itself. Exit status 1 on a finding not already known.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from stratum.testing.campaigns.hostile import HostileSettings, new_findings, run_hostile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratum-hostile-") as tmp:
        print(f"hostile campaign: {args.requests} requests, seed {args.seed}", flush=True)
        record = run_hostile(Path(tmp), HostileSettings(requests=args.requests, seed=args.seed))
    print(record.render())
    fresh = new_findings(record)
    print(f"new findings: {len(fresh)}")
    sys.exit(1 if fresh else 0)


if __name__ == "__main__":
    main()
