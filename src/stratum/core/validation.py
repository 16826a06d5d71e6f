"""Turn untrusted input into typed objects, or an Invalid error that names every bad field."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from stratum.api.v1alpha1 import API_VERSION, BY_KIND, KINDS, Resource
from stratum.core.errors import Cause, Invalid

_KNOWN_KINDS = ", ".join(k.KIND for k in KINDS)
# Fields whose values an error message must never echo (they hold secrets).
SENSITIVE_FIELDS = frozenset({"credentials"})


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
        return model.model_validate(data)
    except ValidationError as err:
        causes = causes_from(err)
        raise Invalid(f"{identify(data)} is invalid: {summarise(causes)}", causes=causes) from None


def to_wire(obj: Resource) -> dict[str, Any]:
    """The canonical wire form: camelCase, JSON types, no null fields."""
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)
