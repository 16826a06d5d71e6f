"""Admission rules that keep tenants inside their quota, budget, law and policies.

Pure functions over wire dicts (objects as the API serves them), reusable by the server at
admission and by the scheduler and reconcilers at binding and remediation time.

GPU amounts are counted in milli-GPUs: a whole GPU is 1000, `gpuMilli` counts as given and
a MIG slice `Ng.*` as N/7 of a GPU (A100/H100/H200 have seven compute slices).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from stratum.api.v1alpha1.contract import ComputeClause, SovereigntyClause
from stratum.core.demand import replica_gpu_milli
from stratum.core.gpucatalog import get_model
from stratum.core.lifecycle import FINISHED
from stratum.core.policies import evaluate, read_values
from stratum.core.sovereignty import SiteFacts, first_breach, law_checks

WireObject = Mapping[str, Any]
FINISHED_PHASES = FINISHED  # count against quota no more (core/lifecycle.py)
ANY_MODEL = "*"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        # Wire objects are dicts: the exact type test spares the ABC check in hot loops.
        if type(obj) is not dict and not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def name_of(obj: WireObject) -> str:
    return str(_get(obj, "metadata", "name") or "")


# -- demand and quota --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Demand:
    """What one workload asks for across all its replicas: GPUs in milli-GPUs (on the models
    it allows; empty: any) and CPU in milli-cores."""

    milli: int
    models: tuple[str, ...]  # empty: any model
    cpu_milli: int = 0

    @property
    def gpus(self) -> float:
        return self.milli / 1000


# What a replica asks for when its contract names no CPU (the contract's own default).
DEFAULT_CPU_CORES = float(ComputeClause.model_fields["cpu_cores"].default)


def demand_of(workload: WireObject) -> Demand:
    """What one workload asks for across all its replicas."""
    compute = _get(workload, "spec", "contract", "compute") or {}
    replicas = int(_get(workload, "spec", "replicas") or 1)
    per_replica = replica_gpu_milli(
        gpus=int(compute["gpus"]) if compute.get("gpus") else None,
        gpu_milli=int(compute["gpuMilli"]) if compute.get("gpuMilli") else None,
        mig_profile=str(compute["migProfile"]) if compute.get("migProfile") else None,
    )
    cores = float(compute.get("cpuCores") or DEFAULT_CPU_CORES)
    return Demand(
        per_replica * replicas, tuple(compute.get("models") or ()), round(cores * 1000) * replicas
    )


def is_active(workload: WireObject) -> bool:
    return _get(workload, "status", "phase") not in FINISHED_PHASES


@dataclass(slots=True)
class Usage:
    """What a tenant's active workloads hold or ask for: milli-GPUs (in all and by model)
    and milli-cores."""

    milli: int = 0
    milli_by_model: dict[str, int] = field(default_factory=dict)
    cpu_milli: int = 0

    def add(self, demand: Demand, sign: int = 1) -> None:
        self.milli += sign * demand.milli
        self.cpu_milli += sign * demand.cpu_milli
        # A workload that allows several models may land on any of them: it counts against
        # each, so that no placement can take a model past its quota.
        for model in demand.models:
            self.milli_by_model[model] = self.milli_by_model.get(model, 0) + sign * demand.milli

    def copy(self) -> Usage:
        return Usage(self.milli, dict(self.milli_by_model), self.cpu_milli)

    def as_wire(self) -> dict[str, Any]:
        return {
            "gpus": _gpus(self.milli),
            "gpusByModel": {m: _gpus(v) for m, v in sorted(self.milli_by_model.items())},
            "cpuCores": _gpus(self.cpu_milli),
        }


def _gpus(milli: int) -> float | int:
    """Thousandths as a number of units: 2000 -> 2, 2500 -> 2.5."""
    return milli // 1000 if milli % 1000 == 0 else round(milli / 1000, 3)


def usage_of(workloads: Iterable[WireObject]) -> Usage:
    usage = Usage()
    for workload in workloads:
        if is_active(workload):
            usage.add(demand_of(workload))
    return usage


def quota_problems(tenant: WireObject, usage: Usage, demand: Demand) -> list[str]:
    """Why adding `demand` to `usage` breaks the tenant's quota; empty if it fits."""
    quota = _get(tenant, "spec", "quota") or {}
    name = name_of(tenant)
    problems = []
    total = quota.get("gpus")
    if total is not None and demand.milli and usage.milli + demand.milli > total * 1000:
        problems.append(
            f"quota: tenant {name} may hold {total} GPUs; it holds {_gpus(usage.milli)} and "
            f"this workload asks for {_gpus(demand.milli)}"
        )
    by_model: Mapping[str, int] = quota.get("gpusByModel") or {}
    for model, limit in sorted(by_model.items()):
        used = usage.milli_by_model.get(model, 0)
        if model in demand.models and used + demand.milli > limit * 1000:
            problems.append(
                f"quota: tenant {name} may hold {limit} {model}; it holds {_gpus(used)} and "
                f"this workload asks for {_gpus(demand.milli)}"
            )
    cores = quota.get("cpuCores")
    if cores is not None and usage.cpu_milli + demand.cpu_milli > round(cores * 1000):
        problems.append(
            f"quota: tenant {name} may use {_gpus(round(cores * 1000))} CPU cores; it uses "
            f"{_gpus(usage.cpu_milli)} and this workload asks for {_gpus(demand.cpu_milli)}"
        )
    return problems


# -- sovereignty -------------------------------------------------------------------------
def sovereignty_exclusion(site: WireObject, workload: WireObject, tenant: WireObject) -> str | None:
    """Why the contract's sovereignty clause or the tenant's law rules this site out (the
    checks of core/sovereignty.py, which the placement engine applies too)."""
    spec = _get(site, "spec") or {}
    facts = SiteFacts(
        name=name_of(site),
        jurisdictions=frozenset(spec.get("jurisdictions") or []),
        country=str(spec.get("country") or ""),
        kind=str(spec.get("kind") or ""),
        provider=str(spec.get("provider") or ""),
    )
    clause = SovereigntyClause.model_validate(
        _get(workload, "spec", "contract", "sovereignty") or {}
    )
    checks = law_checks(clause, _get(tenant, "spec", "allowedJurisdictions") or [])
    breach = first_breach(facts, checks)
    if breach is None:
        return None
    where = ", ".join(sorted(facts.jurisdictions)) or "no jurisdiction"
    return f"{breach.clause}: {breach.why} (the site is in {facts.country}, under {where})"


# -- policies ----------------------------------------------------------------------------
def policy_applies(policy: WireObject, workload: WireObject, tenant: WireObject) -> bool:
    match = _get(policy, "spec", "match") or {}
    tenants = match.get("tenants") or []
    types = match.get("workloadTypes") or []
    return (not tenants or name_of(tenant) in tenants) and (
        not types or _get(workload, "spec", "type") in types
    )


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why one site may not host the workload: by law (the contract's or the tenant's
    sovereignty) or by a platform deny policy (named, for platform eyes only)."""

    kind: Literal["sovereignty", "policy"]
    message: str
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class SiteVerdict:
    site: str
    allowed: bool
    exclusions: tuple[Exclusion, ...] = ()
    allowed_by: tuple[str, ...] = ()  # deny policies that were checked and hold

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(e.message for e in self.exclusions)


@dataclass(slots=True)
class Admission:
    """What admission decided: refusals (any means no), warnings, and where it may run."""

    denials: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sites: list[SiteVerdict] = field(default_factory=list)

    @property
    def allowed_sites(self) -> list[str]:
        return [v.site for v in self.sites if v.allowed]


def _policy_line(policy: WireObject, detail: str) -> str:
    return f"policy {name_of(policy)}: {_get(policy, 'spec', 'message')}{detail}"


def _no_lawful_site(verdicts: Sequence[SiteVerdict], shown: int = 3) -> str:
    why = "; ".join(
        f"{v.site}: {v.reasons[0].removeprefix('sovereignty: ')}" for v in verdicts[:shown]
    )
    more = f"; {len(verdicts) - shown} more" if len(verdicts) > shown else ""
    return (
        f"no site satisfies the workload's sovereignty ({why}{more}): it stays Rejected "
        "until a site that does joins the fleet"
    )


def judge_sites(
    *,
    workload: WireObject,
    tenant: WireObject,
    sites: Sequence[WireObject],
    policies: Sequence[WireObject],
) -> Admission:
    """Sovereignty and policies over every site: which may host the workload, and why not.

    A deny policy rules out each site where it does not hold (an evaluation error counts as
    not holding: fail closed). The workload is refused when sites exist and none is left.
    Warn policies are checked over the sites that remain. With no site at all, policies
    that do not read `site` still decide; the rest wait for placement.
    """
    result = Admission()
    applicable = [p for p in policies if policy_applies(p, workload, tenant)]
    deny = [p for p in applicable if _get(p, "spec", "action") != "warn"]
    warn = [p for p in applicable if _get(p, "spec", "action") == "warn"]
    excluded_by: dict[str, list[str]] = {}
    for site in sites:
        reasons: list[Exclusion] = []
        held: list[str] = []
        why = sovereignty_exclusion(site, workload, tenant)
        if why:
            reasons.append(Exclusion("sovereignty", f"sovereignty: {why}"))
        else:
            for policy in deny:
                outcome = evaluate(
                    str(_get(policy, "spec", "expression")),
                    workload=workload,
                    tenant=tenant,
                    site=dict(site),
                )
                if outcome.allowed:
                    held.append(name_of(policy))
                else:
                    reasons.append(
                        Exclusion(
                            "policy",
                            _policy_line(policy, f" ({outcome.error})" if outcome.error else ""),
                            name_of(policy),
                        )
                    )
                    excluded_by.setdefault(name_of(policy), []).append(name_of(site))
        result.sites.append(SiteVerdict(name_of(site), not reasons, tuple(reasons), tuple(held)))
    if not sites:
        for policy in deny:
            outcome = evaluate(
                str(_get(policy, "spec", "expression")), workload=workload, tenant=tenant, site=None
            )
            if not outcome.allowed and outcome.error is None:
                result.denials.append(_policy_line(policy, ""))
    elif not result.allowed_sites and excluded_by:
        # Sovereignty alone ruling everything out is for the scheduler to report as a
        # per-clause reason (more sites may come); a policy that does is a refusal.
        for policy in deny:
            names = excluded_by.get(name_of(policy))
            if names:
                result.denials.append(_policy_line(policy, f" (rules out {', '.join(names)})"))
    elif not result.allowed_sites:
        # Accepted, since a site may yet come; but said at once, not first seen as Rejected.
        result.warnings.append(_no_lawful_site(result.sites))
    allowed = [s for s in sites if name_of(s) in set(result.allowed_sites)]
    for policy in warn:
        failing = []
        for site in allowed or [None]:  # type: ignore[list-item]
            outcome = evaluate(
                str(_get(policy, "spec", "expression")),
                workload=workload,
                tenant=tenant,
                site=dict(site) if site else None,
            )
            if not outcome.allowed and (site is not None or outcome.error is None):
                failing.append(name_of(site) if site else "")
        if failing:
            where = ", ".join(f for f in failing if f)
            result.warnings.append(_policy_line(policy, f" (at {where})" if where else ""))
    return result


def judgement_key(
    workload: WireObject, tenant: WireObject, policies: Sequence[WireObject]
) -> str | None:
    """All that judge_sites reads of `workload`, as one string: two workloads of one tenant
    with equal keys are judged alike on any sites. That is its type (which policies apply),
    its sovereignty clause and what each applicable policy's expression reads of it; None
    when such an expression uses a variable whole (then any field could matter)."""
    parts = [
        json.dumps(_get(workload, "spec", "type")),
        json.dumps(_get(workload, "spec", "contract", "sovereignty"), sort_keys=True, default=str),
    ]
    for policy in policies:
        if not policy_applies(policy, workload, tenant):
            continue
        read = read_values(
            str(_get(policy, "spec", "expression")),
            {"workload": workload, "tenant": tenant, "site": {}},
        )
        if read is None:
            return None
        parts.append(read)
    return "\n".join(parts)


# -- budget ------------------------------------------------------------------------------
def period_start(at: datetime, period: str) -> datetime:
    """The start (UTC midnight) of the budget period that contains `at`."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    raise ValueError(f"unknown budget period {period!r}")


def gpu_hour_price(pricing: Mapping[str, Any], model: str, watts: float | None = None) -> float:
    """What one hour of one GPU of `model` costs under a site's pricing (wire form): its
    GPU-hour price (gpuHourByModel, else gpuHour) and the energy it draws at its rated power
    at the site's kWh price. `watts`: the board power the node's profile states; without
    it, the catalog's TDP for the model; for a model the catalog does not know, no energy."""
    by_model: Mapping[str, float] = pricing.get("gpuHourByModel") or {}
    price = float(by_model.get(model, pricing.get("gpuHour") or 0.0))
    kwh = float(pricing.get("kwh") or 0.0)
    if kwh and watts is None:
        try:
            watts = get_model(model).tdp_w
        except KeyError:
            watts = None
    return price + (kwh * watts / 1000 if kwh and watts else 0.0)


def price_per_gpu_hour(site: WireObject, models: Sequence[str]) -> float:
    """The cheapest GPU-hour at `site` among the models the workload allows (energy
    included); a workload that allows any model is priced at gpuHour, without energy, the
    GPU it will draw power on being unknown."""
    pricing = _get(site, "spec", "pricing") or {}
    if not models:
        return float(pricing.get("gpuHour") or 0.0)
    return min(gpu_hour_price(pricing, m) for m in models)


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    refusal: str | None = None
    warning: str | None = None


def projected_gpu_hours(workload: WireObject) -> float:
    """GPU-hours the workload may use: its GPUs times its maximum duration (0 if unbounded)."""
    seconds = _get(workload, "spec", "contract", "lifecycle", "maxDurationSeconds")
    return demand_of(workload).gpus * (float(seconds) / 3600 if seconds else 0.0)


def cheapest_cost(workload: WireObject, sites: Sequence[WireObject], currency: str) -> float:
    """The least the workload's projected GPU-hours can cost at any of `sites` in `currency`."""
    hours = projected_gpu_hours(workload)
    demand = demand_of(workload)
    prices = [
        price_per_gpu_hour(s, demand.models)
        for s in sites
        if (_get(s, "spec", "pricing", "currency") or "EUR") == currency
    ]
    return hours * min(prices) if prices and hours else 0.0


def budget_check(
    tenant: WireObject, *, projected_hours: float, projected_cost: float
) -> BudgetCheck:
    """Refuse (hard limit) or warn (soft limit, or a soft-only budget) about new work.

    Use so far is `status.usage` (GPU-hours and cost accrued by running work); the workload
    adds its projection. An exhausted hard budget refuses everything new.
    """
    budget = _get(tenant, "spec", "budget")
    if not budget:
        return BudgetCheck()
    usage = _get(tenant, "status", "usage") or {}
    name = name_of(tenant)
    period = budget.get("period", "month")
    if budget.get("gpuHours") is not None:
        limit, used, adding = (
            float(budget["gpuHours"]),
            float(usage.get("gpuHours") or 0),
            projected_hours,
        )
        unit = "GPU-hours"
    else:
        limit, used, adding = float(budget["amount"]), float(usage.get("cost") or 0), projected_cost
        unit = budget.get("currency", "EUR")
    soft = limit * float(budget.get("softLimitPct", 80.0)) / 100
    hard = budget.get("hardLimit", True)
    text = f"budget: tenant {name} has used {used:g} of {limit:g} {unit} this {period}"
    refusal = None
    if used >= limit:
        refusal = f"{text}; no new work is admitted until the next {period}"
    elif used + adding > limit:
        refusal = f"{text}; this workload may use {adding:g} more"
    if refusal:
        return BudgetCheck(refusal=refusal) if hard else BudgetCheck(warning=refusal)
    if used + adding >= soft:
        more = f"; this workload may use {adding:g} more" if adding else ""
        return BudgetCheck(warning=f"{text} (soft limit {soft:g}{more})")
    return BudgetCheck()


def admit(
    *,
    workload: WireObject,
    tenant: WireObject,
    usage: Usage,
    sites: Sequence[WireObject],
    policies: Sequence[WireObject],
) -> Admission:
    """Everything admission decides about one workload of `tenant`.

    `usage` is what the tenant's other active workloads hold (not this one).
    """
    result = judge_sites(workload=workload, tenant=tenant, sites=sites, policies=policies)
    demand = demand_of(workload)
    result.denials = quota_problems(tenant, usage, demand) + result.denials
    allowed = [s for s in sites if name_of(s) in set(result.allowed_sites)]
    currency = str(_get(tenant, "spec", "budget", "currency") or "EUR")
    check = budget_check(
        tenant,
        projected_hours=projected_gpu_hours(workload),
        projected_cost=cheapest_cost(workload, allowed, currency),
    )
    if check.refusal:
        result.denials.append(check.refusal)
    if check.warning:
        result.warnings.append(check.warning)
    return result
