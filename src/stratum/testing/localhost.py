"""For tests of the local runtime (backend: local): a real program that prints what it was
given, the manifests of a Cluster whose node is this host, and the look-ups that show what
really runs (processes by workload, leftover cgroups)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

from stratum.backends.local import cgroup

API = "stratum.dev/v1alpha1"

# Prints its pinning, then sleeps SECONDS and exits with CODE. With "trap" it ignores
# SIGTERM (so that only SIGKILL ends it); otherwise SIGTERM ends it with code 143.
PROGRAM = """\
import os, signal, sys, time
print("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", ""), flush=True)
print("NVIDIA_VISIBLE_DEVICES=" + os.environ.get("NVIDIA_VISIBLE_DEVICES", ""), flush=True)
print("affinity=" + ",".join(str(c) for c in sorted(os.sched_getaffinity(0))), flush=True)
print("replica=" + os.environ.get("STRATUM_REPLICA", ""), flush=True)
seconds, code = float(sys.argv[1]), int(sys.argv[2])
def on_term(signum, frame):
    print("got SIGTERM", flush=True)
    if "trap" not in sys.argv:
        sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    time.sleep(0.05)
print("done", flush=True)
sys.exit(code)
"""


def write_program(directory: Path) -> Path:
    path = directory / "pinned.py"
    path.write_text(PROGRAM, encoding="utf-8")
    return path


def local_cluster(
    name: str, site: str, *, hardware_from: Path | None = None, node_name: str | None = None
) -> dict[str, Any]:
    """A Cluster whose one node is this host (backend: local), its hardware discovered here
    or read from saved outputs (`hardwareFrom`, as `stratum discover --from` reads)."""
    config: dict[str, Any] = {}
    if hardware_from is not None:
        config["hardwareFrom"] = str(hardware_from)
    if node_name is not None:
        config["nodeName"] = node_name
    return {
        "apiVersion": API,
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"site": site, "backend": "local", "backendConfig": config},
    }


def cgroup_parent() -> str:
    """A cgroup parent of its own per test, so that tests never share one."""
    return f"stratum-test-{uuid.uuid4().hex[:8]}"


def memory_cgroup_writable(parent: str) -> bool:
    """Whether this host lets the runtime set a memory limit (root, or a delegated cgroup)."""
    group, _ = cgroup.create(
        "probe", parent=parent, cpus=None, numa_node=None, memory_bytes=1 << 30
    )
    if group is None:
        return False
    writable = "memory" in group.dirs
    group.remove()
    remove_cgroups(parent)
    return writable


def remove_cgroups(parent: str, wait_seconds: float = 5.0) -> None:
    """The parent cgroup a test's runs used, in every hierarchy, once its replicas' processes
    are gone (a supervisor removes its own cgroup just after its process ends)."""
    deadline = time.monotonic() + wait_seconds
    for base in (cgroup.ROOT, cgroup.ROOT / "cpuset", cgroup.ROOT / "memory"):
        path = base / parent
        while path.is_dir():
            for leaf in (p for p in path.iterdir() if p.is_dir()):
                with contextlib.suppress(OSError):
                    leaf.rmdir()
            with contextlib.suppress(OSError):
                path.rmdir()
            if not path.is_dir() or time.monotonic() > deadline:
                break
            time.sleep(0.05)


def processes_of(key: str, program: Path) -> list[int]:
    """Every process on this host that runs a replica of workload `key` (by the
    STRATUM_WORKLOAD its environment carries) with this test's `program` (tests running
    side by side use the same workload names): a second copy would show here."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if f"STRATUM_WORKLOAD={key}".encode() in environ.split(b"\0") and str(
            program
        ).encode() in cmdline.split(b"\0"):
            pids.append(int(entry.name))
    return sorted(pids)
