"""Check the field paths a policy expression reads against the wire schemas.

A deny policy reading `workload.spec.contrat.x` (a typo) would be accepted and then fail
to evaluate for every workload: fail closed, it refuses them all. At apply time each
`workload.a.b`, `tenant.a.b` and `site.a.b` path is followed through the JSON schema of
Workload, Tenant and Site; map fields (labels, annotations, quotas by model) take any key,
and a field that is not there is an error naming the path and the closest names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from stratum.api.v1alpha1 import Site, Tenant, Workload
from stratum.core.cel_bounds import refuse

_MODELS = {"workload": Workload, "tenant": Tenant, "site": Site}


@cache
def _schema(variable: str) -> dict[str, Any]:
    schema: dict[str, Any] = _MODELS[variable].model_json_schema(
        by_alias=True, mode="serialization"
    )
    return schema


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The object-like alternatives of a schema node ($ref followed, null dropped)."""
    if "$ref" in node:
        return _resolve(defs[str(node["$ref"]).rsplit("/", 1)[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            found: list[Mapping[str, Any]] = []
            for alternative in node[key]:
                found += _resolve(alternative, defs)
            return found
    if node.get("type") == "null":
        return []
    return [node]


def check_paths(
    paths: Iterable[tuple[str, tuple[str, ...]]], *, field_name: str = "spec.expression"
) -> None:
    """Raise Invalid for the first path that names a field the schema does not have."""
    for variable, path in paths:
        problem = _follow(variable, path)
        if problem:
            raise refuse(field_name, problem)


def _follow(variable: str, path: tuple[str, ...]) -> str | None:
    schema = _schema(variable)
    defs = schema.get("$defs", {})
    nodes = _resolve(schema, defs)
    for i, name in enumerate(path):
        dotted = ".".join((variable, *path[: i + 1]))
        following: list[Mapping[str, Any]] = []
        known: list[str] = []
        for node in nodes:
            properties = node.get("properties") or {}
            if name in properties:
                following += _resolve(properties[name], defs)
                continue
            known += list(properties)
            extra = node.get("additionalProperties")
            if node.get("type") in (None, "object") and (
                extra is True or isinstance(extra, Mapping) or (extra is None and not properties)
            ):
                # A map (labels, annotations, ...) or a free-form object: any key.
                following += _resolve(extra, defs) if isinstance(extra, Mapping) else [{}]
        if not following:
            if not known:
                kind = nodes[0].get("type", "a value") if nodes else "null"
                return f"{dotted}: {'.'.join((variable, *path[:i]))} is {kind}, it has no fields"
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            return f"{dotted}: no such field{hint} (the fields there are {', '.join(known)})"
        if any(not node for node in following):  # free-form from here on
            return None
        nodes = following
    return None
