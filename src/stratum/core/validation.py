"""Turn untrusted input into typed objects, or an Invalid error that names every bad field."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from stratum.api.v1alpha1 import API_VERSION, BY_KIND, KINDS, Resource
from stratum.core.errors import Cause, Invalid

_KNOWN_KINDS = ", ".join(k.KIND for k in KINDS)
# Fields whose values an error message must never echo (they hold secrets).
SENSITIVE_FIELDS = frozenset({"credentials"})
# No kind nests deeper than about ten levels; free-form fields (template bodies, backend
# config) get room to spare. Deeper input would exhaust the recursion of whatever walks it
# next (pydantic, deepcopy, the JSON encoder) and answer 500 long after it was stored.
MAX_DEPTH = 64
# Integers the databases, numpy and every client's JSON parser agree on.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def field_path(loc: tuple[int | str, ...]) -> str:
    """('spec', 'pools', 2, 'count') -> 'spec.pools[2].count'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "(root)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def causes_from(err: ValidationError, prefix: str = "") -> list[Cause]:
    causes = []
    for e in err.errors(include_url=False):
        path = field_path(tuple(e["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path != "(root)" else prefix
        kind = e["type"]
        if kind == "extra_forbidden":
            message, reason = "unknown field", "FieldValueNotSupported"
        elif kind == "missing":
            message, reason = "required field is missing", "FieldValueRequired"
        else:
            message = str(e["msg"]).removeprefix("Value error, ")
            if (
                "input" in e
                and kind not in ("model_type", "dict_type", "value_error")
                and not SENSITIVE_FIELDS.intersection(str(p) for p in e["loc"])
            ):
                message += f" (got {_short(e['input'])})"
            reason = "FieldValueInvalid"
        causes.append(Cause(field=path, message=message, reason=reason))
    return causes


def summarise(causes: list[Cause]) -> str:
    shown = "; ".join(f"{c.field}: {c.message}" for c in causes[:5])
    if len(causes) > 5:
        shown += f"; and {len(causes) - 5} more"
    return shown


def identify(data: Any) -> str:
    """A best-effort 'Kind ns/name' for error messages, even for invalid input."""
    if not isinstance(data, dict):
        return "(not an object)"
    kind = data.get("kind") or "(no kind)"
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    name = meta.get("name") or "(no name)"
    ns = meta.get("namespace")
    return f"{kind} {ns + '/' if isinstance(ns, str) and ns else ''}{name}"


def check_json_values(data: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse what cannot be stored and served back as JSON: NaN and infinities, integers
    beyond 64 bits and nesting deeper than `max_depth`; Invalid names the field.

    It walks iteratively, so hostile depth costs a loop, not the interpreter's stack."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, dict | list):
            if len(loc) >= max_depth:
                _refuse(loc, f"nested more than {max_depth} levels deep")
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((child, (*loc, key)) for key, child in pairs)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                _refuse(loc, f"expected an integer of at most 64 bits (got {_short(value)})")
        elif isinstance(value, float) and not math.isfinite(value):
            _refuse(loc, f"expected a finite number (got {value!r})")


def _refuse(loc: tuple[int | str, ...], message: str) -> None:
    path = field_path(loc)
    raise Invalid(f"{path}: {message}", causes=[Cause(path, message)])


def parse_object(data: Any, *, expected_kind: str | None = None) -> Resource:
    """Validate a wire object of any kind; raise Invalid naming the fields that are wrong."""
    if not isinstance(data, dict):
        raise Invalid(
            f"expected an object with apiVersion, kind, metadata and spec, "
            f"got {type(data).__name__}"
        )
    kind = data.get("kind")
    api_version = data.get("apiVersion")
    if api_version != API_VERSION:
        message = f"apiVersion: expected {API_VERSION!r}, got {api_version!r}"
        raise Invalid(message, causes=[Cause("apiVersion", message)])
    model = BY_KIND.get(kind) if isinstance(kind, str) else None
    if model is None:
        message = f"kind: {kind!r} is not a Stratum kind; expected one of {_KNOWN_KINDS}"
        raise Invalid(message, causes=[Cause("kind", message, "FieldValueNotSupported")])
    if expected_kind is not None and kind != expected_kind:
        message = f"kind: this endpoint serves {expected_kind}, the body is a {kind}"
        raise Invalid(message, causes=[Cause("kind", message)])
    try:
        check_json_values(data)
    except Invalid as err:
        raise Invalid(f"{identify(data)} is invalid: {err.message}", causes=err.causes) from None
    try:
        # Strict: what arrives as JSON or YAML must already have the field's type ("8" is
        # not 8, true is not 1); timestamps are the one string the models parse themselves.
        return model.model_validate(data, strict=True)
    except ValidationError as err:
        causes = causes_from(err)
        raise Invalid(f"{identify(data)} is invalid: {summarise(causes)}", causes=causes) from None


def to_wire(obj: Resource) -> dict[str, Any]:
    """The canonical wire form: camelCase, JSON types, no null fields."""
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)
