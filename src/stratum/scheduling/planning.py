"""Capacity planning: "what if" on a copy of the fleet, never on the fleet itself.

A FleetChange adds node pools, removes sites, clusters or nodes, and brings expected new
work. The plan places every waiting contract (and the new and displaced ones) before and
after the change with the controllers' own scheduling cycle (quota, policies, fair share,
preemption, the batch search), and reports which would bind,
utilisation and fragmentation on both sides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from stratum.api.v1alpha1 import HardwareProfile, Node, Placement, Policy, Site, Tenant, Workload
from stratum.api.v1alpha1.meta import ObjectName, WireModel
from stratum.scheduling import intake
from stratum.scheduling.contracts import FleetNode, Held
from stratum.scheduling.cycle import Bind, Eviction, run_cycle
from stratum.scheduling.fleet import HOLDING_PHASES, fleet_nodes, held_devices
from stratum.scheduling.policies import make_policy
from stratum.scheduling.request import MILLI


class PoolAddition(WireModel):
    site: ObjectName
    profile: ObjectName
    count: int = Field(ge=1, le=100_000)
    cluster: ObjectName = "planned"
    rack_prefix: str = "planned-r"
    nodes_per_rack: int = Field(default=4, ge=1)


class Removal(WireModel):
    sites: list[str] = Field(default_factory=list)
    clusters: list[str] = Field(default_factory=list)
    nodes: list[str] = Field(default_factory=list)


class FleetChange(WireModel):
    api_version: str = "stratum.dev/v1alpha1"
    kind: str = Field(default="FleetChange", pattern="^FleetChange$")
    metadata: dict[str, str] = Field(default_factory=dict)
    add: list[PoolAddition] = Field(default_factory=list)
    remove: Removal = Field(default_factory=Removal)
    workloads: list[Workload] = Field(default_factory=list, description="expected new load")


@dataclass(frozen=True, slots=True)
class FleetFigures:
    nodes: int
    gpus: int
    allocated_gpu_pct: float
    fragmented_free_pct: float  # free GPU capacity on GPUs that are partly taken


@dataclass(frozen=True, slots=True)
class Outcome:
    workload: str
    before: str  # "binds", "running", or the reason it does not
    after: str
    nodes_after: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    before: FleetFigures
    after: FleetFigures
    outcomes: tuple[Outcome, ...]
    displaced: tuple[str, ...]

    @property
    def newly_bound(self) -> list[str]:
        return [
            o.workload
            for o in self.outcomes
            if o.after == "binds" and o.before not in ("binds", "running")
        ]


def _key(w: Workload) -> str:
    return f"{w.metadata.namespace}/{w.metadata.name}"


def _added_nodes(change: FleetChange, profiles: Mapping[str, HardwareProfile]) -> list[Node]:
    nodes = []
    for pool in change.add:
        if pool.profile not in profiles:
            raise ValueError(f"add: HardwareProfile {pool.profile!r} does not exist")
        gpus = [{"index": g.index, "health": "Healthy"} for g in profiles[pool.profile].spec.gpus]
        for i in range(pool.count):
            nodes.append(
                Node.model_validate(
                    {
                        "apiVersion": "stratum.dev/v1alpha1",
                        "kind": "Node",
                        "metadata": {"name": f"{pool.cluster}-{pool.profile}-{i + 1:04d}"},
                        "spec": {
                            "cluster": pool.cluster,
                            "site": pool.site,
                            "profile": pool.profile,
                            "rack": f"{pool.rack_prefix}{i // pool.nodes_per_rack + 1}",
                        },
                        "status": {"phase": "Ready", "gpus": gpus},
                    }
                )
            )
    return nodes


def _figures(fleet: list[FleetNode], held: list[Held]) -> FleetFigures:
    free: dict[tuple[str, int], int] = {}
    for node in fleet:
        for g, ok in enumerate(node.gpu_healthy or (True,) * len(node.gpu_models)):
            if ok:
                free[(node.name, g)] = MILLI
    for h in held:
        for g in h.gpus:
            if (h.node, g) in free:
                free[(h.node, g)] -= h.milli
    total = len(free) * MILLI
    left = sum(max(v, 0) for v in free.values())
    partial = sum(v for v in free.values() if 0 < v < MILLI)
    return FleetFigures(
        nodes=len(fleet),
        gpus=len(free),
        allocated_gpu_pct=round(100 * (total - left) / total, 2) if total else 0.0,
        fragmented_free_pct=round(100 * partial / left, 2) if left else 0.0,
    )


def _place_all(
    waiting: list[Workload],
    fleet: list[FleetNode],
    live: list[Placement],
    workloads: Mapping[str, Workload],
    tenants: Mapping[str, Tenant],
    policy_sites: Callable[[Workload], intake.PolicySites],
    seed: int,
) -> dict[str, tuple[str, tuple[str, ...], list[Held]]]:
    """The controllers' own cycle (quota, policies, fair share, preemption) on this fleet."""
    inp = intake.cycle_input(
        nodes=fleet,
        placements=live,
        workloads=workloads,
        waiting_for=waiting,
        tenants=tenants,
        policy_sites=policy_sites,
    )
    result = run_cycle(inp, policy=make_policy("stratum", seed=seed), seed=seed)
    results: dict[str, tuple[str, tuple[str, ...], list[Held]]] = {}
    placed: list[Bind | Eviction] = [*result.binds, *result.evictions]
    for item in placed:
        d = item.decision
        held = [b.held() for b in d.bindings]
        what = "binds"
        if isinstance(item, Eviction):
            what = f"binds, evicting {', '.join(item.victims)}"
        results[item.key] = (what, tuple(b.node for b in d.bindings), held)
    for refusal in result.refusals:
        results[refusal.key] = (refusal.decision.summary or "does not fit", (), [])
    return results


# The kinds a plan reads, in wire form, by kind name (plan_objects).
FLEET_KINDS = (Node, Site, HardwareProfile, Tenant, Workload, Placement, Policy)


def plan_objects(
    change: FleetChange, objects: Mapping[str, Iterable[Mapping[str, Any]]], *, seed: int = 0
) -> Plan:
    """`plan` over the fleet as wire objects by kind (a list or a store read gives them):
    each is validated once and keyed as the controllers key it (namespace/name or name).
    A kind left out counts as none of it (a caller who may not read Policies)."""

    def typed(model: Any) -> dict[str, Any]:
        out = {}
        for item in objects.get(model.KIND, ()):
            obj = model.model_validate(item)
            ns = obj.metadata.namespace
            out[f"{ns}/{obj.metadata.name}" if ns else obj.metadata.name] = obj
        return out

    state = {m.KIND: typed(m) for m in FLEET_KINDS}
    return plan(
        change,
        nodes=state["Node"].values(),
        sites=state["Site"],
        profiles=state["HardwareProfile"],
        tenants=state["Tenant"],
        workloads=state["Workload"].values(),
        placements=state["Placement"].values(),
        policies=state["Policy"],
        seed=seed,
    )


def plan(
    change: FleetChange,
    *,
    nodes: Iterable[Node],
    sites: Mapping[str, Site],
    profiles: Mapping[str, HardwareProfile],
    tenants: Mapping[str, Tenant],
    workloads: Iterable[Workload],
    placements: Iterable[Placement],
    policies: Mapping[str, Policy] | None = None,
    seed: int = 0,
) -> Plan:
    """Place every waiting contract (and the new and displaced ones) before and after the
    change with the controllers' own scheduling cycle and policies."""
    nodes = list(nodes)
    workloads = list(workloads)
    placements = list(placements)
    removed_sites = set(change.remove.sites)
    removed_clusters = set(change.remove.clusters)
    removed_nodes = set(change.remove.nodes)
    for site in removed_sites - set(sites):
        raise ValueError(f"remove.sites: {site!r} is not a Site")
    kept = [
        n
        for n in nodes
        if n.spec.site not in removed_sites
        and n.spec.cluster not in removed_clusters
        and n.metadata.name not in removed_nodes
    ]
    gone = {n.metadata.name for n in nodes} - {n.metadata.name for n in kept}
    after_nodes = kept + _added_nodes(change, profiles)
    live = [p for p in placements if p.status.phase in HOLDING_PHASES]
    displaced = {
        f"{p.metadata.namespace}/{p.spec.workload}"
        for p in live
        if any(r.node in gone for r in p.spec.replicas)
    }
    by_key = {_key(w): w for w in workloads}
    waiting = [w for w in workloads if w.status.phase in (None, "Pending", "Rejected")]
    waiting += list(change.workloads)
    held_before, on_before = held_devices(live)
    held_after, on_after = held_devices(
        [p for p in live if f"{p.metadata.namespace}/{p.spec.workload}" not in displaced]
    )
    before_fleet = fleet_nodes(nodes, sites, profiles, on_before)
    after_fleet = fleet_nodes(after_nodes, sites, profiles, on_after)
    deny = [p for p in (policies or {}).values() if p.spec.action == "deny"]

    def policy_sites(wl: Workload) -> intake.PolicySites:
        if not deny:
            return intake.NO_POLICY
        tenant = tenants.get(wl.metadata.namespace or "")
        return intake.judge_policy_sites(
            workload=intake.full(wl),
            tenant=intake.full(tenant) if tenant else {},
            sites=[intake.full(s) for s in sites.values()],
            policies=[intake.full(p) for p in deny],
        )

    kept_live = [p for p in live if f"{p.metadata.namespace}/{p.spec.workload}" not in displaced]
    everyone = {**by_key, **{_key(w): w for w in change.workloads}}
    before = _place_all(waiting, before_fleet, live, everyone, tenants, policy_sites, seed)
    after = _place_all(
        waiting + [by_key[k] for k in sorted(displaced) if k in by_key],
        after_fleet,
        kept_live,
        everyone,
        tenants,
        policy_sites,
        seed,
    )
    outcomes = []
    for key in sorted(set(before) | set(after)):
        b = "running" if key in displaced else before.get(key, ("running", (), []))[0]
        a, where, _ = after[key]
        outcomes.append(Outcome(key, b, a, where))
    return Plan(
        before=_figures(
            before_fleet, held_before + [h for _, _, hs in before.values() for h in hs]
        ),
        after=_figures(after_fleet, held_after + [h for _, _, hs in after.values() for h in hs]),
        outcomes=tuple(outcomes),
        displaced=tuple(sorted(displaced)),
    )
