"""Catalog templates: check launch parameters against a template's JSON Schema, then
render its body (a WorkloadSpec or ClusterSpec with `{{ parameter }}` placeholders).

Why Jinja2's sandbox, cut down to substitutions: the catalog's bodies already use Jinja's
`{{ name }}` syntax; the SandboxedEnvironment refuses unsafe attribute access, and on top
of it every template is parsed and its syntax tree checked so that only parameter names,
literals, `.field`/`[index]` lookups and a few pure filters (default, lower, upper, int,
float, string, tojson, join) may appear: no `{% %}` blocks, no calls, no arithmetic, so a
template can neither run code nor make the server loop or allocate without bound.

A string that is exactly one `{{ expression }}` takes the expression's own type, so
`gpus: "{{ gpus }}"` renders to the integer 8, not the string "8"; anything else renders
to a string. Parameter errors name the parameter and the rule it breaks.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stratum.core.errors import Cause, Invalid

FAMILY_LABEL = "catalog.stratum.dev/family"
TEMPLATE_ANNOTATION = "catalog.stratum.dev/template"  # family@version a workload came from
PARAMETERS_ANNOTATION = "catalog.stratum.dev/parameters"  # the values it was launched with

_ALLOWED_FILTERS = frozenset(
    {"default", "lower", "upper", "int", "float", "string", "tojson", "join", "trim"}
)
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+](.+))?$")


# -- references and version chains -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TemplateRef:
    family: str
    version: str | None  # None: the newest published version

    def __str__(self) -> str:
        return f"{self.family}@{self.version}" if self.version else self.family


def parse_ref(text: str) -> TemplateRef:
    """`llm-finetune` or `llm-finetune@1.1.0`."""
    family, _, version = text.partition("@")
    if not family or (version and not _SEMVER.match(version)):
        raise Invalid(
            f"template {text!r}: expected NAME or NAME@VERSION with a semantic version "
            "such as 1.2.0",
            causes=[Cause("template", "expected NAME[@MAJOR.MINOR.PATCH]")],
        )
    return TemplateRef(family, version or None)


def semver_key(version: str) -> tuple[int, int, int, int, str]:
    """Order of semantic versions: 1.10.0 after 1.9.0, a release after its pre-release."""
    m = _SEMVER.match(version)
    if m is None:
        return (-1, -1, -1, 0, version)
    major, minor, patch, pre = m.groups()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


def family_of(template: Mapping[str, Any]) -> str:
    """The chain a template version belongs to: its family label, else its name."""
    meta = template.get("metadata") or {}
    labels = meta.get("labels") or {}
    return str(labels.get(FAMILY_LABEL) or meta.get("name", ""))


def pick_version(templates: Iterable[Mapping[str, Any]], ref: TemplateRef) -> dict[str, Any]:
    """The template version `ref` names: an exact version, or the newest published one.

    A template is found by its family (the chain) or by its own object name."""
    pool = list(templates)
    chain = [
        t
        for t in pool
        if family_of(t) == ref.family or (t.get("metadata") or {}).get("name") == ref.family
    ]
    if not chain:
        families = sorted({family_of(t) for t in pool})
        near = difflib.get_close_matches(ref.family, families, n=1)
        hint = f'; did you mean "{near[0]}"?' if near else ""
        raise Invalid(
            f"no template {ref.family!r} in the catalog{hint}; "
            f"known: {', '.join(families) or 'none'}",
            causes=[Cause("template", f"unknown template {ref.family!r}")],
        )
    versions = sorted(chain, key=lambda t: semver_key(str(t["spec"]["version"])))
    if ref.version is not None:
        for t in versions:
            if t["spec"]["version"] == ref.version:
                return dict(t)
        raise Invalid(
            f"template {ref.family!r} has no version {ref.version}; versions: "
            + ", ".join(str(t["spec"]["version"]) for t in versions),
            causes=[Cause("template", f"unknown version {ref.version}")],
        )
    # Newest published release; a pre-release (2.0.0-rc.1) only when asked for by version.
    published = [t for t in versions if t["spec"].get("published")]
    releases = [t for t in published if semver_key(str(t["spec"]["version"]))[3] == 1]
    return dict((releases or published or versions)[-1])


# -- parameters --------------------------------------------------------------------------
def with_defaults(schema: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The values, with each missing top-level parameter set to its schema default."""
    filled = dict(values)
    for name, prop in (schema.get("properties") or {}).items():
        if name not in filled and isinstance(prop, dict) and "default" in prop:
            filled[name] = prop["default"]
    return filled


def validate_parameters(schema: Mapping[str, Any], values: Mapping[str, Any]) -> None:
    """Invalid, naming each parameter and the rule it breaks, unless `values` fit `schema`.

    Unknown parameter names are refused (a typo would otherwise be silently ignored)
    unless the schema allows additional properties."""
    import jsonschema  # type: ignore[import-untyped]

    causes: list[Cause] = []
    known = list((schema.get("properties") or {}).keys())
    if schema.get("additionalProperties") is not True:
        for name in values:
            if name not in known:
                near = difflib.get_close_matches(name, known, n=1)
                hint = f'; did you mean "{near[0]}"?' if near else ""
                causes.append(
                    Cause(
                        f"parameters.{name}",
                        f"unknown parameter{hint} (known: {', '.join(known) or 'none'})",
                        "FieldValueNotSupported",
                    )
                )
    validator = jsonschema.Draft202012Validator(dict(schema))
    for error in sorted(validator.iter_errors(dict(values)), key=lambda e: list(e.path)):
        if error.validator == "additionalProperties":
            continue  # reported above, with a suggestion
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = re.search(r"'([^']+)' is a required property", error.message)
            path = missing.group(1) if missing else path
        rule = f"{error.validator}: {error.validator_value}"
        causes.append(
            Cause(f"parameters.{path}" if path else "parameters", f"{error.message} ({rule})")
        )
    if causes:
        # Each cause once, with its full field name (the CLI then lists no cause twice).
        raise Invalid("; ".join(f"{c.field}: {c.message}" for c in causes), causes=causes)


# -- rendering ---------------------------------------------------------------------------
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def _check_tree(node: Any, where: str) -> None:
    from jinja2 import nodes

    allowed = (
        nodes.Template,
        nodes.Output,
        nodes.TemplateData,
        nodes.Name,
        nodes.Const,
        nodes.Getattr,
        nodes.Getitem,
        nodes.Filter,
        nodes.List,
        nodes.Tuple,
    )
    if not isinstance(node, allowed):
        raise Invalid(
            f"{where}: templates may only substitute parameters ({{{{ name }}}}, "
            f"{{{{ name | default(...) }}}}); {type(node).__name__} is not allowed",
            causes=[Cause(where, f"{type(node).__name__} is not allowed")],
        )
    if isinstance(node, nodes.Filter) and node.name not in _ALLOWED_FILTERS:
        raise Invalid(
            f"{where}: filter {node.name!r} is not allowed; allowed: "
            + ", ".join(sorted(_ALLOWED_FILTERS)),
            causes=[Cause(where, f"filter {node.name!r} is not allowed")],
        )
    for child in node.iter_child_nodes():
        _check_tree(child, where)


def _render_string(env: Any, text: str, params: Mapping[str, Any], where: str) -> Any:
    from jinja2 import TemplateError

    if "{{" not in text and "{%" not in text and "{#" not in text:
        return text
    try:
        _check_tree(env.parse(text), where)
        single = _SINGLE.match(text)
        if single and "}}" not in single.group("expr") and "{{" not in single.group("expr"):
            from jinja2 import Undefined

            value = env.compile_expression(single.group("expr").strip(), undefined_to_none=False)(
                **params
            )
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()  # StrictUndefined: names the missing name
            return value
        return env.from_string(text).render(**params)
    except TemplateError as err:
        raise Invalid(
            f"{where}: cannot render {text!r}: {err}", causes=[Cause(where, str(err))]
        ) from None


def render_body(body: Any, params: Mapping[str, Any], where: str = "body") -> Any:
    """`body` with every `{{ … }}` in its strings (keys too) filled from `params`."""
    env = _environment()

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return _render_string(env, value, params, path)
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {
                str(_render_string(env, k, params, path)): walk(v, f"{path}.{k}")
                for k, v in value.items()
            }
        return value

    return walk(body, where)


def render(template_spec: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Check `values` against the template's parameter schema (defaults filled in) and
    return its rendered body: the spec of the Workload or Cluster it makes."""
    schema = template_spec.get("parameters") or {"type": "object", "properties": {}}
    params = with_defaults(schema, values)
    validate_parameters(schema, params)
    rendered = render_body(template_spec.get("body") or {}, params)
    if not isinstance(rendered, dict):
        raise Invalid("body: a template's body must render to a mapping")
    return rendered
