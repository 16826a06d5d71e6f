"""GET …/namespaces/{namespace}/workloads/{name}/log: what a workload's replica printed.

`replica` (default 0), `tail` (the last N lines), `follow=true` (stream as it grows, until
the process ends). Plain text; errors are Status bodies like every other route."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from stratum.backends.base import NoLogs
from stratum.core.errors import NotFound
from stratum.server.security import authenticate, context
from stratum.server.services.logs import LogTarget, find_logs

PREFIX = "/apis/stratum.dev/v1alpha1"


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(authenticate)], tags=["logs"])

    @router.get(
        "/namespaces/{namespace}/workloads/{name}/log",
        response_class=PlainTextResponse,
        summary="What a workload's replica printed (stdout and stderr)",
    )
    async def workload_log(
        request: Request,
        namespace: str,
        name: str,
        replica: int = Query(0, ge=0, le=1_000_000),
        tail: int | None = Query(None, ge=0, le=1_000_000, description="the last N lines"),
        follow: bool = Query(False, description="stream the output until the process ends"),
    ) -> object:
        state = request.app.state
        ctx = context(request)
        target: LogTarget = await to_thread.run_sync(
            lambda: find_logs(
                objects=state.objects,
                store=state.store,
                backends=state.backends,
                namespace=namespace,
                name=name,
                replica=replica,
                ctx=ctx,
            )
        )
        try:
            if not follow:
                text = await to_thread.run_sync(
                    lambda: target.source.logs(target.key, target.replica, tail)
                )
                return PlainTextResponse(text)
            chunks = await to_thread.run_sync(
                lambda: target.source.follow(target.key, target.replica, tail)
            )
        except NoLogs as err:
            raise NotFound(str(err)) from None
        return StreamingResponse(_stream(request, chunks), media_type="text/plain")

    return router


async def _stream(request: Request, chunks: Iterator[str]) -> AsyncIterator[str]:
    """Each chunk read off the event loop; ends with the process, the client or the server."""
    done = object()
    closing = request.app.state.notifier.closing
    while not closing.is_set() and not await request.is_disconnected():
        chunk = await to_thread.run_sync(next, chunks, done)
        if chunk is done:
            return
        if chunk:  # empty: the source is waiting for output (a chance to look up)
            yield str(chunk)
