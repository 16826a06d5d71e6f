"""Liveness (/healthz: the process answers) and readiness (/readyz: the store answers too)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from stratum.core.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the server process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the store answers and the server is not stopping")
async def readyz(request: Request) -> Any:
    if request.app.state.notifier.closing.is_set():
        return JSONResponse({"status": "stopping"}, status_code=503)
    try:
        await to_thread.run_sync(request.app.state.store.ping)
    except ApiError as err:
        return JSONResponse({"status": "unavailable", "message": err.message}, status_code=503)
    return {"status": "ok"}
