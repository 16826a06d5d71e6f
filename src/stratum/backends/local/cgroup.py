"""A cgroup per replica for its CPU set and memory limit: v2 where the unified hierarchy is
mounted at /sys/fs/cgroup with the cpuset and memory controllers and is writable, v1's
cpuset and memory hierarchies otherwise. None where neither can be written (a user without
delegation, a container): the supervisor then pins CPUs with sched_setaffinity alone and
says the memory limit is not enforced here."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from stratum.core.cpulist import format_cpulist

ROOT = Path("/sys/fs/cgroup")


@dataclass(slots=True)
class Cgroup:
    version: int
    # controller -> the replica's directory (v2: one directory under "unified")
    dirs: dict[str, Path] = field(default_factory=dict)

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in dict.fromkeys(self.dirs.values())]

    def join(self) -> None:
        """Move the calling process in (from the child, before exec)."""
        for procs in self.procs_files():
            procs.write_text(str(os.getpid()))

    def effective_cpus(self) -> str | None:
        name = "cpuset.cpus.effective" if self.version == 2 else "cpuset.effective_cpus"
        return _read(self.dirs.get("cpuset"), name)

    def memory_limit(self) -> int | None:
        name = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        text = _read(self.dirs.get("memory"), name)
        return int(text) if text and text.isdigit() else None

    def holds(self, pid: int) -> bool:
        """Whether `pid` is in this cgroup, as /proc/PID/cgroup names it."""
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return False
        paths = {line.split(":", 2)[2] for line in lines if line.count(":") >= 2}
        return all(
            any(p.endswith(f"/{d.parent.name}/{d.name}") for p in paths) for d in self.dirs.values()
        )

    def remove(self) -> None:
        for directory in dict.fromkeys(self.dirs.values()):
            with contextlib.suppress(OSError):  # still busy, or already gone
                directory.rmdir()


def create(
    name: str,
    *,
    parent: str,
    cpus: list[int] | None,
    numa_node: int | None,
    memory_bytes: int | None,
    root: Path = ROOT,
) -> tuple[Cgroup | None, str]:
    """The replica's cgroup with its limits written, or None and why not."""
    if not cpus and numa_node is None and not memory_bytes:
        return None, "nothing to limit"
    try:
        if _unified(root):
            return _create_v2(root, parent, name, cpus, numa_node, memory_bytes)
        if (root / "cpuset" / "cgroup.procs").exists() or (
            root / "memory" / "cgroup.procs"
        ).exists():
            return _create_v1(root, parent, name, cpus, numa_node, memory_bytes)
    except OSError as err:
        return None, f"cgroup not writable here ({err.strerror or err})"
    return None, "no cgroup hierarchy with cpuset or memory is mounted"


def _unified(root: Path) -> bool:
    return (root / "cgroup.controllers").exists()


def _create_v2(
    root: Path,
    parent: str,
    name: str,
    cpus: list[int] | None,
    numa_node: int | None,
    memory_bytes: int | None,
) -> tuple[Cgroup | None, str]:
    available = set((root / "cgroup.controllers").read_text().split())
    wanted = {"cpuset", "memory"} & available
    if not wanted:
        return None, "cgroup v2 offers neither cpuset nor memory here"
    enable = " ".join(f"+{c}" for c in sorted(wanted))
    (root / "cgroup.subtree_control").write_text(enable)
    base = root / parent
    base.mkdir(exist_ok=True)
    (base / "cgroup.subtree_control").write_text(enable)
    leaf = base / name
    leaf.mkdir(exist_ok=True)
    group = Cgroup(2, {c: leaf for c in sorted(wanted)})
    if "cpuset" in wanted:
        if cpus:
            (leaf / "cpuset.cpus").write_text(format_cpulist(cpus))
        if numa_node is not None:
            (leaf / "cpuset.mems").write_text(str(numa_node))
    if "memory" in wanted and memory_bytes:
        (leaf / "memory.max").write_text(str(memory_bytes))
    return group, ""


def _create_v1(
    root: Path,
    parent: str,
    name: str,
    cpus: list[int] | None,
    numa_node: int | None,
    memory_bytes: int | None,
) -> tuple[Cgroup | None, str]:
    group = Cgroup(1)
    cpuset = root / "cpuset"
    if (cpuset / "cgroup.procs").exists() and (cpus or numa_node is not None):
        base = cpuset / parent
        base.mkdir(exist_ok=True)
        # A v1 cpuset starts empty and takes no task until both lists are written.
        for file in ("cpuset.cpus", "cpuset.mems"):
            if not (base / file).read_text().strip():
                (base / file).write_text((cpuset / file).read_text().strip())
        leaf = base / name
        leaf.mkdir(exist_ok=True)
        cpu_text = format_cpulist(cpus) if cpus else (base / "cpuset.cpus").read_text().strip()
        (leaf / "cpuset.cpus").write_text(cpu_text)
        mems = str(numa_node) if numa_node is not None else (base / "cpuset.mems").read_text()
        (leaf / "cpuset.mems").write_text(mems.strip())
        group.dirs["cpuset"] = leaf
    memory = root / "memory"
    if (memory / "cgroup.procs").exists() and memory_bytes:
        leaf = memory / parent / name
        leaf.mkdir(parents=True, exist_ok=True)
        (leaf / "memory.limit_in_bytes").write_text(str(memory_bytes))
        group.dirs["memory"] = leaf
    if not group.dirs:
        return None, "cgroup v1 offers neither cpuset nor memory here"
    return group, ""


def _read(directory: Path | None, name: str) -> str | None:
    if directory is None:
        return None
    try:
        return (directory / name).read_text().strip()
    except OSError:
        return None
