"""The metric registry: names with units, bounded labels, fleet gauges that forget what is
gone, and the exposition an agent serves on its own port."""

from __future__ import annotations

import httpx

from stratum.observability.metrics import FLEET_GAUGES, FleetGauges, Metrics, serve_metrics
from stratum.testing.harness import free_port

# Labels that would make a series per object, per user or per request: never allowed.
UNBOUNDED = {
    "workload",
    "placement",
    "name",
    "namespace",
    "uid",
    "path",
    "url",
    "user",
    "subject",
    "token",
    "message",
    "reason_text",
}
UNITS = (
    "_seconds",
    "_watts",
    "_celsius",
    "_bytes",
    "_ratio",
    "_total",
    "_gpus",
    "_contracts",
    "_flight",
    "_depth",
    "_leader",
)
COUNTS = {"stratum_nodes", "stratum_gpus", "stratum_contracts"}


def test_every_series_name_carries_its_unit_and_no_unbounded_label() -> None:
    names = Metrics().metric_names()
    assert len(names) > 40
    for name, labels in names.items():
        base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        assert base in COUNTS or base.endswith(UNITS), name
        assert not labels & UNBOUNDED, (name, labels & UNBOUNDED)
    for name in (
        "stratum_gpu_power_watts",
        "stratum_gpu_temperature_celsius",
        "stratum_gpu_memory_used_bytes",
        "stratum_gpu_utilization_ratio",
        "stratum_scheduler_decision_seconds_bucket",
        "stratum_tenant_cost_total",
        "stratum_contract_violations_total",
        "stratum_store_transaction_seconds_count",
    ):
        assert name in names


def test_fleet_gauges_are_published_whole_so_a_removed_node_leaves_no_series() -> None:
    m = Metrics()
    labels = ("fra-1", "n1", "0", "H100")
    m.fleet.update(
        FleetGauges(
            {
                "stratum_gpu_power_watts": [(labels, 350.0)],
                "stratum_nodes": [(("fra-1", "Ready"), 1.0)],
            }
        )
    )
    sample = {"site": "fra-1", "node": "n1", "gpu": "0", "gpu_model": "H100"}
    assert m.registry.get_sample_value("stratum_gpu_power_watts", sample) == 350.0
    m.fleet.update(FleetGauges({"stratum_nodes": [(("fra-1", "Ready"), 0.0)]}))
    assert m.registry.get_sample_value("stratum_gpu_power_watts", sample) is None
    assert "n1" not in m.exposition().decode()


def test_an_unknown_fleet_gauge_is_refused() -> None:
    m = Metrics()
    try:
        m.fleet.update(FleetGauges({"stratum_made_up": [((), 1.0)]}))
    except ValueError as err:
        assert "stratum_made_up" in str(err)
    else:
        raise AssertionError("an undeclared gauge was accepted")
    assert set(FLEET_GAUGES) <= set(Metrics().metric_names())


def test_counters_start_at_zero_for_every_tenant_and_clause() -> None:
    m = Metrics()
    m.known_tenants(["research"])
    assert (
        m.registry.get_sample_value(
            "stratum_contract_violations_total", {"tenant": "research", "clause": "compute"}
        )
        == 0.0
    )
    assert m.registry.get_sample_value("stratum_scheduler_preemptions_total") == 0.0


def test_serve_metrics_exposes_a_registry_on_its_own_port_for_agents() -> None:
    m = Metrics()
    m.reconcile_leader.set(1)
    port = free_port()
    server = serve_metrics(m, port=port)
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert "stratum_reconcile_leader 1.0" in r.text
    finally:
        server.shutdown()
        server.server_close()
