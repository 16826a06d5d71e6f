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

__all__ = [
    "DOMAINS_PER_TIER",
    "TIERS",
    "ClauseNote",
    "ContractDecision",
    "FleetNode",
    "FleetState",
    "Held",
    "ReplicaBinding",
    "WorkloadAsk",
    "ever_satisfiable",
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
    reasons = attempt.reasons
    summary = (
        f"0/{total} nodes can take it now: " + ", ".join(r.message for r in reasons)
        if reasons
        else "no nodes in the fleet"
    )
    if pristine is None:  # not judged here: the caller decides whether waiting can help
        return ContractDecision(
            False, reasons=tuple(reasons), summary=summary, waiting_on=attempt.waiting_on
        )
    ever = ever_satisfiable(pristine, ask)
    if not ever:
        summary = "never satisfiable by the fleet the tenant may use: " + summary
    return ContractDecision(
        False,
        reasons=tuple(reasons),
        ever_possible=ever,
        summary=summary,
        waiting_on=attempt.waiting_on if ever else (),
    )


def ever_satisfiable(pristine: FleetState, ask: WorkloadAsk) -> bool:
    """Whether the contract binds on `pristine` (the fleet empty and healthy) with what only
    holds now (quota, reservations) set aside: Pending (waiting can help) or Rejected."""
    if not len(pristine.nodes):
        return False
    return bool(try_place(pristine, ask.without_now(), Shape.of(ask), None).bindings)
