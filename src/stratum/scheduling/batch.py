"""Several pending contracts decided together: which to bind, and in what order, so that
more GPUs are bound than placing them one by one in arrival order would.

Each contract is still placed by `place_contract` (every clause, all or nothing, tightest
tier); only the order changes. Start with priority first and, within a priority, the
largest first (then the most GPUs per replica, then the tightest tier clause); then improve
by moving one contract that did not fit in front of one that did: of all such moves the one
that binds the most is kept, if it binds more (per priority, highest first: lower-priority
work is never bought with higher-priority work); repeat until no move helps or the budget
of orders is spent.

Pure and deterministic; each order tried starts from the same fleet state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stratum.scheduling.contracts import (
    TIERS,
    ContractDecision,
    FleetState,
    WorkloadAsk,
    place_contract,
    replica_milli,
)
from stratum.scheduling.policies import make_policy


@dataclass(frozen=True, slots=True)
class BatchResult:
    decisions: tuple[ContractDecision | None, ...]  # per ask, in the caller's order
    state: FleetState  # the fleet with every placed contract bound
    orders_tried: int

    @property
    def placed(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.decisions) if d is not None)


def ask_milli(ask: WorkloadAsk) -> int:
    return replica_milli(ask.contract) * ask.replicas


def batch_order(asks: Sequence[WorkloadAsk]) -> list[int]:
    """Priority first, then the largest, the most GPUs per replica, the tightest tier."""

    def key(i: int) -> tuple[int, int, int, int, int]:
        a = asks[i]
        return (
            -a.contract.lifecycle.priority,
            -ask_milli(a),
            -replica_milli(a.contract),
            TIERS.index(a.contract.topology.across_replicas),
            i,
        )

    return sorted(range(len(asks)), key=key)


@dataclass
class _Run:
    order: list[int]
    decisions: list[ContractDecision | None]
    state: FleetState
    score: tuple[int, ...]


def _greedy(
    state: FleetState,
    asks: Sequence[WorkloadAsk],
    order: list[int],
    priorities: list[int],
    seed: int,
) -> _Run:
    policy = make_policy("stratum", seed=seed)
    decisions: list[ContractDecision | None] = [None] * len(asks)
    by_priority = dict.fromkeys(priorities, 0)
    for i in order:
        d = place_contract(state, asks[i], policy=policy, seed=seed)
        if d.placed:
            state = state.bind(asks[i].tenant, d.bindings, dedicated=d.dedicated)
            decisions[i] = d
            by_priority[asks[i].contract.lifecycle.priority] += ask_milli(asks[i])
    return _Run(order, decisions, state, tuple(by_priority[p] for p in priorities))


def place_batch(
    state: FleetState, asks: Sequence[WorkloadAsk], *, max_orders: int = 200, seed: int = 0
) -> BatchResult:
    """Bind as many of `asks` as the search finds room for; see the module's docstring.
    `max_orders` bounds the cost: each order tried is one decision per ask."""
    priorities = sorted({a.contract.lifecycle.priority for a in asks}, reverse=True)
    best = _greedy(state, asks, batch_order(asks), priorities, seed)
    tried = 1
    improved = True
    while improved and tried < max_orders:
        # Every move of one unplaced contract in front of one placed contract of its
        # priority; the best of them is kept (the first that helps can lead to a worse
        # local optimum).
        improved = False
        order = best.order
        position = {i: n for n, i in enumerate(order)}
        round_best = best
        for u in (i for i in order if best.decisions[i] is None):
            pu = asks[u].contract.lifecycle.priority
            ahead = [
                p
                for p in order[: position[u]]
                if best.decisions[p] is not None and asks[p].contract.lifecycle.priority == pu
            ]
            for p in reversed(ahead):
                if tried >= max_orders:
                    break
                trial = [i for i in order if i != u]
                trial.insert(trial.index(p), u)
                run = _greedy(state, asks, trial, priorities, seed)
                tried += 1
                if run.score > round_best.score:
                    round_best = run
        if round_best is not best:
            best, improved = round_best, True
    return BatchResult(tuple(best.decisions), best.state, tried)
