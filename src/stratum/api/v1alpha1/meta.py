"""Wire types every kind shares: object metadata, conditions, status and the resource envelope."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

API_GROUP = "stratum.dev"
API_VERSION: Final = "stratum.dev/v1alpha1"

# fullmatch, never match: `$` also matches before a trailing newline, so "name\n" would pass.
# DNS-1123: what Kubernetes accepts for object names (subdomain) and namespaces (label).
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def check_dns1123_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name: expected lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters (DNS-1123)"
        )
    return value


def check_dns1123_label(value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid namespace: expected lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters (DNS-1123 label)"
        )
    return value


def check_label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if prefix:
        check_dns1123_subdomain(prefix)
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            f"label key {key!r} is invalid: expected [prefix/]name, name at most 63 characters "
            "of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return key


def check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"label value {value!r} is invalid: expected at most 63 characters of letters, "
            "digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return value


ObjectName = Annotated[str, AfterValidator(check_dns1123_subdomain)]
NamespaceName = Annotated[str, AfterValidator(check_dns1123_label)]

_LAX_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


def _parse_timestamp(value: Any) -> Any:
    """JSON has no date type: accept an RFC 3339 string even where the rest is strict, and
    refuse a time without a zone (which instant it means depends on the reader)."""
    parsed: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            parsed = _LAX_DATETIME.validate_python(value)
        except ValidationError:
            parsed = None
    if parsed is None or parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(
            "expected an RFC 3339 date-time with a time zone, e.g. 2026-01-01T00:00:00Z "
            f"(got {str(value)[:60]!r})"
        )
    return parsed


# A point in time on the wire: a string with its time zone (a naive time is ambiguous).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_parse_timestamp)]


def wire_alias(name: str) -> str:
    """snake_case to camelCase on the wire, keeping units legible (memoryGiB, powerBudgetKW)."""
    camel = to_camel(name)
    for plain, unit in (("Gib", "GiB"), ("Mib", "MiB"), ("Kw", "KW")):
        if camel.endswith(plain):
            camel = camel[: -len(plain)] + unit
    return camel


class WireModel(BaseModel):
    """Base of every wire type: camelCase on the wire, unknown fields refused, and no NaN
    or infinity (JSON cannot carry them: stored, they would break every later read)."""

    model_config = ConfigDict(
        alias_generator=wire_alias,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
        str_max_length=65536,
        allow_inf_nan=False,
    )


class ObjectReference(WireModel):
    """Another object, by kind and name."""

    kind: str = Field(min_length=1, max_length=63, description="The object's kind, e.g. Workload.")
    name: ObjectName = Field(description="The object's name.")
    namespace: NamespaceName | None = Field(
        default=None, description="Its namespace; unset for a cluster-wide kind."
    )
    uid: str | None = Field(default=None, description="Its uid, naming one incarnation of it.")


class ObjectMeta(WireModel):
    """Name, namespace, labels and the server's bookkeeping of one object."""

    name: ObjectName = Field(
        description="Unique within its kind (and namespace): lowercase letters, digits, '-' "
        "and '.', at most 253 characters (DNS-1123)."
    )
    namespace: NamespaceName | None = Field(
        default=None,
        description="The tenant the object belongs to, for namespaced kinds (a Tenant's name, "
        "or stratum-system / catalog); unset for cluster-wide kinds.",
    )
    uid: str | None = Field(
        default=None,
        description="Set by the server at creation: unique for this object's lifetime, never "
        "reused by one deleted and created again.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Key/value pairs to select objects by (-l); keys [prefix/]name, values at "
        "most 63 characters.",
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Free-form key/value notes for tools, at most 256 KiB in all; not for "
        "selection.",
    )
    resource_version: str | None = Field(
        default=None,
        description="Set by the server on every write; sending it back with an update makes "
        "the update fail with a conflict if the object changed since.",
    )
    generation: int | None = Field(
        default=None,
        description="Set by the server: 1 at creation, incremented on each change of spec.",
    )
    creation_timestamp: Timestamp | None = Field(
        default=None, description="Set by the server: when the object was created."
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            check_label_key(key)
            check_label_value(value)
        return labels

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, annotations: dict[str, str]) -> dict[str, str]:
        for key in annotations:
            check_label_key(key)
        if sum(len(k) + len(v) for k, v in annotations.items()) > 256 * 1024:
            raise ValueError("annotations may hold at most 256 KiB in total")
        return annotations


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(WireModel):
    """One aspect of the object's state, as Kubernetes conditions are."""

    type: str = Field(min_length=1, max_length=316, description="What it is about, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="", max_length=1024, description="Why, as one CamelCase word (e.g. Heartbeat)."
    )
    message: str = Field(default="", max_length=32768, description="Why, in words.")
    last_transition_time: Timestamp | None = Field(
        default=None, description="When status last changed."
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation the condition was set from."
    )


class Status(WireModel):
    """Status every kind carries; kinds extend it with their own fields."""

    observed_generation: int | None = Field(
        default=None,
        description="The metadata.generation the controllers last acted on; behind it, the "
        "latest spec is not yet reflected.",
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Conditions of the object, one per type."
    )


class Resource(WireModel):
    """The envelope of every object: apiVersion, kind, metadata, spec, status.

    Subclasses set KIND, PLURAL and NAMESPACED and narrow `spec` and `status`.
    """

    KIND: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""
    NAMESPACED: ClassVar[bool] = False
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()

    api_version: Literal["stratum.dev/v1alpha1"] = API_VERSION
    kind: str
    metadata: ObjectMeta = Field(
        description="Name, namespace, labels and annotations, and what the server keeps: "
        "uid, resourceVersion, generation, creation time."
    )
    spec: Any = None
    status: Any = None
