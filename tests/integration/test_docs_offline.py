"""/docs works air-gapped: Swagger UI's page and assets come from the server itself."""

from __future__ import annotations

import re

import httpx

from stratum.testing.harness import LiveServer


def test_docs_need_no_cdn(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.url}/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources  # nothing remote
    for source in sources:
        asset = httpx.get(f"{live_server.url}{source}")
        assert asset.status_code == 200 and len(asset.content) > 500, source
    assert (
        "SwaggerUIBundle" in httpx.get(f"{live_server.url}/docs/assets/swagger-ui-bundle.js").text
    )
    assert httpx.get(f"{live_server.url}/docs/assets/..%2Fpyproject.toml").status_code == 404
    assert httpx.get(f"{live_server.url}/redoc").status_code == 404  # it would need a CDN
    assert httpx.get(f"{live_server.url}/version").json()["apiVersion"] == "stratum.dev/v1alpha1"
