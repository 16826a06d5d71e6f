"""OpenTelemetry traces of API requests and reconcile passes, when asked for.

Off by default, and then free: `span()` hands back a shared no-op object and OpenTelemetry is
never imported. `configure(endpoint=...)` (or `$STRATUM_OTLP_ENDPOINT` read by the server)
imports the SDK and an OTLP/HTTP exporter (`pip install stratum[otel]`); tests hand in an
exporter of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENDPOINT_ENV = "STRATUM_OTLP_ENDPOINT"
_tracer: Any = None
_provider: Any = None


class _NoSpan:
    __slots__ = ()

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def update_name(self, name: str) -> None:
        return None

    def record_exception(self, error: BaseException) -> None:
        return None


NO_SPAN = _NoSpan()


def enabled() -> bool:
    return _tracer is not None


def configure(
    *, endpoint: str | None = None, exporter: Any = None, service_name: str = "stratum"
) -> bool:
    """Turn tracing on with an OTLP/HTTP endpoint (e.g. http://collector:4318/v1/traces) or
    a span exporter; with neither, leave it off. Returns whether tracing is on."""
    global _tracer, _provider
    endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or None
    if endpoint is None and exporter is None:
        return enabled()
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as err:
        raise RuntimeError(
            "tracing needs the OpenTelemetry SDK: pip install 'stratum[otel]'"
        ) from err
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter,
            )
        except ImportError as err:
            raise RuntimeError(
                "an OTLP endpoint needs the exporter: pip install 'stratum[otel]'"
            ) from err
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _provider = provider
    _tracer = provider.get_tracer("stratum")
    return True


def shutdown() -> None:
    """Flush and turn tracing off."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


@contextmanager
def span(name: str, *, server: bool = False, **attributes: Any) -> Iterator[Any]:
    """A span around the block (a no-op when tracing is off); exceptions are recorded."""
    tracer = _tracer
    if tracer is None:
        yield NO_SPAN
        return
    from opentelemetry.trace import SpanKind

    kind = SpanKind.SERVER if server else SpanKind.INTERNAL
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current
