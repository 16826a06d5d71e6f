"""Kinds as a person types them, their schemas, `stratum api-resources` and
`stratum explain KIND.field` (the schema documentation, like `kubectl explain`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stratum.cli.output import EXIT_USAGE, console, fail, print_table
from stratum.cli.suggest import did_you_mean


def resolve(word: str) -> Any:
    """The kind a person means by `word` (Kind, kind, plural, short name); exit 2 with the
    nearest known name when there is none."""
    from stratum.api.v1alpha1 import KINDS, resolve_kind

    model = resolve_kind(word)
    if model is None:
        names = [n for k in KINDS for n in (k.KIND, k.PLURAL, *k.SHORT_NAMES)]
        fail(
            f"unknown kind {word!r}{did_you_mean(word, names)}; "
            f"expected one of {', '.join(k.PLURAL for k in KINDS)} (see `stratum api-resources`)",
            code=EXIT_USAGE,
        )
    return model


def complete_kind(incomplete: str) -> list[str]:
    """Shell completion for a KIND argument: the plurals that start with what was typed."""
    from stratum.api.v1alpha1 import KINDS

    return [k.PLURAL for k in KINDS if k.PLURAL.startswith(incomplete.lower())]


# -- schemas -----------------------------------------------------------------------------
def schema_of(model: Any) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(by_alias=True)
    return schema


def _resolved(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref, and see through `X | None` (anyOf with null) to X."""
    while True:
        if "$ref" in schema:
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **extra}
            continue
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if len(options) == 1:
            extra = {k: v for k, v in schema.items() if k != "anyOf"}
            schema = {**options[0], **extra}
            continue
        return schema


def _element(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """For a list or map, the schema of its members; else the schema itself."""
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return _resolved(schema["items"], defs)
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        return _resolved(schema["additionalProperties"], defs)
    return schema


def field_schema(model: Any, path: list[str]) -> tuple[dict[str, Any], str | None]:
    """The schema at `path` under the kind, and the first unknown field name (or None)."""
    root = schema_of(model)
    defs = root.get("$defs", {})
    schema = _resolved(root, defs)
    for i, part in enumerate(path):
        schema = _element(schema, defs)
        props = schema.get("properties", {})
        if part not in props:
            return schema, ".".join(path[: i + 1])
        schema = _resolved(props[part], defs)
    return schema, None


def field_names(model: Any, path: list[str]) -> list[str]:
    """The fields an object may have at `path` (empty when it is not an object)."""
    schema, unknown = field_schema(model, path)
    if unknown:
        return []
    defs = schema_of(model).get("$defs", {})
    return list(_element(schema, defs).get("properties", {}))


def type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "enum"
    if "anyOf" in schema:
        return " | ".join(type_name(s) for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        return f"[]{items.get('title') or type_name(items)}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map[string]{type_name(schema['additionalProperties'])}"
    if kind == "object" or "properties" in schema:
        return "Object" if not schema.get("title") else str(schema["title"])
    return str(kind or "any")


def _rules(schema: dict[str, Any]) -> str:
    rules = []
    for key, word in (
        ("minimum", ">="),
        ("maximum", "<="),
        ("exclusiveMinimum", ">"),
        ("exclusiveMaximum", "<"),
        ("minLength", "length >="),
        ("maxLength", "length <="),
    ):
        if key in schema and not (key == "maxLength" and schema[key] >= 65536):
            rules.append(f"{word} {schema[key]}")
    if "pattern" in schema:
        rules.append(f"matches {schema['pattern']}")
    if "enum" in schema:
        rules.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    if "default" in schema and schema["default"] not in (None, [], {}):
        rules.append(f"default {schema['default']}")
    return "; ".join(rules)


def explain_field(target: str, recursive: bool = False) -> None:
    """Print the documentation of KIND or KIND.path.to.field."""
    kind_word, _, rest = target.partition(".")
    model = resolve(kind_word)
    path = [p for p in rest.split(".") if p]
    schema, unknown = field_schema(model, path)
    if unknown:
        parent = unknown.rpartition(".")[0]
        names = field_names(model, parent.split(".") if parent else [])
        fail(
            f'{model.KIND} has no field "{unknown}"'
            f"{did_you_mean(unknown.rsplit('.', 1)[-1], names)}; "
            f"fields of {model.KIND}{'.' + parent if parent else ''}: {', '.join(names)}",
            code=EXIT_USAGE,
        )
    defs = schema_of(model).get("$defs", {})
    out = console()
    out.print(f"KIND:     {model.KIND}", markup=False)
    out.print("VERSION:  stratum.dev/v1alpha1", markup=False)
    if path:
        out.print(f"FIELD:    {path[-1]} <{type_name(schema)}>", markup=False)
    out.print("", markup=False)
    description = schema.get("description") or (
        (model.__doc__ or "").strip().splitlines()[0] if not path and model.__doc__ else ""
    )
    out.print("DESCRIPTION:", markup=False)
    out.print(f"    {description or '<empty>'}", markup=False)
    if rules := _rules(schema):
        out.print(f"    ({rules})", markup=False)
    members = _element(schema, defs)
    props = members.get("properties", {})
    if props:
        out.print("", markup=False)
        out.print("FIELDS:", markup=False)
        required = set(members.get("required", []))
        _print_fields(props, required, defs, indent=2, recursive=recursive)


def _print_fields(
    props: dict[str, Any], required: set[str], defs: dict[str, Any], *, indent: int, recursive: bool
) -> None:
    out = console()
    for name, raw in props.items():
        schema = _resolved(raw, defs)
        flag = " -required-" if name in required else ""
        out.print(f"{' ' * indent}{name:<24} <{type_name(schema)}>{flag}", markup=False)
        text = schema.get("description", "")
        rules = _rules(schema)
        if text or rules:
            out.print(
                f"{' ' * (indent + 4)}{text}{' (' + rules + ')' if rules else ''}".rstrip(),
                markup=False,
            )
        if recursive:
            inner = _element(schema, defs)
            if inner.get("properties"):
                _print_fields(
                    inner["properties"],
                    set(inner.get("required", [])),
                    defs,
                    indent=indent + 2,
                    recursive=True,
                )


# -- api-resources -----------------------------------------------------------------------
def api_resources(
    namespaced: Annotated[
        bool | None,
        typer.Option(
            "--namespaced/--cluster-scoped", help="Only namespaced, or only cluster-wide kinds."
        ),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or name.")] = "table",
) -> None:
    """The kinds this API serves: name, short names, namespaced, kind."""
    from stratum.api.v1alpha1 import KINDS

    kinds = [k for k in KINDS if namespaced is None or namespaced == k.NAMESPACED]
    if output == "name":
        for k in kinds:
            console().print(k.PLURAL, markup=False)
        return
    if output != "table":
        fail(f"--output: expected table or name, got {output!r}", code=EXIT_USAGE)
    print_table(
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        [
            [
                k.PLURAL,
                ",".join(s for s in k.SHORT_NAMES if s != k.KIND.lower()),
                "stratum.dev/v1alpha1",
                "true" if k.NAMESPACED else "false",
                k.KIND,
            ]
            for k in kinds
        ],
    )
