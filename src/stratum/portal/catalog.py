"""The catalog: templates, a launch form made from each template's parameter schema, the
rendered contract, and where it would run now (the API's placement preview)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stratum.api.v1alpha1 import CATALOG_NAMESPACE, Workload
from stratum.core.errors import ApiError, Invalid
from stratum.core.templates import (
    PARAMETERS_ANNOTATION,
    TEMPLATE_ANNOTATION,
    family_of,
    render,
    semver_key,
)
from stratum.portal.reads import Obj, Reader, name_of


@dataclass(slots=True)
class Field:
    name: str
    type: str
    required: bool
    default: Any = None
    enum: list[Any] | None = None
    description: str = ""
    minimum: Any = None
    maximum: Any = None
    value: str = ""
    error: str = ""


@dataclass(slots=True)
class Launch:
    """What one submission of the form gave: field errors, form errors, or a result."""

    fields: list[Field]
    errors: list[str] = field(default_factory=list)
    workload: Obj | None = None
    preview: Obj | None = None
    launched: bool = False


def families(reader: Reader, tenants: list[str]) -> list[Obj]:
    """The newest version of each WorkloadTemplate family the caller can see (the shared
    catalog and the caller's tenants), with the other versions' numbers."""
    found: list[Obj] = []
    for ns in dict.fromkeys([CATALOG_NAMESPACE, *tenants]):
        try:
            found += reader.list("WorkloadTemplate", ns)
        except ApiError:
            continue
    by_family: dict[tuple[str, str], list[Obj]] = {}
    for t in found:
        by_family.setdefault((t["metadata"]["namespace"], family_of(t)), []).append(t)
    out = []
    for (_, _family), versions in sorted(by_family.items()):
        versions.sort(key=lambda t: semver_key(str(t["spec"]["version"])))
        newest = versions[-1]
        out.append({**newest, "versions": [t["spec"]["version"] for t in versions]})
    return out


def form_fields(template: Obj, submitted: Mapping[str, str] | None = None) -> list[Field]:
    schema = template["spec"].get("parameters") or {}
    required = set(schema.get("required") or [])
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        default = prop.get("default")
        value = (submitted or {}).get(name)
        fields.append(
            Field(
                name=name,
                type=str(prop.get("type", "string")),
                required=name in required,
                default=default,
                enum=prop.get("enum"),
                description=str(prop.get("description", "")),
                minimum=prop.get("minimum"),
                maximum=prop.get("maximum"),
                value=value if value is not None else ("" if default is None else str(default)),
            )
        )
    return fields


def _typed(f: Field) -> Any:
    """The form's text as the schema's type; text that is not one is passed on as text,
    so that the server's validation names the field and the type it expected."""
    text = f.value.strip()
    try:
        if f.type == "integer":
            return int(text)
        if f.type == "number":
            return float(text)
        if f.type == "boolean":
            return text.lower() in ("true", "on", "1", "yes")
    except ValueError:
        return text
    return text


def workload_from(template: Obj, tenant: str, name: str, fields: list[Field]) -> Obj:
    """Render the template (Invalid naming parameters.X on a bad value) into a Workload."""
    values = {f.name: _typed(f) for f in fields if f.value.strip() != ""}
    body = render(template["spec"], values)
    family, version = family_of(template), template["spec"]["version"]
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {
            "name": name,
            "namespace": tenant,
            "labels": {"catalog.stratum.dev/family": family},
            "annotations": {
                TEMPLATE_ANNOTATION: f"{family}@{version}",
                PARAMETERS_ANNOTATION: json.dumps(values, sort_keys=True),
            },
        },
        "spec": {**body, "template": name_of(template)},
    }


def submit(
    reader: Reader, template: Obj, tenant: str, name: str, form: Mapping[str, str], *, launch: bool
) -> Launch:
    """Preview (admission as a dry run and where it would run now) or launch."""
    from stratum.server.services.previews import preview_placement

    result = Launch(form_fields(template, form))
    try:
        if not name:
            raise Invalid("name: give the workload a name", causes=[])
        data = workload_from(template, tenant, name, result.fields)
        obj = reader.service.validate(data, kind="Workload", namespace=tenant)
        if launch:
            result.workload = dict(reader.service.apply(obj, ctx=reader.ctx).object)
            result.launched = True
        else:
            assert isinstance(obj, Workload)
            result.preview = preview_placement(reader.service, obj, ctx=reader.ctx)
            result.workload = result.preview["workload"]
    except ApiError as err:
        by_name = {f.name: f for f in result.fields}
        for cause in err.causes:
            param = cause.field.removeprefix("parameters.")
            if cause.field.startswith("parameters.") and param in by_name:
                by_name[param].error = cause.message
            else:
                result.errors.append(f"{cause.field}: {cause.message}")
        if not err.causes or (not any(f.error for f in result.fields) and not result.errors):
            result.errors.append(err.message)
    return result
