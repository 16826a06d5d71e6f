"""`stratum top` as a person runs it: one frame with --once, and live in a real terminal
(tmux), where a faulted GPU and the violated contract show within a refresh. Events read
well with `get events` and `describe`."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum.client.http import StratumClient
from stratum.server.demo import demo_manifests
from stratum.testing.harness import ADMIN_TOKEN, LiveServer, run_cli
from tests import REPO


def wait_for(
    check: Callable[[], Any],
    what: str,
    timeout: float = 20.0,
    on_timeout: Callable[[], Any] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    if on_timeout is not None:
        last = on_timeout()
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[LiveServer, StratumClient, dict[str, str]]]:
    server = LiveServer(f"sqlite:///{tmp_path / 'stratum.db'}", controllers=True).start()
    client = StratumClient(server.url, server.token)
    env = {
        "STRATUM_SERVER": server.url,
        "STRATUM_CONFIG": str(tmp_path / "cli.yaml"),
        "STRATUM_TOKEN": ADMIN_TOKEN,
    }
    try:
        client.apply_list(demo_manifests())
        wait_for(
            lambda: (
                (ws := client.list("Workload"))
                and len(ws) == 5
                and all(w["status"].get("phase") == "Running" for w in ws)
            ),
            "the demo to run",
        )
        yield server, client, env
    finally:
        client.close()
        server.stop()


def gpu_rows(screen: str) -> str:
    """The node rows of the GPU table (the legend above them shows the glyphs too)."""
    return "\n".join(
        line for line in screen.splitlines() if line.startswith(("fra-", "us-east-", "edge-"))
    )


def fail_a_gpu(client: StratumClient) -> str:
    node: str = client.get("Placement", "llama-finetune", "research")["spec"]["replicas"][0]["node"]
    client.inject_fault({"kind": "gpu-fail", "node": node, "gpu": 3})
    return node


def test_top_once_shows_sites_gpus_contracts_then_the_fault_and_the_violation(
    demo: tuple[LiveServer, StratumClient, dict[str, str]],
) -> None:
    _, client, env = demo
    first = run_cli("top", "--once", env=env)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "fra-1" in out and "/400 kW" in out and "Contracts: Running 5" in out
    assert "✗" not in gpu_rows(out) and "Latest violations: none" in out
    node = fail_a_gpu(client)
    wait_for(
        lambda: client.get("Workload", "llama-finetune", "research")["status"].get("violations"),
        "the violation",
    )
    after = run_cli("top", "--once", env=env).stdout
    row = next(line for line in after.splitlines() if line.startswith(node))
    assert "✗" in row, row
    assert "research/llama-finetune" in after and "compute" in after
    assert f"GPU 3 on {node}" in after


def test_top_refreshes_in_place_in_a_terminal(
    demo: tuple[LiveServer, StratumClient, dict[str, str]], tmp_path: Path
) -> None:
    if shutil.which("tmux") is None:
        # .ci/run installs tmux: in CI a missing tmux is a failure, not a skip.
        assert not os.environ.get("CI"), "tmux is missing on CI: .ci/run should install it"
        pytest.skip("needs tmux (Debian package tmux) for a real terminal")
    _, client, env = demo
    socket = f"stratum-top-{uuid.uuid4().hex[:8]}"
    command = " ".join(
        [
            *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
            shlex.quote(sys.executable),
            "-m",
            "stratum",
            "top",
            "--interval",
            "0.5",
            "--nodes",
            "6",
        ]
    )
    tmux = ["tmux", "-L", socket]
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "170", "-y", "60", "-c", str(REPO), f"env {command}"],
        check=True,
        timeout=10,
    )
    subprocess.run([*tmux, "resize-window", "-x", "170", "-y", "60"], timeout=10, check=False)

    def screen() -> str:
        if (
            subprocess.run(
                [*tmux, "has-session"], capture_output=True, timeout=10, check=False
            ).returncode
            != 0
        ):
            return "(top exited)"
        return subprocess.run(
            [*tmux, "capture-pane", "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout

    try:
        seen: list[str] = []

        def five_running() -> str | bool:
            seen.append(screen())
            return "Contracts: Running 5" in seen[-1] and seen[-1]

        first = wait_for(
            five_running,
            "the first frame",
            on_timeout=lambda: seen[-1:],
        )
        assert "✗" not in gpu_rows(first)
        node = fail_a_gpu(client)
        shown = wait_for(
            lambda: (s := screen()) and "✗" in gpu_rows(s) and "compute" in s and s,
            "the faulted GPU and the violation on screen",
            timeout=15,
        )
        assert node in shown and "llama-finetune" in shown
        assert shown.count("Stratum top") == 1, "refreshed in place, not appended"
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10, check=False)


def test_events_read_well_in_get_and_describe(
    demo: tuple[LiveServer, StratumClient, dict[str, str]],
) -> None:
    _, client, env = demo
    fail_a_gpu(client)
    wait_for(
        lambda: client.get("Workload", "llama-finetune", "research")["status"].get("attempt") == 2,
        "the re-placement",
    )
    listed = run_cli("get", "events", "-n", "research", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:5] == ["NAMESPACE", "LAST", "SEEN", "TYPE", "REASON"]
    reasons = [line.split()[3] for line in lines[1:]]
    # Oldest first: the contract was bound before it was violated and re-placed.
    assert reasons.index("Bound") < reasons.index("ContractViolated") < reasons.index("Remediating")
    wide = run_cli("get", "events", "-n", "research", "-o", "wide", env=env).stdout
    assert "FIRST SEEN" in wide and "SOURCE" in wide
    described = run_cli("describe", "workload", "llama-finetune", "-n", "research", env=env)
    assert "ContractViolated" in described.stdout and "LAST SEEN" in described.stdout
