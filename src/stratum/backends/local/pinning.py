"""What a replica is pinned to, and how, on this host: the plan the runtime writes into the
replica's launch.json and the supervisor applies.

GPUs by environment (CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES name exactly the bound
devices: a MIG instance by its UUID, GPUs by UUID where discovery knew them, else by index
in PCI order); a milli-GPU share through MPS where an MPS daemon runs; CPUs and memory
through a cgroup (cgroup.py) with sched_setaffinity always applied as well; memory bound
to the NUMA node by numactl where it is installed. What cannot be enforced here is said so
in the plan, and the supervisor's read-back (verify.py) reports it as "not enforceable".
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratum.backends.base import ReplicaLaunch
from stratum.core.cpulist import CpuListError, format_cpulist, parse_cpulist

MIB = 1024 * 1024
MPS_PIPE_DEFAULT = "/tmp/nvidia-mps"


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What this host offers for pinning (read once per launch; a test may hand its own)."""

    cpus: frozenset[int]
    numa_nodes: frozenset[int]
    numactl: str | None
    mps_pipe: str | None  # the pipe directory of a running MPS control daemon

    @classmethod
    def read(cls, root: Path = Path("/")) -> HostFacts:
        cpus = frozenset(os.sched_getaffinity(0))
        try:
            online = (root / "sys/devices/system/node/online").read_text()
            numa = parse_cpulist(online)
        except (OSError, CpuListError):
            numa = frozenset({0})
        return cls(cpus, numa, shutil.which("numactl"), _mps_pipe())


def _mps_pipe() -> str | None:
    pipe = os.environ.get("CUDA_MPS_PIPE_DIRECTORY") or MPS_PIPE_DEFAULT
    return pipe if Path(pipe, "control").exists() else None


def visible_devices(replica: ReplicaLaunch) -> str | None:
    """The value of CUDA_VISIBLE_DEVICES for this binding (None: no GPU bound)."""
    if replica.mig_instance and replica.mig_instance.startswith("MIG-"):
        return replica.mig_instance
    if not replica.gpus:
        return None
    if replica.gpu_uuids and len(replica.gpu_uuids) == len(replica.gpus):
        return ",".join(replica.gpu_uuids)
    return ",".join(str(g) for g in replica.gpus)


def plan(replica: ReplicaLaunch, host: HostFacts) -> dict[str, Any]:
    """The pinning of one replica, as launch.json keeps it. `notes` says, per clause, why
    something the contract bound cannot be enforced on this host."""
    env: dict[str, str] = {}
    notes: dict[str, str] = {}
    devices = visible_devices(replica)
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = devices
        env["NVIDIA_VISIBLE_DEVICES"] = devices
        if not devices.startswith(("GPU-", "MIG-")):
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # indices as nvidia-smi numbers them
        if replica.mig_instance and not devices.startswith("MIG-"):
            notes["compute.gpus"] = (
                f"MIG instance {replica.mig_instance!r} has no UUID in the node's discovered "
                "hardware: the whole GPU is visible"
            )
    if replica.gpu_milli:
        percentage = max(1, math.ceil(replica.gpu_milli / 10))
        if host.mps_pipe:
            env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = str(percentage)
            env["CUDA_MPS_PIPE_DIRECTORY"] = host.mps_pipe
        else:
            notes["compute.gpuMilli"] = (
                f"no MPS daemon runs on this host: the share of {replica.gpu_milli}/1000 of "
                "the GPU is not enforced (the process may use all of it)"
            )
    cpus: list[int] | None = None
    if replica.cpu_set:
        wanted = parse_cpulist(replica.cpu_set)
        missing = wanted - host.cpus
        if missing:
            notes["compute.cpuSet"] = (
                f"CPUs {format_cpulist(missing)} of the bound set {replica.cpu_set} do not "
                f"exist on this host (it has {format_cpulist(host.cpus)})"
            )
        cpus = sorted(wanted & host.cpus) or None
    numa: int | None = None
    numactl: list[str] = []
    if replica.numa_node is not None:
        if replica.numa_node not in host.numa_nodes:
            notes["topology.numaAligned"] = (
                f"NUMA node {replica.numa_node} does not exist on this host (it has "
                f"{format_cpulist(host.numa_nodes)})"
            )
        else:
            numa = replica.numa_node
            if host.numactl:
                numactl = [host.numactl, f"--membind={numa}", "--"]
    if replica.nic:
        env["NCCL_IB_HCA"] = replica.nic
        notes["network.nic"] = (
            f"NCCL_IB_HCA={replica.nic} is set as a hint; the local runtime does not keep "
            "the process off other NICs"
        )
    return {
        "env": env,
        "cpus": cpus,
        "memoryBytes": replica.memory_mib * MIB if replica.memory_mib else None,
        "numaNode": numa,
        "numactl": numactl,
        "gpuMilli": replica.gpu_milli,
        "gpus": list(replica.gpus),
        "notes": notes,
    }
