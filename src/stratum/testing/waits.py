"""Waiting on what the server says happened, not on the wall clock: a watch stream of a kind
is followed until a condition over the objects holds. Each event re-checks the condition, so
a test moves on the moment it holds; the deadline is only a safety net, generous because a
loaded machine slows everything down but never changes the outcome."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from stratum.client.http import StratumClient

WireObject = Mapping[str, Any]


def key(obj: WireObject) -> str:
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else str(meta["name"])


def wait_for(
    client: StratumClient,
    kind: str,
    condition: Callable[[dict[str, WireObject]], bool],
    *,
    timeout: float = 300.0,
) -> dict[str, WireObject]:
    """The objects of `kind` (by namespace/name) once `condition` holds for them: a list,
    then the watch from its resourceVersion, re-listing if the stream ends. AssertionError
    with the last state when the deadline passes first."""
    deadline = time.monotonic() + timeout
    objects: dict[str, WireObject] = {}
    while time.monotonic() < deadline:
        page = client.list(kind)
        objects = {key(o): o for o in page}
        if condition(objects):
            return objects
        since = max((int(o["metadata"].get("resourceVersion") or 0) for o in page), default=0)
        left = max(1.0, deadline - time.monotonic())
        for event in client.watch(kind, resource_version=str(since), timeout=min(left, 30.0)):
            obj = event.get("object") or {}
            kind_of_event = event.get("type")
            if kind_of_event == "ERROR":
                break  # the stream ended (history compacted, token gone): list again
            if kind_of_event not in ("ADDED", "MODIFIED", "DELETED"):
                continue  # BOOKMARK: progress only
            if kind_of_event == "DELETED":
                objects.pop(key(obj), None)
            else:
                objects[key(obj)] = obj
            if condition(objects):
                return objects
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"timed out after {timeout:.0f}s; last state: {summary(objects)}")


def summary(objects: Mapping[str, WireObject]) -> dict[str, Any]:
    return {k: (o.get("status") or {}).get("phase") for k, o in sorted(objects.items())}
