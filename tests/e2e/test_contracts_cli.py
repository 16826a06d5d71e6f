"""The contracts demo through the real CLI against a real `stratum serve`: `describe
placement` shows the evidence clause by clause; `describe workload` of a refused contract
shows how many nodes each clause excluded."""

from __future__ import annotations

import json
import time
from pathlib import Path

from stratum.testing.harness import ServerProcess, run_cli
from tests import EXAMPLES

DEMO = EXAMPLES / "reference" / "contracts-demo.yaml"


def test_describe_placement_shows_per_clause_evidence(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    env = {"STRATUM_SERVER": server_process.url, "STRATUM_CONFIG": str(tmp_path / "cli.yaml")}
    for path in (EXAMPLES / "02-hardwareprofiles.yaml", DEMO):
        applied = run_cli("apply", "-f", str(path), env=env)
        assert applied.returncode == 0, applied.stderr
    assert "workload/nvl-gang -n lab created" in applied.stdout

    deadline = time.monotonic() + 60
    phases: dict[str, str] = {}
    while time.monotonic() < deadline:
        listed = run_cli("get", "workloads", "-A", "-o", "json", env=env)
        phases = {
            f"{i['metadata']['namespace']}/{i['metadata']['name']}": i.get("status", {}).get(
                "phase"
            )
            for i in json.loads(listed.stdout)["items"]
        }
        if (
            phases.get("lab/nvl-gang") in ("Bound", "Running")
            and phases.get("lab/never-eu-l40s") == "Rejected"
        ):
            break
        time.sleep(0.3)
    assert phases.get("lab/nvl-gang") in ("Bound", "Running"), phases

    described = run_cli("describe", "placement", "nvl-gang", "-n", "lab", env=env)
    assert described.returncode == 0, described.stderr
    out = described.stdout
    assert "Placement lab/nvl-gang" in out and "tier: nvlink-domain" in out
    # One line per clause, unwrapped: CLAUSE HOLDS EVIDENCE.
    evidence = out.split("Evidence\n", 1)[1].split("Conditions", 1)[0].splitlines()
    assert evidence[0].split() == ["CLAUSE", "HOLDS", "EVIDENCE"]
    rows = [line.strip().split(None, 2) for line in evidence[1:] if line.strip()]
    assert all(holds == "yes" for _, holds, _ in rows)
    clauses = [clause for clause, _, _ in rows]
    assert clauses == ["compute"] * 8 + ["topology.withinReplica"] * 8 + [
        "topology.acrossReplicas",
        "sovereignty",
        "site.powerBudgetKW",
    ]
    text = {clause: message for clause, _, message in rows}
    assert text["topology.withinReplica"].startswith("GPUs 0-3 on node fra-2-dgx-gb200-")
    assert text["topology.withinReplica"].endswith(
        "share NVLink/NVSwitch domain fra-2/fra2-nvl1/nvl72"
    )
    assert text["topology.acrossReplicas"] == (
        "tier nvlink-domain (clause allows up to nvlink-domain): all 8 replicas in NVLink "
        "domain fra-2/fra2-nvl1/nvl72 (8 node(s))"
    )
    assert text["sovereignty"] == "site fra-2 in DE, jurisdictions EU/GDPR"
    assert "of 900 kW of GPU power bound" in text["site.powerBudgetKW"]
    assert any(
        m.startswith(
            "replica 0: GPUs 0-3 (GB200-186GB) and 32 cores (CPUs 0-31) on fra-2-dgx-gb200-"
        )
        for c, _, m in rows
        if c == "compute"
    )

    refused = run_cli("describe", "workload", "never-eu-l40s", "-n", "lab", env=env)
    assert refused.returncode == 0
    why = refused.stdout.split("Why Rejected\n", 1)[1].split("Conditions", 1)[0].splitlines()
    assert why[0].split() == ["CLAUSE", "EXCLUDED", "REASON"]
    assert [line.strip().split(None, 2) for line in why[1:] if line.strip()] == [
        ["sovereignty.jurisdictions", "4", "4 outside EU"],
        ["compute.models", "36", "36 lack 2 free whole GPUs (L40S-48GB) in all"],
    ]
