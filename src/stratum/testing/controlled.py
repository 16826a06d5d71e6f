"""A fleet run by the live controllers on a real store, on a fake clock the caller moves:
for tests and benchmarks that must measure what users get (the WorkloadController's
decisions), not a scheduling function alone. The documents it is given come from
stratum.testing.manifests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stratum.api.v1alpha1 import Placement, Workload
from stratum.backends.simulated.backend import SimulatedBackend
from stratum.reconcile.manager import ControllerManager, ManagerSettings
from stratum.reconcile.world import World
from stratum.server.security import system_context
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore
from stratum.testing.clock import FakeClock


class ControlledFleet:
    """Store + ObjectService + ControllerManager + SimulatedBackend on one fake clock."""

    def __init__(
        self, store: ObjectStore, *, seed: int = 7, scheduler_seed: int | None = None
    ) -> None:
        """`seed` drives the simulated backend and, unless `scheduler_seed` is given, the
        placement policy's tie-breaking."""
        self.clock = FakeClock()
        store.clock = self.clock
        self.store = store
        self.service = ObjectService(store)
        self.backend = SimulatedBackend(clock=self.clock, seed=seed)
        self.manager = ControllerManager(
            store,
            {"simulated": self.backend},
            settings=ManagerSettings(
                telemetry_seconds=3600,
                usage_flush_seconds=3600,
                seed=seed if scheduler_seed is None else scheduler_seed,
            ),
        )

    def apply(self, docs: Iterable[Mapping[str, Any]]) -> None:
        self.service.apply_documents([dict(d) for d in docs], ctx=system_context("test"))

    def settle(self, passes: int = 4, seconds: float = 5.0) -> World:
        for _ in range(passes):
            self.manager.run_once()
            self.clock.advance(seconds)
        return World.read(self.store)

    def placements(self) -> dict[str, Placement]:
        return World.read(self.store).placements

    def workloads(self) -> dict[str, Workload]:
        return World.read(self.store).workloads

    def workload(self, key: str) -> Workload:
        """One Workload by "namespace/name"."""
        return World.read(self.store).workloads[key]

    def placement(self, key: str) -> Placement:
        """One Placement by "namespace/name"."""
        return World.read(self.store).placements[key]

    def events(self, name: str) -> list[str]:
        """The reasons of the Events about objects called `name`, in every namespace."""
        with self.store.read() as tx:
            items = tx.list("Event").items
        return [e["spec"]["reason"] for e in items if e["spec"]["involvedObject"]["name"] == name]
