"""LocalBackend (`backend: local`): this host is a node of the Cluster, its hardware as
discovery reads it (or saved outputs, `backendConfig.hardwareFrom`), its work run by the
LocalRuntime in `$STRATUM_HOME/runtime`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from stratum.backends.base import (
    BackendContext,
    ClusterRequest,
    InventoryNode,
    LaunchSpec,
    Observation,
)
from stratum.backends.local.runtime import LocalRuntime
from stratum.core.clock import Clock
from stratum.core.errors import BackendError


class LocalBackend:
    name = "local"
    # Hosts change (a GPU added, a driver upgraded): inventory is read again periodically.
    refresh_inventory = True

    def __init__(self, runtime: LocalRuntime, clock: Clock) -> None:
        self.runtime = runtime
        self.clock = clock
        self._lock = threading.Lock()
        self._nodes: dict[str, InventoryNode] = {}  # node name -> its inventory
        self._clusters: dict[str, list[str]] = {}

    def inventory(self, cluster: ClusterRequest) -> list[InventoryNode]:
        from stratum.discovery import discover_dir, discover_this_host

        config = cluster.config
        source = config.get("hardwareFrom")
        name = config.get("nodeName")
        found = (
            discover_dir(Path(str(source)), name=name) if source else discover_this_host(name=name)
        )
        pool = cluster.pools[0] if cluster.pools else None
        node = InventoryNode(
            name=found.profile.metadata.name,
            cluster=cluster.name,
            site=cluster.site,
            pool=pool.name if pool else "local",
            profile=pool.profile if pool else "",
            rack=str(config.get("rack") or "local"),
            hardware=found.profile.spec,
            discovered=True,
        )
        with self._lock:
            for old in self._clusters.get(cluster.name, []):
                self._nodes.pop(old, None)
            self._clusters[cluster.name] = [node.name]
            self._nodes[node.name] = node
        return [node]

    def forget_cluster(self, cluster: str) -> None:
        with self._lock:
            for name in self._clusters.pop(cluster, []):
                self._nodes.pop(name, None)

    def launch(self, spec: LaunchSpec) -> None:
        with self._lock:
            mine = set(self._nodes)
        wanted = {r.node for r in spec.replicas}
        elsewhere = sorted(wanted - mine)
        if elsewhere:
            raise BackendError(
                f"local backend: node(s) {', '.join(elsewhere)} of {spec.key} are not this host"
            )
        for node in sorted(wanted):
            self.runtime.launch(spec, node)

    def stop(self, key: str) -> None:
        self.runtime.stop(key)

    def observe(self) -> Observation:
        with self._lock:
            nodes = sorted(self._nodes)
        return Observation(
            at=self.clock.now(),
            nodes=tuple(self.runtime.telemetry(n) for n in nodes),
            runs=self.runtime.observe_runs(),
        )

    def logs(self, key: str, replica: int = 0, tail: int | None = None) -> str:
        return self.runtime.logs(key, replica, tail)

    def follow(
        self, key: str, replica: int = 0, tail: int | None = None, poll_seconds: float = 0.2
    ) -> Iterator[str]:
        return self.runtime.follow(key, replica, tail, poll_seconds)


def create(context: BackendContext) -> LocalBackend:
    """The registry's factory: the runtime's state under the server's home directory."""
    home = context.options.get("home")
    if not home:
        raise BackendError("local backend: the server passed no home directory (options['home'])")
    state_dir = Path(context.options.get("local.state_dir") or Path(home) / "runtime")
    runtime = LocalRuntime(
        state_dir, context.clock, cgroup_parent=context.options.get("local.cgroup") or "stratum"
    )
    return LocalBackend(runtime, context.clock)
