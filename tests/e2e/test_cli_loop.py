"""The kubectl-grade loop with the real `stratum` command against a real `stratum serve`:
outputs and selection, namespaces, waiting, watching, explaining, diff and edit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stratum.testing.harness import ServerProcess, run_cli
from stratum.testing.manifests import examples
from tests import EXAMPLES


def env_for(server: ServerProcess, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"STRATUM_SERVER": server.url, "STRATUM_CONFIG": str(tmp_path / "cli.yaml"), **extra}


WORKLOAD = """apiVersion: stratum.dev/v1alpha1
kind: Workload
metadata: {{name: {name}, labels: {{team: {team}}}}}
spec: {{type: batch, replicas: {replicas}}}
"""


def _write(tmp_path: Path, name: str, team: str = "a", replicas: int = 1) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(WORKLOAD.format(name=name, team=team, replicas=replicas))
    return path


@pytest.mark.timeout(300)  # ~30 CLI processes on a shared 2-core machine
def test_outputs_where_it_runs_and_selection(server_process: ServerProcess, tmp_path: Path) -> None:
    env = env_for(server_process, tmp_path)
    assert run_cli("apply", "-f", str(EXAMPLES), env=env).returncode == 0
    # Wait for the controllers to place the inference service, then see where it runs.
    waited = run_cli(
        "wait", "workload/triage-assistant", "-n", "health-eu", "--for=phase=Running",
        "--timeout=60", env=env,
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    assert "workload/triage-assistant -n health-eu condition met" in waited.stdout

    wide = run_cli("get", "workloads", "-n", "health-eu", "-o", "wide", env=env)
    header, row = wide.stdout.splitlines()[:2]
    for column in ("NODES", "SITE", "GPUS"):
        assert column in header.split()
    assert "fra-1" in row.split() and "2x500m" in row.split()
    placed = run_cli("get", "placements", "-n", "health-eu", "-o", "wide", env=env)
    assert "fra-1" in placed.stdout.splitlines()[1].split()

    names = run_cli(
        "get", "wl", "-A", "-o",
        'jsonpath={range .items[*]}{.metadata.name}:{.spec.type}{"\\n"}{end}', env=env,
    )  # fmt: skip
    assert names.returncode == 0, names.stderr
    assert set(names.stdout.split()) == {
        "triage-assistant:inference",
        "embeddings-batch:batch",
        "llama-pretrain:training",
    }
    one = run_cli(
        "get", "wl", "llama-pretrain", "-n", "research", "-o", "jsonpath={.spec.replicas}",
        env=env,
    )  # fmt: skip
    assert one.stdout.strip() == "3"
    columns = run_cli(
        "get", "sites", "-o", "custom-columns=SITE:.metadata.name,JUR:.spec.jurisdictions[0]",
        "--no-headers", env=env,
    )  # fmt: skip
    assert [line.split() for line in columns.stdout.splitlines()] == [
        ["edge-lyon", "EU"],
        ["fra-1", "EU"],
        ["us-east-1", "US"],
    ]
    every = run_cli("get", "all", "-n", "research", env=env)
    assert "workload/llama-pretrain" in every.stdout
    assert "placement/embeddings-batch" in every.stdout

    # Mistakes name what was meant, with exit 2 (usage).
    typo = run_cli("get", "wrkloads", env=env)
    assert typo.returncode == 2 and 'did you mean "workloads"?' in typo.stderr
    bad = run_cli("get", "sites", "-o", "jsonpth={.x}", env=env)
    assert bad.returncode == 2 and 'did you mean "jsonpath"?' in bad.stderr
    broken = run_cli("get", "sites", "-o", "jsonpath={.items[x]}", env=env)
    assert broken.returncode == 2 and "[index]" in broken.stderr  # not eaten as markup

    version = run_cli("version", env=env)
    assert version.returncode == 0
    assert "Client Version: 0.1.0" in version.stdout and "Server Version: 0.1.0" in version.stdout
    resources = run_cli("api-resources", env=env)
    assert ["workloads", "wl", "stratum.dev/v1alpha1", "true", "Workload"] in [
        line.split() for line in resources.stdout.splitlines()
    ]


@pytest.mark.timeout(300)  # ~30 CLI processes on a shared 2-core machine
def test_namespace_wait_delete_diff_and_edit(server_process: ServerProcess, tmp_path: Path) -> None:
    env = env_for(server_process, tmp_path)
    assert run_cli("apply", "-f", str(EXAMPLES / "06-tenants.yaml"), env=env).returncode == 0
    assert run_cli("apply", "-f", str(EXAMPLES / "01-sites.yaml"), env=env).returncode == 0
    # STRATUM_NAMESPACE and -n both place a manifest that names no namespace.
    by_env = run_cli(
        "apply", "-f", str(_write(tmp_path, "one")), env={**env, "STRATUM_NAMESPACE": "research"}
    )
    assert by_env.returncode == 0, by_env.stderr
    assert "workload/one -n research created" in by_env.stdout
    by_flag = run_cli("apply", "-n", "research", "-f", str(_write(tmp_path, "two", "b")), env=env)
    assert "workload/two -n research created" in by_flag.stdout
    clash = _write(tmp_path, "three")
    clash.write_text(clash.read_text().replace("name: three", "name: three, namespace: research"))
    refused = run_cli("apply", "-n", "health-eu", "-f", str(clash), env=env)
    assert refused.returncode == 2 and "differs from -n 'health-eu'" in refused.stderr

    # No nodes in this fleet: a wait for Running fails at once, saying why; a wait for
    # a condition that never comes times out (exit 1) and says the phase.
    waited = run_cli("wait", "wl", "one", "-n", "research", "--for=phase=Running", env=env)
    assert waited.returncode == 1
    assert "is Rejected and will not become Running" in waited.stderr
    timed = run_cli(
        "wait", "wl/one", "-n", "research", "--for=condition=Ready", "--timeout=3", env=env
    )
    assert timed.returncode == 1
    assert "timed out after 3s" in timed.stderr and "(it is phase Rejected)" in timed.stderr
    usage = run_cli("wait", "wl/one", "-n", "research", "--for=colour=blue", env=env)
    assert usage.returncode == 2 and "phase=PHASE" in usage.stderr

    # An unknown field names the nearest one; the error says the field once, not twice.
    typo = tmp_path / "typo.yaml"
    typo.write_text(WORKLOAD.format(name="t", team="a", replicas=1).replace("replicas", "replica"))
    wrong = run_cli("apply", "-n", "research", "-f", str(typo), env=env)
    assert wrong.returncode == 1 and 'did you mean "replicas"?' in wrong.stderr
    kind = tmp_path / "kind.yaml"
    kind.write_text(typo.read_text().replace("kind: Workload", "kind: Workloda"))
    wrong_kind = run_cli("apply", "-n", "research", "-f", str(kind), env=env)
    assert "kind: kind:" not in wrong_kind.stderr
    assert 'did you mean "Workload"?' in wrong_kind.stderr

    # diff: 0 when nothing would change, 1 and a unified diff when something would.
    same = run_cli("diff", "-n", "research", "-f", str(tmp_path / "one.yaml"), env=env)
    assert same.returncode == 0 and same.stdout == "", same.stderr
    changed = run_cli("diff", "-n", "research", "-f", str(_write(tmp_path, "one", "a", 3)), env=env)
    assert changed.returncode == 1
    assert "-  replicas: 1" in changed.stdout and "+  replicas: 3" in changed.stdout

    # edit: the editor's saved text replaces the object.
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('replicas: 1', 'replicas: 2'))\n"
    )
    edited = run_cli(
        "edit", "workload", "one", "-n", "research",
        env={**env, "STRATUM_EDITOR": f"{sys.executable} {editor}"},
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert "workload/one edited" in edited.stdout
    assert (
        run_cli(
            "get", "wl", "one", "-n", "research", "-o", "jsonpath={.spec.replicas}", env=env
        ).stdout.strip()
        == "2"
    )

    # delete by selector, then --all.
    gone = run_cli("delete", "workloads", "-n", "research", "-l", "team=b", env=env)
    assert gone.returncode == 0 and gone.stdout.split() == ["workload/two", "deleted"]
    assert run_cli("delete", "workloads", "-n", "research", "--all", env=env).returncode == 0
    assert "No workloads found." in run_cli("get", "wl", "-n", "research", env=env).stderr


def test_get_watch_prints_rows_and_exits_3_when_the_server_goes(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    import os

    env = env_for(server_process, tmp_path)
    assert run_cli("apply", "-f", str(EXAMPLES / "06-tenants.yaml"), env=env).returncode == 0
    watcher = subprocess.Popen(
        [sys.executable, "-m", "stratum", "get", "wl", "-n", "research", "-w"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        time.sleep(4)  # the watch is open
        assert run_cli("apply", "-n", "research", "-f", str(_write(tmp_path, "w")), env=env)
        line = watcher.stdout.readline()
        while "NAMESPACE" in line or not line.strip():
            line = watcher.stdout.readline()
        fields = line.split()
        assert fields[:3] == ["research", "w", "batch"], line  # a full row, not "ADDED w"
        server_process.stop()
        assert watcher.wait(timeout=60) == 3
        assert watcher.stderr is not None and "error:" in watcher.stderr.read()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        for stream in (watcher.stdout, watcher.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.timeout(300)  # ~30 CLI processes on a shared 2-core machine
def test_explain_where_and_why_and_the_schema(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    env = env_for(server_process, tmp_path)
    assert run_cli("apply", "-f", str(EXAMPLES), env=env).returncode == 0
    run_cli("wait", "wl/triage-assistant", "-n", "health-eu", "--for=phase=Running", env=env)
    bound = run_cli("explain", "workload", "triage-assistant", "-n", "health-eu", env=env)
    assert bound.returncode == 0, bound.stderr
    assert "is Running: bound to 2 nodes" in bound.stdout and "at site fra-1" in bound.stdout
    assert "sovereignty holds: site fra-1" in bound.stdout
    # The examples' gang asking 400 Gb/s of RDMA per GPU, more than the fleet's HGX nodes
    # give (200): never satisfiable.
    gang = next(d for d in examples(EXAMPLES) if d["metadata"]["name"] == "llama-pretrain")
    gang["metadata"]["name"] = "rdma-pretrain"
    gang["spec"]["contract"]["topology"]["minRdmaGbpsPerGpu"] = 400
    (tmp_path / "rdma.yaml").write_text(yaml.safe_dump(gang))
    assert run_cli("apply", "-f", str(tmp_path / "rdma.yaml"), env=env).returncode == 0
    rejected = run_cli("wait", "wl/rdma-pretrain", "-n", "research", "--for=phase=Running", env=env)
    assert rejected.returncode == 1 and "will not become Running" in rejected.stderr
    why = run_cli("explain", "wl", "rdma-pretrain", "-n", "research", env=env)
    assert "is Rejected and bound nowhere" in why.stdout
    assert "sovereignty.jurisdictions: 6 nodes ruled out" in why.stdout

    schema = run_cli("explain", "workload.spec.contract.topology", env=env)
    assert schema.returncode == 0
    assert "acrossReplicas" in schema.stdout and "nvlink-domain" in schema.stdout
    typo = run_cli("explain", "workload.spec.contract.topolgy", env=env)
    assert typo.returncode == 2 and 'did you mean "topology"?' in typo.stderr


def test_help_never_cuts_option_names_and_completion_scripts() -> None:
    for command in ("serve", "apply", "get", "up"):
        shown = run_cli(command, "--help", env={"COLUMNS": "80"})
        assert shown.returncode == 0
        assert "…" not in shown.stdout, shown.stdout
    assert "--admin-token-file" in run_cli("serve", "--help", env={"COLUMNS": "80"}).stdout
    for shell, marker in (
        ("bash", "complete -o"),
        ("zsh", "compdef"),
        ("fish", "complete --command"),
    ):
        script = run_cli("completion", shell)
        assert script.returncode == 0 and marker in script.stdout
        assert "_STRATUM_COMPLETE" in script.stdout
    assert run_cli("completion", "tcsh").returncode == 2
    # The script's answers come from the command itself.
    answers = run_cli(
        "apply", env={"_STRATUM_COMPLETE": "complete_bash", "COMP_WORDS": "stratum ap",
                      "COMP_CWORD": "1"},
    )  # fmt: skip
    assert "apply" in answers.stdout and "api-resources" in answers.stdout
    client = run_cli("version", "--client", "-o", "json")
    assert json.loads(client.stdout)["clientVersion"]["version"] == "0.1.0"
