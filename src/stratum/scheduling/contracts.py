"""Place a workload's contract on a fleet: every replica on exact devices, all or nothing.

Pure: the caller hands in plain data about nodes, their sites and what is already allocated,
and gets back either a binding per replica with evidence per clause, or per-clause reasons
in numbers and whether the fleet could ever satisfy the contract.

Topology clauses beyond one node's NVLink domain (PCIe switch, NUMA alignment, tiers across
replicas) are refused with a reason rather than bound without proof.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.decision import Decision
from stratum.scheduling.policies import Policy, make_policy
from stratum.scheduling.request import MILLI, Request
from stratum.scheduling.snapshot import NodeSpec, Snapshot

# A MIG profile "Ng.XXgb" takes N of the 7 compute slices of an A100/H100-class GPU.
MIG_SLICES = 7
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FleetNode:
    name: str
    site: str
    site_kind: str
    country: str
    jurisdictions: frozenset[str]
    provider: str
    rack: str
    cpu_milli: int
    memory_mib: int
    gpu_models: tuple[str, ...]
    gpu_memory_gib: tuple[float, ...]
    gpu_nvlink: tuple[bool, ...] = ()
    gpu_healthy: tuple[bool, ...] = ()
    schedulable: bool = True
    tenants: frozenset[str] = frozenset()  # tenants with work bound here now

    @property
    def model(self) -> str:
        return self.gpu_models[0] if self.gpu_models else ""


@dataclass(frozen=True, slots=True)
class Held:
    """Devices already taken on a node."""

    node: str
    gpus: tuple[int, ...] = ()
    milli: int = MILLI
    cpu_milli: int = 0
    memory_mib: int = 0


@dataclass(frozen=True, slots=True)
class ReplicaBinding:
    replica: int
    node: str
    gpus: tuple[int, ...]
    milli: int | None
    cpu_milli: int
    memory_mib: int


@dataclass(frozen=True, slots=True)
class ClauseNote:
    clause: str
    message: str
    excluded: int = 0


@dataclass(frozen=True, slots=True)
class ContractDecision:
    placed: bool
    bindings: tuple[ReplicaBinding, ...] = ()
    evidence: tuple[ClauseNote, ...] = ()
    reasons: tuple[ClauseNote, ...] = ()
    ever_possible: bool = True
    summary: str = ""


@dataclass(frozen=True, slots=True)
class WorkloadAsk:
    tenant: str
    replicas: int
    contract: Contract
    tenant_jurisdictions: frozenset[str] = frozenset()
    tenant_isolation: str = "shared"


def replica_request(contract: Contract) -> Request:
    """One replica's compute clause as the engine's request."""
    c = contract.compute
    cpu = math.ceil(c.cpu_cores * 1000)
    mem = math.ceil(c.memory_gib * 1024)
    models = frozenset(c.models)
    if c.gpus:
        return Request(cpu_milli=cpu, memory_mib=mem, gpu_count=c.gpus, gpu_milli=MILLI,
                       gpu_models=models)
    if c.gpu_milli:
        return Request(cpu_milli=cpu, memory_mib=mem, gpu_count=1, gpu_milli=c.gpu_milli,
                       gpu_models=models)
    if c.mig_profile:
        slices = int(c.mig_profile.split("g.")[0].split(".")[-1])
        milli = math.ceil(MILLI * slices / MIG_SLICES)
        return Request(cpu_milli=cpu, memory_mib=mem, gpu_count=1, gpu_milli=milli,
                       gpu_models=models)
    return Request(cpu_milli=cpu, memory_mib=mem)


@dataclass(frozen=True, slots=True)
class FleetState:
    """The fleet for one round of decisions: every node with what is held already taken, and
    per-node facts as arrays so that each contract's filters are vectorised. Binding a
    contract returns a new state that differs only where its replicas went."""

    nodes: tuple[FleetNode, ...]
    snapshot: Snapshot
    index: dict[str, int]
    site_of: IntArray  # node -> position in `sites`
    sites: tuple[FleetNode, ...]  # one representative node per site, for its law and kind
    schedulable: BoolArray
    min_gpu_memory: FloatArray  # smallest GPU memory on the node (0: unknown or no GPU)
    all_nvlink: BoolArray
    tenants_on: dict[str, frozenset[str]]

    @classmethod
    def build(cls, nodes: Sequence[FleetNode], held: Sequence[Held] = (), *,
              pristine: bool = False) -> FleetState:
        """Held devices and failed GPUs taken in bulk. `pristine`: an empty, healthy fleet,
        to tell "not now" (Pending) from "never" (Rejected)."""
        nodes = tuple(nodes)
        index = {n.name: i for i, n in enumerate(nodes)}
        snap = Snapshot.build([NodeSpec(n.name, n.cpu_milli, n.memory_mib, len(n.gpu_models),
                                        n.model) for n in nodes]) if nodes else None
        tenants: dict[str, set[str]] = {}
        if snap is not None and not pristine:
            gpu = snap.gpu_free.copy()
            cpu = snap.cpu_free.copy()
            mem = snap.memory_free.copy()
            pods = snap.pods_by_class.copy()
            width = snap.width
            for h in held:
                i = index.get(h.node)
                if i is None:
                    continue
                for g in h.gpus:
                    if g < gpu.shape[1]:
                        gpu[i, g] -= h.milli
                cpu[i] -= h.cpu_milli
                mem[i] -= h.memory_mib
                klass = width + 1 if not h.gpus else (0 if h.milli < MILLI
                                                      else min(len(h.gpus), width))
                pods[i, klass] += 1
            for i, n in enumerate(nodes):
                for g, ok in enumerate(n.gpu_healthy):
                    if not ok:
                        gpu[i, g] = 0  # a failed GPU is never given out
                tenants[n.name] = set(n.tenants)
            # Two placements racing for one device (a bug, or a store edited by hand) must
            # not stop the controllers: clip, and let the overlap show as no free capacity.
            snap = snap.with_free(cpu_free=np.maximum(cpu, 0), memory_free=np.maximum(mem, 0),
                                  gpu_free=np.clip(gpu, 0, MILLI), pods_by_class=pods)
        site_names: dict[str, int] = {}
        reps: list[FleetNode] = []
        site_of = np.zeros(len(nodes), dtype=np.int64)
        for i, n in enumerate(nodes):
            if n.site not in site_names:
                site_names[n.site] = len(reps)
                reps.append(n)
            site_of[i] = site_names[n.site]
        return cls(
            nodes=nodes, snapshot=snap if snap is not None else _EMPTY, index=index,
            site_of=site_of, sites=tuple(reps),
            schedulable=np.array([pristine or n.schedulable for n in nodes], dtype=np.bool_),
            min_gpu_memory=np.array([min(n.gpu_memory_gib) if n.gpu_memory_gib else 0.0
                                     for n in nodes], dtype=np.float64),
            all_nvlink=np.array([bool(n.gpu_nvlink) and all(n.gpu_nvlink) for n in nodes],
                                dtype=np.bool_),
            tenants_on={} if pristine else {k: frozenset(v) for k, v in tenants.items() if v})

    def bind(self, tenant: str, bindings: Sequence[ReplicaBinding]) -> FleetState:
        snap = self.snapshot
        tenants = dict(self.tenants_on)
        for b in bindings:
            i = self.index[b.node]
            snap = snap.allocate(Decision(node=i, node_name=b.node, gpus=b.gpus,
                                          milli=(b.milli or MILLI) if b.gpus else 0,
                                          cpu_milli=b.cpu_milli, memory_mib=b.memory_mib))
            tenants[b.node] = tenants.get(b.node, frozenset()) | {tenant}
        return replace(self, snapshot=snap, tenants_on=tenants)


_EMPTY = Snapshot.build([NodeSpec("none", 0, 0, 0)])


class _FirstFit:
    """Feasibility only: the first node that fits, its tightest GPUs."""

    name = "first-fit"

    def place(self, snapshot: Snapshot, request: Request) -> Decision:
        fits = np.flatnonzero(snapshot.feasible(request))
        if fits.size == 0:
            return snapshot.fail(request)
        node = int(fits[0])
        return snapshot.decide(node, snapshot.tightest_gpus(node, request), request, 0.0)


@dataclass
class _Filter:
    clause: str
    why: str
    passed: BoolArray


def _filters(state: FleetState, ask: WorkloadAsk, request: Request) -> list[_Filter]:
    """Every node-level hard clause as a mask over the nodes, in the order they are charged."""
    c = ask.contract
    sov = c.sovereignty
    n = len(state.nodes)
    jurisdictions = set(sov.jurisdictions)

    def per_site(ok: Callable[[FleetNode], bool]) -> BoolArray:
        site_ok = np.array([ok(s) for s in state.sites], dtype=np.bool_)
        mask: BoolArray = site_ok[state.site_of] if n else np.zeros(0, dtype=np.bool_)
        return mask

    everywhere = np.ones(n, dtype=np.bool_)
    filters = [_Filter("schedulable", "are unhealthy, unreachable or cordoned",
                       state.schedulable)]
    if jurisdictions:
        filters.append(_Filter("sovereignty.jurisdictions",
                               f"outside {'/'.join(sorted(jurisdictions))}",
                               per_site(lambda s: bool(s.jurisdictions & jurisdictions))))
    if ask.tenant_jurisdictions:
        filters.append(_Filter(
            "tenant.allowedJurisdictions",
            f"outside the tenant's {'/'.join(sorted(ask.tenant_jurisdictions))}",
            per_site(lambda s: bool(s.jurisdictions & ask.tenant_jurisdictions))))
    if sov.countries:
        filters.append(_Filter("sovereignty.countries", f"outside {'/'.join(sov.countries)}",
                               per_site(lambda s: s.country in sov.countries)))
    if sov.site_kinds:
        filters.append(_Filter("sovereignty.siteKinds",
                               f"not at a {'/'.join(sov.site_kinds)} site",
                               per_site(lambda s: s.site_kind in sov.site_kinds)))
    if sov.deny_providers:
        filters.append(_Filter("sovereignty.denyProviders",
                               f"run by {'/'.join(sov.deny_providers)}",
                               per_site(lambda s: s.provider not in sov.deny_providers)))
    if request.gpu_count and c.compute.min_gpu_memory_gib:
        # 0 means the memory is unknown: it cannot prove the minimum.
        filters.append(_Filter("compute.minGpuMemoryGiB",
                               f"have GPUs under {c.compute.min_gpu_memory_gib:g} GiB",
                               state.min_gpu_memory >= c.compute.min_gpu_memory_gib))
    if c.topology.within_replica == "nvlink" and request.gpu_count > 1:
        filters.append(_Filter("topology.withinReplica", "have no NVLink between their GPUs",
                               state.all_nvlink))
    if "dedicated-node" in (c.isolation, ask.tenant_isolation) and state.tenants_on:
        others = everywhere.copy()
        for name, tenants in state.tenants_on.items():
            if tenants - {ask.tenant}:
                others[state.index[name]] = False
        filters.append(_Filter("isolation", "hold other tenants' work (dedicated-node)",
                               others))
    return filters


def _unsupported(contract: Contract) -> list[ClauseNote]:
    t = contract.topology
    notes = []
    if t.within_replica in ("pcie-switch", "numa"):
        notes.append(ClauseNote("topology.withinReplica",
                                f"{t.within_replica} placement is not yet proven by this engine"))
    if t.across_replicas != "any":
        notes.append(ClauseNote("topology.acrossReplicas",
                                f"{t.across_replicas} tiers across replicas are not yet proven"))
    if t.numa_aligned:
        notes.append(ClauseNote("topology.numaAligned", "NUMA alignment is not yet proven"))
    if t.min_rdma_gbps_per_gpu:
        notes.append(ClauseNote("topology.minRdmaGbpsPerGpu", "RDMA bandwidth is not yet proven"))
    if contract.availability.spread_across in ("rack", "site"):
        notes.append(ClauseNote("availability.spreadAcross",
                                f"spreading across {contract.availability.spread_across}s is "
                                "not yet proven"))
    return notes


def _gang(state: FleetState, rows: IntArray, ask: WorkloadAsk, request: Request,
          policy: Policy) -> tuple[list[ReplicaBinding], str]:
    """Every replica on the eligible `rows`, or none: replica by replica on one evolving
    snapshot, so the gang is one decision."""
    spread = ask.contract.availability.spread_across == "node"
    snap = state.snapshot.subset(rows)
    bindings: list[ReplicaBinding] = []
    used: set[int] = set()
    for replica in range(ask.replicas):
        view, view_rows = snap, np.arange(len(rows))
        if spread and used:
            view_rows = np.array([r for r in range(len(rows)) if r not in used],
                                 dtype=np.int64)
            if view_rows.size == 0:
                return [], (f"spread across nodes needs {ask.replicas} nodes, "
                            f"{len(rows)} are eligible")
            view = snap.subset(view_rows)
        decision = policy.place(view, request)
        if not decision.placed:
            return [], f"replica {replica}: {decision.explanation}"
        local = int(view_rows[decision.node])
        node = state.nodes[int(rows[local])].name
        bindings.append(ReplicaBinding(replica, node, decision.gpus,
                                       decision.milli if request.is_sharing else None,
                                       request.cpu_milli, request.memory_mib))
        used.add(local)
        snap = snap.allocate(replace(decision, node=local, node_name=snap.names[local]),
                             request=request)
    return bindings, ""


def place_contract(state: FleetState, ask: WorkloadAsk, *, policy: Policy | None = None,
                   pristine: FleetState | None = None, seed: int = 0) -> ContractDecision:
    """Bind every replica, or explain per clause why not (and whether it ever could).

    `policy` (default: Stratum's, fresh) picks each replica's node; pass the same object
    across calls so that it keeps learning the workload mix. `pristine` is the same fleet
    empty and healthy (FleetState.build(..., pristine=True)); without it a failure is
    reported as Pending, never as Rejected.
    """
    policy = policy or make_policy("stratum", seed=seed)
    unsupported = _unsupported(ask.contract)
    if unsupported:
        return ContractDecision(placed=False, reasons=tuple(unsupported), ever_possible=False,
                                summary="; ".join(n.message for n in unsupported))
    request = replica_request(ask.contract)
    total = len(state.nodes)
    left = np.ones(total, dtype=np.bool_)
    reasons = []
    for f in _filters(state, ask, request):
        out = int((left & ~f.passed).sum())
        if out:
            reasons.append(ClauseNote(f.clause, f"{out} {f.why}", out))
        left &= f.passed
    rows = np.flatnonzero(left)
    bindings, why = _gang(state, rows, ask, request, policy) if rows.size else (
        [], "no node passes the clauses")
    if bindings:
        return ContractDecision(True, bindings=tuple(bindings),
                                evidence=tuple(_evidence(state.nodes, ask, bindings)),
                                summary=f"{len(bindings)} replica(s) bound")
    if rows.size:
        reasons.append(ClauseNote("compute", why, int(rows.size)))
    summary = f"0/{total} nodes can take the gang now: " + ", ".join(
        r.message for r in reasons) if reasons else "no nodes in the fleet"
    ever = False
    if pristine is not None and len(pristine.nodes):
        mask = np.ones(len(pristine.nodes), dtype=np.bool_)
        for f in _filters(pristine, ask, request):
            mask &= f.passed
        prow = np.flatnonzero(mask)
        ever = bool(prow.size) and bool(_gang(pristine, prow, ask, request, _FirstFit())[0])
    return ContractDecision(False, reasons=tuple(reasons), ever_possible=ever,
                            summary=summary)


def _evidence(nodes: Sequence[FleetNode], ask: WorkloadAsk,
              bindings: Sequence[ReplicaBinding]) -> list[ClauseNote]:
    by_name = {n.name: n for n in nodes}
    c = ask.contract
    notes = []
    for b in bindings:
        node = by_name[b.node]
        if b.gpus:
            what = (f"{b.milli} milli-GPU of GPU {b.gpus[0]}" if b.milli else
                    f"GPUs {','.join(map(str, b.gpus))}")
            notes.append(ClauseNote("compute", f"replica {b.replica}: {what} ({node.model}) and "
                                    f"{b.cpu_milli / 1000:g} cores on {b.node}"))
        else:
            notes.append(ClauseNote("compute", f"replica {b.replica}: {b.cpu_milli / 1000:g} "
                                    f"cores on {b.node}"))
    sites = sorted({(by_name[b.node].site, by_name[b.node].country,
                     "/".join(sorted(by_name[b.node].jurisdictions)) or "none")
                    for b in bindings})
    where = "; ".join(f"site {s} in {country}, jurisdictions {j}" for s, country, j in sites)
    notes.append(ClauseNote("sovereignty", where))
    if c.topology.within_replica == "nvlink":
        notes.append(ClauseNote("topology.withinReplica",
                                "each replica's GPUs share one node's NVLink/NVSwitch domain"))
    if "dedicated-node" in (c.isolation, ask.tenant_isolation):
        notes.append(ClauseNote("isolation", "no other tenant holds work on "
                                + ", ".join(sorted({b.node for b in bindings}))))
    if c.availability.spread_across == "node":
        notes.append(ClauseNote("availability", f"{len({b.node for b in bindings})} distinct "
                                "nodes"))
    return notes
