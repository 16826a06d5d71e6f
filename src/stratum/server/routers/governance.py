"""Tokens, the caller's identity, the sovereignty report and audit verification."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from stratum.api.v1alpha1 import API_VERSION
from stratum.server.security import authenticate, context
from stratum.server.services.governance import GovernanceService
from stratum.server.services.tokens import TokenService, token_wire

PREFIX = "/apis/stratum.dev/v1alpha1"


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=253)
    subject: str | None = Field(
        default=None, max_length=253, description="whom the token speaks for (default: you)"
    )
    role: str | None = Field(default=None, description="platform role, or tenant role with tenant")
    tenant: str | None = Field(default=None, max_length=63)
    service: bool = Field(default=False, description="a service token (agents, automation)")
    expires_in_seconds: int | None = Field(default=None, alias="expiresInSeconds", gt=0)


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(authenticate)], tags=["governance"])

    def tokens(request: Request) -> TokenService:
        service: TokenService = request.app.state.tokens
        return service

    def reports(request: Request) -> GovernanceService:
        service: GovernanceService = request.app.state.governance
        return service

    @router.get("/whoami", summary="Who the token speaks for, and its roles")
    async def whoami(request: Request) -> dict[str, Any]:
        p = context(request).principal
        return {
            "subject": p.subject,
            "platformRole": p.platform_role,
            "tenantRoles": dict(p.tenant_roles),
            "tokenId": p.token_id,
        }

    @router.post(
        "/tokens", status_code=201, summary="Create a token; its value is in this response only"
    )
    async def create_token(request: Request, body: TokenRequest) -> Any:
        ctx = context(request)
        made = await to_thread.run_sync(
            lambda: tokens(request).create(
                ctx.principal,
                name=body.name,
                subject=body.subject,
                role=body.role,
                tenant=body.tenant,
                service=body.service,
                expires_in_seconds=body.expires_in_seconds,
                source=ctx.source,
            )
        )
        return JSONResponse(
            token_wire(made.record, made.record.created_at, made.value),
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    @router.get("/tokens", summary="Tokens you may manage (never their secrets)")
    async def list_tokens(request: Request) -> dict[str, Any]:
        ctx = context(request)
        items = await to_thread.run_sync(lambda: tokens(request).list(ctx.principal))
        return {"apiVersion": API_VERSION, "kind": "TokenList", "items": items}

    @router.delete("/tokens/{token_id}", summary="Revoke a token (at once, for good)")
    async def revoke_token(
        request: Request,
        token_id: str,
        with_issued: bool = Query(
            False,
            alias="withIssued",
            description="also every active token this one made, and theirs",
        ),
    ) -> dict[str, Any]:
        ctx = context(request)
        return await to_thread.run_sync(
            lambda: tokens(request).revoke(
                ctx.principal, token_id, source=ctx.source, with_issued=with_issued
            )
        )

    @router.get(
        "/reports/sovereignty",
        summary="Every workload: where it runs, under which law, allowed by which policies",
    )
    async def sovereignty(
        request: Request,
        tenant: str | None = None,
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
    ) -> dict[str, Any]:
        ctx = context(request)
        rows = await to_thread.run_sync(
            lambda: reports(request).sovereignty(ctx.principal, tenant=tenant, start=start, end=end)
        )
        return {"apiVersion": API_VERSION, "kind": "SovereigntyReport", "items": rows}

    @router.get("/audit/verify", summary="Check the audit log's hash chain")
    async def verify_audit(request: Request) -> dict[str, Any]:
        ctx = context(request)
        result = await to_thread.run_sync(lambda: reports(request).verify_audit(ctx.principal))
        return {
            "apiVersion": API_VERSION,
            "kind": "AuditVerification",
            "ok": result.ok,
            "records": result.records,
            "expected": result.expected,
            "head": result.head,
            "problems": [{"sequence": p.sequence, "message": p.message} for p in result.problems],
            "notes": list(result.notes),
            "unkeyed": result.unkeyed,
            "anchoredSequence": result.anchored,
        }

    return router
