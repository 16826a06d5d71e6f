"""The one small interface every backend (simulated, local, agent, kubernetes) implements.

The control plane asks a backend for its inventory, launches and stops placements on it, and
observes what really runs there. A backend never touches the store: reconcilers carry state
between the two, so a control-plane outage leaves running work alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.core.clock import Clock

DeviceHealth = Literal["Healthy", "Degraded", "Failed", "Unknown"]
RunPhase = Literal["Starting", "Running", "Succeeded", "Failed", "Lost"]
# How a clause of the contract stands on the machine that runs it, as the runtime read it
# back after launch: the step from "evidence from the model" to "evidence from the machine".
# "unverified": enforced, but the process was gone before it could be read back.
HostCheckState = Literal["verified", "not-enforceable", "mismatch", "unverified"]


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
    # The Cluster's spec.backendConfig, as written (the local backend reads `nodeName` and
    # `hardwareFrom` there).
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InventoryNode:
    name: str
    cluster: str
    site: str
    pool: str
    profile: str
    rack: str
    hardware: HardwareProfileSpec
    # Read from the machine (the local runtime, an agent) rather than made from a pool's
    # profile: the Node keeps it in spec.hardware.
    discovered: bool = False
    # Labels for the Node object (zone, region, how its GPUs are allocated); a node whose
    # `profile` is "" is described by `hardware` alone (discovered, not from a profile).
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplicaLaunch:
    """Everything the Placement bound for one replica: the runtime pins exactly this."""

    replica: int
    node: str
    gpus: tuple[int, ...] = ()
    gpu_milli: int | None = None
    # Device UUIDs in the order of `gpus`, where discovery knew them (NVML, DRA).
    gpu_uuids: tuple[str, ...] = ()
    mig_instance: str | None = None
    cpu_set: str | None = None
    numa_node: int | None = None
    cpu_milli: int = 0
    memory_mib: int = 0
    nic: str | None = None


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
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    restart_policy: str = "Never"
    # The contract's MIG profile ("3g.40gb"), for a backend that asks for a slice by its
    # profile (Kubernetes' device plugin); each replica's mig_instance says which one.
    mig_profile: str | None = None
    grace_period_seconds: float = 30.0
    duration_seconds: float | None = None
    # The contract's priority level and isolation, for backends that express them natively
    # (a Kubernetes PriorityClass, a dedicated node's taint).
    priority: int = 0
    dedicated: bool = False
    # The tenant's GPU quota, for a cluster backend that mirrors it (a Kubernetes
    # ResourceQuota in the tenant's namespace); None: the tenant has no GPU quota.
    quota_gpus: int | None = None

    @property
    def namespace(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[-1]


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
    # Host telemetry where the backend reads it (the local runtime, agents); None: unknown.
    cpu_utilization_pct: float | None = None
    memory_used_gib: float | None = None


@dataclass(frozen=True, slots=True)
class HostCheck:
    """One clause as the runtime found it on the host after launch (HostCheckState)."""

    clause: str
    state: HostCheckState
    message: str


@dataclass(frozen=True, slots=True)
class ReplicaRun:
    """One replica's process as its node sees it."""

    replica: int
    node: str
    phase: RunPhase
    exit_code: int | None = None
    pid: int | None = None
    started_at: datetime | None = None
    restarts: int = 0
    message: str = ""
    checks: tuple[HostCheck, ...] = ()


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
    # Per replica, where the backend runs real processes (empty for the simulator).
    replicas: tuple[ReplicaRun, ...] = ()


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
    """What the reconcilers need of a data plane.

    A backend whose nodes come and go on their own (the local host, agents) also sets a
    class attribute `refresh_inventory = True`: the cluster controller then asks for its
    inventory again every so often, even while the Cluster object is unchanged.
    """

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


class NoLogs(LookupError):
    """The backend keeps no output for this workload (or replica); the message says why."""


@runtime_checkable
class LogSource(Protocol):
    """A backend that keeps what its replicas print (the local runtime, agents)."""

    def logs(self, key: str, replica: int = 0, tail: int | None = None) -> str:
        """The output of the latest attempt of `key`'s replica (the last `tail` lines);
        NoLogs when there is none."""
        ...

    def follow(
        self, key: str, replica: int = 0, tail: int | None = None, poll_seconds: float = 0.2
    ) -> Iterator[str]:
        """The output as it grows, until the replica's process has ended; NoLogs first
        when there is none. Yields "" while it waits, so that a reader can stop."""
        ...
