"""Event: something that happened to an object, counted when it repeats."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import ObjectReference, Resource, Status, Timestamp, WireModel


class EventSpec(WireModel):
    involved_object: ObjectReference = Field(description="The object it happened to.")
    type: Literal["Normal", "Warning"] = Field(
        default="Normal", description="Normal, or Warning for something that went wrong."
    )
    reason: str = Field(
        min_length=1,
        max_length=128,
        description="What happened, as one CamelCase word (e.g. Bound, Preempted).",
    )
    message: str = Field(default="", max_length=32768, description="What happened, in words.")
    count: int = Field(
        default=1,
        ge=1,
        description="How many times it happened; the same reason and message again counts up.",
    )
    first_timestamp: Timestamp | None = Field(default=None, description="When it first happened.")
    last_timestamp: Timestamp | None = Field(default=None, description="When it last happened.")
    source: str = Field(default="stratum", description="The component that reported it.")


class Event(Resource):
    KIND: ClassVar[str] = "Event"
    PLURAL: ClassVar[str] = "events"
    NAMESPACED: ClassVar[bool] = True
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("event", "ev")
    kind: Literal["Event"] = "Event"
    spec: EventSpec = Field(description="What happened, to which object, how often and when.")
    status: Status = Field(
        default_factory=Status,
        description="Conditions, if any; events have no status of their own.",
    )
