"""Metrics from a real store (SQLite and PostgreSQL) and a simulated fleet driven on a fake
clock: fleet gauges agree with the API objects, a fault is one violation, GPU time accrues,
a restart does not count history again; /metrics is guarded and labels routes by template."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stratum.backends.simulated.backend import SimulatedBackend
from stratum.client.http import StratumClient
from stratum.core.demand import bound_milli
from stratum.observability.metrics import Metrics
from stratum.reconcile.manager import ControllerManager, ManagerSettings
from stratum.reconcile.world import World
from stratum.scheduling.fleet import node_hardware
from stratum.server.demo import demo_manifests
from stratum.server.security import system_context
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore
from stratum.testing.clock import FakeClock
from stratum.testing.harness import LiveServer


class Fleet:
    def __init__(self, store: ObjectStore) -> None:
        self.clock = FakeClock()
        store.clock = self.clock
        self.store = store
        self.backend = SimulatedBackend(clock=self.clock, seed=7)
        self.metrics = Metrics()
        self.manager = self.new_manager(self.metrics)

    def new_manager(self, metrics: Metrics) -> ControllerManager:
        return ControllerManager(
            self.store,
            {"simulated": self.backend},
            clock=self.clock,
            settings=ManagerSettings(telemetry_seconds=3600),
            metrics=metrics,
        )

    def settle(self, passes: int = 4, seconds: float = 5.0) -> World:
        for _ in range(passes):
            self.manager.run_once()
            self.clock.advance(seconds)
        return World.read(self.store)

    def value(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def total(self, name: str, **match: str) -> float:
        return sum(
            s.value
            for family in self.metrics.registry.collect()
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
        )


@pytest.fixture
def fleet(store: ObjectStore) -> Iterator[Fleet]:
    f = Fleet(store)
    service = ObjectService(store)
    service.apply_documents(demo_manifests(), ctx=system_context("test"))
    f.settle()
    yield f


def held_by_tenant(world: World) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in world.placements.values():
        if p.status.phase in ("Bound", "Running", "Violated"):
            for r in p.spec.replicas:
                out[p.metadata.namespace or ""] = (
                    out.get(p.metadata.namespace or "", 0)
                    + len(r.gpus) * bound_milli(r.gpu_milli, r.mig_instance) / 1000
                )
    return out


def test_fleet_gauges_agree_with_the_objects(fleet: Fleet) -> None:
    fleet.manager.run_once()  # gauges are taken at the start of a pass
    world = World.read(fleet.store)
    assert fleet.total("stratum_nodes") == len(world.nodes) == 20
    assert fleet.value("stratum_nodes", site="fra-1", state="Ready") == 12
    gpus = sum(len(n.status.gpus) for n in world.nodes.values())
    assert fleet.total("stratum_gpus") == gpus
    assert (
        len(
            [
                s
                for f in fleet.metrics.registry.collect()
                for s in f.samples
                if s.name == "stratum_gpu_power_watts"
            ]
        )
        == gpus
    )
    held = held_by_tenant(world)
    assert held and set(held) == {"research", "health-eu"}
    for tenant, count in held.items():
        assert fleet.total("stratum_tenant_allocated_gpus", tenant=tenant) == pytest.approx(count)
    assert fleet.value("stratum_contracts", tenant="research", phase="Running") == 4
    assert fleet.value("stratum_site_power_budget_watts", site="fra-1") == 400_000
    assert fleet.value("stratum_site_power_draw_watts", site="fra-1") > 0
    # Every contract bound once since the baseline, each with a time to bind.
    assert fleet.value("stratum_scheduler_placements_total", tenant="research") == 4
    assert fleet.value("stratum_contract_time_to_bind_seconds_count") == 5
    assert fleet.value("stratum_scheduler_decision_seconds_count", result="bound") == 5
    assert fleet.value("stratum_reconcile_duration_seconds_count", controller="pass") >= 5


def test_a_failed_gpu_is_one_violation_one_remediation_and_a_failed_device(fleet: Fleet) -> None:
    victim = World.read(fleet.store).placements["research/llama-finetune"].spec.replicas[0].node
    fleet.backend.inject({"kind": "gpu-fail", "node": victim, "gpu": 3})
    world = fleet.settle(passes=4, seconds=2)
    wl = world.workloads["research/llama-finetune"]
    assert wl.status.phase == "Running" and wl.status.attempt == 2
    assert (
        fleet.value("stratum_contract_violations_total", tenant="research", clause="compute") == 1
    )
    assert fleet.total("stratum_contract_violations_total", tenant="health-eu") == 0
    assert (
        fleet.value("stratum_gpus", site="fra-1", gpu_model="H100-SXM5-80GB", state="failed") == 1
    )
    assert fleet.value("stratum_contract_remediation_seconds_count") == 1
    assert fleet.value("stratum_contract_remediation_seconds_sum") == pytest.approx(
        wl.status.last_remediation_seconds
    )
    assert fleet.value("stratum_scheduler_placements_total", tenant="research") == 5
    fleet.settle(passes=3, seconds=2)  # nothing new happened: nothing more is counted
    assert (
        fleet.value("stratum_contract_violations_total", tenant="research", clause="compute") == 1
    )
    assert fleet.value("stratum_contract_remediation_seconds_count") == 1


def test_gpu_time_and_cost_accrue_for_running_placements(fleet: Fleet) -> None:
    fleet.manager.run_once()
    world = World.read(fleet.store)
    running: dict[str, float] = {}
    for p in world.placements.values():
        if p.status.phase == "Running":
            ns = p.metadata.namespace or ""
            running[ns] = running.get(ns, 0) + sum(
                len(r.gpus) * bound_milli(r.gpu_milli, r.mig_instance) / 1000
                for r in p.spec.replicas
            )
    before = {t: fleet.value("stratum_tenant_gpu_seconds_total", tenant=t) for t in running}
    cost = fleet.value("stratum_tenant_cost_total", tenant="health-eu", currency="EUR")
    fleet.clock.advance(60)
    fleet.manager.run_once()
    for tenant, gpus in running.items():
        assert fleet.value("stratum_tenant_gpu_seconds_total", tenant=tenant) - before[
            tenant
        ] == pytest.approx(gpus * 60)
    # health-eu's work runs at fra-1 on H100s: each GPU-hour at the site's H100 price, plus
    # the energy of the GPU at its rated power at the site's kWh price.
    site = world.sites["fra-1"].spec.pricing
    watts: dict[str, float | None] = {}
    for p in world.placements.values():
        if p.metadata.namespace == "health-eu" and p.status.phase == "Running":
            for r in p.spec.replicas:
                hw = node_hardware(world.nodes[r.node], world.profiles)
                assert hw is not None
                watts[p.metadata.name] = hw.gpus[r.gpus[0]].power_w
    assert set(watts) == {"triage-assistant"} and watts["triage-assistant"] == 700
    hourly = site.gpu_hour_by_model["H100-SXM5-80GB"] + site.kwh * 700 / 1000
    assert site.kwh > 0 and hourly > site.gpu_hour_by_model["H100-SXM5-80GB"]
    assert fleet.value(
        "stratum_tenant_cost_total", tenant="health-eu", currency="EUR"
    ) - cost == pytest.approx(running["health-eu"] * 60 / 3600 * hourly)


def test_a_restarted_manager_takes_a_baseline_and_does_not_count_history_again(
    fleet: Fleet,
) -> None:
    fresh = Metrics()
    fleet.manager = fleet.new_manager(fresh)
    fleet.metrics = fresh
    fleet.settle(passes=3)
    assert fleet.total("stratum_scheduler_placements_total") == 0
    assert fleet.value("stratum_contract_time_to_bind_seconds_count") == 0
    assert fleet.total("stratum_nodes") == 20


@pytest.fixture
def member(client: StratumClient, live_server: LiveServer) -> Iterator[dict[str, str]]:
    client.create(
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": "team-a"},
            "spec": {},
        }
    )
    made = client.create_token("a-bot", service=True, tenant="team-a", role="member")
    yield {"Authorization": f"Bearer {made['token']}"}


def test_metrics_need_a_platform_role_and_label_routes_by_template(
    live_server: LiveServer, client: StratumClient, member: dict[str, str]
) -> None:
    url = f"{live_server.url}/metrics"
    assert httpx.get(url).status_code == 401
    refused = httpx.get(url, headers=member)
    assert refused.status_code == 403 and "platform role" in refused.json()["message"]
    client.request("GET", "/apis/stratum.dev/v1alpha1/namespaces/team-a/workloads")
    httpx.get(
        f"{live_server.url}/apis/stratum.dev/v1alpha1/namespaces/team-a/workloads/secret-project",
        headers=live_server.headers,
    )
    httpx.get(f"{live_server.url}/no/such/path-x1")
    r = httpx.get(url, headers=live_server.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    item = 'route="/apis/stratum.dev/v1alpha1/namespaces/{namespace}/workloads/{name}"'
    assert f'stratum_api_requests_total{{code="404",method="GET",{item}}} 1.0' in text
    assert 'route="<unmatched>"' in text
    assert "secret-project" not in text and "path-x1" not in text
    samples: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith("stratum_store_transaction_seconds_count"):
            samples[line.split(" ")[0]] = float(line.split(" ")[1])
    assert (
        samples.get('stratum_store_transaction_seconds_count{mode="write",outcome="commit"}', 0)
        >= 2
    )
