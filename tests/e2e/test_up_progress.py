"""`stratum up` on a terminal shows what it is doing on one status line (preparing the store,
seeding the demo, the demo's work binding) and then says the demo's work runs; with
--quiet, and off a terminal (the newcomer test), it shows the banner and that line only."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from stratum.testing.harness import free_port

ESC = "\x1b["


def run_on_a_terminal(home: Path, *args: str, until: str, timeout: float = 120) -> str:
    """`stratum up ARGS` with a pseudo-terminal as its output, read until `until` shows."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stratum", "up", "--port", str(free_port()), *args],
        env={**os.environ, "STRATUM_HOME": str(home), "COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while until.encode() not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        os.close(leader)
    return seen.decode(errors="replace")


def test_up_shows_its_progress_on_a_terminal_unless_quiet(tmp_path: Path) -> None:
    shown = run_on_a_terminal(tmp_path, until="demo work running")
    for step in (
        "opening the store",
        "seeding the demo fleet and the catalog",
        "Stratum is up",
        "demo work running: 5 workloads",
    ):
        assert step in shown, (step, shown[-3000:])
    assert ESC in shown  # a live status line, redrawn in place

    quiet = run_on_a_terminal(tmp_path, "--quiet", until="demo work running")
    assert "Stratum is up" in quiet and "demo work running: 5 workloads" in quiet
    assert "seeding the demo fleet" not in quiet and "opening the store" not in quiet
