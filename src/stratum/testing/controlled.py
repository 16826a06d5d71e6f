"""A fleet run by the live controllers on a real store, on a fake clock the caller moves:
for tests and benchmarks that must measure what users get (the WorkloadController's
decisions), not a scheduling function alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stratum.api.v1alpha1 import Placement, Workload
from stratum.backends.simulated.backend import SimulatedBackend
from stratum.core.profiles import builtin_profiles
from stratum.core.validation import to_wire
from stratum.reconcile.manager import ControllerManager, ManagerSettings
from stratum.reconcile.world import World
from stratum.server.security import system_context
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore
from stratum.testing.clock import FakeClock

API = "stratum.dev/v1alpha1"


class ControlledFleet:
    """Store + ObjectService + ControllerManager + SimulatedBackend on one fake clock."""

    def __init__(self, store: ObjectStore, *, seed: int = 7) -> None:
        self.clock = FakeClock()
        store.clock = self.clock
        self.store = store
        self.service = ObjectService(store)
        self.backend = SimulatedBackend(clock=self.clock, seed=seed)
        self.manager = ControllerManager(
            store,
            {"simulated": self.backend},
            settings=ManagerSettings(telemetry_seconds=3600, usage_flush_seconds=3600, seed=seed),
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


def profiles() -> list[dict[str, Any]]:
    return [to_wire(p) for p in builtin_profiles()]


def site(
    name: str, *, country: str = "DE", jurisdictions: Iterable[str] = ("EU",)
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Site",
        "metadata": {"name": name},
        "spec": {
            "kind": "datacenter",
            "provider": "own",
            "country": country,
            "jurisdictions": list(jurisdictions),
        },
    }


def cluster(name: str, site: str, pools: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"site": site, "backend": "simulated", "nodePools": [dict(p) for p in pools]},
    }


def tenant(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}


def workload(
    name: str,
    namespace: str,
    contract: Mapping[str, Any],
    *,
    replicas: int = 1,
    type: str = "training",
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Workload",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": type, "replicas": replicas, "contract": dict(contract)},
    }
