"""How the CLI words a refusal (the server's message, then only the causes it does not
already say), and how it prints a table for a script to read."""

from __future__ import annotations

import pytest
import typer

from stratum.cli.output import fail_api, print_table
from stratum.core.errors import Cause, Forbidden, Invalid


def test_a_cause_the_message_already_says_is_not_repeated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    quota = "quota: tenant t may hold 4 L40S-48GB; it holds 4 and this workload asks for 1"
    with pytest.raises(typer.Exit):
        fail_api(Forbidden(f"Workload t/w was refused: {quota}", causes=[Cause("spec", quota)]))
    assert capsys.readouterr().err.count(quota) == 1


def test_causes_the_message_leaves_out_are_listed_under_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = Invalid("2 fields are invalid", causes=[Cause("spec.replicas", "expected an integer")])
    with pytest.raises(typer.Exit):
        fail_api(err, hint="nothing was applied")
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  spec.replicas: expected an integer",
        "nothing was applied",
    ]


def test_a_table_off_a_terminal_is_neither_wrapped_nor_padded_at_the_end_of_a_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    long = "re-placing on healthy devices after: " + "compute: GPU 0 failed; " * 20
    print_table(["TYPE", "REASON", "MESSAGE"], [["Normal", "Bound", "ok"], ["Warning", "X", long]])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "TYPE     REASON  MESSAGE",
        "Normal   Bound   ok",
        f"Warning  X       {long.rstrip()}",
    ]
