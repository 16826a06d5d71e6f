"""The state directory of the local runtime: one directory per replica of each attempt,
shared by the runtime (in the server or an agent) and the supervisors (their own processes).

    <state_dir>/runs/<namespace>/<name>/<uid>/<attempt>/<replica>/
        launch.json      what to run and how to pin it (written once, by the runtime)
        supervisor.json  the supervisor's pid and start time (written by the supervisor)
        state.json       phase, pid, exit code, restarts, host checks (the supervisor)
        output.log       the process's stdout and stderr, in the order written
        stop             asked to stop: no more restarts (the runtime)

Every JSON file is written whole (a temporary file renamed over it), so a reader never
sees half of one, whichever process dies when.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratum.core.clock import SystemClock

LAUNCH = "launch.json"
SUPERVISOR = "supervisor.json"
STATE = "state.json"
OUTPUT = "output.log"
STOP = "stop"


@dataclass(frozen=True, slots=True)
class RunDir:
    """One replica of one attempt of one workload."""

    path: Path
    namespace: str
    name: str
    uid: str
    attempt: int
    replica: int

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def stopped(self) -> bool:
        return (self.path / STOP).exists()

    def stopped_at(self) -> float | None:
        """When it was asked to stop (wall-clock seconds, as the stop file says); None if
        it was not."""
        try:
            text = (self.path / STOP).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return float(text)
        except ValueError:
            return (self.path / STOP).stat().st_mtime

    def read(self, file: str) -> dict[str, Any] | None:
        return read_json(self.path / file)

    def write(self, file: str, data: dict[str, Any]) -> None:
        write_json(self.path / file, data)


def run_dir(state_dir: Path, key: str, uid: str, attempt: int, replica: int) -> RunDir:
    namespace, _, name = key.partition("/")
    path = state_dir / "runs" / namespace / name / safe(uid) / str(attempt) / str(replica)
    return RunDir(path, namespace, name, safe(uid), attempt, replica)


def key_dirs(state_dir: Path, key: str) -> Iterator[RunDir]:
    """Every replica directory of every attempt of `key` (any uid)."""
    namespace, _, name = key.partition("/")
    yield from _uids(state_dir / "runs" / namespace / name, namespace, name)


def all_dirs(state_dir: Path) -> Iterator[RunDir]:
    runs = state_dir / "runs"
    for ns in _subdirs(runs):
        for name in _subdirs(ns):
            yield from _uids(name, ns.name, name.name)


def _uids(base: Path, namespace: str, name: str) -> Iterator[RunDir]:
    for uid in _subdirs(base):
        for attempt in _subdirs(uid):
            if not attempt.name.isdigit():
                continue
            for replica in _subdirs(attempt):
                if replica.name.isdigit():
                    yield RunDir(
                        replica, namespace, name, uid.name, int(attempt.name), int(replica.name)
                    )


def safe(uid: str) -> str:
    """A uid as one path component (uids are UUIDs; anything else is made harmless)."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in uid)
    return cleaned or "no-uid"


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted((Path(e.path) for e in os.scandir(path) if e.is_dir()), key=_order)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _order(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (-1, path.name)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with
    the pid it names one process, so a reused pid is never mistaken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] == "Z":  # a zombie has exited
        return None
    return int(fields[19])


def alive(pid: int | None, start: int | None) -> bool:
    """Whether the process `pid` that started at `start` still runs."""
    if not pid:
        return False
    now = process_start(pid)
    return now is not None and (start is None or now == start)


def wall() -> float:
    """Real seconds since the epoch: what supervisors record, since they outlive the server
    and its clock; the runtime maps them onto its clock (LocalRuntime._at)."""
    return SystemClock().now().timestamp()
