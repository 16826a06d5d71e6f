"""Every field of every kind says what it means: `stratum explain KIND.field`, the OpenAPI
schema and docs/reference/kinds.md all print the pydantic description, so a field that lands
without one leaves users guessing."""

from __future__ import annotations

import typing

from pydantic import BaseModel, Field

from stratum.api.v1alpha1 import KINDS
from stratum.api.v1alpha1.contract import ComputeClause
from stratum.testing.harness import run_cli

# The envelope's fixed literals: every kind's are the same, and `explain` names them itself.
ENVELOPE = ("api_version", "kind")


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The models a field's type holds: X, X | None, list[X], dict[str, X]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def undocumented(model: type[BaseModel], path: str, seen: set[type[BaseModel]]) -> list[str]:
    """Wire paths (camelCase, as `explain` takes them) of the fields without a description,
    walking into every nested model once."""
    missing = []
    for name, field in model.model_fields.items():
        if name in ENVELOPE and path.count(".") == 0:
            continue
        where = f"{path}.{field.alias or name}"
        if not (field.description or "").strip():
            missing.append(where)
        for inner in _models_in(field.annotation):
            if inner not in seen:
                seen.add(inner)
                missing += undocumented(inner, where, seen)
    return missing


def test_every_field_of_every_kind_has_a_description() -> None:
    missing = [p for kind in KINDS for p in undocumented(kind, kind.KIND, set())]
    assert not missing, (
        f"{len(missing)} field(s) have no description; give each Field(description=...) "
        "saying what it means (unit, default, allowed values): " + ", ".join(missing)
    )


def test_the_walk_finds_an_undocumented_nested_field() -> None:
    class Inner(BaseModel):
        documented: int = Field(default=0, description="has one")
        plain: int = 0

    class Outer(BaseModel):
        inner: list[Inner] | None = None

    assert undocumented(Outer, "Outer", set()) == ["Outer.inner", "Outer.inner.plain"]


def test_explain_prints_what_each_compute_field_means() -> None:
    shown = run_cli("explain", "workload.spec.contract.compute")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "FIELD: compute <ComputeClause>" in text
    for name, field in ComputeClause.model_fields.items():
        assert field.description, name
        assert " ".join(field.description.split()) in text, f"{name} is not explained"
    # What a user asking about GPU slices needs: the unit, and that the forms exclude each other.
    assert "in thousandths (250 = a quarter)" in text
    assert "exclusive of gpus and migProfile" in text
