"""Discover this host: run the tools that are installed, read sysfs, fall back to NVML.

Commands run with LC_ALL=C (parsers read English labels) and a timeout; a tool that is
missing or fails is a note, not an error. Raw outputs can be saved to a directory that
`stratum discover --from` reads back on another machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stratum.discovery import nvml, sysfs
from stratum.discovery.recognise import parse_text
from stratum.discovery.sources import Facts, Note, merge_all

COMMAND_TIMEOUT_S = 30.0

# (file name when saved, argv). Order: CPU side first, then GPUs, then RDMA.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lscpu.txt", ("lscpu",)),
    ("lscpu-p.txt", ("lscpu", "-p")),
    ("numactl-H.txt", ("numactl", "-H")),
    ("nvidia-smi-L.txt", ("nvidia-smi", "-L")),
    ("nvidia-smi-topo-m.txt", ("nvidia-smi", "topo", "-m")),
    ("nvidia-smi-q-x.xml", ("nvidia-smi", "-q", "-x")),
    ("nvidia-smi-nvlink-s.txt", ("nvidia-smi", "nvlink", "--status")),
    ("ibstat.txt", ("ibstat",)),
)

Runner = Callable[[Sequence[str]], "CommandResult"]


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


def run_command(argv: Sequence[str]) -> CommandResult:
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        done = subprocess.run(  # fixed argv, no shell
            list(argv),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            env=env,
            check=False,
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"timed out after {COMMAND_TIMEOUT_S:g}s")
    except OSError as exc:
        return CommandResult(127, "", exc.strerror or str(exc))
    return CommandResult(done.returncode, done.stdout, done.stderr)


def discover_host(
    *,
    root: Path = Path("/"),
    runner: Runner = run_command,
    save_to: Path | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> Facts:
    results: list[Facts] = []
    notes: list[Note] = []
    have_nvidia_smi = which("nvidia-smi") is not None
    for file_name, argv in COMMANDS:
        if which(argv[0]) is None:
            if argv[0] not in ("numactl", "ibstat", "nvidia-smi"):
                notes.append(Note(argv[0], "not installed; skipped"))
            continue
        result = runner(argv)
        label = " ".join(argv)
        if result.returncode != 0 or not result.stdout.strip():
            reason = (result.stderr.strip() or f"exit status {result.returncode}").splitlines()
            notes.append(Note(label, f"failed: {reason[0] if reason else 'no output'}"))
            continue
        if save_to is not None:
            save_to.mkdir(parents=True, exist_ok=True)
            (save_to / file_name).write_text(
                f"# command: {label}\n{result.stdout}", encoding="utf-8"
            )
        facts, _ = parse_text(label, result.stdout)
        results.append(facts)
    results.append(sysfs.read_sysfs(root))
    if save_to is not None:
        sysfs.save_sysfs(root, save_to)
    if not have_nvidia_smi:
        # No nvidia-smi: NVML still works where the driver is installed without the tool.
        results.append(nvml.read_nvml())
    hostname = socket.gethostname()
    return merge_all([*results, Facts(notes=tuple(notes), hostname=hostname)])
