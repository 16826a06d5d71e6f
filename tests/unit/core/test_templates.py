"""Catalog templates: parameters checked against their schema, bodies rendered by a
sandbox that substitutes and does nothing else, versions found along their chain."""

from __future__ import annotations

import pytest

from stratum.core.errors import Invalid
from stratum.core.templates import (
    parse_ref,
    pick_version,
    render,
    render_body,
    semver_key,
)

SPEC = {
    "version": "1.0.0",
    "parameters": {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {"type": "string"},
            "gpus": {"type": "integer", "minimum": 1, "maximum": 8, "default": 8},
            "jurisdiction": {"type": "string", "enum": ["EU", "US"], "default": "EU"},
        },
    },
    "body": {
        "type": "finetune",
        "run": {"args": ["--model", "{{ model }}", "--tag={{ model | lower }}-{{ gpus }}"]},
        "contract": {
            "compute": {"gpus": "{{ gpus }}"},
            "sovereignty": {"jurisdictions": ["{{ jurisdiction }}"]},
        },
    },
}


def test_render_fills_defaults_and_keeps_types() -> None:
    body = render(SPEC, {"model": "Llama-3"})
    assert body["contract"]["compute"]["gpus"] == 8  # an int, not "8"
    assert body["contract"]["sovereignty"]["jurisdictions"] == ["EU"]
    assert body["run"]["args"] == ["--model", "Llama-3", "--tag=llama-3-8"]
    assert render(SPEC, {"model": "m", "gpus": 2})["contract"]["compute"]["gpus"] == 2


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({}, "parameters.model", "'model' is a required property"),
        ({"model": "m", "gpus": 9}, "parameters.gpus", "maximum: 8"),
        ({"model": "m", "jurisdiction": "CN"}, "parameters.jurisdiction", "enum"),
        ({"model": "m", "gpus": "eight"}, "parameters.gpus", "type: integer"),
        ({"model": "m", "gpu": 2}, "parameters.gpu", 'did you mean "gpus"?'),
    ],
)
def test_parameter_errors_name_the_parameter_and_the_rule(
    values: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(Invalid) as caught:
        render(SPEC, values)
    causes = {c.field: c.message for c in caught.value.causes}
    assert field in causes, causes
    assert words in causes[field]


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",  # attribute games: refused before the sandbox
        "{{ model.upper() }}",  # calls
        "{% for i in range(10**9) %}x{% endfor %}",  # blocks and loops
        "{{ 10 ** 10 ** 10 }}",  # arithmetic that would never end
        "{{ model | attr('x') }}",  # filters outside the allowed few
        "{{ undefined_name }}",  # a name that is no parameter
    ],
)
def test_the_engine_substitutes_and_runs_nothing(text: str) -> None:
    with pytest.raises(Invalid):
        render_body({"x": text}, {"model": "m"})


def test_version_chains() -> None:
    def version(v: str, published: bool = True) -> dict[str, object]:
        return {
            "metadata": {
                "name": f"llm-finetune-{v}",
                "labels": {"catalog.stratum.dev/family": "llm-finetune"},
            },
            "spec": {"version": v, "published": published},
        }

    chain = [version("1.9.0"), version("1.10.0"), version("2.0.0-rc.1"), version("1.11.0", False)]
    assert pick_version(chain, parse_ref("llm-finetune"))["spec"]["version"] == "1.10.0"
    assert pick_version(chain, parse_ref("llm-finetune@1.9.0"))["spec"]["version"] == "1.9.0"
    assert pick_version(chain, parse_ref("llm-finetune-1.9.0"))["spec"]["version"] == "1.9.0"
    assert semver_key("2.0.0-rc.1") < semver_key("2.0.0")
    with pytest.raises(Invalid, match="versions: 1.9.0, 1.10.0"):
        pick_version(chain, parse_ref("llm-finetune@3.0.0"))
    with pytest.raises(Invalid, match='did you mean "llm-finetune"'):
        pick_version(chain, parse_ref("llm-finetuen"))
    with pytest.raises(Invalid):
        parse_ref("x@latest")
