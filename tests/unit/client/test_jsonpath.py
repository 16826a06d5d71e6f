"""kubectl's JSONPath templates as `-o jsonpath=` and `-o custom-columns=` use them."""

from __future__ import annotations

import pytest

from stratum.client.jsonpath import render, select
from stratum.core.errors import BadRequest

LIST = {
    "items": [
        {"metadata": {"name": "a", "labels": {"app.io/tier": "gpu"}}, "spec": {"replicas": 2}},
        {"metadata": {"name": "b", "labels": {}}, "spec": {"replicas": 1}},
    ]
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.items[*].metadata.name}", "a b"),
        ("{.items[0].spec.replicas}", "2"),
        ("{.items[-1].metadata.name}", "b"),
        ("{range .items[*]}{.metadata.name}={.spec.replicas}{'\\n'}{end}", "a=2\nb=1\n"),
        ("{.items[?(@.spec.replicas==2)].metadata.name}", "a"),
        ("{.items[0].metadata.labels['app.io/tier']}", "gpu"),
        ("names: {..name}", "names: a b"),
        ("{.items[0].spec}", '{"replicas": 2}'),
        ("{.missing}", ""),
    ],
)
def test_templates(template: str, expected: str) -> None:
    assert render(template, LIST) == expected


def test_select_and_errors() -> None:
    assert select(LIST["items"][0], ".metadata.name") == ["a"]
    with pytest.raises(BadRequest, match="cannot parse"):
        render("{.items[x]}", LIST)
