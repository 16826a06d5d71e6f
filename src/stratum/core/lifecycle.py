"""A contract's lifecycle as one transition table, with the reason each edge is taken.

    Pending ─▶ Bound ─▶ Running ─▶ Succeeded | Failed
       │  └▶ Rejected (no fleet the tenant may use could ever satisfy it; decided again when
       │               the spec or the fleet changes)
       └─ Violated ◀─┘ (a fault or telemetry broke a clause: re-placed (→ Pending) when the
                        contract says `onViolation: replace`, else reported until it clears)

Every phase set the rest of the code asks about (which phases hold devices, which are
finished, which wait for placement) is derived from the table, so a new phase or edge is
written once. A Placement carries the same phases, and `Released` once it gives its devices
back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from stratum.api.v1alpha1.workloads import ContractPhase as Phase

PHASES: tuple[Phase, ...] = get_args(Phase)


@dataclass(frozen=True, slots=True)
class Edge:
    source: Phase
    target: Phase
    reason: str  # the Event reason recorded when this edge is taken
    why: str  # one line: when the controllers take it


TRANSITIONS: tuple[Edge, ...] = (
    Edge("Pending", "Bound", "Bound", "every clause holds on exact devices that are free now"),
    Edge("Pending", "Pending", "Unschedulable", "it fits the fleet, but not what is free now"),
    Edge("Pending", "Rejected", "Rejected", "no fleet the tenant may use could ever hold it"),
    Edge("Rejected", "Pending", "Unschedulable", "the spec or the fleet changed: it may fit"),
    Edge("Rejected", "Bound", "Bound", "the spec or the fleet changed and it fits now"),
    Edge("Rejected", "Rejected", "Rejected", "the spec or the fleet changed; still never"),
    Edge("Bound", "Running", "Running", "the backend reports every replica running"),
    Edge("Bound", "Pending", "PlacementLost", "its Placement was deleted"),
    Edge("Bound", "Pending", "SpecChanged", "the spec changed: placed again"),
    Edge("Bound", "Pending", "Preempted", "evicted for higher-priority work"),
    Edge("Bound", "Violated", "ContractViolated", "a device or telemetry broke a clause"),
    Edge("Bound", "Succeeded", "Succeeded", "the run finished with success"),
    Edge("Bound", "Failed", "Failed", "the run failed or was lost"),
    Edge("Bound", "Failed", "DeadlineExceeded", "it ran longer than maxDurationSeconds"),
    Edge("Running", "Running", "Running", "telemetry changed; every clause still holds"),
    Edge("Running", "Pending", "PlacementLost", "its Placement was deleted"),
    Edge("Running", "Pending", "SpecChanged", "the spec changed: placed again"),
    Edge("Running", "Pending", "Preempted", "evicted for higher-priority work"),
    Edge("Running", "Violated", "ContractViolated", "a device or telemetry broke a clause"),
    Edge("Running", "Succeeded", "Succeeded", "the run finished with success"),
    Edge("Running", "Failed", "Failed", "the run failed or was lost"),
    Edge("Running", "Failed", "DeadlineExceeded", "it ran longer than maxDurationSeconds"),
    Edge("Violated", "Pending", "Remediating", "onViolation: replace: placed again"),
    Edge("Violated", "Running", "ViolationCleared", "report-only, and every clause holds again"),
    Edge("Violated", "Pending", "PlacementLost", "its Placement was deleted"),
    Edge("Violated", "Pending", "Preempted", "evicted for higher-priority work"),
)

_BY_PAIR: dict[tuple[Phase, Phase, str], Edge] = {
    (e.source, e.target, e.reason): e for e in TRANSITIONS
}


class IllegalTransition(ValueError):
    """A controller tried an edge the table does not have: a bug, never user input."""


def transition(source: Phase | None, target: Phase, reason: str) -> Edge:
    """The edge from `source` (None: never decided, as Pending) to `target` for `reason`."""
    edge = _BY_PAIR.get((source or "Pending", target, reason))
    if edge is None:
        raise IllegalTransition(f"no transition {source or 'Pending'} -> {target} ({reason})")
    return edge


def _reachable_from(phases: frozenset[Phase]) -> frozenset[Phase]:
    return frozenset(e.target for e in TRANSITIONS if e.source in phases)


# Phases with no way out: the run is over and its devices are back.
TERMINAL: frozenset[Phase] = frozenset(
    p for p in PHASES if not any(e.source == p for e in TRANSITIONS)
)
# Phases in which a Placement holds devices: those entered by binding, and every phase
# reachable from them without passing through Pending or a terminal phase.
HOLDING: frozenset[Phase] = frozenset[Phase]({"Bound"}) | (
    _reachable_from(frozenset({"Bound"})) - TERMINAL - frozenset[Phase]({"Pending"})
)
# Phases that wait for the scheduler: the ones with an edge into Bound.
AWAITING_PLACEMENT: frozenset[Phase] = frozenset(
    e.source for e in TRANSITIONS if e.target == "Bound"
)
# Phases that count against a tenant's quota no more: terminal, or never placeable.
FINISHED: frozenset[Phase] = TERMINAL | frozenset[Phase]({"Rejected"})
