"""Structured logs name the object a record is about; tracing costs nothing when off and
records API requests and reconcile passes when an exporter is configured."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from stratum.observability import logs, tracing


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "stratum.events",
        logging.WARNING,
        __file__,
        1,
        "%s: %s",
        ("ContractViolated", "compute: GPU 3 failed"),
        None,
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_lines_carry_the_object_kind_namespace_name_and_uid() -> None:
    fields = logs.object_fields("Workload", "llama", "research", "u-1")
    line = logs.JsonFormatter().format(_record(**fields, reason="ContractViolated"))
    data = json.loads(line)
    assert data["level"] == "warning" and data["logger"] == "stratum.events"
    assert data["message"] == "ContractViolated: compute: GPU 3 failed"
    assert data["object"] == {
        "kind": "Workload",
        "namespace": "research",
        "name": "llama",
        "uid": "u-1",
    }
    assert data["reason"] == "ContractViolated"
    assert data["time"].endswith("Z")


def test_text_lines_name_the_object_too() -> None:
    line = logs.TextFormatter().format(_record(**logs.object_fields("Node", "n1")))
    assert line.endswith("ContractViolated: compute: GPU 3 failed (Node n1)")


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of text, json"):
        logs.setup_logging(fmt="xml")


def test_tracing_off_is_a_no_op_that_never_imports_the_sdk() -> None:
    code = (
        "import sys\n"
        "from stratum.observability import tracing\n"
        "from stratum.server.app import create_app\n"
        "from stratum.server.settings import ServerSettings\n"
        "create_app(ServerSettings(database_url='sqlite://'))\n"
        "with tracing.span('x', a=1) as s:\n"
        "    s.set_attribute('b', 2)\n"
        "assert s is tracing.NO_SPAN and not tracing.enabled()\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry.sdk')], 'sdk'\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != tracing.ENDPOINT_ENV}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_spans_go_to_a_configured_exporter() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    assert tracing.configure(exporter=exporter)
    try:
        with tracing.span("reconcile.pass") as span:
            span.set_attribute("stratum.resource_version", 7)
            with tracing.span("reconcile.workloads"):
                pass
    finally:
        tracing.shutdown()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"reconcile.pass", "reconcile.workloads"}
    parent, root = spans["reconcile.workloads"].parent, spans["reconcile.pass"]
    assert parent is not None and root.context is not None and root.attributes is not None
    assert parent.span_id == root.context.span_id
    assert root.attributes["stratum.resource_version"] == 7
    assert not tracing.enabled()


def test_api_requests_are_server_spans_named_by_route_template(tmp_path: Path) -> None:
    import httpx
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from stratum.testing.harness import LiveServer

    exporter = InMemorySpanExporter()
    tracing.configure(exporter=exporter)
    try:
        server = LiveServer(f"sqlite:///{tmp_path / 's.db'}").start()
        try:
            httpx.get(
                f"{server.url}/apis/stratum.dev/v1alpha1/namespaces/a/workloads/w1",
                headers=server.headers,
            )
            server.app.state.manager.run_once()
        finally:
            server.stop()
    finally:
        tracing.shutdown()
    spans = exporter.get_finished_spans()
    route = "/apis/stratum.dev/v1alpha1/namespaces/{namespace}/workloads/{name}"
    request = next(s for s in spans if s.name == f"GET {route}")
    assert request.attributes is not None
    assert request.attributes["http.route"] == route
    assert request.attributes["http.response.status_code"] == 404
    assert "reconcile.pass" in {s.name for s in spans}
