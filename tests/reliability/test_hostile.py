"""Hostile input at CI size: a few hundred generated requests over every route of the
OpenAPI schema, as a tenant member, as a token with no role and as the platform admin.
No 5xx, no state change from a refused request, no write accepted without the right, no
single request stalling the event loop (confirmed by replay), bounded memory. The long run
is benchmarks/hostile_campaign.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratum.testing.campaigns.hostile import HostileSettings, known, new_findings, run_hostile

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_generated_hostile_requests_on_every_route(tmp_path: Path) -> None:
    record = run_hostile(tmp_path, HostileSettings(requests=300, seed=41))
    print(record.render())
    roles = {k.split()[0] for k in record.inputs}
    assert roles == {"tenant", "none", "admin"}
    assert record.figures["operations"] > 100
    # Anything not already reported fails the test outright.
    assert new_findings(record) == []
    # The findings once known (docs/reliability.md) are fixed on main: none is tolerated.
    assert record.findings == [], sorted({known(f) or f for f in record.findings})


def test_a_lone_surrogate_in_a_path_is_refused_not_a_500(live_server: Any) -> None:
    """Found by the campaign: a name that decodes to a lone surrogate (%ED%A0%80) was
    quoted in the error message, which UTF-8 cannot carry, and the error became a 500."""
    path = "/apis/stratum.dev/v1alpha1/namespaces/research/workloads/%ED%A0%80/status"
    body = {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "\ud800", "namespace": "research"},
        "spec": {"type": "batch"},
    }
    r = httpx.put(
        f"{live_server.url}{path}",
        content=json.dumps(body).encode(),  # \ud800 escaped: valid JSON, invalid UTF-16
        headers={**live_server.headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["kind"] == "Status"
    assert "metadata.name" in r.json()["message"]
