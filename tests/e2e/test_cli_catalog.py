"""The sample catalog on the demo fleet, through the real CLI and a real server with its
controllers: every template launches and places; versions upgrade in place; a dry run
shows the rendering and where it would go; parameter mistakes name the rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stratum.server.demo import demo_manifests
from stratum.testing.harness import ServerProcess, run_cli

LAUNCHES = [
    ("pretrain-gang", ["--set", "model=llama-70b"]),
    ("llm-finetune@1.0.0", ["--set", "model=llama-8b"]),
    ("inference-service", ["--set", "model=mistral-7b"]),
    ("batch-embedding", ["--set", "dataset=s3://corpus"]),
    ("sovereign-agent", ["--set", "image=ghcr.io/example/agent:1"]),
]


@pytest.mark.timeout(400)  # a dozen launches that wait for the controllers
def test_every_catalog_item_launches_and_places_on_the_demo_fleet(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    env = {"STRATUM_SERVER": server_process.url, "STRATUM_CONFIG": str(tmp_path / "c.yaml")}
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump_all(demo_manifests()))  # the demo carries the catalog
    assert run_cli("apply", "-f", str(fleet), env=env).returncode == 0

    listed = run_cli("catalog", "list", env=env)
    assert listed.returncode == 0
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows["llm-finetune"][2:4] == ["1.1.0", "1.0.0,1.1.0"]
    for family in ("nvswitch-training", "pcie-inference", "edge", "pretrain-gang"):
        assert family in rows
    shown = run_cli("catalog", "show", "pretrain-gang", env=env)
    assert "minRdmaGbpsPerGpu" in shown.stdout and "acrossReplicas" in shown.stdout

    dry = run_cli(
        "launch", "llm-finetune", "-n", "research", "--set", "model=x", "--dry-run", env=env
    )
    assert dry.returncode == 0, dry.stderr
    rendered = yaml.safe_load(dry.stdout)
    assert rendered["spec"]["contract"]["compute"]["gpus"] == 8
    assert "# would be placed now on: fra-1-hgx-h100-" in dry.stdout
    assert run_cli("get", "wl", "llm-finetune", "-n", "research", env=env).returncode == 1
    # A tenant's member (who may not read the fleet) gets the preview too, from the server.
    made = run_cli("token", "create", "grace-laptop", "--subject", "grace@example.org", env=env)
    assert made.returncode == 0, made.stderr
    member = {**env, "STRATUM_TOKEN": made.stdout.strip().splitlines()[-1]}
    mine = run_cli(
        "launch", "llm-finetune", "-n", "research", "--set", "model=x", "--dry-run", env=member
    )
    assert mine.returncode == 0, mine.stderr
    assert "# would be placed now on: fra-1-hgx-h100-" in mine.stdout
    assert run_cli("get", "nodes", env=member).returncode != 0  # the fleet stays hidden

    bad = run_cli("launch", "pretrain-gang", "-n", "research", "--set", "nodes=0", env=env)
    assert bad.returncode == 1
    assert "model" in bad.stderr and "nodes" in bad.stderr and "minimum" in bad.stderr
    typo = run_cli("launch", "pretrain-gnag", "-n", "research", env=env)
    assert typo.returncode == 1 and 'did you mean "pretrain-gang"?' in typo.stderr

    for template, args in LAUNCHES:
        launched = run_cli(
            "launch", template, "-n", "research", *args, "--wait", "--timeout", "90", env=env
        )
        assert launched.returncode == 0, (template, launched.stdout, launched.stderr)
        assert "condition met (phase=Running)" in launched.stdout

    upgraded = run_cli("launch", "llm-finetune@1.1.0", "-n", "research", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded from llm-finetune@1.0.0 to llm-finetune@1.1.0" in upgraded.stdout
    got = run_cli(
        "get", "wl", "llm-finetune", "-n", "research", "-o", "jsonpath={.spec.run.args}", env=env
    )
    assert "llama-8b" in got.stdout and "--checkpoint-minutes=30" in got.stdout

    for template, site in (
        ("nvswitch-training", "fra-1"),
        ("pcie-inference", "us-east-1"),
        ("edge", "edge-lyon"),
    ):
        made = run_cli(
            "launch", template, "--name", f"new-{template}", "--set", f"site={site}", env=env
        )
        assert made.returncode == 0, made.stderr
    ready = run_cli(
        "wait", "cluster", "new-nvswitch-training", "new-pcie-inference", "new-edge",
        "--for=phase=Ready", "--timeout=60", env=env,
    )  # fmt: skip
    assert ready.returncode == 0, ready.stderr
