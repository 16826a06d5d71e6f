"""Event: something that happened to an object, counted when it repeats."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from stratum.api.v1alpha1.meta import ObjectReference, Resource, Status, Timestamp, WireModel


class EventSpec(WireModel):
    involved_object: ObjectReference
    type: Literal["Normal", "Warning"] = "Normal"
    reason: str = Field(min_length=1, max_length=128)
    message: str = Field(default="", max_length=32768)
    count: int = Field(default=1, ge=1)
    first_timestamp: Timestamp | None = None
    last_timestamp: Timestamp | None = None
    source: str = "stratum"


class Event(Resource):
    KIND: ClassVar[str] = "Event"
    PLURAL: ClassVar[str] = "events"
    NAMESPACED: ClassVar[bool] = True
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("event", "ev")
    kind: Literal["Event"] = "Event"
    spec: EventSpec
    status: Status = Field(default_factory=Status)
