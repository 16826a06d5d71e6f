"""POST …/namespaces/{ns}/placementpreview, the API behind the portal's launch preview:
authorized like a create of the Workload, admitted as a dry run, planned on the fleet as it
is now, and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stratum.client.http import StratumClient
from stratum.server.demo import demo_manifests
from stratum.testing.campaigns.fleet import wait_for_fleet
from stratum.testing.harness import LiveServer

API = "/apis/stratum.dev/v1alpha1"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, StratumClient]]:
    path = tmp_path_factory.mktemp("preview") / "stratum.db"
    server = LiveServer(f"sqlite:///{path}", controllers=True).start()
    client = StratumClient(server.url, server.token)
    try:
        client.apply_list(demo_manifests())
        wait_for_fleet(client)
        yield server, client
    finally:
        client.close()
        server.stop()


def _workload(name: str, gpus: Any, namespace: str = "research") -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "batch", "contract": {"compute": {"gpus": gpus, "models": ["L40S-48GB"]}}},
    }


def _preview(server: LiveServer, token: str, body: dict[str, Any], ns: str = "research") -> Any:
    return httpx.post(
        f"{server.url}{API}/namespaces/{ns}/placementpreview",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _token(client: StratumClient, tenant: str, role: str) -> str:
    made = client.create_token(
        f"{tenant}-{role}", subject=f"svc-{tenant}-{role}", tenant=tenant, role=role, service=True
    )
    return str(made["token"])


def test_a_member_learns_where_it_would_run_and_nothing_is_written(
    demo: tuple[LiveServer, StratumClient],
) -> None:
    server, admin = demo
    member = _token(admin, "research", "member")
    answer = _preview(server, member, _workload("preview-one", 1))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "PlacementPreview" and body["binds"] is True
    assert len(body["nodes"]) == 1 and body["nodes"][0].startswith("us-east-1-l40s")
    assert body["workload"]["spec"]["contract"]["compute"]["gpus"] == 1
    assert all(w["metadata"]["name"] != "preview-one" for w in admin.list("Workload"))
    too_big = _preview(server, member, _workload("preview-huge", 9)).json()
    assert too_big["binds"] is False and too_big["nodes"] == [] and too_big["message"]


def test_refused_as_a_create_would_be(demo: tuple[LiveServer, StratumClient]) -> None:
    server, admin = demo
    viewer = _token(admin, "research", "viewer")
    other = _token(admin, "health-eu", "member")
    assert _preview(server, viewer, _workload("p", 1)).status_code == 403
    refused = _preview(server, other, _workload("p", 1))
    assert (
        refused.status_code == 404 and refused.json()["message"] == 'namespace "research" not found'
    )
    bad = _preview(server, _token(admin, "research", "member"), _workload("p", "eight"))
    assert bad.status_code == 422 and "spec.contract.compute.gpus" in bad.json()["message"]
    assert _preview(server, "stt_nope", _workload("p", 1)).status_code == 401
