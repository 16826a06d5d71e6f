"""Read back what a replica's process really got, after launch: its environment
(/proc/PID/environ), its CPU affinity, its cgroup's limits, its NUMA memory policy, and
NVML's view of the GPUs it was given. Each clause becomes a host check: verified on the
host, not enforceable here (and why), a mismatch, or unverified (gone before it was read)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratum.backends.local.cgroup import Cgroup
from stratum.core.cpulist import format_cpulist, parse_cpulist

if TYPE_CHECKING:  # imported when used: the supervisor starts before it needs NVML
    from stratum.discovery.nvml import GpuReading

GpuSource = Callable[[], "tuple[GpuReading, ...] | None"]

Check = dict[str, str]
# A read that races the process's own start (numactl sets its policy, then execs) is
# tried again for this long before it counts as a mismatch.
SETTLE_SECONDS = 1.0


def check(clause: str, state: str, message: str) -> Check:
    return {"clause": clause, "state": state, "message": message}


def environ(pid: int) -> dict[str, str] | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def verify(
    pid: int,
    pin: dict[str, Any],
    group: Cgroup | None,
    cgroup_reason: str,
    *,
    gpus: GpuSource | None = None,
) -> list[Check]:
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        checks = _once(pid, pin, group, cgroup_reason)
        settled = all(c["state"] != "mismatch" for c in checks)
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    notes: dict[str, str] = pin.get("notes") or {}
    devices = (pin.get("env") or {}).get("CUDA_VISIBLE_DEVICES", "")
    out = [_nvml(c, devices, gpus) if c["clause"] == "compute.gpus" else c for c in checks]
    known = {c["clause"] for c in out}
    out += [
        check(clause, "not-enforceable", m) for clause, m in notes.items() if clause not in known
    ]
    return out


def _once(pid: int, pin: dict[str, Any], group: Cgroup | None, why_not: str) -> list[Check]:
    checks: list[Check] = []
    env = environ(pid)
    notes: dict[str, str] = pin.get("notes") or {}
    wanted_env: dict[str, str] = pin.get("env") or {}
    if "CUDA_VISIBLE_DEVICES" in wanted_env:
        checks.append(_env_check("compute.gpus", env, wanted_env, notes))
    if pin.get("gpuMilli"):
        if "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE" in wanted_env:
            checks.append(_env_check("compute.gpuMilli", env, wanted_env, notes, mps=True))
        else:
            checks.append(check("compute.gpuMilli", "not-enforceable", notes["compute.gpuMilli"]))
    if pin.get("cpus"):
        checks.append(_cpus(pid, pin["cpus"], group, notes))
    if pin.get("memoryBytes"):
        checks.append(_memory(pid, int(pin["memoryBytes"]), group, why_not))
    if pin.get("numaNode") is not None:
        checks.append(_numa(pid, int(pin["numaNode"]), pin, group))
    return checks


def _env_check(
    clause: str,
    env: dict[str, str] | None,
    wanted: dict[str, str],
    notes: dict[str, str],
    *,
    mps: bool = False,
) -> Check:
    names = (
        ("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE",)
        if mps
        else ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")
    )
    if env is None:
        return check(clause, "unverified", "the process ended before its environment was read")
    wrong = [n for n in names if env.get(n) != wanted[n]]
    if wrong:
        got = ", ".join(f"{n}={env.get(n)!r}" for n in wrong)
        return check(clause, "mismatch", f"/proc environ has {got}, bound {wanted[names[0]]}")
    said = f"{names[0]}={wanted[names[0]]} in the process's environment (/proc)"
    if mps:
        said += " under the MPS daemon"
    if clause in notes:
        return check(clause, "not-enforceable", f"{said}; but {notes[clause]}")
    return check(clause, "verified", said)


def _nvml(found: Check, devices: str, gpus: GpuSource | None) -> Check:
    """NVML's view of the devices CUDA_VISIBLE_DEVICES names: present on this host?"""
    if found["state"] != "verified":
        return found
    if gpus is None:
        from stratum.discovery.nvml import read_gpu_telemetry

        gpus = read_gpu_telemetry
    readings = gpus()
    if readings is None:
        return check(
            found["clause"],
            "verified",
            found["message"] + "; NVML is not available here, so the devices themselves "
            "were not checked",
        )
    wanted = devices.split(",")
    by_uuid = {r.uuid: r for r in readings}
    by_uuid.update({m: r for r in readings for m in r.mig_uuids})
    by_index = {str(r.index): r for r in readings}
    seen, missing = [], []
    for device in wanted:
        reading = by_uuid.get(device) or by_index.get(device)
        if reading is None:
            missing.append(device)
        else:
            seen.append(f"{device} = GPU {reading.index} {reading.uuid} ({reading.name})")
    if missing:
        return check(
            found["clause"], "mismatch", f"NVML on this host has no device {', '.join(missing)}"
        )
    return check(found["clause"], "verified", found["message"] + "; NVML: " + "; ".join(seen))


def _cpus(pid: int, cpus: list[int], group: Cgroup | None, notes: dict[str, str]) -> Check:
    wanted = frozenset(cpus)
    try:
        got = frozenset(os.sched_getaffinity(pid))
    except OSError:
        return check("compute.cpuSet", "unverified", "the process ended before it was read")
    if got != wanted:
        return check(
            "compute.cpuSet",
            "mismatch",
            f"sched_getaffinity gives CPUs {format_cpulist(got)}, bound {format_cpulist(wanted)}",
        )
    said = f"sched_getaffinity: CPUs {format_cpulist(got)}"
    effective = group.effective_cpus() if group is not None else None
    if effective is not None and group is not None and "cpuset" in group.dirs:
        if parse_cpulist(effective) != wanted or not group.holds(pid):
            return check(
                "compute.cpuSet",
                "mismatch",
                f"{said}, but its cgroup cpuset has {effective or 'nothing'}",
            )
        said += f"; cgroup v{group.version} cpuset {effective}"
    if "compute.cpuSet" in notes:
        return check("compute.cpuSet", "mismatch", f"{said}; {notes['compute.cpuSet']}")
    return check("compute.cpuSet", "verified", said)


def _memory(pid: int, limit: int, group: Cgroup | None, why_not: str) -> Check:
    mib = limit // (1024 * 1024)
    if group is None or "memory" not in group.dirs:
        return check(
            "compute.memory",
            "not-enforceable",
            f"no writable memory cgroup on this host ({why_not}): the {mib} MiB limit is "
            "not enforced",
        )
    got = group.memory_limit()
    if got != limit or not group.holds(pid):
        return check("compute.memory", "mismatch", f"cgroup memory limit {got}, bound {limit}")
    name = "memory.max" if group.version == 2 else "memory.limit_in_bytes"
    return check("compute.memory", "verified", f"cgroup v{group.version} {name} = {mib} MiB")


def _numa(pid: int, node: int, pin: dict[str, Any], group: Cgroup | None) -> Check:
    if group is not None and "cpuset" in group.dirs:
        mems = _status_field(pid, "Mems_allowed_list")
        if mems is not None and parse_cpulist(mems) == {node}:
            return check(
                "topology.numaAligned",
                "verified",
                f"memory on NUMA node {node} (cgroup cpuset.mems)",
            )
    if pin.get("numactl"):
        try:
            maps = Path(f"/proc/{pid}/numa_maps").read_text()
        except OSError:
            return check(
                "topology.numaAligned", "unverified", "the process ended before it was read"
            )
        if f"bind:{node}" in maps:
            return check(
                "topology.numaAligned", "verified", f"numactl --membind={node} (/proc numa_maps)"
            )
        return check(
            "topology.numaAligned", "mismatch", f"/proc numa_maps shows no bind to node {node}"
        )
    return check(
        "topology.numaAligned",
        "not-enforceable",
        f"neither numactl nor a cpuset cgroup here: memory is not bound to NUMA node {node}",
    )


def _status_field(pid: int, name: str) -> str | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None
