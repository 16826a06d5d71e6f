"""Reliability campaigns: seeded drivers that run a real `stratum serve` (or three), push
it hard and break it on purpose, then check that the store still holds its invariants.

    soak           arrivals, departures and faults for minutes or hours; memory and latency
    crash          kill -9 at seeded random points in apply, placement, remediation, delete
    hostile        generated hostile requests on every route, as tenant, no role and admin
    multi_replica  three replicas on one PostgreSQL; kill the lease holder under load

The CI-sized runs are tests/reliability; the long ones are benchmarks/*.py. Each returns a
record (inputs tried, faults injected and survived, invariant violations) that prints
itself, so the figures in docs/reliability.md come from the same code as the tests.
"""
