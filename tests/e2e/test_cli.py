"""The real `stratum` command against a real `stratum serve` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stratum.testing.harness import AUTH, ServerProcess, free_port, run_cli
from tests import EXAMPLES


def env_for(server: ServerProcess, tmp_path: Path) -> dict[str, str]:
    return {"STRATUM_SERVER": server.url, "STRATUM_CONFIG": str(tmp_path / "cli.yaml")}


def test_apply_examples_get_describe_delete(server_process: ServerProcess, tmp_path: Path) -> None:
    env = env_for(server_process, tmp_path)
    applied = run_cli("apply", "-f", str(EXAMPLES), env=env)
    assert applied.returncode == 0, applied.stderr
    assert "site/fra-1 created" in applied.stdout
    assert "workload/llama-pretrain -n research created" in applied.stdout
    again = run_cli("apply", "-f", str(EXAMPLES), env=env)
    assert again.stdout.count("unchanged") == applied.stdout.count("created")

    table = run_cli("get", "sites", env=env)
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "NAME",
        "KIND",
        "PROVIDER",
        "COUNTRY",
        "JURISDICTIONS",
        "POWER-KW",
        "AGE",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["edge-lyon", "fra-1", "us-east-1"]
    # Columns line up: every row's second column starts where its header does.
    col = lines[0].index("KIND")
    assert all(line[col - 1] == " " and line[col] != " " for line in lines[1:])

    as_json = json.loads(run_cli("get", "workloads", "-A", "-o", "json", env=env).stdout)
    assert sorted(i["metadata"]["name"] for i in as_json["items"]) == [
        "embeddings-batch",
        "llama-pretrain",
        "triage-assistant",
    ]
    one = run_cli("get", "wl", "llama-pretrain", "-n", "research", "-o", "yaml", env=env)
    assert "withinReplica: nvlink" in one.stdout
    selected = run_cli(
        "get", "sites", "-l", "region in (eu-central,us-east)", "-o", "name", env=env
    )
    assert selected.stdout.split() == ["site/fra-1", "site/us-east-1"]
    described = run_cli("describe", "workload", "llama-pretrain", "-n", "research", env=env)
    assert described.returncode == 0
    for text in (
        "Workload research/llama-pretrain",
        "Spec",
        "minRdmaGbpsPerGpu: 200.0",
        "Unschedulable",
    ):
        assert text in described.stdout

    deleted = run_cli("delete", "-f", str(EXAMPLES / "08-workloads.yaml"), env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert "No workloads found." in run_cli("get", "workloads", env=env).stderr


def test_exit_codes_scripts_can_trust(server_process: ServerProcess, tmp_path: Path) -> None:
    env = env_for(server_process, tmp_path)
    missing = run_cli("get", "workload", "ghost", "-n", "research", env=env)
    assert missing.returncode == 1 and 'Workload "ghost" not found' in missing.stderr
    assert run_cli("get", "gadgets", env=env).returncode == 2
    assert run_cli("get", "sites", "-o", "xml", env=env).returncode == 2
    assert run_cli("get", "workload", "x", env=env).returncode == 2  # namespaced, no -n
    unreachable = run_cli(
        "get", "sites", env={**env, "STRATUM_SERVER": f"http://127.0.0.1:{free_port()}"}
    )
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr


def test_an_invalid_document_names_file_document_and_field(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    env = env_for(server_process, tmp_path)
    bad = tmp_path / "fleet.yaml"
    sites = (EXAMPLES / "01-sites.yaml").read_text()
    line = len(sites.splitlines()) + 2  # after the separator
    bad.write_text(
        sites
        + """---
apiVersion: stratum.dev/v1alpha1
kind: Site
metadata: {name: broken}
spec: {kind: datacenter, provider: x, country: Germany, colour: red}
"""
    )
    result = run_cli("apply", "-f", str(bad), env=env)
    assert result.returncode == 1
    assert f"{bad} document 4 (line {line}), Site broken:" in result.stderr, result.stderr
    assert "spec.country: 'Germany' is not an ISO 3166-1 alpha-2 code" in result.stderr
    assert "spec.colour: unknown field" in result.stderr
    assert "nothing was applied" in result.stderr
    assert "No sites found." in run_cli("get", "sites", env=env).stderr

    malformed = run_cli("apply", "-f", "-", env=env, input="kind: Site\nmetadata: {name: [\n")
    assert malformed.returncode == 1 and "<stdin>: line 3, column 1" in malformed.stderr


def test_config_file_and_environment(server_process: ServerProcess, tmp_path: Path) -> None:
    config = str(tmp_path / "cli.yaml")
    env = {"STRATUM_CONFIG": config, "STRATUM_SERVER": ""}
    assert run_cli("config", "set", "server", server_process.url, env=env).returncode == 0
    assert (Path(config).stat().st_mode & 0o777) == 0o600
    assert run_cli("apply", "-f", str(EXAMPLES / "01-sites.yaml"), env=env).returncode == 0
    assert "fra-1" in run_cli("get", "sites", env=env).stdout
    assert run_cli("config", "set", "colour", "blue", env=env).returncode == 1
    override = run_cli("get", "sites", env={**env, "STRATUM_SERVER": "http://127.0.0.1:1"})
    assert override.returncode == 3, "STRATUM_SERVER must override the config file"


def test_sigterm_stops_the_server_gracefully_even_with_a_watch_open(
    server_process: ServerProcess,
) -> None:
    watch = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import httpx\n"
                f"with httpx.stream('GET', '{server_process.url}/apis/stratum.dev/v1alpha1/sites',"
                f" params={{'watch': 'true'}}, headers={AUTH!r}, timeout=None) as r:\n"
                "    assert r.status_code == 200, r.status_code\n"
                "    for line in r.iter_lines(): pass\n"
            ),
        ]
    )
    time.sleep(1.0)
    started = time.monotonic()
    code = server_process.stop(signal.SIGTERM)
    # uvicorn re-raises the signal once it has shut down, so the status says "terminated".
    assert code in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 8
    # The watcher saw its stream closed properly (an abrupt death is a protocol error there).
    assert watch.wait(timeout=10) == 0


def _big_file(path: Path, namespace: str, n: int) -> Path:
    docs = [
        f"apiVersion: stratum.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {namespace}}}\n"
        "spec: {}\n"
    ]
    docs += [
        f"apiVersion: stratum.dev/v1alpha1\nkind: Workload\nmetadata: {{name: w-{i:05d}, "
        f"namespace: {namespace}, labels: {{batch: crash}}}}\nspec:\n  type: batch\n"
        f"  contract:\n    compute: {{gpuMilli: {100 + i % 800}}}\n"
        for i in range(n)
    ]
    path.write_text("---\n".join(docs))
    return path


def _count(url: str, namespace: str) -> int:
    page = httpx.get(
        f"{url}/apis/stratum.dev/v1alpha1/namespaces/{namespace}/workloads",
        params={"limit": 5000},
        timeout=60,
        headers=AUTH,
    ).json()
    return len(page["items"])


@pytest.mark.timeout(420)  # a calibrating dry run, then up to four kills and restarts
def test_kill_9_mid_apply_leaves_all_or_nothing(database_url: str, tmp_path: Path) -> None:
    """Apply a large file, kill -9 the server while it works on it, restart: the store holds
    every object of the file or none of them. The kill comes earlier on each try until one
    lands while the server is busy with the file."""
    n = 1500
    server = ServerProcess(database_url, tmp_path, "--no-controllers").start()
    try:
        env = {"STRATUM_SERVER": server.url, "STRATUM_CONFIG": str(tmp_path / "c.yaml")}
        # Calibrate: how long does the server take over such a file (a dry run does all the work)?
        began = time.monotonic()
        dry = run_cli(
            "apply",
            "-f",
            str(_big_file(tmp_path / "dry.yaml", "dry", n)),
            "--dry-run",
            env=env,
            timeout=300,
        )
        took = time.monotonic() - began
        assert dry.returncode == 0, dry.stderr
        killed_mid_apply = False
        for attempt, fraction in enumerate((0.6, 0.4, 0.25, 0.15)):
            namespace = f"big{attempt}"
            big = _big_file(tmp_path / f"{namespace}.yaml", namespace, n)
            apply = subprocess.Popen(
                [sys.executable, "-m", "stratum", "apply", "-f", str(big)],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(took * fraction)
            assert server.proc is not None
            server.proc.kill()  # SIGKILL: no cleanup, no graceful anything
            assert server.stop() == -signal.SIGKILL
            apply.communicate(timeout=60)
            server = ServerProcess(database_url, tmp_path, "--no-controllers").start()
            env["STRATUM_SERVER"] = server.url
            count = _count(server.url, namespace)
            assert count in (0, n), f"partial apply survived a crash: {count} of {n}"
            if apply.returncode != 0:
                killed_mid_apply = True
                break
        assert killed_mid_apply, "every apply finished before its kill; the test proved nothing"
        again = run_cli("apply", "-f", str(big), env=env, timeout=300)
        assert again.returncode == 0, again.stderr
        assert _count(server.url, namespace) == n
    finally:
        server.stop()
