"""TenantController: what each tenant's running work really used — GPU-hours and cost at
its sites' prices over the budget's period — accrued into Tenant.status.usage, which
admission reads to enforce budgets. Writes at most every `flush_seconds`, so a crash loses
at most that much accrual."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from stratum.core.clock import Clock
from stratum.core.errors import Conflict, NotFound
from stratum.core.governance import Usage, demand_of, is_active, period_start
from stratum.reconcile.telemetry import GpuUse, running_uses
from stratum.reconcile.world import World, wire
from stratum.store.objects import ObjectStore


@dataclass
class _Accrued:
    gpu_hours: float = 0.0
    cost: dict[str, float] = field(default_factory=dict)  # by currency


class TenantController:
    def __init__(self, store: ObjectStore, clock: Clock, *, flush_seconds: float = 10.0) -> None:
        self.store = store
        self.clock = clock
        self.flush_seconds = flush_seconds
        self._last_at: datetime | None = None
        self._running: list[GpuUse] = []
        self._accrued: dict[str, _Accrued] = {}
        self._last_flush: datetime | None = None

    def reconcile(self, world: World) -> None:
        now = self.clock.now()
        if self._last_at is not None:
            # What ran from the previous pass until now, at the prices where it ran.
            hours = max((now - self._last_at).total_seconds(), 0.0) / 3600
            for use in self._running:
                acc = self._accrued.setdefault(use.tenant, _Accrued())
                acc.gpu_hours += use.gpus * hours
                acc.cost[use.currency] = (
                    acc.cost.get(use.currency, 0.0) + use.gpus * hours * use.price_per_hour
                )
        self._last_at = now
        self._running = running_uses(world)
        due = (
            self._last_flush is None
            or (now - self._last_flush).total_seconds() >= self.flush_seconds
        )
        if due:
            self._flush(world, now)

    def _flush(self, world: World, now: datetime) -> None:
        active: dict[str, Usage] = {}
        for wl in world.workloads.values():
            body = wire(wl)
            if is_active(body):
                active.setdefault(wl.metadata.namespace or "", Usage()).add(demand_of(body))
        for name, tenant in world.tenants.items():
            acc = self._accrued.pop(name, _Accrued())
            budget = tenant.spec.budget
            currency = budget.currency if budget else "EUR"
            start = period_start(now, budget.period if budget else "month")
            usage = tenant.status.usage
            hours, cost = usage.gpu_hours, usage.cost
            others = dict(usage.cost_other_currencies)
            if usage.period_start is None or usage.period_start != start:
                hours, cost, others = 0.0, 0.0, {}  # a new period starts from nothing
            hours += acc.gpu_hours
            cost += acc.cost.get(currency, 0.0)
            for cur, amount in acc.cost.items():
                if cur != currency:
                    others[cur] = others.get(cur, 0.0) + amount
            held = active.get(name, Usage()).as_wire()
            new = {
                "gpus": held.get("gpus", 0),
                "gpusByModel": held.get("gpusByModel", {}),
                "cpuCores": held.get("cpuCores", 0),
                "gpuHours": round(hours, 6),
                "cost": round(cost, 6),
                "currency": currency,
                "costOtherCurrencies": {k: round(v, 6) for k, v in others.items()},
                "periodStart": start.isoformat().replace("+00:00", "Z"),
            }
            body = wire(tenant)
            if all(body["status"].get("usage", {}).get(k) == v for k, v in new.items()):
                continue
            body["status"]["usage"] = new
            try:
                with self.store.write() as tx:
                    tx.replace(body, status_only=True)
            except (Conflict, NotFound):
                # Keep what accrued for the next flush rather than losing it.
                back = self._accrued.setdefault(name, _Accrued())
                back.gpu_hours += acc.gpu_hours
                for cur, amount in acc.cost.items():
                    back.cost[cur] = back.cost.get(cur, 0.0) + amount
        self._last_flush = now
