"""Refuse request bodies over a size limit with 413, before reading them into memory."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratum.server.status import status_body

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# One object, as Kubernetes caps them (etcd's limit): every write serializes an object
# several times (the store, the change feed, the audit digest, the answer), each a single
# C call that holds the GIL, ~10 ms a MiB on an idle machine. Checked on the body before
# parsing for single-object routes and on each item of a List after.
MAX_OBJECT_BYTES = 1536 * 1024
# Bodies over this size are parsed and validated by at most HEAVY_WORKERS threads at a
# time, apart from the pool every other request uses: a flood of large bodies waits for
# its own turn rather than delaying other callers.
HEAVY_BODY_BYTES = 256 * 1024
HEAVY_WORKERS = 2


class BodySizeLimit:
    """ASGI middleware: checks Content-Length up front and counts chunked bodies as they come."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send, declared)
                    return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._refuse(send, seen)

    async def _refuse(self, send: Send, size: int) -> None:
        body = json.dumps(
            status_body(
                413,
                "RequestEntityTooLarge",
                f"request body of {size} bytes (or more) exceeds the limit of {self.max_bytes} "
                "bytes; split the file or raise the server's --max-body-bytes",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
