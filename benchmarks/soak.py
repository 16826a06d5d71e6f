"""Soak: an hour (by default) of arrivals, departures and random faults against a real
`stratum serve` on the simulated fleet; prints RSS and API latency per window as it goes,
then the record: inputs, faults injected and survived, invariant violations, slopes.

    .venv/bin/python benchmarks/soak.py [--minutes 60] [--seed 1] [--speed 120]
        [--window 60] [--database-url URL]

Stops by itself. Exit status 1 when an invariant broke or memory/latency were not flat.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from stratum.testing.campaigns.soak import SoakSettings, run_soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=120.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per sample")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stratum-soak-") as tmp:
        home = Path(tmp)
        url = args.database_url or f"sqlite:///{home / 'stratum.db'}"
        settings = SoakSettings(
            seconds=args.minutes * 60, seed=args.seed, speed=args.speed, window_seconds=args.window
        )
        print(f"soak: {args.minutes:g} min on {url.split('://')[0]}, seed {args.seed}", flush=True)
        record = run_soak(url, home, settings, on_window=lambda w: print(json.dumps(w), flush=True))
    print(record.render())
    flat = "yes" in str(record.figures.get("memory flat")) and "yes" in str(
        record.figures.get("latency flat")
    )
    sys.exit(0 if record.ok and flat else 1)


if __name__ == "__main__":
    main()
