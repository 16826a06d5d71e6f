"""Every Stratum metric, defined once, on one CollectorRegistry per `Metrics` instance.

Units are in the names (`_seconds`, `_watts`, `_celsius`, `_bytes`, `_ratio`, `_total`).
Two kinds of metric live here:

- event metrics (counters, histograms) that code increments where things happen: API
  requests, store transactions, reconcile passes, scheduling decisions, violations;
- fleet state (gauges) that the controllers compute from one consistent read of the world
  and the backends' observations each pass, published whole by `FleetCollector`, so that a
  node, GPU or tenant that is gone leaves no stale series behind.

Cardinality rule (docs/metrics.md): labels take values from bounded, platform-owned sets
only: sites, nodes and GPU indices (bounded by the fleet), GPU models, tenants (bounded by
Tenant objects), phases, states, contract clauses, controllers, HTTP methods, status codes
and route *templates*. Never a workload, placement, token or user name, never a raw path.
Per-GPU series (`stratum_gpu_*`) are the only per-device series, one per GPU in the fleet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

# `_created` series double every counter and histogram and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Contract clauses a violation can name: pre-set to 0 for every tenant so that `increase()`
# sees the first violation.
VIOLATION_CLAUSES = (
    "compute",
    "compute.power",
    "topology.withinReplica",
    "serviceLevel.p99LatencyMs",
    "serviceLevel.minThroughputRps",
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Binding and remediation take from milliseconds (a free fleet) to hours (a queue).
LIFECYCLE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)

# Fleet state: name -> (help, label names). Published by FleetCollector from FleetGauges.
FLEET_GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "stratum_nodes": (
        "Nodes by site and state (Ready, NotReady, Unknown; Cordoned when unschedulable).",
        ("site", "state"),
    ),
    "stratum_gpus": (
        "GPUs by site, model and state: idle, allocated (all or part), degraded, failed, "
        "unreachable (its node is not Ready).",
        ("site", "gpu_model", "state"),
    ),
    "stratum_gpu_utilization_ratio": (
        "Utilisation of one GPU, 0..1, as its backend last observed it.",
        ("site", "node", "gpu", "gpu_model"),
    ),
    "stratum_gpu_memory_used_bytes": (
        "Memory in use on one GPU.",
        ("site", "node", "gpu", "gpu_model"),
    ),
    "stratum_gpu_memory_total_bytes": (
        "Memory of one GPU, from its hardware profile.",
        ("site", "node", "gpu", "gpu_model"),
    ),
    "stratum_gpu_power_watts": ("Power drawn by one GPU.", ("site", "node", "gpu", "gpu_model")),
    "stratum_gpu_temperature_celsius": (
        "Temperature of one GPU.",
        ("site", "node", "gpu", "gpu_model"),
    ),
    "stratum_node_power_watts": (
        "Power drawn by one node, as its backend observed it.",
        ("site", "node"),
    ),
    "stratum_site_power_draw_watts": ("Power drawn by a site's observed nodes.", ("site",)),
    "stratum_site_power_budget_watts": (
        "A site's power budget (Site.spec.powerBudgetKW); absent when it has none.",
        ("site",),
    ),
    "stratum_site_power_cap_watts": (
        "A power cap in force at a site (a fault or the facility); absent when none.",
        ("site",),
    ),
    "stratum_tenant_allocated_gpus": (
        "GPUs a tenant's live placements hold (Bound, Running, Violated); a shared GPU "
        "counts by its milli-GPU share.",
        ("tenant", "site", "gpu_model"),
    ),
    "stratum_tenant_quota_gpus": (
        "A tenant's quota of GPUs in total; absent when unlimited.",
        ("tenant",),
    ),
    "stratum_tenant_budget_used_ratio": (
        "A tenant's budget use (Tenant.status.usage against spec.budget), 0..1 and past 1 "
        "when over; absent without a budget.",
        ("tenant",),
    ),
    "stratum_contracts": (
        "Workload contracts by tenant and phase (Pending, Bound, Running, Violated, "
        "Rejected, Succeeded, Failed, Released).",
        ("tenant", "phase"),
    ),
    "stratum_scheduler_pending_contracts": (
        "Contracts waiting for placement (Pending), by tenant and priority band (low < 0 "
        "<= normal < 100 <= high).",
        ("tenant", "priority_band"),
    ),
    "stratum_scheduler_fragmented_gpu_ratio": (
        "Free GPU capacity that sits on partly allocated GPUs, over all free capacity of "
        "healthy GPUs on schedulable nodes (0: no fragmentation).",
        (),
    ),
    "stratum_scheduler_stranded_gpus": (
        "Healthy GPUs that are free but cannot take work: their node is cordoned or "
        "NotReady, or its CPU or memory is all allocated.",
        ("site",),
    ),
}


@dataclass(frozen=True, slots=True)
class FleetGauges:
    """One snapshot of every fleet gauge: name -> [(label values, value)]."""

    samples: Mapping[str, Sequence[tuple[tuple[str, ...], float]]] = field(default_factory=dict)


class FleetCollector(Collector):
    """Publishes the latest FleetGauges whole: series of removed objects vanish with it."""

    def __init__(self) -> None:
        self._state = FleetGauges()
        self._lock = threading.Lock()

    def update(self, state: FleetGauges) -> None:
        unknown = set(state.samples) - set(FLEET_GAUGES)
        if unknown:
            raise ValueError(f"not fleet gauges: {', '.join(sorted(unknown))}")
        with self._lock:
            self._state = state

    @property
    def state(self) -> FleetGauges:
        return self._state

    def describe(self) -> Iterable[Metric]:
        for name, (doc, labels) in FLEET_GAUGES.items():
            yield GaugeMetricFamily(name, doc, labels=list(labels))

    def collect(self) -> Iterable[Metric]:
        state = self._state
        for name, (doc, labels) in FLEET_GAUGES.items():
            family = GaugeMetricFamily(name, doc, labels=list(labels))
            for values, value in state.samples.get(name, ()):
                family.add_metric(list(values), value)
            yield family


class Metrics:
    """The metric objects of one process part (a server, an agent), on their own registry.

    Tests make as many as they like; each server app and each controller manager shares
    one, so that `/metrics` shows all of them.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        # -- API ------------------------------------------------------------------------
        self.api_requests = Counter(
            "stratum_api_requests",
            "API requests by method, route template and status code.",
            ["method", "route", "code"],
            registry=r,
        )
        self.api_request_duration = Histogram(
            "stratum_api_request_duration_seconds",
            "Time to answer an API request, by method and route template (watch streams "
            "are counted in requests but not timed).",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.api_requests_in_flight = Gauge(
            "stratum_api_requests_in_flight",
            "API requests being answered now, watch streams included.",
            registry=r,
        )
        # -- store ----------------------------------------------------------------------
        self.store_transaction = Histogram(
            "stratum_store_transaction_seconds",
            "Time a store transaction is open, by mode (read, write) and outcome (commit, "
            "rollback, error).",
            ["mode", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # -- reconcilers ----------------------------------------------------------------
        self.reconcile_duration = Histogram(
            "stratum_reconcile_duration_seconds",
            "Time one reconcile step takes: observe (read the world and the backends), "
            "clusters, nodes, workloads, and the whole pass.",
            ["controller"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reconcile_passes = Counter(
            "stratum_reconcile_passes",
            "Reconcile passes by result (ok, error).",
            ["result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "stratum_reconcile_errors",
            "Failed passes by error class (temporary: retried "
            "after its own delay; unexpected: retried with backoff).",
            ["error"],
            registry=r,
        )
        self.reconcile_retries = Counter(
            "stratum_reconcile_retries", "Passes scheduled again after a failure.", registry=r
        )
        self.reconcile_backoff = Gauge(
            "stratum_reconcile_backoff_seconds",
            "Delay before the next try after a failed pass; 0 when the last pass succeeded.",
            registry=r,
        )
        self.reconcile_queue_depth = Gauge(
            "stratum_reconcile_queue_depth",
            "Objects a controller found needing action at the start of its last pass.",
            ["controller"],
            registry=r,
        )
        self.reconcile_leader = Gauge(
            "stratum_reconcile_leader",
            "1 while this replica holds the controller lease.",
            registry=r,
        )
        self.reconcile_last_success = Gauge(
            "stratum_reconcile_last_success_timestamp_seconds",
            "Unix time of the last pass that succeeded.",
            registry=r,
        )
        # -- scheduler ------------------------------------------------------------------
        self.scheduler_decision = Histogram(
            "stratum_scheduler_decision_seconds",
            "Time the placement engine takes to decide one contract, by result (bound, "
            "unschedulable, rejected).",
            ["result"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.scheduler_placements = Counter(
            "stratum_scheduler_placements",
            "Contracts bound to devices, by tenant.",
            ["tenant"],
            registry=r,
        )
        self.scheduler_failures = Counter(
            "stratum_scheduler_failures",
            "Unschedulable verdicts by the clause that ruled "
            "nodes out: counted once per clause when a contract turns Pending or Rejected "
            "or its reasons change (not on every retry).",
            ["clause"],
            registry=r,
        )
        self.scheduler_preemptions = Counter(
            "stratum_scheduler_preemptions",
            "Bound contracts evicted (set Pending, devices "
            "released) to let a higher-priority contract bind: one per victim.",
            registry=r,
        )
        # -- contracts ------------------------------------------------------------------
        self.contract_violations = Counter(
            "stratum_contract_violations",
            "Contract violations by tenant and clause.",
            ["tenant", "clause"],
            registry=r,
        )
        self.contract_time_to_bind = Histogram(
            "stratum_contract_time_to_bind_seconds",
            "From a workload's creation to its first binding.",
            buckets=LIFECYCLE_BUCKETS,
            registry=r,
        )
        self.contract_remediation = Histogram(
            "stratum_contract_remediation_seconds",
            "From a violation to the contract running again on healthy devices.",
            buckets=LIFECYCLE_BUCKETS,
            registry=r,
        )
        # -- tenants --------------------------------------------------------------------
        self.tenant_gpu_seconds = Counter(
            "stratum_tenant_gpu_seconds",
            "GPU time used by a tenant's running placements "
            "(GPUs x control-plane seconds; /3600 for GPU-hours).",
            ["tenant"],
            registry=r,
        )
        self.tenant_cost = Counter(
            "stratum_tenant_cost",
            "What a tenant's running placements cost at their sites' "
            "GPU-hour and energy prices, in the site's currency.",
            ["tenant", "currency"],
            registry=r,
        )
        # -- fleet state ----------------------------------------------------------------
        self.fleet = FleetCollector()
        r.register(self.fleet)
        self.scheduler_preemptions.inc(0)

    def known_tenants(self, tenants: Iterable[str]) -> None:
        """Start every tenant's violation counters at 0."""
        for tenant in tenants:
            for clause in VIOLATION_CLAUSES:
                self.contract_violations.labels(tenant, clause)
            self.tenant_gpu_seconds.labels(tenant)

    def observe_transaction(self, mode: str, outcome: str, seconds: float) -> None:
        self.store_transaction.labels(mode, outcome).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def metric_names(self) -> dict[str, set[str]]:
        """Every series name this registry can expose -> its label names (histograms with
        their _bucket/_sum/_count, counters with _total and _created)."""
        names: dict[str, set[str]] = {}
        for name, (_doc, labels) in FLEET_GAUGES.items():
            names[name] = set(labels)
        for metric in vars(self).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            base = set(metric._labelnames)
            for family in metric.describe():
                if family.type == "histogram":
                    for suffix in ("_bucket", "_sum", "_count"):
                        names[family.name + suffix] = base | (
                            {"le"} if suffix == "_bucket" else set()
                        )
                elif family.type == "counter":
                    names[family.name + "_total"] = base
                else:
                    names[family.name] = base
        return names


CONTENT_TYPE = CONTENT_TYPE_LATEST


def serve_metrics(metrics: Metrics, *, host: str = "127.0.0.1", port: int = 9400) -> Any:
    """Serve `metrics` at http://host:port/metrics in a daemon thread (for `stratum agent`
    and other processes without the API server). Returns the server; `.shutdown()` stops it.
    """
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server


def priority_band(priority: int) -> str:
    return "high" if priority >= 100 else "low" if priority < 0 else "normal"
