""" "Did you mean …?" for what a person mistyped: kinds, fields, formats, template names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to `word` (case-insensitive), if one is near enough."""
    by_lower = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'; did you mean "workloads"?' or '' when nothing is close."""
    match = closest(word, choices)
    return f'; did you mean "{match}"?' if match else ""
