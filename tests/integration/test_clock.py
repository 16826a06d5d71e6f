"""One clock in the process: under `--speed 60` deadlines and budgets follow simulated time,
as the simulated work does (they once mixed the simulator's clock with the real one)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from stratum.core.access import SYSTEM
from stratum.reconcile.world import World
from stratum.server.app import create_app
from stratum.server.demo import demo_manifests
from stratum.server.security import RequestContext
from stratum.server.settings import ServerSettings

SPEED = 60.0


@pytest.fixture
def app(database_url: str) -> Iterator[Any]:
    app = create_app(
        ServerSettings(database_url=database_url, simulation_speed=SPEED, controllers=False)
    )
    app.state.objects.apply_documents(demo_manifests(), ctx=RequestContext(principal=SYSTEM))
    yield app
    app.state.store.close()


def _job(name: str, **lifecycle: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": "research"},
        "spec": {
            "type": "inference",  # runs until stopped: only the deadline ends it
            "contract": {"compute": {"gpus": 8}, "lifecycle": lifecycle},
        },
    }


def _passes_until(app: Any, done: Any, real_seconds: float) -> World:
    deadline = time.monotonic() + real_seconds
    while True:
        app.state.manager.run_once()
        world = World.read(app.state.store)
        if done(world) or time.monotonic() > deadline:
            return world
        time.sleep(0.2)


def test_one_clock_is_shared_by_the_store_the_controllers_and_the_simulator(app: Any) -> None:
    clock = app.state.store.clock
    assert app.state.manager.clock is clock
    assert app.state.manager.backends["simulated"].clock is clock
    assert getattr(clock, "speed", None) == SPEED


def test_max_duration_expires_after_that_much_simulated_time(app: Any) -> None:
    app.state.objects.apply_documents(
        [_job("short", maxDurationSeconds=240)], ctx=RequestContext(principal=SYSTEM)
    )
    started = time.monotonic()
    world = _passes_until(app, lambda w: w.workloads["research/short"].status.phase == "Failed", 60)
    real = time.monotonic() - started
    status = world.workloads["research/short"].status
    assert status.phase == "Failed", status.message
    assert "maxDurationSeconds=240" in (status.message or "")
    assert status.running_at is not None and status.finished_at is not None
    ran = (status.finished_at - status.running_at).total_seconds()
    # It ran its 240 seconds on the platform's clock, which is the simulator's: four
    # seconds of real time at speed 60, not four minutes.
    assert ran >= 240
    assert real < 240, f"the deadline waited for {real:.0f} s of real time"


def test_budget_accrual_follows_the_simulated_time_base(app: Any) -> None:
    app.state.objects.apply_documents([_job("serve")], ctx=RequestContext(principal=SYSTEM))
    clock = app.state.store.clock
    world = _passes_until(
        app, lambda w: w.workloads["research/serve"].status.phase == "Running", 60
    )
    assert world.workloads["research/serve"].status.phase == "Running"
    manager = app.state.manager
    manager.run_once()  # accrual counts what a pass saw running, from that pass on
    manager.tenants._last_flush = None
    manager.run_once()
    before_hours = World.read(app.state.store).tenants["research"].status.usage.gpu_hours
    sim_start, real_start = clock.now(), time.monotonic()
    time.sleep(3)
    manager.run_once()
    manager.tenants._last_flush = None  # flush what accrued now rather than at the cadence
    manager.run_once()
    usage = World.read(app.state.store).tenants["research"].status.usage
    sim_hours = (clock.now() - sim_start).total_seconds() / 3600
    real_hours = (time.monotonic() - real_start) / 3600
    accrued = usage.gpu_hours - before_hours
    gpus_running = usage.gpus
    assert gpus_running >= 8
    # At least the 8 GPUs of this job for the simulated time that passed (other demo work
    # adds to it), and far above what real time would give.
    assert accrued >= 8 * sim_hours * 0.9
    assert accrued > 8 * real_hours * SPEED / 2
    assert accrued <= gpus_running * sim_hours * 1.1 + 1e-6
