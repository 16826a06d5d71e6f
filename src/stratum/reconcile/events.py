"""Events: what happened to an object, counted when the same thing happens again."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Literal

from stratum.api.v1alpha1 import SYSTEM_NAMESPACE, Resource
from stratum.api.v1alpha1.events import Event, EventSpec
from stratum.api.v1alpha1.meta import ObjectMeta, ObjectReference
from stratum.core.validation import to_wire
from stratum.observability.logs import object_fields
from stratum.store.objects import Transaction

log = logging.getLogger("stratum.events")

EventType = Literal["Normal", "Warning"]


def record_event(
    tx: Transaction,
    obj: Resource,
    *,
    reason: str,
    message: str,
    at: datetime,
    type: EventType = "Normal",
    source: str = "stratum",
) -> None:
    """Write an Event in the object's namespace (platform objects: stratum-system). The same
    reason and message again bumps `count` and `lastTimestamp` instead of adding a row."""
    namespace = obj.metadata.namespace or SYSTEM_NAMESPACE
    # Every event is a log line too, with the object's kind, namespace, name and uid.
    log.log(
        logging.WARNING if type == "Warning" else logging.INFO,
        "%s: %s",
        reason,
        message,
        extra={
            **object_fields(obj.KIND, obj.metadata.name, obj.metadata.namespace, obj.metadata.uid),
            "reason": reason,
        },
    )
    digest = hashlib.sha1(
        f"{obj.KIND}/{obj.metadata.name}/{reason}/{message}".encode(), usedforsecurity=False
    ).hexdigest()[:10]
    name = f"{obj.metadata.name[:200]}.{reason.lower()[:30]}.{digest}"
    existing = tx.find("Event", namespace, name)
    if existing is not None:
        seen = Event.model_validate(existing)
        spec = seen.spec.model_copy(update={"count": seen.spec.count + 1, "last_timestamp": at})
        tx.replace(to_wire(seen.model_copy(update={"spec": spec})))
        return
    event = Event(
        metadata=ObjectMeta(name=name, namespace=namespace),
        spec=EventSpec(
            involved_object=ObjectReference(
                kind=obj.KIND,
                name=obj.metadata.name,
                namespace=obj.metadata.namespace,
                uid=obj.metadata.uid,
            ),
            type=type,
            reason=reason,
            message=message[:32768],
            first_timestamp=at,
            last_timestamp=at,
            source=source,
        ),
    )
    tx.create(to_wire(event))
