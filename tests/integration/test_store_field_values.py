"""Transaction.field_values: one field of every object of a kind, picked out by the
database (SQLite's JSON functions, PostgreSQL's JSONB operators) without their bodies."""

from __future__ import annotations

from typing import Any


def _node(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_each_objects_field_none_where_missing_and_narrowed_by_name(store: Any) -> None:
    with store.write() as tx:
        tx.create(_node("a", {"cluster": "c", "site": "fra-1"}))
        tx.create(_node("b", {"cluster": "c", "site": "us-east-1"}))
        tx.create(_node("c", {"cluster": "c"}))
        tx.create({**_node("x", {}), "kind": "Site"})  # another kind: never listed
    with store.read() as tx:
        assert tx.field_values("Node", ("spec", "site")) == {
            ("", "a"): "fra-1",
            ("", "b"): "us-east-1",
            ("", "c"): None,
        }
        names = [f"n{i}" for i in range(1200)] + ["b", "c"]  # more than one query's worth
        assert tx.field_values("Node", ("spec", "site"), names=names) == {
            ("", "b"): "us-east-1",
            ("", "c"): None,
        }
        assert tx.field_values("Node", ("spec", "site"), names=[]) == {}
