"""The PromQL of the Grafana dashboards as Prometheus would receive it: shared by the test
that parses every query and the one that runs them against a real Prometheus."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# Grafana's own variables, replaced as Grafana would before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}


def expand(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)  # dashboard variables: match everything


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every target in the dashboard, rows included."""
    for panel in board["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner["title"], target["expr"]
