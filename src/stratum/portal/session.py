"""Who is looking at the portal: the API token in an HttpOnly, SameSite=Strict cookie, and a
double-submit CSRF token for every form.

The token is resolved by the server's TokenService, exactly as the API's bearer header is
(security.authenticate), so that revocation and expiry end a portal session at once.
"""

from __future__ import annotations

import hmac
import secrets

from anyio import to_thread
from fastapi import Request
from fastapi.responses import Response

from stratum.core.access import Principal
from stratum.core.errors import Forbidden
from stratum.server.security import RequestContext

SESSION_COOKIE = "stratum_session"
CSRF_COOKIE = "stratum_csrf"
CSRF_FIELD = "csrf"


class NotLoggedIn(Exception):
    """No session cookie, or one whose token no longer works: the page sends to /login."""


async def principal_of(request: Request) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotLoggedIn
    return await resolve(request, token)


async def resolve(request: Request, token: str) -> Principal:
    """The principal of `token`, through the same cache and checks as the API's header."""
    from stratum.core.errors import Unauthorized

    tokens = request.app.state.tokens
    header = f"Bearer {token}"
    cached: Principal | None = tokens.cached(header)
    if cached is not None:
        return cached
    try:
        principal: Principal = await to_thread.run_sync(tokens.authenticate, header)
    except Unauthorized:
        raise NotLoggedIn from None
    return principal


def context_for(request: Request, principal: Principal) -> RequestContext:
    tokens = request.app.state.tokens
    return RequestContext(
        principal=principal,
        source=request.client.host if request.client else None,
        token_ended=lambda: tokens.ended(principal.token_id),
    )


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (made on first use; the response sets the cookie)."""
    value = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not value:
        value = request.state.new_csrf = secrets.token_urlsafe(24)
    return str(value)


def remember_csrf(request: Request, response: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new:
        set_cookie(response, CSRF_COOKIE, new)


def check_csrf(request: Request, submitted: str | None) -> None:
    """A form must carry the value of this browser's CSRF cookie, which another site can
    neither read nor set; with SameSite=Strict cookies this is a second, independent lock."""
    expected = request.cookies.get(CSRF_COOKIE)
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and retry")


def set_cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, samesite="strict", path="/")
