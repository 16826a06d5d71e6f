"""Bodies that once crashed the parser (a 500) are refused with a 400 that says why."""

from __future__ import annotations

import pytest

from stratum.core.errors import BadRequest, Invalid
from stratum.core.manifests import load_body


@pytest.mark.parametrize("content_type", ["application/json", "application/yaml"])
def test_an_integer_of_thousands_of_digits_is_a_clear_refusal(content_type: str) -> None:
    body = '{"spec": {"replicas": ' + "9" * 5000 + "}}"
    with pytest.raises((BadRequest, Invalid)) as err:
        load_body(body.encode(), content_type)
    assert "digits" in err.value.message


def test_json_nested_ten_thousand_levels_is_a_clear_refusal() -> None:
    body = "[" * 10_000 + "]" * 10_000
    with pytest.raises(BadRequest) as err:
        load_body(body.encode(), "application/json")
    assert "nested more than" in err.value.message
