"""Bad input over HTTP: each case gets a clear error naming what was wrong, and the store
is left exactly as it was."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from stratum.client.http import StratumClient
from stratum.testing.harness import AUTH, LiveServer

API = "/apis/stratum.dev/v1alpha1"


def site(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Site",
        "metadata": {"name": "s1"},
        "spec": {"kind": "datacenter", "provider": "equinix", "country": "DE", **spec},
    }


def store_version(url: str) -> str:
    return str(httpx.get(f"{url}{API}/sites", headers=AUTH).json()["metadata"]["resourceVersion"])


@pytest.fixture
def seeded(client: StratumClient, live_server: LiveServer) -> str:
    client.create(site())
    return store_version(live_server.url)


CASES: list[tuple[str, str, Any, str | None, int, str]] = [
    # (id, method, body, content type, expected code, text the message must contain)
    (
        "malformed-json",
        "POST",
        b'{"kind": "Site", "metadata": {',
        "application/json",
        400,
        "malformed JSON at line 1, column 31",
    ),
    (
        "malformed-yaml",
        "POST",
        b"kind: Site\nmetadata:\n  name: [x\n",
        "application/yaml",
        400,
        "line 4, column 1",
    ),
    ("not-an-object", "POST", b"[1, 2, 3]", "application/json", 422, "expected an object"),
    ("unknown-field", "POST", site(colour="blue"), None, 422, "spec.colour: unknown field"),
    ("wrong-type", "POST", site(powerBudgetKW="lots"), None, 422, "spec.powerBudgetKW"),
    (
        "missing-required",
        "POST",
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Site",
            "metadata": {"name": "s2"},
            "spec": {"kind": "edge"},
        },
        None,
        422,
        "spec.provider: required field is missing",
    ),
    (
        "invalid-name",
        "POST",
        {**site(), "metadata": {"name": "Bad_Name"}},
        None,
        422,
        "metadata.name: 'Bad_Name' is not a valid name",
    ),
    (
        "out-of-range",
        "POST",
        site(powerBudgetKW=-5),
        None,
        422,
        "spec.powerBudgetKW: Input should be greater than 0",
    ),
    (
        "wrong-kind-for-endpoint",
        "POST",
        {**site(), "kind": "Tenant"},
        None,
        422,
        "this endpoint serves Site",
    ),
    (
        "nul-character",
        "POST",
        {**site(), "metadata": {"name": "s3", "annotations": {"a": "x\u0000y"}}},
        None,
        400,
        "metadata.annotations.a contains a NUL character",
    ),
    (
        "stale-put",
        "PUT",
        {**site(country="FR"), "metadata": {"name": "s1", "resourceVersion": "0"}},
        None,
        409,
        "has been modified",
    ),
    ("bad-dry-run", "POST", site(), None, 422, "dryRun"),
]


@pytest.mark.parametrize(
    ("method", "body", "content_type", "code", "text"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    seeded: str,
    live_server: LiveServer,
    method: str,
    body: Any,
    content_type: str | None,
    code: int,
    text: str,
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    path = f"{API}/sites" if method == "POST" else f"{API}/sites/s1"
    params = {"dryRun": "Maybe"} if text == "dryRun" else {}
    r = httpx.request(
        method,
        f"{live_server.url}{path}",
        content=raw,
        params=params,
        headers={**AUTH, "content-type": content_type or "application/json"},
    )
    assert r.status_code == code, r.text
    status = r.json()
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["code"] == code
    assert text in status["message"], status["message"]
    assert store_version(live_server.url) == seeded
    assert (
        httpx.get(f"{live_server.url}{API}/sites/s1", headers=AUTH).json()["spec"]["country"]
        == "DE"
    )


def test_a_body_over_the_limit_is_413_and_changes_nothing(
    seeded: str, live_server: LiveServer
) -> None:
    huge = site()
    huge["metadata"] = {"name": "huge", "annotations": {f"k{i}": "v" * 60_000 for i in range(30)}}
    r = httpx.post(f"{live_server.url}{API}/sites", json=huge, headers=AUTH)
    assert r.status_code == 413
    assert "exceeds the limit of 1048576 bytes" in r.json()["message"]

    def chunks() -> Any:  # no Content-Length: the limit is counted as the body streams
        for _ in range(40):
            yield b"x" * 65536

    r = httpx.post(
        f"{live_server.url}{API}/apply",
        content=chunks(),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert store_version(live_server.url) == seeded


def test_hostile_strings_are_stored_verbatim_or_refused(client: StratumClient) -> None:
    hostile = {
        "note": "'; DROP TABLE objects; --",
        "emoji": "GPU 🔥 ünïcödé 日本語",
        "html": "<script>alert(1)</script>",
        "long": "x" * 10_000,
    }
    obj = site()
    obj["metadata"] = {"name": "s9", "annotations": hostile}
    created = client.create(obj)
    assert created["metadata"]["annotations"] == hostile
    assert client.get("Site", "s9")["metadata"]["annotations"] == hostile
    assert client.list("Site")[0]["metadata"]["name"] == "s9"


def test_unknown_paths_and_methods_answer_with_status(live_server: LiveServer) -> None:
    r = httpx.get(f"{live_server.url}{API}/gadgets", headers=AUTH)
    assert r.status_code == 404 and r.json()["kind"] == "Status"
    r = httpx.delete(f"{live_server.url}{API}/sites", headers=AUTH)
    assert r.status_code == 405 and r.json()["reason"] == "MethodNotAllowed"
    r = httpx.get(f"{live_server.url}{API}/sites", params={"limit": "0"}, headers=AUTH)
    assert r.status_code == 422 and "limit" in r.json()["message"]
