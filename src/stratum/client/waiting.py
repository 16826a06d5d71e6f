"""Waiting for an object to reach a state: `stratum wait`, `apply --wait`, `Client.wait`.

A condition is what a person writes after `--for=`: `phase=Running`, `condition=Ready`
(or `condition=Ready=False`), `delete`, or `jsonpath={.status.phase}=Bound`. The wait
reads the object once, then follows its watch (no polling), and re-reads after every
reconnect so that no change between two streams is missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stratum.core.errors import ApiError, BadRequest, Gone, NotFound

if TYPE_CHECKING:
    from stratum.client.http import StratumClient

# Phases after which a workload never reaches another phase by itself: a wait for
# Running on a Rejected workload fails at once instead of waiting out its timeout.
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Released", "Rejected"})


class WaitTimeout(ApiError):
    """The object did not reach the state in time."""

    code = 408


class WaitFailed(ApiError):
    """The object reached a state from which the awaited one cannot follow."""

    code = 409


@dataclass(frozen=True, slots=True)
class Condition:
    text: str  # as the user wrote it, for messages
    test: Callable[[dict[str, Any] | None], bool]  # None: the object does not exist
    phase: str | None = None  # set for phase=X, to fail early on a terminal phase


def parse_condition(text: str) -> Condition:
    """`phase=Running`, `condition=Ready[=True]`, `delete`, `jsonpath={.a.b}=value`."""
    if text == "delete":
        return Condition(text, lambda obj: obj is None)
    key, sep, rest = text.partition("=")
    if key == "phase" and sep and rest:
        return Condition(
            text, lambda obj: obj is not None and _status(obj).get("phase") == rest, rest
        )
    if key == "condition" and sep and rest:
        ctype, _, want = rest.partition("=")
        want = want or "True"

        def has_condition(obj: dict[str, Any] | None) -> bool:
            conditions = _status(obj).get("conditions") or [] if obj else []
            return any(c.get("type") == ctype and str(c.get("status")) == want for c in conditions)

        return Condition(text, has_condition)
    if key == "jsonpath" and sep and rest:
        from stratum.client.jsonpath import select
        from stratum.client.jsonpath import text as as_text

        expr, eq, want = rest.rpartition("=")
        if not eq or not expr:
            raise BadRequest(f"--for={text}: expected jsonpath={{.path}}=value")

        def matches(obj: dict[str, Any] | None) -> bool:
            return obj is not None and any(as_text(v) == want for v in select(obj, expr))

        return Condition(text, matches)
    raise BadRequest(
        f"--for={text}: expected phase=PHASE, condition=TYPE[=True|False], delete or "
        "jsonpath={.path}=value"
    )


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def wait_for(
    client: StratumClient,
    kind: str,
    name: str,
    namespace: str | None,
    condition: Condition,
    *,
    timeout: float,
    on_change: Callable[[dict[str, Any] | None], None] | None = None,
) -> dict[str, Any] | None:
    """The object once `condition` holds (None for `delete`); WaitTimeout after `timeout`
    seconds, WaitFailed if it reaches a terminal phase other than the one awaited."""
    deadline = time.monotonic() + timeout
    where = f"{kind} {namespace + '/' if namespace else ''}{name}"
    last: dict[str, Any] | None = None
    while True:
        try:
            obj: dict[str, Any] | None = client.get(kind, name, namespace)
        except NotFound:
            obj = None
        if _settled(obj, condition, where, on_change, last):
            return obj
        last = obj
        rv = obj["metadata"]["resourceVersion"] if obj else None
        try:
            for event in client.watch(
                kind,
                namespace=namespace,
                resource_version=rv,
                timeout=max(0.1, deadline - time.monotonic()),
            ):
                seen = event.get("object") or {}
                if event.get("type") == "BOOKMARK" or seen.get("metadata", {}).get("name") != name:
                    if time.monotonic() >= deadline:
                        break
                    continue
                obj = None if event["type"] == "DELETED" else seen
                if _settled(obj, condition, where, on_change, last):
                    return obj
                last = obj
                if time.monotonic() >= deadline:
                    break
        except Gone:
            pass  # history compacted: read again and follow from now
        if time.monotonic() >= deadline:
            phase = _status(last).get("phase") if last else None
            state = f"phase {phase}" if phase else ("absent" if last is None else "present")
            raise WaitTimeout(
                f"timed out after {timeout:.3g}s waiting for {where} to reach "
                f"{condition.text} (it is {state})"
            )


def _settled(
    obj: dict[str, Any] | None,
    condition: Condition,
    where: str,
    on_change: Callable[[dict[str, Any] | None], None] | None,
    last: dict[str, Any] | None,
) -> bool:
    if on_change is not None and _phase(obj) != _phase(last):
        on_change(obj)
    return check_settled(obj, condition, where)


def check_settled(obj: dict[str, Any] | None, condition: Condition, where: str) -> bool:
    """True once `condition` holds; WaitFailed when a terminal phase rules it out."""
    if condition.test(obj):
        return True
    phase = _phase(obj)
    if condition.phase is not None and phase in TERMINAL_PHASES:
        message = _status(obj).get("message") if obj else ""
        raise WaitFailed(
            f"{where} is {phase} and will not become {condition.phase}"
            + (f": {message}" if message else "")
        )
    return False


def _phase(obj: dict[str, Any] | None) -> str | None:
    return _status(obj).get("phase") if obj else None
