"""Place a workload's contract on a fleet: every replica on exact devices, all or nothing.

Pure: the caller hands in plain data about nodes, their sites and what is already allocated,
and gets back either a binding per replica with evidence per clause, or per-clause reasons
in numbers and whether the fleet could ever satisfy the contract.

Topology clauses beyond one node's NVLink domain (PCIe switch, NUMA alignment, tiers across
replicas) are refused with a reason rather than bound without proof.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from stratum.api.v1alpha1.contract import Contract
from stratum.scheduling.decision import Decision
from stratum.scheduling.policies import Policy, make_policy
from stratum.scheduling.request import MILLI, Request
from stratum.scheduling.snapshot import NodeSpec, Snapshot

# A MIG profile "Ng.XXgb" takes N of the 7 compute slices of an A100/H100-class GPU.
MIG_SLICES = 7


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


@dataclass
class _Filter:
    clause: str
    why: str
    count: int = 0
    nodes: list[str] = field(default_factory=list)


def _eligible(nodes: Sequence[FleetNode], ask: WorkloadAsk,
              request: Request) -> tuple[list[FleetNode], list[_Filter]]:
    """Nodes every node-level hard clause allows; each excluded node charged to one clause."""
    c = ask.contract
    sov = c.sovereignty
    jurisdictions = set(sov.jurisdictions)
    filters = [
        _Filter("schedulable", "are unhealthy, unreachable or cordoned"),
        _Filter("sovereignty.jurisdictions", f"outside {'/'.join(sorted(jurisdictions))}"),
        _Filter("tenant.allowedJurisdictions",
                f"outside the tenant's {'/'.join(sorted(ask.tenant_jurisdictions))}"),
        _Filter("sovereignty.countries", f"outside {'/'.join(sov.countries)}"),
        _Filter("sovereignty.siteKinds", f"not at a {'/'.join(sov.site_kinds)} site"),
        _Filter("sovereignty.denyProviders", f"run by {'/'.join(sov.deny_providers)}"),
        _Filter("compute.minGpuMemoryGiB", f"have GPUs under {c.compute.min_gpu_memory_gib} GiB"),
        _Filter("topology.withinReplica", "have no NVLink between their GPUs"),
        _Filter("isolation", "hold other tenants' work (dedicated-node)"),
    ]
    by_clause = {f.clause: f for f in filters}
    dedicated = "dedicated-node" in (c.isolation, ask.tenant_isolation)
    keep = []
    for node in nodes:
        failed = None
        if not node.schedulable:
            failed = "schedulable"
        elif jurisdictions and not (node.jurisdictions & jurisdictions):
            failed = "sovereignty.jurisdictions"
        elif ask.tenant_jurisdictions and not (node.jurisdictions & ask.tenant_jurisdictions):
            failed = "tenant.allowedJurisdictions"
        elif sov.countries and node.country not in sov.countries:
            failed = "sovereignty.countries"
        elif sov.site_kinds and node.site_kind not in sov.site_kinds:
            failed = "sovereignty.siteKinds"
        elif node.provider in sov.deny_providers:
            failed = "sovereignty.denyProviders"
        elif request.gpu_count and c.compute.min_gpu_memory_gib and (
                not node.gpu_memory_gib
                or min(node.gpu_memory_gib) < c.compute.min_gpu_memory_gib):  # 0 is "unknown"
            failed = "compute.minGpuMemoryGiB"
        elif c.topology.within_replica == "nvlink" and (request.gpu_count or 0) > 1 and \
                not (node.gpu_nvlink and all(node.gpu_nvlink)):
            failed = "topology.withinReplica"
        elif dedicated and node.tenants - {ask.tenant}:
            failed = "isolation"
        if failed:
            by_clause[failed].count += 1
        else:
            keep.append(node)
    return keep, filters


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


def _snapshot(nodes: Sequence[FleetNode], held: Sequence[Held],
              pristine: bool) -> Snapshot:
    snap = Snapshot.build([NodeSpec(n.name, n.cpu_milli, n.memory_mib, len(n.gpu_models),
                                    n.model) for n in nodes])
    if pristine:
        return snap
    index = {n.name: i for i, n in enumerate(nodes)}
    for h in held:
        i = index.get(h.node)
        if i is not None:
            snap = snap.allocate(Decision(node=i, node_name=h.node, gpus=h.gpus,
                                          milli=h.milli if h.gpus else 0,
                                          cpu_milli=h.cpu_milli, memory_mib=h.memory_mib))
    for i, n in enumerate(nodes):  # a failed GPU can never be given out
        broken = tuple(g for g, ok in enumerate(n.gpu_healthy) if not ok
                       and snap.gpu_free[i, g] > 0)
        for g in broken:
            snap = snap.allocate(Decision(node=i, node_name=n.name, gpus=(g,),
                                          milli=int(snap.gpu_free[i, g])))
    return snap


def _gang(nodes: list[FleetNode], held: Sequence[Held], ask: WorkloadAsk, request: Request,
          policy: Policy, pristine: bool) -> tuple[list[ReplicaBinding], str]:
    spread = ask.contract.availability.spread_across == "node"
    snap = _snapshot(nodes, held, pristine)
    bindings: list[ReplicaBinding] = []
    used: set[str] = set()
    for replica in range(ask.replicas):
        if spread and used:
            remaining = [n for n in nodes if n.name not in used]
            if not remaining:
                return [], f"spread across nodes needs {ask.replicas} nodes, {len(nodes)} fit"
            extra = [Held(b.node, b.gpus, b.milli or MILLI, b.cpu_milli, b.memory_mib)
                     for b in bindings]
            snap = _snapshot(remaining, [*held, *extra], pristine)
            current = remaining
        else:
            current = nodes
        decision = policy.place(snap, request)
        if not decision.placed:
            return [], f"replica {replica}: {decision.explanation}"
        node = current[decision.node].name
        bindings.append(ReplicaBinding(replica, node, decision.gpus,
                                       decision.milli if request.is_sharing else None,
                                       request.cpu_milli, request.memory_mib))
        used.add(node)
        snap = snap.allocate(decision, request=request)
    return bindings, ""


def place_contract(nodes: Sequence[FleetNode], held: Sequence[Held], ask: WorkloadAsk, *,
                   seed: int = 0, policy: Policy | None = None) -> ContractDecision:
    """Bind every replica, or explain per clause why not (and whether it ever could).

    `policy` (default: Stratum's, fresh) picks each replica's node; pass the same object
    across calls so that it keeps learning the workload mix.
    """
    policy = policy or make_policy("stratum", seed=seed)
    unsupported = _unsupported(ask.contract)
    if unsupported:
        return ContractDecision(placed=False, reasons=tuple(unsupported), ever_possible=False,
                                summary="; ".join(n.message for n in unsupported))
    request = replica_request(ask.contract)
    eligible, filters = _eligible(nodes, ask, request)
    reasons = [ClauseNote(f.clause, f"{f.count} {f.why}", f.count) for f in filters if f.count]
    head = f"0/{len(nodes)} nodes"
    if not eligible:
        summary = f"{head}: " + ", ".join(r.message for r in reasons) if reasons else \
            "no nodes in the fleet"
        return ContractDecision(False, reasons=tuple(reasons), ever_possible=False,
                                summary=summary)
    bindings, why = _gang(eligible, held, ask, request, policy, pristine=False)
    if not bindings:
        _, never = _gang(eligible, (), ask, request, policy, pristine=True)
        reasons.append(ClauseNote("compute", why, len(eligible)))
        summary = ", ".join([why, *(r.message for r in reasons[:-1])])
        return ContractDecision(False, reasons=tuple(reasons), ever_possible=not never,
                                summary=summary)
    return ContractDecision(True, bindings=tuple(bindings),
                            evidence=tuple(_evidence(nodes, ask, bindings)),
                            summary=f"{len(bindings)} replica(s) bound")


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
