"""Every error leaves the server as a Kubernetes-style Status body with reason and message."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from stratum.api.v1alpha1 import API_VERSION
from stratum.core.errors import ApiError, Cause
from stratum.core.validation import field_path

log = logging.getLogger("stratum.server")

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def status_body(
    code: int, reason: str, message: str, causes: list[Cause] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": _utf8(message),
    }
    if causes:
        body["details"] = {
            "causes": [
                {"field": _utf8(c.field), "message": _utf8(c.message), "reason": c.reason}
                for c in causes
            ]
        }
    return body


def _utf8(text: str) -> str:
    """Messages quote what the caller sent, which may hold a lone surrogate (a path with
    %ED%A0%80 decodes to one); UTF-8 cannot carry it, so it is shown escaped, not a 500."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def status_response(
    code: int, reason: str, message: str, causes: list[Cause] | None = None
) -> JSONResponse:
    return JSONResponse(status_body(code, reason, message, causes), status_code=code)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, err: ApiError) -> JSONResponse:
        response = status_response(err.code, err.reason, err.message, err.causes)
        if err.code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="stratum"'
        return response

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        causes = [Cause(field_path(tuple(e["loc"])), str(e["msg"])) for e in err.errors()]
        message = "; ".join(f"{c.field}: {c.message}" for c in causes)
        return status_response(422, "Invalid", message, causes)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        reason = _REASONS.get(err.status_code, "Unknown")
        return status_response(err.status_code, reason, str(err.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return status_response(
            500,
            "InternalError",
            f"internal error: {type(err).__name__}; the server log has the details",
        )
