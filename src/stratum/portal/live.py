"""GET /portal/watch: the API's watch streams (server/watch.py, the caller's rights) of a
few kinds, merged into one Server-Sent Events stream that tells the page to refresh.

The browser cannot send the token (it lives in an HttpOnly cookie, out of JavaScript's
reach), so it does not open the API's NDJSON stream itself: this route opens it for the
caller, and forwards only "something you may see changed" (kind, name, type)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from anyio import to_thread
from fastapi import Request

from stratum.core.errors import ApiError
from stratum.server.security import RequestContext
from stratum.server.services.objects import ObjectService
from stratum.server.watch import ChangeNotifier, watch_stream

WATCHABLE = frozenset({"Workload", "Placement", "Event", "Node", "Site", "Tenant", "Cluster"})
KEEPALIVE_SECONDS = 15.0
REFRESH = json.dumps({"type": "REFRESH", "object": {}}).encode()


def _gone(line: bytes) -> bool:
    """The watch ended because its start is older than the change feed keeps (410)."""
    event = json.loads(line)
    return bool(event.get("type") == "ERROR" and (event.get("object") or {}).get("code") == 410)


async def changes(
    request: Request,
    kinds: list[str],
    namespace: str | None,
    ctx: RequestContext,
    *,
    since: int | None = None,
) -> AsyncIterator[bytes]:
    """`since` is the resourceVersion the page was rendered at: changes after it are sent,
    so none made between the render and this stream's start is lost. A version the feed no
    longer holds (or one from the future) sends one "refresh" and watches from now."""
    service: ObjectService = request.app.state.objects
    notifier: ChangeNotifier = request.app.state.notifier
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def pump(kind: str) -> None:
        start = since
        try:
            while True:
                page = await to_thread.run_sync(
                    lambda: service.list(kind, namespace=namespace, limit=1, ctx=ctx)
                )
                if start is None or start > page.resource_version:
                    start = page.resource_version
                async for line in watch_stream(
                    service,
                    notifier,
                    kind=kind,
                    namespace=namespace,
                    since=start,
                    label_selector=None,
                    ctx=ctx,
                ):
                    if _gone(line):
                        break
                    await queue.put(line)
                else:
                    return
                start = None
                await queue.put(REFRESH)
        except ApiError:
            pass  # a kind the caller may not read sends nothing
        finally:
            await queue.put(None)

    wanted = [k for k in dict.fromkeys(kinds) if k in WATCHABLE]
    tasks = [asyncio.create_task(pump(k)) for k in wanted]
    open_streams = len(tasks)
    try:
        yield b"retry: 2000\n\n"
        while open_streams:
            try:
                line = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            if line is None:
                open_streams -= 1
                continue
            event = json.loads(line)
            if event.get("type") in ("BOOKMARK",):
                continue
            obj = event.get("object") or {}
            meta = obj.get("metadata") or {}
            data = {
                "type": event.get("type"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
            }
            yield f"data: {json.dumps(data)}\n\n".encode()
    finally:
        for task in tasks:
            task.cancel()
