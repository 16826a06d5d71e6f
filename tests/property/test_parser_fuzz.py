"""Every discovery parser on mutated real outputs (Hypothesis): a profile, or a located error.

Each example takes one real fixture and damages it the way saved outputs get damaged: lines
lost, repeated or swapped, columns shuffled, a field replaced, a character garbled, the file
cut short. Whatever comes out, the only outcomes allowed are a profile (with notes) or a
ParseError whose message names the source and the line; any other exception is a defect.
Deterministic (derandomize) so a failure reproduces.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum.discovery import ParseError, assemble
from stratum.discovery.recognise import KINDS, parse_text
from stratum.discovery.sources import Text, clean_lines

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"
CONTENTS = {
    p.name: p.read_text(encoding="utf-8", errors="replace")
    for p in sorted(FIXTURES.iterdir())
    if p.name != "README.md"
}
# Values seen in one output or another, out of place in the next.
FIELDS = (
    "",
    "N/A",
    "X",
    " X ",
    "NV18",
    "NV0",
    "SYS",
    "PIX",
    "XGMI",
    "-1",
    "0",
    "99999",
    "1024",
    "0,3-9,11-17",
    "3-1",
    "abc",
    "0x74a1",
    "GPU9",
    "GPU0",
    "NIC0",
    "mlx5_0",
    "0000:zz:00.0",
    "\t",
    "CPU Affinity",
    "TABLE:",
    "=====",
    ":",
    "é",
)
LOCATED = re.compile(r":[0-9]+: expected ")


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(CONTENTS)))
    lines = CONTENTS[name].split("\n")
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(("delete", "duplicate", "swap", "shuffle", "field", "char")))
        if op == "delete":
            del lines[at]
        elif op == "duplicate":
            lines.insert(at, lines[at])
        elif op == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif op == "shuffle":
            parts = re.split(r"(\s+)", lines[at])
            words = parts[::2]
            order = draw(st.permutations(range(len(words))))
            parts[::2] = [words[i] for i in order]
            lines[at] = "".join(parts)
        elif op == "field":
            parts = re.split(r"(\s+)", lines[at])
            k = draw(st.integers(0, len(parts) - 1)) // 2 * 2
            parts[k] = draw(st.sampled_from(FIELDS))
            lines[at] = "".join(parts)
        else:
            line = lines[at]
            pos = draw(st.integers(0, len(line)))
            char = draw(st.sampled_from(("", "0", "9", "x", ",", "-", ":", "[", "\t", "\x1b[4m")))
            lines[at] = line[:pos] + char + line[pos + 1 :]
    text = "\n".join(lines)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return name, text


def outcome_is_allowed(run: object) -> None:
    try:
        run()  # type: ignore[operator]
    except ParseError as exc:
        assert exc.line is not None, f"no line in {exc}"
        assert LOCATED.search(str(exc)), str(exc)


@settings(
    derandomize=True,
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(damaged())
def test_discover_from_damaged_output_gives_a_profile_or_a_located_error(
    case: tuple[str, str],
) -> None:
    name, text = case

    def run() -> None:
        facts, _ = parse_text(name, text)
        assemble(facts, name="fuzz")

    outcome_is_allowed(run)


@settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(damaged(), st.sampled_from([k.name for k in KINDS]))
def test_every_parser_on_any_damaged_output(case: tuple[str, str], kind_name: str) -> None:
    """A parser handed another tool's output, damaged or not, refuses it with a line."""
    name, text = case
    kind = next(k for k in KINDS if k.name == kind_name)

    def run() -> None:
        kind.parse(Text(name, clean_lines(text)))

    outcome_is_allowed(run)


@pytest.mark.parametrize("name", sorted(CONTENTS))
def test_every_parser_on_every_intact_fixture(name: str) -> None:
    for kind in KINDS:
        outcome_is_allowed(lambda kind=kind: kind.parse(Text(name, clean_lines(CONTENTS[name]))))
