"""The Grafana dashboards in dashboards/: every PromQL expression parses and names only
metrics (and labels) that Stratum exposes; docs/metrics.md lists every metric."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from stratum.observability.metrics import Metrics
from stratum.testing.dashboards import expand, expressions
from tests import DASHBOARDS, REPO


def selectors(node: Any) -> Iterator[Any]:
    """Every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node
        return
    for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str | int | float):
            yield from selectors(child)
    for arg in getattr(node, "args", None) or []:
        yield from selectors(arg)


def test_the_five_dashboards_are_there() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {
        "Stratum / Fleet",
        "Stratum / Tenants and cost",
        "Stratum / Contracts",
        "Stratum / Scheduler",
        "Stratum / Control plane",
    }


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_query_parses_and_names_metrics_and_labels_that_exist(path: Path) -> None:
    known = Metrics().metric_names()
    board = json.loads(path.read_text())
    checked = 0
    for title, expr in expressions(board):
        try:
            parsed = promql_parser.parse(expand(expr))
        except Exception as err:  # the parser raises a bare exception with the position
            raise AssertionError(f"{path.name} / {title}: {expr}: {err}") from None
        found = list(selectors(parsed))
        assert found, f"{path.name} / {title}: no metric in {expr}"
        for sel in found:
            assert sel.name in known, f"{path.name} / {title}: unknown metric {sel.name}"
            for matcher in sel.matchers.matchers:
                assert matcher.name in known[sel.name], (
                    f"{path.name} / {title}: {sel.name} has no label {matcher.name}"
                )
        checked += 1
    assert checked >= 8
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["query"]["query"])
        assert match, variable
        assert match.group(2) in known[match.group(1)], variable


def test_a_bad_query_would_be_caught() -> None:
    with pytest.raises(Exception):  # noqa: B017 - the parser's own exception type
        promql_parser.parse("sum by (tenant (stratum_contracts)")
    parsed = promql_parser.parse(expand('rate(stratum_nope_total{x=~"$site"}[$__rate_interval])'))
    assert [s.name for s in selectors(parsed)] == ["stratum_nope_total"]


def test_docs_list_every_metric_with_its_labels() -> None:
    text = (REPO / "docs" / "metrics.md").read_text()
    m = Metrics()
    for name, labels in m.metric_names().items():
        if name.endswith(("_sum", "_count")):
            continue
        base = name.removesuffix("_bucket")
        assert f"`{base}`" in text, f"docs/metrics.md does not list {base}"
        row = next(line for line in text.splitlines() if line.startswith(f"| `{base}` |"))
        for label in labels - {"le"}:
            assert label in row, f"docs/metrics.md: {base} row does not name label {label}"
