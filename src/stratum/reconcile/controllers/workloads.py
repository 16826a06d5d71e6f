"""WorkloadController: the contract lifecycle (core/lifecycle.py), observe → cycle → write
→ launch.

Each pass observes first (the world, the backends), follows every bound contract (running,
finished, broken), then hands every waiting contract to one scheduling cycle
(scheduling/cycle.py: a pure function of the snapshot) and writes what it decided: binds,
evictions and refusals, in short transactions. Backend calls happen after the write that
decided them commits, and every step is idempotent, so a crash at any line is repaired by
the next pass.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

from stratum.api.v1alpha1 import Placement, Workload
from stratum.api.v1alpha1.placements import Evidence, PlacementSpec
from stratum.api.v1alpha1.placements import ReplicaBinding as WireBinding
from stratum.api.v1alpha1.workloads import ClauseReason, Violation
from stratum.api.v1alpha1.workloads import ContractPhase as Phase
from stratum.backends.base import (
    Backend,
    NodeObservation,
    Observation,
    RunObservation,
)
from stratum.backends.launching import launch_spec
from stratum.core.audit import digest
from stratum.core.clock import Clock
from stratum.core.lifecycle import AWAITING_PLACEMENT, TERMINAL, transition
from stratum.observability.metrics import Metrics
from stratum.reconcile.backoff import KeyedBackoff
from stratum.reconcile.events import record_event
from stratum.reconcile.world import World, key_of, wire
from stratum.reconcile.writes import RACES, write_or_skip
from stratum.scheduling import intake
from stratum.scheduling.contracts import ContractDecision, ReplicaBinding
from stratum.scheduling.cycle import CycleResult, Eviction, run_cycle
from stratum.scheduling.fleet import HOLDING_PHASES, fleet_nodes, held_devices
from stratum.scheduling.policies import make_policy
from stratum.store import audit
from stratum.store.objects import ObjectStore, Transaction

log = logging.getLogger("stratum.reconcile.workloads")
T = TypeVar("T")
R = TypeVar("R")
Tier = Literal["nvlink-domain", "rack", "rdma", "site", "any"] | None
# Who the audit log names for the controllers' own writes.
CONTROLLER_ACTOR = "system:controller-manager"


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
        self._policy_cache: dict[tuple[Any, ...], intake.PolicySites] = {}
        self._dumps: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.backoff = KeyedBackoff()
        # One policy for the life of the controller: it learns the workload mix online.
        self.policy = make_policy("stratum", seed=seed)
        self.metrics = metrics or Metrics()
        self._world = World()

    # -- the pass ----------------------------------------------------------------------
    def reconcile(self, world: World, observations: list[Observation]) -> None:
        self._world = world
        runs = {r.key: r for obs in observations for r in obs.runs}
        seen_nodes = {n.name: n for obs in observations for n in obs.nodes}
        self._collect_garbage(world, runs)
        signature = _fleet_signature(world)
        fleet_changed = signature != self._fleet_signature
        self._fleet_signature = signature
        waiting: list[Workload] = []
        now = self.clock.now()
        for key, wl in world.workloads.items():
            if not self.backoff.ready(key, now, wl.metadata.generation):
                continue
            try:
                again = self._follow(wl, world, runs.get(key), seen_nodes, fleet_changed)
                if again is not None:
                    waiting.append(again)
                self.backoff.succeeded(key)
            except Exception as err:  # one broken workload must not stop the others
                delay = self.backoff.failed(key, now, err, wl.metadata.generation)
                log.warning(
                    "workload %s: %s: %s (next try in %.1fs)",
                    key,
                    type(err).__name__,
                    err,
                    delay,
                )
        if waiting:
            self._schedule(world, waiting)

    def _follow(
        self,
        wl: Workload,
        world: World,
        run: RunObservation | None,
        nodes: dict[str, NodeObservation],
        fleet_changed: bool,
    ) -> Workload | None:
        """Move one workload along its lifecycle; return it when it waits for devices."""
        phase = wl.status.phase
        placement = world.placements.get(key_of(wl))
        if phase in TERMINAL:
            self._stop(key_of(wl))
            return None
        if phase is None or phase in AWAITING_PLACEMENT:
            # Rejected is decided again when the fleet or the spec changes (an edit must
            # never be ignored); Pending every pass.
            spec_changed = wl.metadata.generation != wl.status.observed_generation
            if phase != "Rejected" or fleet_changed or spec_changed:
                return wl
            return None
        if phase in ("Bound", "Running"):
            # A contract broken now and to be re-placed is placed again in this pass.
            return self._watch(wl, placement, run, nodes)
        if phase == "Violated":
            return self._remediate(wl, placement, run, nodes)
        return None

    # -- scheduling --------------------------------------------------------------------
    def _schedule(self, world: World, waiting: list[Workload]) -> None:
        """Observe the holdings, run the cycle, write its decisions, launch what bound."""
        # Placements as they are after the transitions above (released ones hold nothing).
        with self.store.read() as tx:
            live = [Placement.model_validate(p) for p in tx.list("Placement").items]
        _, tenants_on = held_devices(live)
        nodes = fleet_nodes(world.nodes.values(), world.sites, world.profiles, tenants_on)
        by_key = {key_of(w): w for w in waiting}
        inp = intake.cycle_input(
            nodes=nodes,
            placements=live,
            workloads=world.workloads,
            waiting_for=waiting,
            tenants=world.tenants,
            policy_sites=lambda wl: self._policy_sites(wl, world),
        )
        started = time.perf_counter()
        result = run_cycle(inp, policy=self.policy, seed=self.seed)
        self._observe_decisions(result, time.perf_counter() - started)
        now = self.clock.now()
        for eviction in result.evictions:
            self._evict(eviction, world, by_key, live, now)
        binds = [(by_key[b.key], b.decision) for b in result.binds]
        bound = self._write_in_chunks(binds, lambda tx, item: self._bind(tx, item[0], item[1], now))
        for wl, placement in bound:
            self._launch_or_back_off(wl, placement)
        refusals = [
            (by_key[r.key], r.decision)
            for r in result.refusals
            if not _same_refusal(by_key[r.key], r.decision)
        ]
        self._write_in_chunks(refusals, lambda tx, item: self._refuse(tx, item[0], item[1], now))

    def _observe_decisions(self, result: CycleResult, seconds: float) -> None:
        decisions = [
            *(b.decision for b in result.binds),
            *(e.decision for e in result.evictions),
            *(r.decision for r in result.refusals),
        ]
        each = seconds / max(1, len(decisions))
        for d in decisions:
            outcome = "bound" if d.placed else "unschedulable" if d.ever_possible else "rejected"
            self.metrics.scheduler_decision.labels(outcome).observe(each)

    def _evict(
        self,
        eviction: Eviction,
        world: World,
        by_key: dict[str, Workload],
        live: Sequence[Placement],
        now: datetime,
    ) -> None:
        """One transaction sets the victims Pending (with the reason and an Event), releases
        their Placements and binds the contract; the backends stop and launch after."""
        wl = by_key[eviction.key]
        tenant = wl.metadata.namespace or ""
        priority = wl.spec.contract.lifecycle.priority
        victims = [world.workloads[k] for k in eviction.victims]
        placements = {f"{p.metadata.namespace}/{p.spec.workload}": p for p in live}

        def write(tx: Transaction) -> Placement:
            for victim in victims:
                # Another tenant's victim learns the priority that won, never its name.
                who = (
                    key_of(wl) if victim.metadata.namespace == tenant else "work of another tenant"
                )
                message = f"preempted by {who} (priority {priority}) to free the devices it needs"
                self._set_phase(
                    tx,
                    victim,
                    "Pending",
                    "Preempted",
                    message,
                    warning=True,
                    reasons=[ClauseReason(clause="lifecycle.preemptible", message=message)],
                )
                held = placements[key_of(victim)]
                tx.replace(wire(_with_phase(held, "Released")), status_only=True)
            _, placement = self._bind(tx, wl, eviction.decision, now)
            own = [k for k in eviction.victims if k.startswith(tenant + "/")]
            others = len(eviction.victims) - len(own)
            named = ", ".join([*own, *([f"{others} of other tenants"] if others else [])])
            record_event(tx, wl, reason="Preempting", at=now, message=f"evicted {named}")
            return placement

        placement = write_or_skip(self.store, write)
        if placement is None:
            return
        self.metrics.scheduler_preemptions.inc(len(victims))
        for victim in victims:
            self._stop(key_of(victim))
        self._launch_or_back_off(wl, placement)

    def _write_in_chunks(
        self, items: list[T], write: Callable[[Transaction, T], R], size: int = 100
    ) -> list[R]:
        """Many decisions per transaction (a commit per decision would bound throughput by
        the disk); a chunk that meets a concurrent change is retried one item at a time,
        so one conflict costs only its own item (which the next pass decides again)."""
        done: list[R] = []

        def each(chunk: list[T]) -> Callable[[Transaction], list[R]]:
            return lambda tx: [write(tx, item) for item in chunk]

        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            results = write_or_skip(self.store, each(chunk))
            if results is None:  # a concurrent change: one at a time, losing only its own
                results = [
                    r for item in chunk for r in write_or_skip(self.store, each([item])) or []
                ]
            done += results
        return done

    def _bind(
        self, tx: Transaction, wl: Workload, decision: ContractDecision, now: datetime
    ) -> tuple[Workload, Placement]:
        """The Placement (with its Bound status) and the Workload's Bound status, together."""
        attempt = wl.status.attempt + 1
        placement = Placement.model_validate(
            {
                "metadata": {
                    "name": wl.metadata.name,
                    "namespace": wl.metadata.namespace,
                    "labels": {"stratum.dev/workload": wl.metadata.name},
                },
                "spec": PlacementSpec(
                    workload=wl.metadata.name,
                    workload_uid=wl.metadata.uid,
                    attempt=attempt,
                    replicas=[_replica_wire(b) for b in decision.bindings],
                    evidence=[
                        Evidence(clause=e.clause, holds=True, message=e.message)
                        for e in decision.evidence
                    ],
                    tier=cast(Tier, decision.tier),
                    dedicated=decision.dedicated,
                ).model_dump(by_alias=True, exclude_none=True),
                "status": {"phase": "Bound"},
            }
        )
        ns = wl.metadata.namespace or ""
        if tx.find("Placement", ns, wl.metadata.name):
            tx.delete("Placement", ns, wl.metadata.name)
        created = tx.create(wire(placement))
        edge = transition(wl.status.phase, "Bound", "Bound")
        status = wl.status.model_copy(
            update={
                "phase": edge.target,
                "placement": wl.metadata.name,
                "attempt": attempt,
                "bound_at": now,
                "message": decision.summary,
                "reasons": [],
                "observed_generation": wl.metadata.generation,
            }
        )
        tx.replace(wire(wl.model_copy(update={"status": status})), status_only=True)
        _audit(tx, "create", created)
        record_event(
            tx,
            wl,
            reason=edge.reason,
            at=now,
            message="; ".join(e.message for e in decision.evidence),
        )
        return wl, Placement.model_validate(created)

    def _refuse(
        self, tx: Transaction, wl: Workload, decision: ContractDecision, now: datetime
    ) -> None:
        phase: Phase = "Pending" if decision.ever_possible else "Rejected"
        edge = transition(wl.status.phase, phase, "Unschedulable" if phase == "Pending" else phase)
        status = wl.status.model_copy(
            update={
                "phase": phase,
                "message": decision.summary,
                "observed_generation": wl.metadata.generation,
                "reasons": [
                    ClauseReason(clause=r.clause, excluded=r.excluded, message=r.message)
                    for r in decision.reasons
                ],
            }
        )
        tx.replace(wire(wl.model_copy(update={"status": status})), status_only=True)
        record_event(tx, wl, reason=edge.reason, message=decision.summary, at=now, type="Warning")

    def _full_of(self, obj: Any) -> dict[str, Any]:
        """The full dump of a site, tenant or policy, once per version (shared objects:
        CEL converts each once, however many workloads are judged against it)."""
        key = (obj.KIND, obj.metadata.name, obj.metadata.resource_version)
        found = self._dumps.get(key)
        if found is None:
            if len(self._dumps) > 10_000:
                self._dumps.clear()
            found = self._dumps[key] = intake.full(obj)
        return found

    def _policy_sites(self, wl: Workload, world: World) -> intake.PolicySites:
        """The sites the tenant's deny policies allow this workload, cached per version of
        the workload, the policies, the sites and the tenant, since CEL is not cheap."""
        if not any(p.spec.action == "deny" for p in world.policies.values()):
            return intake.NO_POLICY
        ns = wl.metadata.namespace or ""
        key = (
            wl.metadata.uid,
            wl.metadata.generation,
            tuple(sorted((k, p.metadata.resource_version) for k, p in world.policies.items())),
            tuple(sorted((k, s.metadata.resource_version) for k, s in world.sites.items())),
            world.tenants[ns].metadata.resource_version if ns in world.tenants else None,
        )
        cached = self._policy_cache.get(key)
        if cached is not None:
            return cached
        tenant = world.tenants.get(ns)
        result = intake.judge_policy_sites(
            workload=intake.full(wl),
            tenant=self._full_of(tenant) if tenant else {},
            sites=[self._full_of(s) for s in world.sites.values()],
            policies=[self._full_of(p) for p in world.policies.values()],
        )
        if len(self._policy_cache) > 10_000:
            self._policy_cache.clear()
        self._policy_cache[key] = result
        return result

    # -- running -----------------------------------------------------------------------
    def _launch(self, wl: Workload, placement: Placement) -> None:
        backend = self._backend_for(placement)
        if backend is None:
            return
        backend.launch(
            launch_spec(wl, placement, gpu_uuids=self._gpu_uuids, quota_gpus=self._quota_gpus(wl))
        )

    def _quota_gpus(self, wl: Workload) -> int | None:
        tenant = self._world.tenants.get(wl.metadata.namespace or "")
        return tenant.spec.quota.gpus if tenant is not None else None

    def _gpu_uuids(self, node_name: str, gpus: Sequence[int]) -> tuple[str, ...]:
        """The bound GPUs' UUIDs in binding order, where the node's discovered hardware
        names every one of them (else none: a partial list would mislead the runtime)."""
        node = self._world.nodes.get(node_name)
        hardware = node.spec.hardware if node is not None else None
        if hardware is None:
            return ()
        by_index = {g.index: g.uuid for g in hardware.gpus}
        uuids = tuple(by_index.get(i) for i in gpus)
        return tuple(u for u in uuids if u) if all(uuids) else ()

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

    def _backend_for(self, placement: Placement) -> Backend | None:
        """The backend of the Cluster its nodes belong to (Cluster.spec.backend)."""
        world = self._world
        for r in placement.spec.replicas:
            node = world.nodes.get(r.node)
            cluster = world.clusters.get(node.spec.cluster) if node is not None else None
            if cluster is not None:
                return self.backends.get(cluster.spec.backend)
        return None

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
            self._stop(key)
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
        placement = self._record_host_checks(placement, run)
        if run.phase == "Succeeded":
            self._stop(key)
            self._release(wl, placement, "Succeeded", "Succeeded", _ended(run, "finished"))
        elif run.phase in ("Failed", "Lost"):
            self._stop(key)
            self._release(wl, placement, "Failed", "Failed", _ended(run, "failed"), warning=True)
        elif run.phase == "Running":
            self._running(wl, placement, run)
        return None

    def _record_host_checks(self, placement: Placement, run: RunObservation) -> Placement:
        """What the runtime read back on the host joins the Placement's evidence, clause by
        clause (verified, not enforceable, mismatch), beside the model's evidence; written
        only when it changed. A mismatch is also a breach (_breaches)."""
        found = _host_evidence(run)
        model = [e for e in placement.spec.evidence if e.host is None]
        if not found or [e for e in placement.spec.evidence if e.host is not None] == found:
            return placement
        spec = placement.spec.model_copy(update={"evidence": [*model, *found]})

        def write(tx: Transaction) -> Placement:
            return Placement.model_validate(
                tx.replace(wire(placement.model_copy(update={"spec": spec})))
            )

        return write_or_skip(self.store, write) or placement

    def _running(self, wl: Workload, placement: Placement, run: RunObservation) -> None:
        limit = wl.spec.contract.lifecycle.max_duration_seconds
        if limit and run.started_at and (self.clock.now() - run.started_at).total_seconds() > limit:
            self._stop(key_of(wl))
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
        first = wl.status.phase != "Running"
        edge = transition(wl.status.phase, "Running", "Running")
        update: dict[str, Any] = {"phase": edge.target}
        if run.p99_latency_ms is not None:
            update["p99_latency_ms"] = run.p99_latency_ms
        if run.throughput_rps is not None:
            update["throughput_rps"] = run.throughput_rps
        remediated: float | None = None
        if first:
            # When the backend started it (same clock), not when this pass noticed.
            update["running_at"] = run.started_at or now
            last = wl.status.violations[-1] if wl.status.violations else None
            if last and (wl.status.running_at is None or last.at > wl.status.running_at):
                remediated = round((now - last.at).total_seconds(), 3)
                update["last_remediation_seconds"] = remediated

        def write(tx: Transaction) -> None:
            status = wl.status.model_copy(update=update)
            tx.replace(wire(wl.model_copy(update={"status": status})), status_only=True)
            tx.replace(wire(_with_phase(placement, "Running")), status_only=True)
            if first:
                message = "running on " + ", ".join(
                    sorted({r.node for r in placement.spec.replicas})
                )
                if run.message:  # what the backend confirmed (a cluster's allocation)
                    message += f"; {run.message}"
                if remediated is not None:
                    message += f"; remediated {remediated:.1f}s after the violation"
                record_event(tx, wl, reason=edge.reason, message=message, at=now)

        write_or_skip(self.store, write)

    # -- violations --------------------------------------------------------------------
    def _violate(
        self, wl: Workload, placement: Placement, breaches: list[Breach]
    ) -> tuple[Workload, Placement] | None:
        now = self.clock.now()
        edge = transition(wl.status.phase, "Violated", "ContractViolated")
        violations = [
            *wl.status.violations,
            *(Violation(clause=b.clause, message=b.message, at=now) for b in breaches),
        ]
        status = wl.status.model_copy(
            update={
                "phase": edge.target,
                "violations": violations[-20:],
                "message": "; ".join(f"{b.clause}: {b.message}" for b in breaches),
            }
        )
        broken = placement.spec.model_copy(
            update={
                "evidence": [
                    *placement.spec.evidence,
                    *(Evidence(clause=b.clause, holds=False, message=b.message) for b in breaches),
                ]
            }
        )

        def write(tx: Transaction) -> tuple[Workload, Placement]:
            updated = tx.replace(wire(wl.model_copy(update={"status": status})), status_only=True)
            p_updated = tx.replace(wire(placement.model_copy(update={"spec": broken})))
            p_updated = tx.replace(
                wire(_with_phase(Placement.model_validate(p_updated), "Violated")),
                status_only=True,
            )
            for b in breaches:
                record_event(
                    tx,
                    wl,
                    reason=edge.reason,
                    type="Warning",
                    at=now,
                    message=f"{b.clause}: {b.message}",
                )
            return Workload.model_validate(updated), Placement.model_validate(p_updated)

        return write_or_skip(self.store, write)

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
            self._stop(key)
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
            self._clear_violation(wl, placement)
        return None

    def _clear_violation(self, wl: Workload, placement: Placement) -> None:
        """A report-only contract holds again: the workload runs on, and its Placement's
        evidence drops the broken entries the violation added (the history stays in the
        workload's violations and its events), so the evidence says what holds now."""
        healed = placement.spec.model_copy(
            update={"evidence": [e for e in placement.spec.evidence if e.holds]}
        )

        def write(tx: Transaction) -> None:
            self._set_phase(
                tx, wl, "Running", "ViolationCleared", "every clause holds again", warning=False
            )
            updated = tx.replace(wire(placement.model_copy(update={"spec": healed})))
            tx.replace(
                wire(_with_phase(Placement.model_validate(updated), "Running")), status_only=True
            )

        write_or_skip(self.store, write)

    # -- writes ------------------------------------------------------------------------
    def _set_phase(
        self,
        tx: Transaction,
        wl: Workload,
        phase: Phase,
        reason: str,
        message: str,
        *,
        warning: bool,
        reasons: list[ClauseReason] | None = None,
        finished: datetime | None = None,
    ) -> dict[str, Any]:
        """Take the lifecycle edge (phase, reason) in `tx`, with its Event."""
        edge = transition(wl.status.phase, phase, reason)
        update: dict[str, Any] = {
            "phase": edge.target,
            "message": message,
            "observed_generation": wl.metadata.generation,
        }
        if reasons is not None:
            update["reasons"] = reasons
        if finished is not None:
            update["finished_at"] = finished
        status = wl.status.model_copy(update=update)
        updated = tx.replace(wire(wl.model_copy(update={"status": status})), status_only=True)
        record_event(
            tx,
            wl,
            reason=edge.reason,
            message=message,
            at=self.clock.now(),
            type="Warning" if warning else "Normal",
        )
        return updated

    def _release(
        self,
        wl: Workload,
        placement: Placement,
        phase: Phase,
        reason: str,
        message: str,
        *,
        warning: bool = False,
    ) -> Workload | None:
        """Leave a holding phase: the Workload takes the edge, the Placement gives its
        devices back (the run's own end phase, or Released), audited."""
        now = self.clock.now()
        done = phase in ("Succeeded", "Failed")

        def write(tx: Transaction) -> dict[str, Any]:
            updated = self._set_phase(
                tx, wl, phase, reason, message, warning=warning, finished=now if done else None
            )
            released = _with_phase(placement, phase if done else "Released")
            _audit(
                tx,
                "status",
                tx.replace(wire(released), status_only=True),
                before=wire(placement),
            )
            return updated

        updated = write_or_skip(self.store, write)
        return None if updated is None else Workload.model_validate(updated)

    def _transition(
        self, wl: Workload, phase: Phase, reason: str, message: str, *, warning: bool
    ) -> None:
        write_or_skip(
            self.store,
            lambda tx: self._set_phase(tx, wl, phase, reason, message, warning=warning),
        )

    def _stop(self, key: str) -> None:
        # Idempotent on every backend: the placement naming the backend may be gone.
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

            def write(tx: Transaction) -> None:
                for p in orphans:
                    if tx.find("Placement", p.metadata.namespace or "", p.metadata.name):
                        tx.delete("Placement", p.metadata.namespace or "", p.metadata.name)

            write_or_skip(self.store, write)
        for key in runs:
            if key not in world.workloads:
                self._stop(key)


def _with_phase(placement: Placement, phase: Phase) -> Placement:
    status = placement.status.model_copy(update={"phase": phase})
    return placement.model_copy(update={"status": status})


def _replica_wire(b: ReplicaBinding) -> WireBinding:
    return WireBinding(
        replica=b.replica,
        node=b.node,
        gpus=list(b.gpus),
        gpu_milli=b.milli,
        cpu_milli=b.cpu_milli,
        memory_mib=b.memory_mib,
        mig_instance=b.mig_instance,
        cpu_set=b.cpu_list,
        numa_node=b.numa_node,
        nic=b.nic,
    )


def _ended(run: RunObservation, default: str) -> str:
    """Why a run ended, in words: each replica's exit code and message where the backend
    runs real processes, else the run's own message."""
    if not run.replicas:
        return run.message or default
    ended = [r for r in run.replicas if r.phase == run.phase] or list(run.replicas)
    parts = []
    for r in ended:
        said = r.message or (f"exit code {r.exit_code}" if r.exit_code is not None else "")
        if r.exit_code is not None and str(r.exit_code) not in said:
            said = f"exit code {r.exit_code}" + (f" ({said})" if said else "")
        parts.append(f"replica {r.replica} on {r.node}: {said or run.phase.lower()}")
    return "; ".join(parts)


def _host_evidence(run: RunObservation) -> list[Evidence]:
    return [
        Evidence(
            clause=c.clause,
            holds=c.state != "mismatch",
            message=f"replica {r.replica} on {r.node}: {c.message}",
            host=c.state,
        )
        for r in run.replicas
        for c in r.checks
    ]


def _breaches(
    wl: Workload,
    placement: Placement,
    run: RunObservation | None,
    nodes: dict[str, NodeObservation],
) -> list[Breach]:
    """Every clause the devices or the telemetry break right now, with the evidence."""
    found: list[Breach] = []
    c = wl.spec.contract
    if (
        run is not None
        and run.uid == placement.spec.workload_uid
        and run.attempt == placement.spec.attempt
    ):
        # What the runtime read back on the host is not what the Placement bound.
        for ran in run.replicas:
            for check in ran.checks:
                if check.state == "mismatch":
                    found.append(
                        Breach(
                            check.clause,
                            f"on the host, replica {ran.replica} on {ran.node}: {check.message}",
                        )
                    )
    if run is not None and run.phase == "Lost":
        # The run says which of its nodes went away; a node that answers is not named lost.
        lost = [
            r
            for r in placement.spec.replicas
            if nodes.get(r.node) is None or not nodes[r.node].reachable
        ]
        for r in lost or placement.spec.replicas[:1]:
            where = f"node {r.node} of replica {r.replica}" if lost else "the run"
            found.append(Breach("compute", f"{where} was lost: {run.message}"))
    for r in placement.spec.replicas:
        node = nodes.get(r.node)
        if node is None:
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
                    f"GPUs of replica {r.replica} on {r.node} are throttled by the site's "
                    "power cap",
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
    return list(dict.fromkeys(found))  # the same breach once, in the order found


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


def _same_refusal(wl: Workload, decision: ContractDecision) -> bool:
    phase = "Pending" if decision.ever_possible else "Rejected"
    return (
        wl.status.phase == phase
        and wl.status.message == decision.summary
        and wl.status.observed_generation == wl.metadata.generation
    )


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


__all__ = ["HOLDING_PHASES", "RACES", "WorkloadController"]
