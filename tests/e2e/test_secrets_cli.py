"""The real CLI against a real `stratum serve`: the key file a first start makes, credentials
that never show, `stratum secrets rotate` after a new key is put first, the old key retired,
and a key file others may read refused."""

from __future__ import annotations

import os
from pathlib import Path

from stratum.testing.harness import ServerProcess, run_cli

SECRET = "bootstrap-7c1d2e3f4a5b-PLAINTEXT"
MANIFEST = f"""\
apiVersion: stratum.dev/v1alpha1
kind: Site
metadata: {{name: fra-1}}
spec: {{kind: datacenter, provider: equinix, country: DE}}
---
apiVersion: stratum.dev/v1alpha1
kind: Cluster
metadata: {{name: agents-fra}}
spec:
  site: fra-1
  backend: agent
  credentials:
    bootstrapToken: {SECRET}
"""


def test_key_file_made_then_rotate_then_old_key_retired(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "stratum.db"
    url = f"sqlite:///{db}"
    manifest = tmp_path / "cluster.yaml"
    manifest.write_text(MANIFEST)
    key_file = home / "secret.key"

    server = ServerProcess(url, home, "--no-controllers").start()
    env = {"STRATUM_SERVER": server.url, "STRATUM_CONFIG": str(tmp_path / "cli.yaml")}
    try:
        assert (key_file.stat().st_mode & 0o777) == 0o600
        assert f"made a secret key for stored credentials in {key_file}" in server.read_log()
        applied = run_cli("apply", "-f", str(manifest), env=env)
        assert applied.returncode == 0, applied.stderr
        shown = run_cli("get", "cluster", "agents-fra", "-o", "yaml", env=env)
        assert "bootstrapToken: '***:" in shown.stdout, shown.stdout
        assert SECRET not in shown.stdout
    finally:
        server.stop()
    old_key = key_file.read_text().splitlines()[-1]

    new_key = run_cli("secrets", "generate-key").stdout.strip()
    key_file.write_text(f"{new_key}\n{old_key}\n")  # the new key first; keeps mode 0600
    server = ServerProcess(url, home, "--no-controllers").start()
    env["STRATUM_SERVER"] = server.url
    try:
        dry = run_cli("secrets", "rotate", "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        assert "would re-encrypt 1 secret(s) in 1 object(s)" in dry.stdout
        rotated = run_cli("secrets", "rotate", env=env)
        assert rotated.returncode == 0, rotated.stderr
        assert "re-encrypted 1 secret(s) in 1 object(s) with key" in rotated.stdout
    finally:
        server.stop()

    key_file.write_text(f"{new_key}\n")  # the old key retired
    server = ServerProcess(url, home, "--no-controllers").start()
    env["STRATUM_SERVER"] = server.url
    try:
        again = run_cli("apply", "-f", str(manifest), env=env)
        assert again.returncode == 0, again.stderr
        assert "cluster/agents-fra unchanged" in again.stdout.lower(), again.stdout
        assert SECRET not in server.read_log()
    finally:
        server.stop()
    raw = b"".join(p.read_bytes() for p in home.glob("stratum.db*"))
    assert b"enc:v1:" in raw and SECRET.encode() not in raw


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(run_cli("secrets", "generate-key").stdout)
    os.chmod(key_file, 0o644)
    started = run_cli(
        "serve",
        "--database-url",
        f"sqlite:///{tmp_path / 's.db'}",
        "--port",
        "0",
        "--secret-key-file",
        str(key_file),
        timeout=60,
    )
    assert started.returncode != 0
    assert f"secret key file {key_file} may be read by others (mode 0644)" in started.stderr
    assert f"chmod 600 {key_file}" in started.stderr
