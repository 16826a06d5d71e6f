"""/metrics: the Prometheus exposition of the server's registry.

It needs a token of a platform role (platform-admin, platform-viewer or agent): its labels
name every tenant, site and node, which a tenant's member may not learn (see
docs/metrics.md for a Prometheus scrape configuration with a service token).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from stratum.core.errors import Forbidden
from stratum.observability.metrics import CONTENT_TYPE, Metrics
from stratum.server.security import authenticate, context

router = APIRouter(tags=["observability"], dependencies=[Depends(authenticate)])


@router.get(
    "/metrics",
    summary="Prometheus metrics (platform roles only)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    principal = context(request).principal
    if not principal.reads_everything:
        raise Forbidden(
            "metrics name every tenant, site and node: they need a token of a "
            "platform role (platform-admin, platform-viewer or agent)"
        )
    registry: Metrics = request.app.state.metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE)
