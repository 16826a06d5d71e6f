"""A newcomer follows the README's quick start literally: the commands of its code blocks,
parsed from README.md itself, in a fresh directory and home, against the `stratum up` the
first block starts; each command's output is what the README says the reader will see.

What differs from a person's terminal, and why: `scripts/stratum` runs this interpreter (the
suite does not reinstall the venv; CI's fresh-machine run exercises the install), `up` gets
a free port instead of 8080 (tests run side by side), `scripts/test` is this very suite and
is not run again, and the watch (`-w`) is stopped after a few seconds, as Ctrl-C would."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from stratum.testing.docs import (
    UpProcess,
    code_blocks,
    reader_env,
    run_in_one_shell,
    section,
    shell_commands,
    stratum_shim,
)
from tests import EXAMPLES, REPO

WATCH_SECONDS = 6


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()[1:] if line.strip()]


def applied_cleanly(out: str) -> bool:
    lines = out.splitlines()
    return bool(lines) and all(line.endswith((" created", " unchanged")) for line in lines)


# What the README's comments promise, command by command (the first words of each command).
EXPECT: dict[str, Callable[[str], bool]] = {
    "export STRATUM_SERVER=": lambda out: out == "",
    "export STRATUM_TOKEN=": lambda out: out == "",
    "scripts/stratum wait workload/llama-finetune": lambda out: (
        "workload/llama-finetune -n research condition met (phase=Running)" in out
    ),
    "scripts/stratum get sites": lambda out: (
        [r[0] for r in rows(out)] == ["edge-lyon", "fra-1", "us-east-1"]
    ),
    "scripts/stratum get workloads -A -o wide": lambda out: (
        all(h in out.splitlines()[0].split() for h in ("NODES", "SITE", "GPUS"))
        and len(rows(out)) == 5
        and all("Running" in r for r in rows(out))
    ),
    "scripts/stratum explain workload llama-finetune": lambda out: (
        "Workload research/llama-finetune is Running: bound to 2 nodes" in out
        and "clause by clause" in out
    ),
    "node=$(": lambda out: out == "",
    "gpu=$(": lambda out: out == "",
    "scripts/stratum fault inject gpu-fail": lambda out: (
        re.search(r"injected: GPU \d+ on node fra-1-hgx-h100-\d+ failed", out) is not None
    ),
    "scripts/stratum get workloads -n research -w": lambda out: (
        out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"] and "llama-finetune" in out
    ),
    "scripts/stratum describe workload llama-finetune": lambda out: (
        "ContractViolated" in out and "remediated" in out
    ),
    "scripts/stratum catalog list": lambda out: "llm-finetune" in out and "pretrain-gang" in out,
    "scripts/stratum launch llm-finetune": lambda out: (
        "workload/llm-finetune -n research launched from llm-finetune@" in out
        and "condition met (phase=Running)" in out
    ),
    "scripts/stratum explain workload llm-finetune": lambda out: (
        "Workload research/llm-finetune is Running: bound to 1 node" in out
    ),
    "scripts/stratum apply -f examples/": lambda out: (
        applied_cleanly(out) and "workload/llama-pretrain -n research created" in out
    ),
    "scripts/stratum plan -f examples/reference/fleet-change.yaml": lambda out: any(
        line.startswith("research/h200-pretrain") and " binds (" in line
        for line in out.splitlines()
    ),
}


@pytest.mark.timeout(240)
def test_the_readme_quick_start_works_as_written(tmp_path: Path) -> None:
    quick = section((REPO / "README.md").read_text(encoding="utf-8"), "## Quickstart")
    first, second = [shell_commands(b.text) for b in code_blocks(quick) if b.lang == "sh"][:2]
    assert [c.split("#")[0].strip() for c in first] == ["scripts/stratum up", "scripts/test"]

    work, home = tmp_path / "work", tmp_path / "home"
    home.mkdir()
    stratum_shim(work)
    (work / "examples").symlink_to(EXAMPLES)
    env = reader_env(home)
    up = UpProcess(first[0], cwd=work, env=env, logs=tmp_path).start()
    try:
        banner = up.stderr
        assert "Stratum is up" in banner
        assert "3 sites, 20 simulated nodes, 2 tenants" in banner
        assert f"admin token: in {home}/.local/share/stratum/admin-token" in banner

        commands = [
            c.replace("127.0.0.1:8080", f"127.0.0.1:{up.port}")
            if c.startswith("export STRATUM_SERVER=")
            else f"timeout -s INT {WATCH_SECONDS} {c}"
            if " -w" in c.split("#")[0]
            else c
            for c in second
        ]
        unchecked = [c for c in second if not any(c.startswith(k) for k in EXPECT)]
        assert not unchecked, f"README commands this test does not check yet: {unchecked}"
        for ran, original in zip(
            run_in_one_shell(commands, cwd=work, env=env), second, strict=True
        ):
            watch = ran.command.startswith("timeout ")
            assert ran.returncode == (124 if watch else 0), (original, ran.output)
            check = next(v for k, v in EXPECT.items() if original.startswith(k))
            assert check(ran.output), (original, ran.output)
        assert "demo work running: 5 workloads" in up.stderr
        assert "\x1b[" not in up.stderr, "no live progress display without a terminal"
    finally:
        up.stop()
