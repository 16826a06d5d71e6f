"""ClusterController: a Cluster's node pools become Node objects on its backend."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from stratum.api.v1alpha1 import Cluster, Node
from stratum.api.v1alpha1.meta import Condition, ConditionStatus
from stratum.backends.base import Backend, ClusterRequest, InventoryNode, PoolRequest
from stratum.core.clock import Clock
from stratum.core.errors import Conflict, NotFound
from stratum.core.secrets import Keyring, open_credentials
from stratum.reconcile.backoff import KeyedBackoff
from stratum.reconcile.cluster_templates import TemplateProblem, effective_spec
from stratum.reconcile.events import record_event
from stratum.reconcile.world import World, wire
from stratum.store.objects import ObjectStore

log = logging.getLogger("stratum.reconcile.clusters")


class ClusterController:
    def __init__(
        self,
        store: ObjectStore,
        backends: dict[str, Backend],
        clock: Clock,
        *,
        keyring: Keyring | None = None,
        inventory_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.backends = backends
        self.clock = clock
        self._synced: dict[str, tuple[str, int]] = {}  # cluster -> (uid, generation) known
        # Backends whose hosts come and go (refresh_inventory) are asked again this often.
        self.inventory_seconds = inventory_seconds
        self._refreshed: dict[str, datetime] = {}
        self.backoff = KeyedBackoff()

    def reconcile(self, world: World) -> None:
        for name, cluster in sorted(world.clusters.items()):
            backend = self.backends.get(cluster.spec.backend)
            if backend is None:
                self._set_status(
                    cluster,
                    "Pending",
                    "BackendUnavailable",
                    f"this server runs no {cluster.spec.backend!r} backend",
                    world,
                )
                continue
            known = self._synced.get(name)
            current = (cluster.metadata.uid or "", cluster.metadata.generation or 0)
            now = self.clock.now()
            refresh = known == current and cluster.status.observed_generation == current[1]
            if refresh and not self._refresh_due(name, backend, now):
                continue
            if not self.backoff.ready(name, now, cluster.metadata.generation):
                continue
            try:
                self._sync(cluster, backend, world, refresh=refresh)
                self.backoff.succeeded(name)
            except (Conflict, NotFound):
                continue  # changed meanwhile: the next pass reads it again
            except Exception as err:  # one broken cluster must not stop the others
                delay = self.backoff.failed(name, now, err, cluster.metadata.generation)
                log.warning("cluster %s: %s (next try in %.1fs)", name, err, delay)
                self._set_status(cluster, "Degraded", type(err).__name__, str(err)[:1000], world)
        for name in set(self._synced) - set(world.clusters):
            for backend in self.backends.values():
                backend.forget_cluster(name)
            del self._synced[name]
            self._refreshed.pop(name, None)
        self._delete_orphans(world)

    def _refresh_due(self, name: str, backend: Backend, now: datetime) -> bool:
        """A backend that discovers its hosts is asked again while the Cluster is unchanged,
        so that hosts (and their hardware) that come and go are seen; a backend that
        watches its cluster (kubernetes) says when its nodes changed."""
        changed = getattr(backend, "inventory_changed", None)
        if changed is not None and changed(name):
            return True
        if not getattr(backend, "refresh_inventory", False):
            return False
        last = self._refreshed.get(name)
        return last is None or (now - last).total_seconds() >= self.inventory_seconds

    def _sync(
        self, cluster: Cluster, backend: Backend, world: World, *, refresh: bool = False
    ) -> None:
        try:
            spec = effective_spec(self.store, cluster)  # spec.template fills the gaps
        except TemplateProblem as problem:
            self._set_status(cluster, "Pending", problem.reason, problem.message, world)
            return
        pools = []
        for pool in spec.node_pools:
            profile = world.profiles.get(pool.profile)
            if profile is None:
                self._set_status(
                    cluster,
                    "Pending",
                    "ProfileNotFound",
                    f"node pool {pool.name}: HardwareProfile {pool.profile!r} does not exist",
                    world,
                )
                return
            pools.append(
                PoolRequest(
                    pool.name,
                    pool.profile,
                    profile.spec,
                    pool.count,
                    pool.rack_prefix or "",
                    pool.nodes_per_rack,
                )
            )
        if cluster.spec.site not in world.sites:
            self._set_status(
                cluster,
                "Pending",
                "SiteNotFound",
                f"Site {cluster.spec.site!r} does not exist",
                world,
            )
            return
        # Decrypted here, for the backend only; an unreadable secret degrades the cluster.
        credentials = open_credentials(self.keyring, wire(cluster))
        inventory = backend.inventory(
            ClusterRequest(
                cluster.metadata.name,
                cluster.spec.site,
                tuple(pools),
                credentials,
                config=spec.backend_config,
            )
        )  # outside any transaction
        self._refreshed[cluster.metadata.name] = self.clock.now()
        self._write_nodes(cluster, inventory, world, only_changes=refresh)
        self._synced[cluster.metadata.name] = (
            cluster.metadata.uid or "",
            cluster.metadata.generation or 0,
        )

    def _write_nodes(
        self,
        cluster: Cluster,
        inventory: list[InventoryNode],
        world: World,
        *,
        only_changes: bool = False,
    ) -> None:
        """The Cluster's Nodes as the inventory has them. `only_changes` (a periodic
        refresh): nothing is written, and no Event recorded, when no Node changed."""
        wanted = {n.name: n for n in inventory}
        mine = {k: n for k, n in world.nodes.items() if n.spec.cluster == cluster.metadata.name}
        specs = {name: _node_spec(inv) for name, inv in wanted.items()}
        unchanged = set(mine) == set(wanted) and all(
            _same_spec(mine[name], spec) for name, spec in specs.items()
        )
        if only_changes and unchanged:
            return
        now = self.clock.now()
        with self.store.write() as tx:
            for name, inv in wanted.items():
                spec = specs[name]
                labels = {
                    **inv.labels,
                    "stratum.dev/cluster": inv.cluster,
                    "stratum.dev/site": inv.site,
                    "stratum.dev/rack": inv.rack,
                    "stratum.dev/pool": inv.pool,
                }
                existing = mine.get(name)
                if existing is None:
                    tx.create(
                        {
                            "apiVersion": "stratum.dev/v1alpha1",
                            "kind": "Node",
                            "metadata": {"name": name, "labels": labels},
                            "spec": spec,
                            "status": {"phase": "Ready", "conditions": []},
                        }
                    )
                elif not _same_spec(existing, spec):
                    body = wire(existing)
                    body["spec"].update(spec)
                    tx.replace(body)
            for name in set(mine) - set(wanted):
                if _managed(mine[name]):  # hosts that joined by themselves (agents) stay
                    tx.delete("Node", "", name)
            gpus = sum(len(n.hardware.gpus) for n in inventory)
            fresh = world.clusters[cluster.metadata.name]
            body = wire(fresh)
            body["status"].update(
                {
                    "phase": "Ready",
                    "nodes": len(inventory),
                    "gpus": gpus,
                    "observedGeneration": fresh.metadata.generation,
                    "conditions": [
                        _condition(
                            "Ready",
                            "True",
                            "NodesRegistered",
                            f"{len(inventory)} nodes, {gpus} GPUs",
                            now,
                            fresh.metadata.generation,
                        )
                    ],
                }
            )
            tx.replace(body, status_only=True)
            record_event(
                tx,
                fresh,
                reason="NodesRegistered",
                message=f"{len(inventory)} nodes with {gpus} GPUs on {fresh.spec.backend}",
                at=now,
            )

    def _set_status(
        self, cluster: Cluster, phase: str, reason: str, message: str, world: World
    ) -> None:
        current = cluster.status.conditions[0] if cluster.status.conditions else None
        if current is not None and current.reason == reason and current.message == message:
            return
        now = self.clock.now()
        body = wire(cluster)
        body["status"].update(
            {
                "phase": phase,
                "observedGeneration": cluster.metadata.generation,
                "conditions": [
                    _condition("Ready", "False", reason, message, now, cluster.metadata.generation)
                ],
            }
        )
        try:
            with self.store.write() as tx:
                tx.replace(body, status_only=True)
                record_event(tx, cluster, reason=reason, message=message, at=now, type="Warning")
        except (Conflict, NotFound):
            return  # changed or gone meanwhile: the next pass sees the new state

    def _delete_orphans(self, world: World) -> None:
        orphans = [
            n for n in world.nodes.values() if n.spec.cluster not in world.clusters and _managed(n)
        ]
        if not orphans:
            return
        with self.store.write() as tx:
            for node in orphans:
                if tx.find("Node", "", node.metadata.name) is not None:
                    tx.delete("Node", "", node.metadata.name)


def _node_spec(inv: InventoryNode) -> dict[str, Any]:
    spec: dict[str, Any] = {"cluster": inv.cluster, "site": inv.site, "rack": inv.rack}
    if inv.profile:
        spec["profile"] = inv.profile
    if inv.discovered or not inv.profile:
        # The machine as discovery read it (a host, a cluster's node and its DRA devices):
        # the scheduler places on this, not a profile.
        spec["hardware"] = inv.hardware.model_dump(mode="json", by_alias=True, exclude_none=True)
    return spec


def _same_spec(node: Node, spec: dict[str, Any]) -> bool:
    current = wire(node)["spec"]
    return bool(current == {**current, **spec})


def _managed(node: Node) -> bool:
    return "stratum.dev/pool" in node.metadata.labels


def _condition(
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    at: datetime,
    generation: int | None,
) -> dict[str, object]:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=at,
        observed_generation=generation,
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
