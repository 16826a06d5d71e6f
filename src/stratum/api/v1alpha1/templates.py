"""What the two catalog kinds share: a versioned parameter schema and a body."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from stratum.api.v1alpha1.meta import WireModel

_SCHEMA_TYPES = {"object", "string", "integer", "number", "boolean", "array", "null"}


class TemplateSpecBase(WireModel):
    version: str = Field(
        pattern=r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$",
        description="Semantic version of this template version, e.g. 1.2.0; versions of one "
        "template share its family label, else its name.",
    )
    description: str = Field(
        default="", description="What the template makes; shown in the catalog."
    )
    published: bool = Field(
        default=False,
        description="A published version is immutable; a reference without a version takes "
        "the newest published release.",
    )
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (type object) of the parameters a launch gives; a missing "
        "parameter takes its schema default.",
    )

    @field_validator("parameters")
    @classmethod
    def _json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        kind = schema.get("type", "object")
        if kind != "object":
            raise ValueError(f"the parameter schema must have type 'object', got {kind!r}")
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise ValueError("properties must be a mapping of parameter name to schema")
        for name, prop in props.items():
            if not isinstance(prop, dict) or prop.get("type", "string") not in _SCHEMA_TYPES:
                raise ValueError(
                    f"properties.{name}: expected a schema with type one of {sorted(_SCHEMA_TYPES)}"
                )
        return schema
