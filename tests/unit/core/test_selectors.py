import pytest

from stratum.core.errors import Invalid
from stratum.core.selectors import parse_selector

LABELS = {"env": "prod", "tier": "gpu", "site": "fra-1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("env=prod", True),
        ("env==prod", True),
        ("env=dev", False),
        ("env!=dev", True),
        ("env!=prod", False),
        ("missing!=x", True),
        ("site in (fra-1, ams-1)", True),
        ("site notin (fra-1)", False),
        ("site in (ams-1)", False),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("env=prod,tier=gpu,site in (fra-1,ams-1)", True),
        ("env=prod,tier=cpu", False),
    ],
)
def test_selector_matches_like_kubernetes(text: str, expected: bool) -> None:
    assert parse_selector(text).matches(LABELS) is expected


@pytest.mark.parametrize("text", ["env=(", "a in ()", "=x", "env=pr od", "a b"])
def test_bad_selector_names_the_term(text: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_selector(text)
    assert "label selector term" in err.value.message
    assert err.value.causes[0].field == "labelSelector"
