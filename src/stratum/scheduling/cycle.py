"""One scheduling cycle: every waiting contract decided together on an immutable snapshot.

Input: the fleet's nodes, the holdings (live placements: who holds which devices, at what
priority, whether they may be preempted) and the waiting contracts with what only this
moment knows of them (quota headroom comes from the holdings, fair-share weights and the
sites the tenant's policies allow from the caller). Output: binds, refusals with per-clause
reasons, evictions (preemptions) and the reservation a waiting gang keeps. Nothing here
reads or writes the store; the WorkloadController writes the result, and `stratum plan`
reads it, so both decide alike (Kueue's shape: decide in one pure cycle, then write).

The order: priority, then dominant-resource fair share (charged as work binds during the
pass), then the largest request, the most GPUs per replica, the tightest across-replica
tier, then age. A gang that cannot bind keeps the devices it is nearest to fitting on free
of work ranked after it (backfill goes elsewhere), so small work cannot starve it; one
that can bind by evicting lower-priority preemptible work does, cheapest victims first.
When contracts that could fit the fleet are left waiting, the batch search then tries
moving one of them ahead of one that bound (scheduling/batch.py's move), within a budget of
decisions, and keeps an order only if it binds more GPUs at each priority, highest first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from stratum.api.v1alpha1.contract import Contract
from stratum.core.governance import Demand, Usage
from stratum.scheduling.contracts import (
    TIERS,
    Attempt,
    ContractDecision,
    FleetNode,
    FleetState,
    Held,
    WorkloadAsk,
    judged,
    never_satisfiable,
    place_contract,
    replica_milli,
    replica_request,
)
from stratum.scheduling.policies import Policy, make_policy
from stratum.scheduling.queue import FairQueue, QueueItem, Vector, Victim, choose_victims
from stratum.scheduling.request import MILLI


@dataclass(frozen=True, slots=True)
class TenantTerms:
    """What the cycle needs of a tenant: its law, isolation, quota and fair-share weight."""

    jurisdictions: frozenset[str] = frozenset()
    isolation: str = "shared"
    quota_milli: int | None = None  # total GPU quota in milli-GPU; None: no limit
    quota_milli_by_model: Mapping[str, int] = field(default_factory=dict)
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Waiting:
    """A contract waiting for devices."""

    key: str  # namespace/name
    tenant: str
    replicas: int
    contract: Contract
    age: float  # creation time in seconds since the epoch: smaller is older
    # Sites the tenant's deny policies allow it (None: no policy restricts), and why not
    # the others.
    policy_sites: frozenset[str] | None = None
    policy_reason: str = "ruled out by a policy"


@dataclass(frozen=True, slots=True)
class Holding:
    """A live placement: the devices a workload holds and what it would cost to evict."""

    key: str
    tenant: str
    contract: Contract
    replicas: int
    held: tuple[Held, ...]
    models: tuple[str, ...]  # the GPU models its devices are (counted against model quotas)
    age: float = 0.0

    @property
    def priority(self) -> int:
        return self.contract.lifecycle.priority

    @property
    def preemptible(self) -> bool:
        return self.contract.lifecycle.preemptible


@dataclass(frozen=True, slots=True)
class CycleInput:
    nodes: tuple[FleetNode, ...]
    holdings: tuple[Holding, ...]
    waiting: tuple[Waiting, ...]
    tenants: Mapping[str, TenantTerms] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Bind:
    key: str
    decision: ContractDecision


@dataclass(frozen=True, slots=True)
class Eviction:
    """`key` binds (with `decision`) once `victims` give their devices back."""

    key: str
    victims: tuple[str, ...]
    decision: ContractDecision


@dataclass(frozen=True, slots=True)
class Refusal:
    key: str
    decision: ContractDecision  # ever_possible: Pending (wait) else Rejected

    @property
    def phase(self) -> str:
        return "Pending" if self.decision.ever_possible else "Rejected"


@dataclass(frozen=True, slots=True)
class CycleResult:
    binds: tuple[Bind, ...]
    evictions: tuple[Eviction, ...]
    refusals: tuple[Refusal, ...]
    reservation: frozenset[str]  # nodes kept for the first waiting gang
    orders_tried: int = 1

    def decision_of(self, key: str) -> ContractDecision | None:
        items: list[Bind | Eviction | Refusal] = [*self.binds, *self.evictions, *self.refusals]
        return next((item.decision for item in items if item.key == key), None)


def demand_vector(contract: Contract, replicas: int) -> Vector:
    """What a whole workload asks for: milli-GPU, milli-CPU, MiB."""
    request = replica_request(contract)
    return (
        float(replica_milli(contract) * replicas),
        float(request.cpu_milli * replicas),
        float(request.memory_mib * replicas),
    )


def _score(
    decisions: Mapping[str, ContractDecision], waiting: Sequence[Waiting], priorities: list[int]
) -> tuple[int, ...]:
    bound = dict.fromkeys(priorities, 0)
    for w in waiting:
        d = decisions.get(w.key)
        if d is not None and d.placed:
            bound[w.contract.lifecycle.priority] += replica_milli(w.contract) * w.replicas
    return tuple(bound[p] for p in priorities)


@dataclass
class _Pass:
    """One line of decisions in one order: what bound, what was refused, what was evicted."""

    order: list[str] = field(default_factory=list)  # keys in the order they were decided
    decisions: dict[str, ContractDecision] = field(default_factory=dict)
    evictions: list[Eviction] = field(default_factory=list)
    reservation: frozenset[str] = frozenset()
    reserved_by: str | None = None  # the waiting gang the reservation is kept for


class _Cycle:
    def __init__(self, inp: CycleInput, seed: int) -> None:
        self.inp = inp
        self.seed = seed
        self.by_key = {w.key: w for w in inp.waiting}
        self.holdings = {h.key: h for h in inp.holdings}
        held = [h for holding in inp.holdings for h in holding.held]
        self.state = FleetState.build(list(inp.nodes), held)
        self.pristine = FleetState.build(list(inp.nodes), pristine=True)
        self.model_of = {n.name: n.model for n in inp.nodes}
        self.capacity: Vector = (
            float(sum(len(n.gpu_models) for n in inp.nodes) * MILLI),
            float(sum(n.cpu_milli for n in inp.nodes)),
            float(sum(n.memory_mib for n in inp.nodes)),
        )
        self._never: dict[str, Attempt | None] = {}

    # -- the books a pass keeps ------------------------------------------------------------
    def _usage(self) -> tuple[dict[str, Usage], dict[str, Vector]]:
        quota: dict[str, Usage] = {}
        share: dict[str, Vector] = {}
        for h in self.inp.holdings:
            _charge(quota, share, h.tenant, h.contract, h.replicas, h.models, +1)
        return quota, share

    def ask(self, w: Waiting, quota: Mapping[str, Usage], avoid: frozenset[str]) -> WorkloadAsk:
        terms = self.inp.tenants.get(w.tenant, TenantTerms())
        used = quota.get(w.tenant, Usage())
        total = None if terms.quota_milli is None else terms.quota_milli - used.milli
        by_model = {
            m: limit - used.milli_by_model.get(m, 0)
            for m, limit in terms.quota_milli_by_model.items()
        }
        return WorkloadAsk(
            tenant=w.tenant,
            replicas=w.replicas,
            contract=w.contract,
            tenant_jurisdictions=terms.jurisdictions,
            tenant_isolation=terms.isolation,
            quota_left_milli=total,
            model_quota_left_milli=by_model,
            avoid_nodes=avoid,
            policy_sites=w.policy_sites,
            policy_reason=w.policy_reason,
        )

    def never(self, w: Waiting, ask: WorkloadAsk) -> Attempt | None:
        """Why the contract never fits the empty, healthy fleet; None when it does (worked
        out once per contract)."""
        if w.key not in self._never:
            self._never[w.key] = never_satisfiable(self.pristine, ask)
        return self._never[w.key]

    def fleet_without(
        self, evicted: frozenset[str], this_pass: Sequence[tuple[str, Sequence[Held]]]
    ) -> FleetState:
        """The fleet with the `evicted` holdings' devices free and this pass's binds taken."""
        kept = [h for h in self.inp.holdings if h.key not in evicted]
        held = [x for h in kept for x in h.held] + [x for _, hs in this_pass for x in hs]
        on: dict[str, set[str]] = {}
        for h in kept:
            for x in h.held:
                on.setdefault(x.node, set()).add(h.tenant)
        for tenant, hs in this_pass:
            for x in hs:
                on.setdefault(x.node, set()).add(tenant)
        nodes = [replace(n, tenants=frozenset(on.get(n.name, ()))) for n in self.inp.nodes]
        return FleetState.build(nodes, held)

    # -- one pass ----------------------------------------------------------------------
    def run_pass(
        self,
        order: Iterable[str] | None,
        policy: Policy,
        *,
        preempt: bool,
        kept: _Pass | None = None,
    ) -> _Pass:
        """Decide every waiting contract once, in `order` (None: the fair queue's order).
        A gang that cannot bind keeps its nearest domain from work that arrived after it
        (against starvation by a stream of later, smaller work). A trial order of the search
        keeps the fair-queue pass's reservation (`kept`) fixed, so that reordering can never
        hand the gang's domain to later work either."""
        quota, share = self._usage()
        queue = FairQueue(
            [self._item(w) for w in self.inp.waiting],
            self.capacity,
            share,
            {t: terms.weight for t, terms in self.inp.tenants.items()},
        )
        keys: Iterable[str] = (it.key for it in queue) if order is None else order
        state = self.state
        out = _Pass()
        evicted: set[str] = set()
        this_pass: list[tuple[str, Sequence[Held]]] = []
        for key in keys:
            w = self.by_key[key]
            out.order.append(key)
            holder = out if kept is None else kept
            gang = self.by_key.get(holder.reserved_by or "")
            # Only work that arrived after the gang is kept off its domain: what was already
            # waiting when it came may still backfill there.
            avoid = holder.reservation if gang is not None and w.age > gang.age else frozenset()
            ask = self.ask(w, quota, avoid)
            decision = place_contract(state, ask, policy=policy)
            if not decision.placed:
                never = self.never(w, ask)
                decision = judged(decision, never, len(self.pristine.nodes))
                if never is None and preempt:
                    chosen = self._preempt(w, ask, evicted, this_pass, policy)
                    if chosen is not None:
                        victims, decision, state = chosen
                        evicted |= set(victims)
                        for victim in victims:
                            h = self.holdings[victim]
                            _charge(quota, share, h.tenant, h.contract, h.replicas, h.models, -1)
                            queue.charge(h.tenant, demand_vector(h.contract, h.replicas), -1)
                        out.evictions.append(Eviction(key, victims, decision))
            if decision.placed:
                state = state.bind(w.tenant, decision.bindings, dedicated=decision.dedicated)
                owner = w.tenant if decision.dedicated else ""
                this_pass.append((w.tenant, [b.held(owner) for b in decision.bindings]))
                models = tuple(
                    sorted({self.model_of.get(b.node, "") for b in decision.bindings} - {""})
                )
                _charge(quota, share, w.tenant, w.contract, w.replicas, models, +1)
                queue.charge(w.tenant, demand_vector(w.contract, w.replicas))
            elif (
                kept is None
                and decision.waiting_on
                and not out.reservation
                and replica_milli(w.contract) * w.replicas > MILLI
            ):
                out.reservation = frozenset(decision.waiting_on)
                out.reserved_by = key
            out.decisions[key] = decision
        return out

    def _item(self, w: Waiting) -> QueueItem:
        return QueueItem(
            w.key,
            w.tenant,
            w.contract.lifecycle.priority,
            w.age,
            demand_vector(w.contract, w.replicas),
            (replica_milli(w.contract), -TIERS.index(w.contract.topology.across_replicas)),
        )

    def _preempt(
        self,
        w: Waiting,
        ask: WorkloadAsk,
        evicted: set[str],
        this_pass: Sequence[tuple[str, Sequence[Held]]],
        policy: Policy,
    ) -> tuple[tuple[str, ...], ContractDecision, FleetState] | None:
        priority = w.contract.lifecycle.priority
        candidates = [
            Victim(h.key, h.priority, replica_milli(h.contract) * h.replicas, h.age)
            for h in self.inp.holdings
            if h.key not in evicted and h.key != w.key and h.preemptible and h.priority < priority
        ]
        if not candidates:
            return None
        chosen = choose_victims(
            ask,
            candidates,
            lambda keys: self.fleet_without(frozenset(evicted) | keys, this_pass),
            policy=policy,
        )
        if chosen is None:
            return None
        return chosen.victims, chosen.decision, chosen.state

    # -- the search ------------------------------------------------------------------------
    def improve(self, first: _Pass, budget: int) -> tuple[_Pass, int]:
        """Moves of one waiting contract that could fit ahead of one of its priority that
        bound; the best move of a round is kept if it binds more; until none helps or the
        budget (decisions) is spent. Trial orders each take a fresh policy (they branch
        from one state), so a kept order's decisions are the ones it was scored with."""
        waiting = self.inp.waiting
        priorities = sorted({w.contract.lifecycle.priority for w in waiting}, reverse=True)
        best, best_score = first, _score(first.decisions, waiting, priorities)
        tried = 1
        spent = len(waiting)
        while spent + len(waiting) <= budget:
            order = best.order
            position = {k: n for n, k in enumerate(order)}
            round_best, round_score = best, best_score
            movable = [
                k for k in order if not best.decisions[k].placed and best.decisions[k].ever_possible
            ]
            for u in movable:
                pu = self.by_key[u].contract.lifecycle.priority
                ahead = [
                    p
                    for p in order[: position[u]]
                    if best.decisions[p].placed and self.by_key[p].contract.lifecycle.priority == pu
                ]
                for p in reversed(ahead):
                    if spent + len(waiting) > budget:
                        break
                    trial = [k for k in order if k != u]
                    trial.insert(trial.index(p), u)
                    run = self.run_pass(
                        trial, make_policy("stratum", seed=self.seed), preempt=False, kept=first
                    )
                    tried += 1
                    spent += len(waiting)
                    score = _score(run.decisions, waiting, priorities)
                    if score > round_score:
                        round_best, round_score = run, score
            if round_best is best:
                break
            best, best_score = round_best, round_score
        return best, tried


def _charge(
    quota: dict[str, Usage],
    share: dict[str, Vector],
    tenant: str,
    contract: Contract,
    replicas: int,
    models: tuple[str, ...],
    sign: int,
) -> None:
    quota.setdefault(tenant, Usage()).add(Demand(replica_milli(contract) * replicas, models), sign)
    vector = demand_vector(contract, replicas)
    used = share.get(tenant, (0.0, 0.0, 0.0))
    share[tenant] = (
        used[0] + sign * vector[0],
        used[1] + sign * vector[1],
        used[2] + sign * vector[2],
    )


def run_cycle(
    inp: CycleInput,
    *,
    policy: Policy | None = None,
    seed: int = 0,
    search_decisions: int = 3000,
    on_decision: Callable[[ContractDecision], None] | None = None,
) -> CycleResult:
    """Decide every waiting contract of `inp`; see the module's docstring.

    `policy` is the caller's learning policy (it follows the first, fair-queue line of
    decisions); `search_decisions` bounds the batch search's cost in placement decisions.
    """
    cycle = _Cycle(inp, seed)
    policy = policy or make_policy("stratum", seed=seed)
    first = cycle.run_pass(None, policy, preempt=True)
    chosen, tried = first, 1
    stuck = any(not d.placed and d.ever_possible for d in first.decisions.values())
    if stuck and not first.evictions and len(inp.waiting) > 1:
        chosen, tried = cycle.improve(first, search_decisions)
        gang = first.reserved_by
        if chosen is not first and gang is not None and not chosen.decisions[gang].placed:
            chosen.reservation, chosen.reserved_by = first.reservation, gang
    if on_decision is not None:
        for d in chosen.decisions.values():
            on_decision(d)
    evicting = {e.key for e in chosen.evictions}
    binds = tuple(
        Bind(k, chosen.decisions[k])
        for k in chosen.order
        if chosen.decisions[k].placed and k not in evicting
    )
    refusals = tuple(
        Refusal(k, chosen.decisions[k]) for k in chosen.order if not chosen.decisions[k].placed
    )
    return CycleResult(binds, tuple(chosen.evictions), refusals, chosen.reservation, tried)
