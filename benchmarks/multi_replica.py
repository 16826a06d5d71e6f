"""Multi-replica: three `stratum serve` replicas on one PostgreSQL schema, load spread over
all three, kill -9 the lease holder `--kills` times. Prints the record: acknowledged
writes, lease changes of hand, events per replica, events by a replica not holding the
lease, invariant violations (target 0).

    .venv/bin/python benchmarks/multi_replica.py [--kills 3] [--seconds 90]
        [--lease-seconds 3] [--postgres-url URL]

Needs PostgreSQL (default $STRATUM_TEST_POSTGRES_URL or postgres@127.0.0.1:5432/test);
it works in a private schema and drops it. Exit status 1 when an invariant broke.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from stratum.testing.campaigns.replicas import ReplicaSettings, run_multi_replica
from stratum.testing.campaigns.servers import POSTGRES_URL, postgres_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=90.0, help="length of the load")
    parser.add_argument("--lease-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    settings = ReplicaSettings(
        kills=args.kills,
        load_seconds=args.seconds,
        lease_seconds=args.lease_seconds,
        seed=args.seed,
    )
    with (
        tempfile.TemporaryDirectory(prefix="stratum-replicas-") as tmp,
        postgres_schema(args.postgres_url) as url,
    ):
        print(f"multi-replica: 3 replicas, {args.kills} kill(s), {args.seconds:g} s", flush=True)
        record = run_multi_replica(url, Path(tmp), settings)
    print(record.render())
    sys.exit(0 if record.ok else 1)


if __name__ == "__main__":
    main()
