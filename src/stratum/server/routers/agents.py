"""The agent protocol (/agent/v1): join, what a node must run (list and watch), reports.

Every route but join takes a node-bound token for the node in its path (or a platform
admin's); join takes the Cluster's bootstrap token instead and answers with the node's own.
The agent opens every connection itself, so a host behind NAT needs no inbound port.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError

from stratum.backends.agent.protocol import (
    PROTOCOL,
    JoinRequest,
    NodeReport,
    names_node,
)
from stratum.core.access import SYSTEM, check_node
from stratum.core.errors import Invalid
from stratum.core.validation import causes_from, summarise
from stratum.server.security import RequestContext, authenticate, context
from stratum.server.services.agents import AgentService
from stratum.server.watch import watch_stream

PREFIX = "/agent/v1"
JOIN_PATH = f"{PREFIX}/join"
MAX_REPORT_BYTES = 4 * 1024 * 1024
M = TypeVar("M", bound=BaseModel)


def _service(request: Request) -> AgentService:
    service: AgentService = request.app.state.agents
    return service


def _parse(model: type[M], raw: bytes, what: str) -> M:
    if len(raw) > MAX_REPORT_BYTES:
        raise Invalid(f"{what}: {len(raw)} bytes, over the limit of {MAX_REPORT_BYTES}")
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise Invalid(f"{what}: not JSON ({err})") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        causes = causes_from(err)
        raise Invalid(f"{what} is invalid: {summarise(causes)}", causes=causes) from None


def build_router() -> APIRouter:
    open_router = APIRouter(prefix=PREFIX, tags=["agent"])
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(authenticate)], tags=["agent"])

    @open_router.post(
        "/join",
        summary="A host joins with its Cluster's bootstrap token (as the bearer) and gets a "
        "token bound to its Node",
    )
    async def join(request: Request) -> dict[str, Any]:
        service = _service(request)
        header = request.headers.get("authorization")
        admitted = await to_thread.run_sync(lambda: service.admitted(header))
        body = _parse(JoinRequest, await request.body(), "join request")
        source = request.client.host if request.client else None
        answer = await to_thread.run_sync(lambda: service.join(admitted, body, source=source))
        return answer.model_dump(mode="json", by_alias=True)

    @router.get("/nodes/{node}/runs", summary="What this node must run (list, or watch)")
    async def runs(
        request: Request,
        node: str,
        watch: bool = False,
        resource_version: str | None = Query(None, alias="resourceVersion"),
    ) -> Any:
        service = _service(request)
        ctx = context(request)
        check_node(ctx.principal, node)
        if not watch:
            items, rv = await to_thread.run_sync(lambda: service.desired(ctx.principal, node))
            return {
                "protocol": PROTOCOL,
                "resourceVersion": str(rv),
                "items": [i.model_dump(mode="json", by_alias=True) for i in items],
            }
        try:
            since = int(resource_version or "")
        except ValueError:
            raise Invalid(
                f"resourceVersion: a watch starts from the resourceVersion of a list, got "
                f"{resource_version!r}"
            ) from None
        current, _ = await to_thread.run_sync(lambda: service.desired(ctx.principal, node))
        return StreamingResponse(
            _desired_stream(request, service, node, since, {r.key for r in current}, ctx),
            media_type="application/x-ndjson",
        )

    @router.post("/nodes/{node}/reports", summary="A heartbeat: telemetry and every run")
    async def report(request: Request, node: str) -> dict[str, Any]:
        service = _service(request)
        ctx = context(request)
        check_node(ctx.principal, node)  # before the body is parsed
        body = _parse(NodeReport, await request.body(), "report")
        if service.knows(node):  # the usual case: memory only, no hop to a worker thread
            answer = service.report(ctx.principal, node, body)
        else:
            answer = await to_thread.run_sync(lambda: service.report(ctx.principal, node, body))
        return answer.model_dump(mode="json", by_alias=True)

    combined = APIRouter()
    combined.include_router(open_router)
    combined.include_router(router)
    return combined


async def _desired_stream(
    request: Request,
    service: AgentService,
    node: str,
    since: int,
    sent: set[str],
    ctx: RequestContext,
) -> AsyncIterator[bytes]:
    """The Placement watch, narrowed to this node and turned into desired runs: a change
    to a Placement naming it is MODIFIED (or DELETED); one that stops naming it, DELETED.
    ERROR (410 Gone: relist) and BOOKMARK events pass through."""
    # The store's watch reads every Placement; the node's token still ends the stream.
    inner = RequestContext(principal=SYSTEM, source=ctx.source, token_ended=ctx.token_ended)
    notifier = request.app.state.notifier
    async for line in watch_stream(
        request.app.state.objects,
        notifier,
        kind="Placement",
        namespace=None,
        since=since,
        label_selector=None,
        ctx=inner,
    ):
        event = json.loads(line)
        kind, obj = event.get("type"), event.get("object") or {}
        if kind in ("ERROR", "BOOKMARK"):
            yield line
            continue
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name')}"
        if not names_node(obj, node):
            if key in sent:
                sent.discard(key)
                yield _event("DELETED", {"key": key, "active": False, "uid": "", "attempt": 1})
            continue
        if kind == "DELETED":
            sent.discard(key)
            yield _event("DELETED", {"key": key, "active": False, "uid": "", "attempt": 1})
            continue
        desired = await to_thread.run_sync(lambda o=obj: service.desired_one(o))  # type: ignore[misc]
        sent.add(key)
        yield _event("MODIFIED", desired.model_dump(mode="json", by_alias=True))


def _event(kind: str, obj: dict[str, Any]) -> bytes:
    return (json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n").encode()
