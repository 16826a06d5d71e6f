"""ControllerManager: runs the controllers in a loop while this replica holds the lease.

Each pass observes first (one consistent read of the store, then every backend) and acts
second. A pass runs when the store changed, and at least every `resync_seconds` so that
telemetry and faults are seen even when nobody writes. A pass that fails is retried with
exponential backoff (TemporaryError's delay wins); the loop itself never dies.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from stratum.backends.base import Backend, Observation
from stratum.core.clock import Clock, clock_rate
from stratum.core.errors import TemporaryError
from stratum.core.secrets import Keyring
from stratum.observability import tracing
from stratum.observability.metrics import Metrics
from stratum.reconcile.controllers.clusters import ClusterController
from stratum.reconcile.controllers.nodes import NodeController
from stratum.reconcile.controllers.tenants import TenantController
from stratum.reconcile.controllers.workloads import WorkloadController
from stratum.reconcile.telemetry import FleetTelemetry
from stratum.reconcile.world import ModelCache, World
from stratum.store import leases
from stratum.store.objects import ObjectStore

log = logging.getLogger("stratum.reconcile")
LEASE_NAME = "controller-manager"


@dataclass(frozen=True, slots=True)
class ManagerSettings:
    resync_seconds: float = 1.0
    poll_seconds: float = 0.2
    lease_seconds: float = 15.0
    telemetry_seconds: float = 10.0
    # How often backends that discover their hosts (local, agents) are asked again.
    inventory_seconds: float = 30.0
    usage_flush_seconds: float = 10.0
    max_backoff_seconds: float = 30.0
    seed: int = 0


class Backoff:
    """Exponential backoff with a cap: 0.5 s, 1 s, 2 s, ... max."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def fail(self, hint: float | None = None) -> float:
        self.failures += 1
        delay: float = min(self.cap, self.base * 2.0 ** (self.failures - 1))
        return max(delay, hint or 0.0)

    def reset(self) -> None:
        self.failures = 0


class ControllerManager:
    def __init__(
        self,
        store: ObjectStore,
        backends: dict[str, Backend],
        *,
        clock: Clock | None = None,
        settings: ManagerSettings | None = None,
        identity: str | None = None,
        metrics: Metrics | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self.telemetry = FleetTelemetry(self.metrics)
        self.backends = backends
        # The store's clock unless told otherwise: one time base for the whole process.
        self.clock = clock or store.clock
        self.settings = settings or ManagerSettings()
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        # The controllers write through a fence: under the loop, a write of a replica that
        # no longer holds the lease is refused in its own transaction (a pass may outlive
        # the lease; another replica may have taken over meanwhile).
        self.fence = leases.FencedStore(store, name=LEASE_NAME, holder=self.identity)
        store = self.fence
        # Write cadences are real time (they bound the store's write rate), in clock seconds.
        rate = clock_rate(self.clock)
        self.clusters = ClusterController(
            store,
            backends,
            self.clock,
            keyring=keyring,
            inventory_seconds=self.settings.inventory_seconds * rate,
        )
        self.nodes = NodeController(
            store, self.clock, telemetry_seconds=self.settings.telemetry_seconds * rate
        )
        self.workloads = WorkloadController(
            store, backends, self.clock, seed=self.settings.seed, metrics=self.metrics
        )
        self.tenants = TenantController(
            store, self.clock, flush_seconds=self.settings.usage_flush_seconds * rate
        )
        # Typed objects kept between passes (reconcile/world.py): a pass validates only
        # what changed since the last one.
        self._models = ModelCache()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.leader = False
        self.passes = 0
        self.last_error: str | None = None

    # -- one pass ----------------------------------------------------------------------
    def run_once(self) -> World:
        """Observe the store and the backends, then let each controller act."""
        timed = self.metrics.reconcile_duration
        with tracing.span("reconcile.pass") as span, timed.labels("pass").time():
            with timed.labels("clusters").time():
                world = World.read(self.store, self._models)
                self.clusters.reconcile(world)
            with timed.labels("observe").time():
                # The cluster pass may have added nodes (unchanged objects come from the cache).
                world = World.read(self.store, self._models)
                observations: list[Observation] = [b.observe() for b in self.backends.values()]
                self.telemetry.update(world, observations, self.clock.now())
            with timed.labels("nodes").time(), tracing.span("reconcile.nodes"):
                self.nodes.reconcile(world, observations)
            with timed.labels("workloads").time(), tracing.span("reconcile.workloads"):
                self.workloads.reconcile(world, observations)
            with timed.labels("tenants").time(), tracing.span("reconcile.tenants"):
                self.tenants.reconcile(world)
            span.set_attribute("stratum.resource_version", world.resource_version)
        self.passes += 1
        return world

    # -- the loop ----------------------------------------------------------------------
    def start(self) -> None:
        self.fence.fenced = True
        # The lease is renewed on its own thread, so that a long pass never starves it.
        self._renewer = threading.Thread(target=self._renew, name="stratum-lease", daemon=True)
        self._renewer.start()
        self._thread = threading.Thread(target=self._loop, name="stratum-controllers", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        s = self.settings
        # Renewed every lease_seconds/3 of real time: the lease lasts that long in real
        # time, whatever the clock's pace.
        duration = timedelta(seconds=s.lease_seconds * clock_rate(self.clock))
        while not self._stop.is_set():
            try:
                held = leases.try_acquire(
                    self.store, name=LEASE_NAME, holder=self.identity, duration=duration
                )
            except Exception:  # the store is down: act as if not leader until it answers
                log.warning("could not renew the controller lease", exc_info=True)
                held = False
            if held and not self.leader:
                self._wake.set()
            self.leader = held
            self.metrics.reconcile_leader.set(1 if held else 0)
            self._stop.wait(s.lease_seconds / 3)

    def wake(self) -> None:
        """Run a pass now rather than at the next poll (a write or a fault just happened)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        renewer = getattr(self, "_renewer", None)
        if renewer is not None:
            renewer.join(timeout)
        if self.leader:
            try:
                leases.release(self.store, name=LEASE_NAME, holder=self.identity)
            except Exception:  # the store may be down at shutdown; the lease expires anyway
                log.warning("could not release the controller lease", exc_info=True)

    def _loop(self) -> None:
        s = self.settings
        backoff = Backoff(cap=s.max_backoff_seconds)
        last_rv = -1
        last_pass = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if not self.leader:
                    self._wake.wait(s.lease_seconds / 3)  # the renewer wakes us when it wins
                    self._wake.clear()
                    last_rv = -1
                    continue
                with self.store.read() as tx:
                    rv = tx.current_resource_version()
                if rv != last_rv or now - last_pass >= s.resync_seconds:
                    self.run_once()
                    last_pass = time.monotonic()
                    self.metrics.reconcile_passes.labels("ok").inc()
                    self.metrics.reconcile_last_success.set_to_current_time()
                    with self.store.read() as tx:
                        last_rv = tx.current_resource_version()
                backoff.reset()
                self.metrics.reconcile_backoff.set(0)
                self.last_error = None
                woken = self._wake.wait(s.poll_seconds)
                self._wake.clear()
                if woken:
                    last_pass = 0.0  # run a pass even if the store did not change
            except TemporaryError as err:
                self._failed(str(err), backoff.fail(err.delay), "temporary")
            except Exception as err:  # keep the loop alive whatever a pass hits
                log.exception("controller pass failed")
                self._failed(f"{type(err).__name__}: {err}", backoff.fail(), "unexpected")

    def _failed(self, message: str, delay: float, error: str) -> None:
        self.last_error = message
        m = self.metrics
        m.reconcile_passes.labels("error").inc()
        m.reconcile_errors.labels(error).inc()
        m.reconcile_retries.inc()
        m.reconcile_backoff.set(delay)
        self._stop.wait(delay)
