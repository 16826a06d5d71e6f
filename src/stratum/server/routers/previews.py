"""POST …/namespaces/{namespace}/placementpreview: where a Workload would be placed now.

Authorized like a create of that Workload (a viewer gets 403, another tenant 404), admitted
as a dry run, then planned on a copy of the fleet; nothing is written. The portal's launch
preview and anyone with a member's token use it; tenants cannot read Nodes to plan alone.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from stratum.api.v1alpha1 import Workload
from stratum.core.manifests import load_body
from stratum.server.limits import MAX_OBJECT_BYTES
from stratum.server.security import authenticate, context
from stratum.server.services.objects import ObjectService
from stratum.server.services.previews import preview_placement

PREFIX = "/apis/stratum.dev/v1alpha1"


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(authenticate)], tags=["workloads"])

    @router.post(
        "/namespaces/{namespace}/placementpreview",
        summary="Where a Workload would be placed now (admission as a dry run; nothing written)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Workload"}}
                },
            }
        },
    )
    async def placement_preview(request: Request, namespace: str) -> Any:
        from stratum.core.errors import PayloadTooLarge

        service: ObjectService = request.app.state.objects
        ctx = context(request)
        service.authorize_write("Workload", namespace=namespace, ctx=ctx)
        raw = await request.body()
        if len(raw) > MAX_OBJECT_BYTES:
            raise PayloadTooLarge(f"request body of {len(raw)} bytes exceeds {MAX_OBJECT_BYTES}")

        def work() -> JSONResponse:
            data = load_body(raw, request.headers.get("content-type"))
            obj = service.validate(data, kind="Workload", namespace=namespace)
            assert isinstance(obj, Workload)
            return JSONResponse(preview_placement(service, obj, ctx=ctx))

        return await to_thread.run_sync(work)

    return router
