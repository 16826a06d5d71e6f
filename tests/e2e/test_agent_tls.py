"""An agent joins a server that speaks TLS (serve --tls-cert/--tls-key), trusting the
server's certificate authority with --ca; a client that does not trust it gets nothing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from stratum.testing.agents import (
    AgentProcess,
    agent_cluster,
    agent_site,
    eventually,
    fixture_dir,
    make_tls,
)
from stratum.testing.harness import AUTH, ServerProcess

API = "/apis/stratum.dev/v1alpha1"


def test_an_agent_joins_over_tls_with_the_servers_ca(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    server = ServerProcess(
        f"sqlite:///{tmp_path / 's.db'}", tmp_path / "home", "--backend", "agent", tls=tls
    ).start(timeout=120)
    url, port = server.url, server.port
    agent: AgentProcess | None = None
    try:
        admin = httpx.Client(base_url=url, headers=AUTH, verify=server.verify, timeout=30)
        for obj in (agent_site(), agent_cluster("fleet", "boot-tls")):
            assert admin.post(f"{API}/{obj['kind'].lower()}s", json=obj).status_code == 201
        # Plain HTTP, and HTTPS without trusting the CA, get nowhere.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/readyz", timeout=5)
        agent = AgentProcess(
            name="tls-host",
            server_url=url,
            bootstrap="boot-tls",
            hardware_dir=fixture_dir(tmp_path, "workstation"),
            state_dir=tmp_path / "agent",
            ca=tls.ca,
        ).start()
        node = eventually(
            lambda: (
                (r := admin.get(f"{API}/nodes/tls-host")).status_code == 200
                and r.json()["status"].get("phase") == "Ready"
            ),
            timeout=60,
            what="the agent to join over TLS",
        )
        assert node
        time.sleep(0.1)
        admin.close()
    finally:
        if agent is not None:
            agent.stop()
        server.stop()
