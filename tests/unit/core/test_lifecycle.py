"""The contract lifecycle's transition table: walked at random, it never strands a contract
and the phase sets the rest of the code asks about agree with it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from stratum.core.lifecycle import (
    AWAITING_PLACEMENT,
    FINISHED,
    HOLDING,
    PHASES,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    transition,
)

REASONS = sorted({e.reason for e in TRANSITIONS})


def _reachable(start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for e in TRANSITIONS:
            if e.source == here and e.target not in seen:
                seen.add(e.target)
                todo.append(e.target)
    return seen


class Lifecycle(RuleBasedStateMachine):
    """A contract moved by whatever the controllers might try: legal edges move it, any
    other is refused and leaves it where it was."""

    def __init__(self) -> None:
        super().__init__()
        self.phase: str | None = None  # never decided: as Pending
        self.bound_once = False

    @rule(to=st.sampled_from(PHASES), reason=st.sampled_from(REASONS))
    def attempt(self, to: str, reason: str) -> None:
        legal = any(
            e.source == (self.phase or "Pending") and e.target == to and e.reason == reason
            for e in TRANSITIONS
        )
        if legal:
            edge = transition(self.phase, to, reason)  # type: ignore[arg-type]
            assert (edge.target, edge.reason) == (to, reason) and edge.why
            self.phase = edge.target
            self.bound_once |= edge.target == "Bound"
        else:
            with pytest.raises(IllegalTransition):
                transition(self.phase, to, reason)  # type: ignore[arg-type]

    @invariant()
    def a_terminal_phase_stays_reachable_unless_finished(self) -> None:
        here = self.phase or "Pending"
        if here not in FINISHED:
            assert _reachable(here) & TERMINAL, f"{here} can never finish"

    @invariant()
    def nothing_leaves_a_terminal_phase(self) -> None:
        if self.phase in TERMINAL:
            assert not [e for e in TRANSITIONS if e.source == self.phase]

    @invariant()
    def devices_are_held_only_after_binding(self) -> None:
        if self.phase in HOLDING:
            assert self.bound_once


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)


def test_derived_sets_are_the_ones_the_platform_has_always_used() -> None:
    assert {"Bound", "Running", "Violated"} == HOLDING
    assert {"Succeeded", "Failed", "Released"} == TERMINAL
    assert TERMINAL | {"Rejected"} == FINISHED
    assert {"Pending", "Rejected"} == AWAITING_PLACEMENT


def test_every_edge_has_a_one_line_reason() -> None:
    for e in TRANSITIONS:
        assert e.reason and e.why and "\n" not in e.why


@given(st.sampled_from(PHASES))
def test_every_phase_but_the_terminal_ones_has_a_way_out(phase: str) -> None:
    if phase not in TERMINAL:
        assert any(e.source == phase for e in TRANSITIONS)
