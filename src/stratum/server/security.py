"""Authentication for every API route: a bearer token becomes the request's Principal.

Routers that serve data depend on `authenticate`; only liveness, readiness and the API's
own description are open (see OPEN_PATHS, which a test checks against the route table).
OIDC single sign-on would slot in here: verify a JWT's signature against the issuer's
JWKS, map its `sub`/`email` claim to a subject and its groups to roles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from anyio import to_thread
from fastapi import Request

from stratum.core.access import SYSTEM, Principal

# /version is public information, as in Kubernetes (`stratum version` before a login).
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/version"}
    # A host's first call: its bearer is the Cluster's bootstrap token, checked by the route.
    | {"/agent/v1/join"}
)


def _never_ends() -> str | None:
    return None


@dataclass(slots=True)
class RequestContext:
    """Who is asking, from where, and the warnings to send back with the answer.

    `token_ended` says why the caller's token stopped working (revoked, expired) since the
    request began, else None: long-lived answers (watch streams) ask it as they go."""

    principal: Principal  # required: nothing defaults to the server's own rights
    source: str | None = None
    warnings: list[str] = field(default_factory=list)
    token_ended: Callable[[], str | None] = _never_ends


def system_context(source: str = "server") -> RequestContext:
    """The server acting on its own behalf (start-up seeding, the test kit): said explicitly,
    never a default."""
    return RequestContext(principal=SYSTEM, source=source)


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: 401 without a valid, unexpired, unrevoked token."""
    tokens = request.app.state.tokens
    header = request.headers.get("authorization")
    # A principal seen within the last second is answered here; only a miss (which may
    # read the store and verify the secret with scrypt) goes to a worker thread.
    cached: Principal | None = tokens.cached(header)
    principal: Principal = (
        cached if cached is not None else await to_thread.run_sync(tokens.authenticate, header)
    )
    request.state.principal = principal
    return principal


def context(request: Request) -> RequestContext:
    principal = getattr(request.state, "principal", None)
    if principal is None:  # a route without the dependency: never grant by accident
        raise RuntimeError(f"{request.url.path} was reached without authentication")
    tokens = request.app.state.tokens
    return RequestContext(
        principal=principal,
        source=request.client.host if request.client else None,
        token_ended=lambda: tokens.ended(principal.token_id),
    )


def warning_headers(warnings: list[str]) -> dict[str, str]:
    """RFC 7234 Warning headers (299: a persistent warning), as Kubernetes sends them."""
    if not warnings:
        return {}
    values = []
    for text in warnings:
        clean = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        clean = clean.encode("latin-1", "replace").decode("latin-1")
        values.append(f'299 - "{clean}"')
    return {"Warning": ", ".join(values)}
