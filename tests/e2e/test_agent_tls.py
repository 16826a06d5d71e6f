"""An agent joins a server that speaks TLS (serve --tls-cert/--tls-key), trusting the
server's certificate authority with --ca; a client that does not trust it gets nothing."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
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
from stratum.testing.harness import ADMIN_TOKEN, AUTH, free_port

API = "/apis/stratum.dev/v1alpha1"


def test_an_agent_joins_over_tls_with_the_servers_ca(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    port = free_port()
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    token_file.chmod(0o600)
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stratum",
            "serve",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{tmp_path / 's.db'}",
            "--admin-token-file",
            str(token_file),
            "--backend",
            "agent",
            "--tls-cert",
            str(tls.cert),
            "--tls-key",
            str(tls.key),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "STRATUM_HOME": str(tmp_path / "home")},
    )
    url = f"https://127.0.0.1:{port}"
    agent: AgentProcess | None = None
    try:
        trust = ssl.create_default_context(cafile=str(tls.ca))
        admin = httpx.Client(base_url=url, headers=AUTH, verify=trust, timeout=30)
        eventually(
            lambda: admin.get("/readyz").status_code == 200, timeout=120, what="serve on TLS"
        )
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
        server.terminate()
        server.wait(timeout=30)
        log.close()
