"""Place a workload's contract on a fleet: every replica on exact devices, all or nothing.

Pure: the caller hands in plain data about nodes, their sites and what is already held, and
gets back either a binding per replica (node, GPU indices or a MIG instance or a GPU share,
CPU set, NUMA node, NICs) with evidence per clause and the tier the gang reached, or
per-clause reasons in numbers and whether the fleet could ever satisfy the contract.

How a decision is made:
1. every node-level hard clause is a mask over the nodes (sovereignty, models, GPU memory,
   MIG profile, within-replica grouping, NUMA, RDMA, isolation, quota, reservations, free
   capacity, the site's power budget); each excluded node is charged to its first clause;
2. a gang tries the across-replica tiers tightest first (one NVLink domain, one rack, RDMA
   within one site, one site, anywhere) up to the loosest its clause allows, and in a tier
   the domains that can hold it, best fit first;
3. inside a domain the replicas go one by one on one scratch copy of the devices, so that
   the gang is one decision; each replica's devices are chosen by `devices`.

The engine is split along those seams: `fleetstate` (the fleet, what is held, the decision
types), `filters` (step 1), `gang` (step 2), `devicechoice` (step 3) and `evidence`; this
module decides and re-exports the names callers use.
"""

from __future__ import annotations

from dataclasses import replace

from stratum.scheduling.evidence import evidence_for
from stratum.scheduling.filters import Shape
from stratum.scheduling.fleetstate import (
    DOMAINS_PER_TIER,
    TIERS,
    ClauseNote,
    ContractDecision,
    FleetNode,
    FleetState,
    Held,
    ReplicaBinding,
    WorkloadAsk,
    replica_milli,
    replica_request,
)
from stratum.scheduling.gang import Attempt, try_place
from stratum.scheduling.policies import Policy, make_policy

_NEVER = "never satisfiable by the fleet the tenant may use: "

__all__ = [
    "DOMAINS_PER_TIER",
    "TIERS",
    "Attempt",
    "ClauseNote",
    "ContractDecision",
    "FleetNode",
    "FleetState",
    "Held",
    "ReplicaBinding",
    "WorkloadAsk",
    "judged",
    "never_satisfiable",
    "place_contract",
    "replica_milli",
    "replica_request",
]


def place_contract(
    state: FleetState,
    ask: WorkloadAsk,
    *,
    policy: Policy | None = None,
    pristine: FleetState | None = None,
    seed: int = 0,
) -> ContractDecision:
    """Bind every replica, or explain per clause why not (and whether it ever could).

    `policy` (default: Stratum's, fresh) picks a single replica's node; pass the same
    object across calls so that it keeps learning the workload mix. `pristine` is the same
    fleet empty and healthy (FleetState.build(..., pristine=True)); without it a failure is
    reported as Pending (ever_possible), never as Rejected.
    """
    policy = policy or make_policy("stratum", seed=seed)
    shape = Shape.of(ask)
    total = len(state.nodes)
    attempt = try_place(state, ask, shape, policy) if total else Attempt([], None, [])
    if attempt.bindings:
        tier = attempt.tier
        return ContractDecision(
            True,
            bindings=tuple(attempt.bindings),
            evidence=tuple(evidence_for(state, ask, shape, attempt.bindings, tier)),
            summary=f"{len(attempt.bindings)} replica(s) bound"
            + (f" at tier {tier}" if tier else ""),
            tier=tier,
            dedicated="dedicated-node" in (ask.contract.isolation, ask.tenant_isolation),
        )
    waiting = ContractDecision(
        False,
        reasons=tuple(attempt.reasons),
        summary=_summary(attempt, f"0/{total} nodes can take it now"),
        waiting_on=attempt.waiting_on,
    )
    if pristine is None:  # not judged here: the caller decides whether waiting can help
        return waiting
    return judged(waiting, never_satisfiable(pristine, ask), len(pristine.nodes))


def never_satisfiable(pristine: FleetState, ask: WorkloadAsk) -> Attempt | None:
    """None when the contract binds on `pristine` (the fleet empty and healthy) with what
    only holds now (quota, reservations) set aside: Pending, waiting can help. Otherwise
    the attempt on that fleet, whose reasons say why it never can: Rejected."""
    if not len(pristine.nodes):
        return Attempt([], None, [])
    attempt = try_place(pristine, ask.without_now(), Shape.of(ask), None)
    return None if attempt.bindings else attempt


def judged(decision: ContractDecision, never: Attempt | None, total: int) -> ContractDecision:
    """A failed decision as Pending (``never`` is None) or Rejected. A Rejected one says why
    the empty, healthy fleet could never take the contract, not why the fleet cannot now:
    a tenant out of quota whose contract asks for a GPU model no node has is told of the
    model, since a larger quota would not help."""
    if never is None:
        return decision
    return replace(
        decision,
        ever_possible=False,
        reasons=tuple(never.reasons),
        waiting_on=(),
        summary=_NEVER + _summary(never, f"0/{total} nodes could ever take it"),
    )


def _summary(attempt: Attempt, head: str) -> str:
    """The plain sentence first ("3 nodes qualify with room for 4 replica(s); it needs 5"),
    then each clause that ruled nodes out, in numbers."""
    head = attempt.headline or head
    if attempt.reasons:
        return f"{head}: " + ", ".join(r.message for r in attempt.reasons)
    return head if attempt.headline else "no nodes in the fleet"
