"""Every API request counted, timed and (when tracing is on) traced, by route template.

A pure ASGI middleware, so that streamed answers (watches) pass through untouched. The route
label is the template FastAPI matched (`/apis/stratum.dev/v1alpha1/namespaces/{namespace}/
workloads/{name}`), never the raw path: paths carry tenant and object names, and would make
a series per object. Requests that match no route are labelled `<unmatched>`.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratum.observability import tracing
from stratum.observability.metrics import Metrics

UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _is_watch(scope: Scope) -> bool:
    query = scope.get("query_string", b"")
    return b"watch=true" in query or b"watch=1" in query


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        m = self.metrics
        method = scope.get("method", "GET")
        status = {"code": 500}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        started = time.perf_counter()
        m.api_requests_in_flight.inc()
        with tracing.span(f"{method} {scope.get('path', '')}", server=True) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                m.api_requests_in_flight.dec()
                route = route_template(scope)
                code = status["code"]
                m.api_requests.labels(method, route, str(code)).inc()
                if not _is_watch(scope):
                    m.api_request_duration.labels(method, route).observe(
                        time.perf_counter() - started
                    )
                _describe(span, method, route, code)


def _describe(span: Any, method: str, route: str, code: int) -> None:
    if span is tracing.NO_SPAN:
        return
    span.update_name(f"{method} {route}")
    span.set_attribute("http.request.method", method)
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", code)
