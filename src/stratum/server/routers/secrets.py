"""Secret keys: seal every stored secret again under the newest key (platform admins)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request

from stratum.api.v1alpha1 import API_VERSION
from stratum.core.errors import Invalid
from stratum.server.security import authenticate, context
from stratum.server.services.objects import ObjectService

PREFIX = "/apis/stratum.dev/v1alpha1"


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(authenticate)], tags=["secrets"])

    @router.post(
        "/secrets/rotate",
        summary="Re-encrypt every stored secret with the newest key, in one "
        "transaction (platform admins)",
    )
    async def rotate(
        request: Request, dry_run: str | None = Query(None, alias="dryRun")
    ) -> dict[str, Any]:
        if dry_run not in (None, "", "All"):
            raise Invalid(f"dryRun: expected 'All' or nothing, got {dry_run!r}")
        service: ObjectService = request.app.state.objects
        ctx = context(request)
        result = await to_thread.run_sync(
            lambda: service.rotate_secrets(dry_run=dry_run == "All", ctx=ctx)
        )
        return {
            "apiVersion": API_VERSION,
            "kind": "SecretRotation",
            "dryRun": dry_run == "All",
            "objects": result.objects,
            "secrets": result.secrets,
            "keyId": result.key_id,
        }

    return router
