"""The portal over plain HTTP (no browser): its session and CSRF rules, and that neither
its pages nor its live stream tell a tenant anything the API would not."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from stratum.client.http import StratumClient
from stratum.portal.app import mount
from stratum.server.demo import demo_manifests
from stratum.testing.harness import LiveServer


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, StratumClient]]:
    path = tmp_path_factory.mktemp("portal-http") / "stratum.db"
    server = LiveServer(f"sqlite:///{path}")
    mount(server.app)  # as the composition root does for `serve` and `up`
    server.start()
    client = StratumClient(server.url, server.token)
    try:
        client.apply_list(demo_manifests())
        yield server, client
    finally:
        client.close()
        server.stop()


@contextmanager
def _session(server: LiveServer, token: str) -> Iterator[httpx.Client]:
    """A browser-like client logged in through the login form."""
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        form = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        answer = browser.post("/login", data={"csrf": csrf.group(1), "token": token, "next": "/"})
        assert answer.status_code == 303, answer.text
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        yield browser


def _events(lines: Iterator[str], within: float = 10.0) -> Iterator[dict[str, Any]]:
    """The events of a stream's lines; a line (a keep-alive comes every 15 s) after `within`
    seconds without an event fails the test rather than waiting on."""
    deadline = time.monotonic() + within
    for line in lines:
        if line.startswith("data:"):
            yield json.loads(line.removeprefix("data:"))
            deadline = time.monotonic() + within
        assert time.monotonic() < deadline, f"no event within {within:.0f} s"


def _tenant_token(client: StratumClient, tenant: str) -> str:
    made = client.create_token(
        f"portal-{tenant}", subject=f"svc-{tenant}", tenant=tenant, role="member", service=True
    )
    return str(made["token"])


def test_forms_need_the_csrf_token_and_a_working_token(
    demo: tuple[LiveServer, StratumClient],
) -> None:
    server, _ = demo
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        _anonymous(server, anonymous)
    with _session(server, server.token) as browser:
        forged = browser.post(
            "/catalog/catalog/inference-service",
            data={"tenant": "research", "name": "x", "action": "launch"},
        )
        assert forged.status_code == 403 and "CSRF" in forged.text
        assert browser.post("/logout", data={}).status_code == 403
        assert browser.get("/").status_code == 200  # still logged in: the forged logout failed


def _anonymous(server: LiveServer, anonymous: httpx.Client) -> None:
    assert anonymous.get("/workloads").headers["location"] == "/login?next=/workloads"
    anonymous.get("/login")
    refused = anonymous.post("/login", data={"token": server.token})  # no csrf field
    assert refused.status_code == 401 and "CSRF" in refused.text
    csrf = anonymous.cookies["stratum_csrf"]
    wrong = anonymous.post("/login", data={"csrf": csrf, "token": "stt_x_y"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    away = anonymous.post(
        "/login", data={"csrf": csrf, "token": server.token, "next": "//evil.example/"}
    )
    assert away.headers["location"] == "/"  # never an open redirect


def test_a_tenant_learns_nothing_of_another_tenant_from_pages_or_the_live_stream(
    demo: tuple[LiveServer, StratumClient],
) -> None:
    server, admin = demo
    with _session(server, _tenant_token(admin, "health-eu")) as browser:
        _tenant_is_kept_out(browser, admin)


def _tenant_is_kept_out(browser: httpx.Client, admin: StratumClient) -> None:
    page = browser.get("/workloads/research/llama-finetune")
    assert page.status_code == 404 and "namespace &#34;research&#34; not found" in page.text
    assert "llama-finetune" not in browser.get("/").text
    assert browser.get("/fleet/clusters/fra-1-hgx").status_code == 403
    # Another tenant's namespace: the stream opens and ends with nothing in it.
    with browser.stream("GET", "/portal/watch?kinds=Workload&namespace=research") as stream:
        assert list(_events(stream.iter_lines())) == []
    seen: list[dict[str, Any]] = []
    with browser.stream("GET", "/portal/watch?kinds=Workload", timeout=30) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        for ns, name in (("research", "leak-check"), ("health-eu", "mine-check")):
            admin.create(
                {
                    "apiVersion": "stratum.dev/v1alpha1",
                    "kind": "Workload",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"type": "batch", "contract": {"compute": {"gpus": 1}}},
                }
            )
        for event in _events(lines):
            seen.append(event)
            if event["name"] == "mine-check":
                break
    assert [(e["namespace"], e["name"]) for e in seen] == [("health-eu", "mine-check")]


def test_the_live_stream_starts_where_the_page_was_rendered(
    demo: tuple[LiveServer, StratumClient],
) -> None:
    """A change made after a page was read but before its stream opened (a launch bound in
    that gap) still reaches the page; a version the feed no longer holds asks for a refresh."""
    server, admin = demo
    with _session(server, server.token) as browser:
        page = browser.get("/workloads")
        rendered = re.search(r'data-since="(\d+)"', page.text)
        assert rendered is not None, "a live page says which version it was rendered at"
        admin.create(
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "gap-check", "namespace": "research"},
                "spec": {"type": "batch", "contract": {"compute": {"gpus": 1}}},
            }
        )
        url = f"/portal/watch?kinds=Workload&since={rendered.group(1)}"
        with browser.stream("GET", url, timeout=30) as stream:
            first = next(_events(stream.iter_lines()))
        assert (first["type"], first["name"]) == ("ADDED", "gap-check")

        with server.app.state.objects.store.write() as tx:
            assert tx.compact(keep=1) > 0
        with browser.stream("GET", "/portal/watch?kinds=Workload&since=1", timeout=30) as stream:
            events = _events(stream.iter_lines())
            assert next(events)["type"] == "REFRESH"
            admin.delete("Workload", "gap-check", "research")
            deleted = next(events)
            assert (deleted["type"], deleted["name"]) == ("DELETED", "gap-check")
