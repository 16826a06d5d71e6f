"""The real CLI against a real `stratum serve`: first admin token, login, tokens, warnings,
the sovereignty report and audit verification."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from stratum.testing.harness import ServerProcess, free_port, run_cli
from tests import EXAMPLES


def test_serve_prints_the_first_admin_token_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stratum",
            "serve",
            "--port",
            str(port),
            "--database-url",
            url,
            "--no-controllers",
        ],
        # The token is the one line on standard output, apart from the logs on stderr.
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "STRATUM_HOME": str(tmp_path)},
    )
    try:
        assert proc.stdout is not None
        token = ""
        for _ in range(200):
            line = proc.stdout.readline().strip()
            if line.startswith("stt_"):
                token = line
                break
        assert token, "serve did not print the first admin token"
        r = None
        for _ in range(100):
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/apis/stratum.dev/v1alpha1/whoami",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=1,
                )
                break
            except httpx.TransportError:
                import time

                time.sleep(0.1)
        assert r is not None and r.json()["platformRole"] == "platform-admin"
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_admin_token_file_login_tokens_report_and_audit(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    token_file = server_process.home / "admin-token"
    assert (token_file.stat().st_mode & 0o777) == 0o600
    config = tmp_path / "cli.yaml"
    env = {"STRATUM_SERVER": server_process.url, "STRATUM_CONFIG": str(config)}
    anonymous = {**env, "STRATUM_TOKEN": ""}
    refused = run_cli("get", "sites", env=anonymous)
    assert refused.returncode == 1 and "authentication required" in refused.stderr
    login = run_cli(
        "login", "--server", server_process.url, env=anonymous, input=token_file.read_text()
    )
    assert login.returncode == 0, login.stderr
    assert "as admin (platform-admin)" in login.stdout
    assert (config.stat().st_mode & 0o777) == 0o600
    applied = run_cli("apply", "-f", str(EXAMPLES), env=anonymous)
    assert applied.returncode == 0, applied.stderr
    assert (
        "Warning: Workload research/embeddings-batch: policy no-preemptible-at-the-edge"
        in applied.stderr
    )
    tenants = run_cli("get", "tenants", env=anonymous)
    # Use counts active workloads only (the controllers may have settled some already).
    assert re.search(r"research\s+shared\s+[\d.]+/64 H100-SXM5-80GB:\d+/48", tenants.stdout), (
        tenants.stdout
    )
    assert "0/30000 GPU-h (0%)/month" in tenants.stdout

    made = run_cli(
        "token",
        "create",
        "grace-laptop",
        "--subject",
        "grace@example.org",
        "--ttl",
        "1d",
        env=anonymous,
    )
    assert made.returncode == 0, made.stderr
    grace = made.stdout.strip()
    as_grace = {**env, "STRATUM_TOKEN": grace}
    assert "member of research" in run_cli("whoami", env=as_grace).stdout
    listed = run_cli("get", "workloads", "-A", "-o", "name", env=as_grace)
    assert listed.stdout.split() == ["workload/embeddings-batch", "workload/llama-pretrain"]
    report = run_cli("report", "sovereignty", "-o", "csv", env=as_grace)
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert {r["tenant"] for r in rows} == {"research"}
    assert all(not v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
    full = json.loads(
        run_cli(
            "report", "sovereignty", "-o", "json", "--tenant", "health-eu", env=anonymous
        ).stdout
    )
    assert [r["workload"] for r in full] == ["triage-assistant"]
    assert full[0]["dataClassification"] == "personal"
    table = run_cli("report", "sovereignty", env=anonymous)
    assert table.stdout.splitlines()[0].split()[:3] == ["TENANT", "WORKLOAD", "PHASE"]
    token_id = json.loads(run_cli("token", "list", "-o", "json", env=anonymous).stdout)
    grace_id = next(t["id"] for t in token_id if t["subject"] == "grace@example.org")
    assert run_cli("token", "revoke", grace_id, env=anonymous).returncode == 0
    assert run_cli("whoami", env=as_grace).returncode == 1

    verified = run_cli("audit", "verify", env=anonymous)
    assert verified.returncode == 0 and "audit log intact" in verified.stdout
