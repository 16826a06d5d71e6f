"""Invariants over a store that must hold whatever crashed when: checked by the crash and
multi-replica tests, and usable by operators (`python -m stratum.testing.invariants URL`)."""

from __future__ import annotations

import sys
from collections import Counter

from stratum.api.v1alpha1 import Placement, Workload
from stratum.scheduling.fleet import HOLDING_PHASES
from stratum.store.objects import ObjectStore

MILLI = 1000


def store_problems(store: ObjectStore) -> list[str]:
    """Every broken invariant, in words; empty when the store is consistent:
    no GPU given beyond its capacity, no live placement without its workload (same uid),
    and no Bound/Running workload without a live placement."""
    with store.read() as tx:
        workloads = {
            f"{w['metadata']['namespace']}/{w['metadata']['name']}": Workload.model_validate(w)
            for w in tx.list("Workload").items
        }
        placements = [Placement.model_validate(p) for p in tx.list("Placement").items]
    problems = []
    taken: Counter[tuple[str, int]] = Counter()
    live: dict[str, Placement] = {}
    for p in placements:
        if p.status.phase not in HOLDING_PHASES:
            continue
        key = f"{p.metadata.namespace}/{p.spec.workload}"
        live[key] = p
        wl = workloads.get(key)
        if wl is None or (p.spec.workload_uid and wl.metadata.uid != p.spec.workload_uid):
            problems.append(f"placement {key} holds devices for a workload that is gone")
        for r in p.spec.replicas:
            for g in r.gpus:
                taken[(r.node, g)] += r.gpu_milli or MILLI
    for (node, gpu), milli in sorted(taken.items()):
        if milli > MILLI:
            problems.append(f"GPU {gpu} on {node} is given {milli} milli-GPU (> {MILLI})")
    for key, wl in workloads.items():
        if wl.status.phase in ("Bound", "Running") and key not in live:
            problems.append(f"workload {key} is {wl.status.phase} without a live placement")
    return problems


def main() -> None:
    store = ObjectStore.open(sys.argv[1])
    problems = store_problems(store)
    for p in problems:
        sys.stdout.write(p + "\n")
    sys.stdout.write("consistent\n" if not problems else f"{len(problems)} problem(s)\n")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
