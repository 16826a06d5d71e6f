import pytest

from stratum.core.errors import BadRequest
from stratum.core.manifests import load_body, load_documents


def test_multi_document_yaml_keeps_positions() -> None:
    text = "a: 1\n---\n\n---\nb: 2\nc: 3\n---\nkind: List\nitems:\n- {x: 1}\n- {y: 2}\n"
    docs = load_documents(text, "f.yaml")
    assert [d.data for d in docs] == [{"a": 1}, {"b": 2, "c": 3}, {"x": 1}, {"y": 2}]
    assert [d.index for d in docs] == [1, 3, 4, 4]
    assert docs[1].line == 5
    assert docs[1].where == "f.yaml document 3 (line 5)"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: 1\nb: [1, 2\n", "line 3, column 1"),
        ("a: 1\n  b: 2\n", "line 2, column 4"),
        ("a: 'unterminated\n", "line 2, column 1"),
        ("key: value\n\tbad: tab\n", "line 2, column 1"),
    ],
)
def test_malformed_yaml_reports_line_and_column(text: str, where: str) -> None:
    with pytest.raises(BadRequest) as err:
        load_documents(text, "bad.yaml")
    assert err.value.message.startswith(f"bad.yaml: {where}:")


def test_aliases_are_refused_so_a_small_file_cannot_expand_to_gigabytes() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    with pytest.raises(BadRequest) as err:
        load_documents(bomb, "bomb.yaml")
    assert "aliases" in err.value.message
    assert "line 2" in err.value.message


def test_json_body_errors_give_line_and_column() -> None:
    with pytest.raises(BadRequest) as err:
        load_body(b'{"kind": "Site",\n "metadata": }', "application/json")
    assert "line 2, column 14" in err.value.message


def test_body_must_be_utf8_and_not_empty() -> None:
    with pytest.raises(BadRequest, match="UTF-8"):
        load_body(b"\xff\xfe{}", "application/json")
    with pytest.raises(BadRequest, match="empty"):
        load_body(b"   ", "application/json")


def test_yaml_body_is_accepted_with_a_yaml_content_type() -> None:
    assert load_body(b"kind: Site\nmetadata: {name: a}\n", "application/yaml") == {
        "kind": "Site",
        "metadata": {"name": "a"},
    }
