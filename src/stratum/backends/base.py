"""The one small interface every backend (simulated, local, agent, kubernetes) implements.

The control plane asks a backend for its inventory, launches and stops placements on it, and
observes what really runs there. A backend never touches the store: reconcilers carry state
between the two, so a control-plane outage leaves running work alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.core.clock import Clock

DeviceHealth = Literal["Healthy", "Degraded", "Failed", "Unknown"]
RunPhase = Literal["Starting", "Running", "Succeeded", "Failed", "Lost"]


@dataclass(frozen=True, slots=True)
class PoolRequest:
    """One node pool of a Cluster, with its hardware profile resolved."""

    name: str
    profile: str
    hardware: HardwareProfileSpec
    count: int
    rack_prefix: str
    nodes_per_rack: int


@dataclass(frozen=True, slots=True)
class ClusterRequest:
    name: str
    site: str
    pools: tuple[PoolRequest, ...]
    # The Cluster's credentials in plaintext (kubeconfig, bootstrap token): for the backend
    # to use, never to log; kept out of repr.
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class InventoryNode:
    name: str
    cluster: str
    site: str
    pool: str
    profile: str
    rack: str
    hardware: HardwareProfileSpec
    # Labels for the Node object (zone, region, how its GPUs are allocated); a node whose
    # `profile` is "" is described by `hardware` alone (discovered, not from a profile).
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplicaLaunch:
    replica: int
    node: str
    gpus: tuple[int, ...] = ()
    gpu_milli: int | None = None


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """Run one workload's replicas where its placement says. `key` is namespace/name and
    `attempt` grows each time the workload is placed again, so relaunches are distinct."""

    key: str
    uid: str
    attempt: int
    replicas: tuple[ReplicaLaunch, ...]
    workload_type: str
    image: str | None = None
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    duration_seconds: float | None = None
    # What a cluster backend turns into its own objects (Kubernetes: a PriorityClass per
    # level, the tenant namespace's ResourceQuota); None: the tenant has no GPU quota.
    priority: int = 0
    quota_gpus: int | None = None


@dataclass(frozen=True, slots=True)
class GpuObservation:
    index: int
    health: DeviceHealth
    utilization_pct: float
    memory_used_gib: float
    power_w: float
    temperature_c: float
    ecc_errors: int = 0
    nvlink_degraded: bool = False


@dataclass(frozen=True, slots=True)
class NodeObservation:
    name: str
    reachable: bool
    gpus: tuple[GpuObservation, ...]
    power_w: float
    power_capped: bool = False


@dataclass(frozen=True, slots=True)
class RunObservation:
    key: str
    uid: str
    attempt: int
    phase: RunPhase
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    p99_latency_ms: float | None = None
    throughput_rps: float | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    at: datetime
    nodes: tuple[NodeObservation, ...]
    runs: tuple[RunObservation, ...]
    site_power_kw: dict[str, float] = field(default_factory=dict)
    site_power_cap_kw: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackendContext:
    """What every backend is built with (backends/registry.py): the process's one clock,
    the seed, and its own options from the server's settings."""

    clock: Clock
    seed: int = 0
    options: Mapping[str, str] = field(default_factory=dict)


class Backend(Protocol):
    """What the reconcilers need of a data plane."""

    name: str

    def inventory(self, cluster: ClusterRequest) -> list[InventoryNode]:
        """The nodes this cluster has (made from its pools, discovered, or read from K8s)."""
        ...

    def forget_cluster(self, cluster: str) -> None:
        """The Cluster object is gone: stop tracking its nodes."""
        ...

    def launch(self, spec: LaunchSpec) -> None:
        """Start (or adopt, if already running with this uid and attempt) a placement."""
        ...

    def stop(self, key: str) -> None:
        """Stop every replica of the workload; a no-op if nothing runs."""
        ...

    def observe(self) -> Observation:
        """What runs, and how the devices are, right now."""
        ...
