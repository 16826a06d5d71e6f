"""WorkloadController: the contract lifecycle.

    Pending ─▶ Bound ─▶ Running ─▶ Succeeded | Failed
       ▲  └▶ Rejected (never satisfiable by the fleet the tenant may use; re-checked when
       │               the fleet changes)
       └──── Violated ◀─┘ (a fault or telemetry broke a clause; re-placed when the contract
                          says `onViolation: replace`, else only reported)

Each pass observes first (the world, the backends), then acts: writes go to the store in
short transactions, backend calls happen after the write that decided them commits, and
every step is idempotent, so a crash at any line is repaired by the next pass.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from stratum.api.v1alpha1 import Placement, Workload
from stratum.backends.base import (
    Backend,
    LaunchSpec,
    NodeObservation,
    Observation,
    ReplicaLaunch,
    RunObservation,
)
from stratum.core.audit import digest
from stratum.core.clock import Clock
from stratum.core.errors import AlreadyExists, Conflict, NotFound
from stratum.core.governance import GpuDemand, GpuUsage, gpu_demand, judge_sites
from stratum.observability.metrics import Metrics
from stratum.reconcile.backoff import KeyedBackoff
from stratum.reconcile.events import record_event
from stratum.reconcile.world import World, key_of, wire
from stratum.scheduling.contracts import (
    ContractDecision,
    FleetNode,
    FleetState,
    ReplicaBinding,
    WorkloadAsk,
    place_contract,
    replica_milli,
    replica_request,
)
from stratum.scheduling.fleet import HOLDING_PHASES, fleet_nodes, held_devices
from stratum.scheduling.policies import make_policy
from stratum.scheduling.queue import FairQueue, QueueItem, Victim, choose_victims
from stratum.scheduling.request import MILLI
from stratum.store import audit
from stratum.store.objects import ObjectStore, Transaction

log = logging.getLogger("stratum.reconcile.workloads")
DURATION_ANNOTATION = "sim.stratum.dev/duration-seconds"
T = TypeVar("T")
R = TypeVar("R")
TERMINAL = frozenset({"Succeeded", "Failed", "Released"})


@dataclass(frozen=True, slots=True)
class Breach:
    clause: str
    message: str


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class WorkloadController:
    def __init__(
        self,
        store: ObjectStore,
        backends: dict[str, Backend],
        clock: Clock,
        *,
        seed: int = 0,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.backends = backends
        self.clock = clock
        self.seed = seed
        self._fleet_signature = ""
        self._policy_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._dumps: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.backoff = KeyedBackoff()
        # One policy for the life of the controller: it learns the workload mix online.
        self.policy = make_policy("stratum", seed=seed)
        self.metrics = metrics or Metrics()

    # -- the pass ----------------------------------------------------------------------
    def reconcile(self, world: World, observations: list[Observation]) -> None:
        runs = {r.key: r for obs in observations for r in obs.runs}
        seen_nodes = {n.name: n for obs in observations for n in obs.nodes}
        self._collect_garbage(world, runs)
        signature = _fleet_signature(world)
        fleet_changed = signature != self._fleet_signature
        self._fleet_signature = signature
        pending: list[Workload] = []
        now = self.clock.now()
        for key, wl in world.workloads.items():
            if not self.backoff.ready(key, now, wl.metadata.generation):
                continue
            phase = wl.status.phase
            placement = world.placements.get(key)
            try:
                if phase in TERMINAL:
                    self._stop(key, wl)
                elif phase in (None, "Pending") or (phase == "Rejected" and fleet_changed):
                    pending.append(wl)
                elif phase in ("Bound", "Running"):
                    # A contract broken now and to be re-placed is placed again in this pass.
                    again = self._watch(wl, placement, runs.get(key), seen_nodes)
                    if again is not None:
                        pending.append(again)
                elif phase == "Violated":
                    again = self._remediate(wl, placement, runs.get(key), seen_nodes)
                    if again is not None:
                        pending.append(again)
                self.backoff.succeeded(key)
            except Exception as err:  # one broken workload must not stop the others
                delay = self.backoff.failed(key, now, err, wl.metadata.generation)
                log.warning(
                    "workload %s: %s: %s (next try in %.1fs)", key, type(err).__name__, err, delay
                )
        if not pending:
            return
        # Placements as they are after the transitions above (released ones hold nothing).
        with self.store.read() as tx:
            live = [Placement.model_validate(p) for p in tx.list("Placement").items]
        held, tenants_on = held_devices(live)
        nodes = fleet_nodes(world.nodes.values(), world.sites, world.profiles, tenants_on)
        state = FleetState.build(nodes, held)
        pristine = FleetState.build(nodes, pristine=True)
        binds: list[tuple[Workload, ContractDecision]] = []
        refusals: list[tuple[Workload, ContractDecision]] = []
        book = _Book(world, live, nodes, lambda wl: self._policy_sites(wl, world))
        by_key = {key_of(w): w for w in pending}
        # A gang that waits keeps the devices it is nearest to fitting on free of work ranked
        # after it (backfill goes elsewhere), so that a stream of small work cannot starve it.
        reserved: frozenset[str] = frozenset()
        for item in book.queue(pending):
            wl = by_key[item.key]
            ask = book.ask(wl, reserved)
            started = time.perf_counter()
            decision = place_contract(state, ask, policy=self.policy, pristine=pristine)
            self.metrics.scheduler_decision.labels(
                "bound"
                if decision.placed
                else "unschedulable"
                if decision.ever_possible
                else "rejected"
            ).observe(time.perf_counter() - started)
            if not decision.placed and decision.ever_possible:
                preempted = self._preempt(wl, ask, world, book, binds)
                if preempted is not None:
                    state = preempted
                    continue
            if decision.placed:
                state = state.bind(
                    wl.metadata.namespace or "", decision.bindings, dedicated=decision.dedicated
                )
                binds.append((wl, decision))
                book.charge(wl, decision)
                continue
            if decision.waiting_on and not reserved and item.demand[0] > MILLI:
                reserved = frozenset(decision.waiting_on)
            if not _same_refusal(wl, decision):
                refusals.append((wl, decision))
        now = self.clock.now()
        for wl, placement in self._write_in_chunks(
            binds, lambda tx, item: self._bind(tx, item[0], item[1], now)
        ):
            self._launch_or_back_off(wl, placement)
        self._write_in_chunks(refusals, lambda tx, item: self._refuse(tx, item[0], item[1], now))

    # -- scheduling --------------------------------------------------------------------
    def _preempt(
        self,
        wl: Workload,
        ask: WorkloadAsk,
        world: World,
        book: _Book,
        binds: list[tuple[Workload, ContractDecision]],
    ) -> FleetState | None:
        """Evict the cheapest set of lower-priority preemptible work that lets `wl` bind:
        one transaction sets the victims Pending (with the reason and an Event), releases
        their Placements and binds `wl`; the backends stop and launch after it commits.
        Returns the fleet as it is afterwards."""
        priority = wl.spec.contract.lifecycle.priority
        candidates = []
        for key in book.holding:
            victim = world.workloads.get(key)
            if victim is None or key == key_of(wl):
                continue
            life = victim.spec.contract.lifecycle
            if life.preemptible and life.priority < priority:
                candidates.append(Victim(key, life.priority, book.milli_of(key), book.age(victim)))
        if not candidates:
            return None
        this_pass = [
            (w.metadata.namespace or "", b, d.dedicated) for w, d in binds for b in d.bindings
        ]
        chosen = choose_victims(
            ask, candidates, lambda keys: book.fleet_without(keys, this_pass), policy=self.policy
        )
        if chosen is None:
            return None
        now = self.clock.now()
        victims = [world.workloads[k] for k in chosen.victims]
        who = f"{key_of(wl)} (priority {priority})"
        try:
            with self.store.write() as tx:
                for victim in victims:
                    body = wire(victim)
                    message = f"preempted by {who} to free the devices it needs"
                    body["status"].update(
                        {
                            "phase": "Pending",
                            "message": message,
                            "reasons": [
                                {
                                    "clause": "lifecycle.preemptible",
                                    "excluded": 0,
                                    "message": message,
                                }
                            ],
                        }
                    )
                    tx.replace(body, status_only=True)
                    p = wire(book.holding[key_of(victim)])
                    p["status"]["phase"] = "Released"
                    tx.replace(p, status_only=True)
                    record_event(
                        tx, victim, reason="Preempted", type="Warning", at=now, message=message
                    )
                _, placement = self._bind(tx, wl, chosen.decision, now)
                record_event(
                    tx,
                    wl,
                    reason="Preempting",
                    at=now,
                    message="evicted " + ", ".join(chosen.victims),
                )
        except (Conflict, NotFound, AlreadyExists):
            return None
        self.metrics.scheduler_preemptions.inc(len(victims))
        for victim in victims:
            self._stop(key_of(victim), victim)
            book.release(key_of(victim))
        self._launch_or_back_off(wl, placement)
        book.charge(wl, chosen.decision)
        return chosen.state.bind(
            wl.metadata.namespace or "",
            chosen.decision.bindings,
            dedicated=chosen.decision.dedicated,
        )

    def _write_in_chunks(
        self, items: list[T], write: Callable[[Transaction, T], R], size: int = 100
    ) -> list[R]:
        """Many decisions per transaction (a commit per decision would bound throughput by
        the disk); a chunk that meets a concurrent change is retried one item at a time,
        so one conflict costs only its own item (which the next pass decides again)."""
        done: list[R] = []
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            try:
                with self.store.write() as tx:
                    results = [write(tx, item) for item in chunk]
                done += results
                continue
            except (Conflict, NotFound, AlreadyExists):
                pass
            for item in chunk:
                try:
                    with self.store.write() as tx:
                        done.append(write(tx, item))
                except (Conflict, NotFound, AlreadyExists):
                    continue
        return done

    def _bind(
        self, tx: Transaction, wl: Workload, decision: ContractDecision, now: datetime
    ) -> tuple[Workload, Placement]:
        """The Placement (with its Bound status) and the Workload's Bound status, together."""
        attempt = wl.status.attempt + 1
        replicas = [_replica_wire(b) for b in decision.bindings]
        spec: dict[str, Any] = {
            "workload": wl.metadata.name,
            "workloadUid": wl.metadata.uid,
            "attempt": attempt,
            "replicas": replicas,
            "evidence": [
                {"clause": e.clause, "holds": True, "message": e.message} for e in decision.evidence
            ],
        }
        if decision.tier is not None:
            spec["tier"] = decision.tier
        placement = {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Placement",
            "metadata": {
                "name": wl.metadata.name,
                "namespace": wl.metadata.namespace,
                "labels": {"stratum.dev/workload": wl.metadata.name},
            },
            "spec": spec,
            "status": {"phase": "Bound", "conditions": []},
        }
        body = wire(wl)
        body["status"].update(
            {
                "phase": "Bound",
                "placement": wl.metadata.name,
                "attempt": attempt,
                "boundAt": _iso(now),
                "message": decision.summary,
                "reasons": [],
                "observedGeneration": wl.metadata.generation,
            }
        )
        ns = wl.metadata.namespace or ""
        if tx.find("Placement", ns, wl.metadata.name):
            tx.delete("Placement", ns, wl.metadata.name)
        created = tx.create(placement)
        tx.replace(body, status_only=True)
        _audit(tx, "create", created)
        record_event(
            tx, wl, reason="Bound", at=now, message="; ".join(e.message for e in decision.evidence)
        )
        return wl, Placement.model_validate(created)

    def _refuse(
        self, tx: Transaction, wl: Workload, decision: ContractDecision, now: datetime
    ) -> None:
        phase = "Pending" if decision.ever_possible else "Rejected"
        body = wire(wl)
        body["status"].update(
            {
                "phase": phase,
                "message": decision.summary,
                "observedGeneration": wl.metadata.generation,
                "reasons": [
                    {"clause": r.clause, "excluded": r.excluded, "message": r.message}
                    for r in decision.reasons
                ],
            }
        )
        tx.replace(body, status_only=True)
        record_event(
            tx,
            wl,
            reason="Rejected" if phase == "Rejected" else "Unschedulable",
            message=decision.summary,
            at=now,
            type="Warning",
        )

    def _full_of(self, obj: Any) -> dict[str, Any]:
        """The full dump of a site, tenant or policy, once per version (shared objects:
        CEL converts each once, however many workloads are judged against it)."""
        key = (obj.KIND, obj.metadata.name, obj.metadata.resource_version)
        found = self._dumps.get(key)
        if found is None:
            if len(self._dumps) > 10_000:
                self._dumps.clear()
            found = self._dumps[key] = _full(obj)
        return found

    def _policy_sites(self, wl: Workload, world: World) -> dict[str, Any]:
        """The sites the tenant's deny policies allow this workload (CEL, as at admission):
        placement, remediation and preemption never bind outside them. Cached per version
        of the workload, the policies and the sites, since CEL is not cheap."""
        if not any(p.spec.action == "deny" for p in world.policies.values()):
            return {}
        key = (
            wl.metadata.uid,
            wl.metadata.generation,
            tuple(sorted((k, p.metadata.resource_version) for k, p in world.policies.items())),
            tuple(sorted((k, s.metadata.resource_version) for k, s in world.sites.items())),
            (
                world.tenants[wl.metadata.namespace or ""].metadata.resource_version
                if (wl.metadata.namespace or "") in world.tenants
                else None
            ),
        )
        cached = self._policy_cache.get(key)
        if cached is not None:
            return cached
        tenant = world.tenants.get(wl.metadata.namespace or "")
        # CEL sees every field, null when unset: the same shape admission gives it.
        verdict = judge_sites(
            workload=_full(wl),
            tenant=self._full_of(tenant) if tenant else {},
            sites=[self._full_of(s) for s in world.sites.values()],
            policies=[self._full_of(p) for p in world.policies.values()],
        )
        refused = [
            r for v in verdict.sites if not v.allowed for r in v.reasons if r.startswith("policy ")
        ]
        result: dict[str, Any] = {}
        if refused:
            result = {
                "policy_sites": frozenset(verdict.allowed_sites)
                | {
                    v.site
                    for v in verdict.sites
                    if not any(r.startswith("policy ") for r in v.reasons)
                },
                "policy_reason": refused[0],
            }
        if len(self._policy_cache) > 10_000:
            self._policy_cache.clear()
        self._policy_cache[key] = result
        return result

    # -- running -----------------------------------------------------------------------
    def _launch(self, wl: Workload, placement: Placement) -> None:
        backend = self._backend_for(wl)
        if backend is None:
            return
        duration = wl.metadata.annotations.get(DURATION_ANNOTATION)
        backend.launch(
            LaunchSpec(
                key=key_of(wl),
                uid=wl.metadata.uid or "",
                attempt=placement.spec.attempt,
                replicas=tuple(
                    ReplicaLaunch(r.replica, r.node, tuple(r.gpus), r.gpu_milli)
                    for r in placement.spec.replicas
                ),
                workload_type=wl.spec.type,
                image=wl.spec.run.image,
                command=tuple(wl.spec.run.command),
                env=tuple(sorted(wl.spec.run.env.items())),
                duration_seconds=float(duration) if duration else None,
            )
        )

    def _launch_or_back_off(self, wl: Workload, placement: Placement) -> None:
        """Launch right after the binding committed; if the backend fails, the binding
        stands and the next pass (after this workload's backoff) launches it again."""
        try:
            self._launch(wl, placement)
        except Exception as err:
            delay = self.backoff.failed(key_of(wl), self.clock.now(), err, wl.metadata.generation)
            log.warning(
                "workload %s: launch failed: %s (next try in %.1fs)", key_of(wl), err, delay
            )

    def _backend_for(self, wl: Workload) -> Backend | None:
        # One backend per server today; with several, the placement's nodes name it.
        return next(iter(self.backends.values()), None)

    def _watch(
        self,
        wl: Workload,
        placement: Placement | None,
        run: RunObservation | None,
        nodes: dict[str, NodeObservation],
    ) -> Workload | None:
        """Follow a bound contract; return it when it must be placed again now."""
        key = key_of(wl)
        if placement is None:
            self._transition(
                wl,
                "Pending",
                "PlacementLost",
                "its Placement was deleted; placing it again",
                warning=True,
            )
            return None
        if wl.metadata.generation != wl.status.observed_generation:
            self._stop(key, wl)
            return self._release(
                wl, placement, "Pending", "SpecChanged", "the spec changed: placing it again"
            )
        breaches = _breaches(wl, placement, run, nodes)
        if breaches:
            violated = self._violate(wl, placement, breaches)
            if violated is None:
                return None
            return self._remediate(*violated, run, nodes)
        if run is None:
            if all(
                nodes.get(r.node) is None or nodes[r.node].reachable
                for r in placement.spec.replicas
            ):
                self._launch(wl, placement)  # launched before a crash, or lost: start it
            return None  # behind a partition: it runs on, unseen; nothing to do
        if run.uid != wl.metadata.uid or run.attempt != placement.spec.attempt:
            self._launch(wl, placement)
            return None
        if run.phase == "Succeeded":
            self._stop(key, wl)
            self._release(wl, placement, "Succeeded", "Succeeded", run.message or "finished")
        elif run.phase in ("Failed", "Lost"):
            self._stop(key, wl)
            self._release(wl, placement, "Failed", "Failed", run.message or "failed", warning=True)
        elif run.phase == "Running":
            self._running(wl, placement, run)
        return None

    def _running(self, wl: Workload, placement: Placement, run: RunObservation) -> None:
        limit = wl.spec.contract.lifecycle.max_duration_seconds
        if limit and run.started_at and (self.clock.now() - run.started_at).total_seconds() > limit:
            self._stop(key_of(wl), wl)
            self._release(
                wl,
                placement,
                "Failed",
                "DeadlineExceeded",
                f"ran longer than maxDurationSeconds={limit}",
                warning=True,
            )
            return
        slo_changed = (run.p99_latency_ms, run.throughput_rps) != (
            wl.status.p99_latency_ms,
            wl.status.throughput_rps,
        )
        if wl.status.phase == "Running" and placement.status.phase == "Running" and not slo_changed:
            return
        now = self.clock.now()
        body = wire(wl)
        status: dict[str, Any] = {
            "phase": "Running",
            "p99LatencyMs": run.p99_latency_ms,
            "throughputRps": run.throughput_rps,
        }
        first = wl.status.phase != "Running"
        if first:
            # When the backend started it (same clock), not when this pass noticed.
            status["runningAt"] = _iso(run.started_at or now)
            last = wl.status.violations[-1] if wl.status.violations else None
            if last and (wl.status.running_at is None or last.at > wl.status.running_at):
                status["lastRemediationSeconds"] = round((now - last.at).total_seconds(), 3)
        body["status"].update({k: v for k, v in status.items() if v is not None})
        try:
            with self.store.write() as tx:
                tx.replace(body, status_only=True)
                p = wire(placement)
                p["status"]["phase"] = "Running"
                tx.replace(p, status_only=True)
                if first:
                    message = "running on " + ", ".join(
                        sorted({r.node for r in placement.spec.replicas})
                    )
                    if "lastRemediationSeconds" in status:
                        message += (
                            f"; remediated {status['lastRemediationSeconds']:.1f}s "
                            "after the violation"
                        )
                    record_event(tx, wl, reason="Running", message=message, at=now)
        except (Conflict, NotFound):
            return

    # -- violations --------------------------------------------------------------------
    def _violate(
        self, wl: Workload, placement: Placement, breaches: list[Breach]
    ) -> tuple[Workload, Placement] | None:
        now = self.clock.now()
        body = wire(wl)
        violations = body["status"].get("violations", [])
        violations += [
            {"clause": b.clause, "message": b.message, "at": _iso(now)} for b in breaches
        ]
        body["status"].update(
            {
                "phase": "Violated",
                "violations": violations[-20:],
                "message": "; ".join(f"{b.clause}: {b.message}" for b in breaches),
            }
        )
        try:
            with self.store.write() as tx:
                updated = tx.replace(body, status_only=True)
                p = wire(placement)
                p["spec"]["evidence"] = [
                    *p["spec"].get("evidence", []),
                    *[{"clause": b.clause, "holds": False, "message": b.message} for b in breaches],
                ]
                p_updated = tx.replace(p)
                p_updated["status"]["phase"] = "Violated"
                p_updated = tx.replace(p_updated, status_only=True)
                for b in breaches:
                    record_event(
                        tx,
                        wl,
                        reason="ContractViolated",
                        type="Warning",
                        at=now,
                        message=f"{b.clause}: {b.message}",
                    )
        except (Conflict, NotFound):
            return None
        return Workload.model_validate(updated), Placement.model_validate(p_updated)

    def _remediate(
        self,
        wl: Workload,
        placement: Placement | None,
        run: RunObservation | None,
        nodes: dict[str, NodeObservation],
    ) -> Workload | None:
        """Re-place a violated contract (returned, Pending) or, for report-only contracts,
        mark it Running again once every clause holds."""
        key = key_of(wl)
        if wl.spec.contract.lifecycle.on_violation == "replace" or placement is None:
            self._stop(key, wl)
            if placement is None:
                return None
            return self._release(
                wl,
                placement,
                "Pending",
                "Remediating",
                "re-placing on healthy devices after: " + wl.status.message,
                warning=True,
            )
        if not _breaches(wl, placement, run, nodes):
            self._transition(
                wl, "Running", "ViolationCleared", "every clause holds again", warning=False
            )
        return None

    # -- helpers -----------------------------------------------------------------------
    def _release(
        self,
        wl: Workload,
        placement: Placement,
        phase: str,
        reason: str,
        message: str,
        *,
        warning: bool = False,
    ) -> Workload | None:
        now = self.clock.now()
        body = wire(wl)
        body["status"].update(
            {"phase": phase, "message": message, "observedGeneration": wl.metadata.generation}
        )
        if phase in ("Succeeded", "Failed"):
            body["status"]["finishedAt"] = _iso(now)
        try:
            with self.store.write() as tx:
                updated = tx.replace(body, status_only=True)
                p = wire(placement)
                p["status"]["phase"] = phase if phase in ("Succeeded", "Failed") else "Released"
                _audit(tx, "status", tx.replace(p, status_only=True), before=wire(placement))
                record_event(
                    tx,
                    wl,
                    reason=reason,
                    message=message,
                    at=now,
                    type="Warning" if warning else "Normal",
                )
        except (Conflict, NotFound):
            return None
        return Workload.model_validate(updated)

    def _transition(
        self, wl: Workload, phase: str, reason: str, message: str, *, warning: bool
    ) -> None:
        now = self.clock.now()
        body = wire(wl)
        body["status"].update({"phase": phase, "message": message})
        try:
            with self.store.write() as tx:
                tx.replace(body, status_only=True)
                record_event(
                    tx,
                    wl,
                    reason=reason,
                    message=message,
                    at=now,
                    type="Warning" if warning else "Normal",
                )
        except (Conflict, NotFound):
            return

    def _stop(self, key: str, wl: Workload | None) -> None:
        for backend in self.backends.values():
            backend.stop(key)

    def _collect_garbage(self, world: World, runs: dict[str, RunObservation]) -> None:
        orphans = [
            p
            for k, p in world.placements.items()
            if k not in world.workloads
            or world.workloads[k].metadata.uid not in (None, p.spec.workload_uid)
        ]
        if orphans:
            try:
                with self.store.write() as tx:
                    for p in orphans:
                        if tx.find("Placement", p.metadata.namespace or "", p.metadata.name):
                            tx.delete("Placement", p.metadata.namespace or "", p.metadata.name)
            except (Conflict, NotFound):
                pass
        for key in runs:
            if key not in world.workloads:
                self._stop(key, None)


def _replica_wire(b: ReplicaBinding) -> dict[str, Any]:
    wire_b: dict[str, Any] = {
        "replica": b.replica,
        "node": b.node,
        "gpus": list(b.gpus),
        "gpuMilli": b.milli,
        "cpuMilli": b.cpu_milli,
        "memoryMiB": b.memory_mib,
        "migInstance": b.mig_instance,
        "cpuSet": b.cpu_list,
        "numaNode": b.numa_node,
        "nic": b.nic,
    }
    return {k: v for k, v in wire_b.items() if v is not None}


class _Book:
    """What one pass knows about tenants: GPU quota use (governance's arithmetic), shares of
    the fleet for the fair-share queue, and the devices each bound workload holds."""

    def __init__(
        self,
        world: World,
        live: list[Placement],
        nodes: list[FleetNode],
        policies: Callable[[Workload], dict[str, Any]] = lambda _: {},
    ) -> None:
        self.world = world
        self.policies = policies
        self.nodes = nodes
        self.model_of = {n.name: n.model for n in nodes}
        self.holding = {
            f"{p.metadata.namespace}/{p.spec.workload}": p
            for p in live
            if p.status.phase in HOLDING_PHASES
        }
        self.quota: dict[str, GpuUsage] = {}
        self.share: dict[str, tuple[float, float, float]] = {}
        for key, placement in self.holding.items():
            workload = world.workloads.get(key)
            if workload is not None:
                self._add(workload, self._models(placement.spec.replicas), +1)
        capacity = (
            float(sum(len(n.gpu_models) for n in nodes) * MILLI),
            float(sum(n.cpu_milli for n in nodes)),
            float(sum(n.memory_mib for n in nodes)),
        )
        self.fair = FairQueue(
            (),
            capacity,
            dict(self.share),
            {name: t.spec.fair_share_weight for name, t in world.tenants.items()},
        )

    def _models(self, replicas: Any) -> tuple[str, ...]:
        return tuple(sorted({self.model_of.get(r.node, "") for r in replicas} - {""}))

    def _add(self, wl: Workload, models: tuple[str, ...], sign: int) -> None:
        ns = wl.metadata.namespace or ""
        demand = gpu_demand(wire(wl))
        self.quota.setdefault(ns, GpuUsage()).add(GpuDemand(demand.milli, models), sign)
        vector = _vector(wl)
        used = self.share.get(ns, (0.0, 0.0, 0.0))
        self.share[ns] = (
            used[0] + sign * vector[0],
            used[1] + sign * vector[1],
            used[2] + sign * vector[2],
        )

    def queue(self, pending: list[Workload]) -> FairQueue:
        self.fair.items = [
            QueueItem(
                key_of(w),
                w.metadata.namespace or "",
                w.spec.contract.lifecycle.priority,
                self.age(w),
                _vector(w),
            )
            for w in pending
        ]
        return self.fair

    def age(self, wl: Workload) -> float:
        created = wl.metadata.creation_timestamp
        return created.timestamp() if created else 0.0

    def milli_of(self, key: str) -> int:
        workload = self.world.workloads.get(key)
        return gpu_demand(wire(workload)).milli if workload else 0

    def ask(self, wl: Workload, reserved: frozenset[str]) -> WorkloadAsk:
        ns = wl.metadata.namespace or ""
        tenant = self.world.tenants.get(ns)
        total: int | None = None
        by_model: dict[str, int] = {}
        if tenant is not None:
            quota = tenant.spec.quota
            used = self.quota.get(ns, GpuUsage())
            if quota.gpus is not None:
                total = quota.gpus * MILLI - used.milli
            by_model = {
                m: limit * MILLI - used.milli_by_model.get(m, 0)
                for m, limit in quota.gpus_by_model.items()
            }
        return WorkloadAsk(
            tenant=ns,
            replicas=wl.spec.replicas,
            contract=wl.spec.contract,
            tenant_jurisdictions=frozenset(tenant.spec.allowed_jurisdictions)
            if tenant
            else frozenset(),
            tenant_isolation=tenant.spec.isolation if tenant else "shared",
            quota_left_milli=total,
            model_quota_left_milli=by_model,
            avoid_nodes=reserved,
            **self.policies(wl),
        )

    def charge(self, wl: Workload, decision: ContractDecision) -> None:
        models = tuple(sorted({self.model_of.get(b.node, "") for b in decision.bindings} - {""}))
        self._add(wl, models, +1)
        self.fair.charge(wl.metadata.namespace or "", _vector(wl))

    def release(self, key: str) -> None:
        placement = self.holding.pop(key, None)
        workload = self.world.workloads.get(key)
        if placement is not None and workload is not None:
            self._add(workload, self._models(placement.spec.replicas), -1)
            self.fair.charge(workload.metadata.namespace or "", _vector(workload), -1)

    def fleet_without(
        self, keys: frozenset[str], this_pass: list[tuple[str, ReplicaBinding, bool]]
    ) -> FleetState:
        kept = [p for k, p in self.holding.items() if k not in keys]
        held, tenants = held_devices(kept)
        held += [b.held(ns if dedicated else "") for ns, b, dedicated in this_pass]
        on = {k: set(v) for k, v in tenants.items()}
        for ns, b, _ in this_pass:
            on.setdefault(b.node, set()).add(ns)
        nodes = [replace(n, tenants=frozenset(on.get(n.name, ()))) for n in self.nodes]
        return FleetState.build(nodes, held)


def _vector(wl: Workload) -> tuple[float, float, float]:
    """What the whole workload asks for: milli-GPU, milli-CPU, MiB."""
    request = replica_request(wl.spec.contract)
    n = wl.spec.replicas
    return (
        float(replica_milli(wl.spec.contract) * n),
        float(request.cpu_milli * n),
        float(request.memory_mib * n),
    )


def _breaches(
    wl: Workload,
    placement: Placement,
    run: RunObservation | None,
    nodes: dict[str, NodeObservation],
) -> list[Breach]:
    """Every clause the devices or the telemetry break right now, with the evidence."""
    found: list[Breach] = []
    c = wl.spec.contract
    for r in placement.spec.replicas:
        node = nodes.get(r.node)
        if node is None:
            continue
        if run is not None and run.phase == "Lost":
            found.append(
                Breach("compute", f"node {r.node} of replica {r.replica} was lost: {run.message}")
            )
            continue
        for g in node.gpus:
            if g.index not in r.gpus:
                continue
            if g.health == "Failed":
                found.append(
                    Breach("compute", f"GPU {g.index} on {r.node} (replica {r.replica}) failed")
                )
            elif g.nvlink_degraded and c.topology.within_replica == "nvlink":
                found.append(
                    Breach(
                        "topology.withinReplica", f"NVLink of GPU {g.index} on {r.node} degraded"
                    )
                )
        if node.power_capped and r.gpus:
            found.append(
                Breach(
                    "compute.power",
                    f"GPUs of replica {r.replica} on {r.node} "
                    "are throttled by the site's power cap",
                )
            )
    if run is not None and run.phase == "Running":
        slo = c.service_level
        if slo.p99_latency_ms and run.p99_latency_ms and run.p99_latency_ms > slo.p99_latency_ms:
            found.append(
                Breach(
                    "serviceLevel.p99LatencyMs",
                    f"p99 latency {run.p99_latency_ms:g} ms > target {slo.p99_latency_ms:g} ms",
                )
            )
        if (
            slo.min_throughput_rps
            and run.throughput_rps is not None
            and run.throughput_rps < slo.min_throughput_rps
        ):
            found.append(
                Breach(
                    "serviceLevel.minThroughputRps",
                    f"throughput {run.throughput_rps:g} rps < target "
                    f"{slo.min_throughput_rps:g} rps",
                )
            )
    seen: set[tuple[str, str]] = set()
    unique = []
    for b in found:
        if (b.clause, b.message) not in seen:
            seen.add((b.clause, b.message))
            unique.append(b)
    return unique


# Who the audit log names for the controllers' own writes.
CONTROLLER_ACTOR = "system:controller-manager"


def _audit(
    tx: Transaction, action: str, after: dict[str, Any], before: dict[str, Any] | None = None
) -> None:
    """Binding and releasing devices are the writes compliance asks about: they join the
    hash-chained audit log in the same transaction, as API writes do."""
    meta = after["metadata"]
    audit.append(
        tx,
        actor=CONTROLLER_ACTOR,
        action=action,
        object_ref={
            "kind": after["kind"],
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid"),
        },
        source=None,
        before=digest(before),
        after=digest(after),
    )


def _full(obj: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = obj.model_dump(mode="json", by_alias=True)
    return dumped


def _same_refusal(wl: Workload, decision: ContractDecision) -> bool:
    phase = "Pending" if decision.ever_possible else "Rejected"
    return wl.status.phase == phase and wl.status.message == decision.summary


def _fleet_signature(world: World) -> str:
    parts = [
        f"{n.metadata.name}:{n.status.phase}:{n.spec.unschedulable}:"
        + ",".join(g.health for g in n.status.gpus)
        for n in sorted(world.nodes.values(), key=lambda n: n.metadata.name)
    ]
    parts += [f"{k}:{s.metadata.generation}" for k, s in sorted(world.sites.items())]
    parts += [f"{k}:{t.metadata.generation}" for k, t in sorted(world.tenants.items())]
    parts += [f"{k}:{p.metadata.generation}" for k, p in sorted(world.profiles.items())]
    return hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()


__all__ = ["HOLDING_PHASES", "WorkloadController"]
