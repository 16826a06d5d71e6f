"""Place a workload's contract on a fleet: every replica on exact devices, all or nothing.

Pure: the caller hands in plain data about nodes, their sites and what is already held, and
gets back either a binding per replica (node, GPU indices or a MIG instance or a GPU share,
CPU set, NUMA node, NICs) with evidence per clause and the tier the gang reached, or
per-clause reasons in numbers and whether the fleet could ever satisfy the contract.

How a decision is made:
1. every node-level hard clause is a mask over the nodes (sovereignty, models, GPU memory,
   MIG profile, within-replica grouping, NUMA, RDMA, isolation, quota, reservations, free
   capacity, the site's power budget); each excluded node is charged to its first clause;
2. a gang tries the across-replica tiers tightest first (one NVLink domain, one rack, RDMA
   within one site, one site, anywhere) up to the loosest its clause allows, and in a tier
   the domains that can hold it, best fit first;
3. inside a domain the replicas go one by one on one scratch copy of the devices, so that
   the gang is one decision; each replica's devices are chosen by `devices`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from stratum.api.v1alpha1.contract import Contract
from stratum.core.demand import mig_milli, replica_gpu_milli
from stratum.scheduling.decision import Decision
from stratum.scheduling.devices import (
    NodeLayout,
    choose_cpus,
    choose_gpus,
    choose_mig,
    cpus_text,
    mig_slots_text,
    parse_mig_instance,
)
from stratum.scheduling.policies import Policy, make_policy
from stratum.scheduling.request import MILLI, Request
from stratum.scheduling.snapshot import NodeSpec, Snapshot

TIERS = ("nvlink-domain", "rack", "rdma", "site", "any")
# Domains tried per tier before the next tier: bounds a decision's cost on a large fleet.
DOMAINS_PER_TIER = 12
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
    layout: NodeLayout | None = None
    nvlink_domain: str = ""  # fleet-wide name of the NVLink domain its GPUs are in; "" none
    site_power_kw: float | None = None

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
    mig_instance: str | None = None
    cpu_set: frozenset[int] = frozenset()
    numa_node: int | None = None
    dedicated_for: str = ""  # the tenant whose dedicated-node contract holds this


@dataclass(frozen=True, slots=True)
class ReplicaBinding:
    replica: int
    node: str
    gpus: tuple[int, ...]
    milli: int | None
    cpu_milli: int
    memory_mib: int
    mig_instance: str | None = None
    cpu_set: tuple[int, ...] = ()
    numa_node: int | None = None
    nics: tuple[str, ...] = ()
    power_w: float = 0.0

    @property
    def cpu_list(self) -> str | None:
        return cpus_text(self.cpu_set) if self.cpu_set else None

    @property
    def nic(self) -> str | None:
        return ",".join(self.nics) if self.nics else None

    def held(self, dedicated_for: str = "") -> Held:
        return Held(
            self.node,
            self.gpus,
            self.milli or MILLI,
            self.cpu_milli,
            self.memory_mib,
            self.mig_instance,
            frozenset(self.cpu_set),
            self.numa_node,
            dedicated_for,
        )


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
    tier: str | None = None
    # Nodes a waiting gang came closest to fitting on: the caller may keep smaller work off
    # them so that the gang is not starved (backfill goes elsewhere).
    waiting_on: tuple[str, ...] = ()
    dedicated: bool = False  # bind with dedicated=True: no other tenant joins these nodes


@dataclass(frozen=True, slots=True)
class WorkloadAsk:
    tenant: str
    replicas: int
    contract: Contract
    tenant_jurisdictions: frozenset[str] = frozenset()
    tenant_isolation: str = "shared"
    # Quota headroom in milli-GPU (None: no limit): in total, and per GPU model.
    quota_left_milli: int | None = None
    model_quota_left_milli: Mapping[str, int] = field(default_factory=dict)
    avoid_nodes: frozenset[str] = frozenset()  # reserved for a waiting gang
    # Sites the tenant's deny policies allow (None: no policy restricts), and why others not.
    policy_sites: frozenset[str] | None = None
    policy_reason: str = "ruled out by a policy"

    def without_now(self) -> WorkloadAsk:
        """The same contract with what only holds now (quota, reservations) taken away."""
        return replace(
            self, quota_left_milli=None, model_quota_left_milli={}, avoid_nodes=frozenset()
        )


def replica_request(contract: Contract) -> Request:
    """One replica's compute clause as the engine's request."""
    c = contract.compute
    cpu = math.ceil(c.cpu_cores * 1000)
    mem = math.ceil(c.memory_gib * 1024)
    models = frozenset(c.models)
    if c.gpus:
        return Request(
            cpu_milli=cpu, memory_mib=mem, gpu_count=c.gpus, gpu_milli=MILLI, gpu_models=models
        )
    if c.gpu_milli:
        return Request(
            cpu_milli=cpu, memory_mib=mem, gpu_count=1, gpu_milli=c.gpu_milli, gpu_models=models
        )
    if c.mig_profile:
        milli = mig_milli(c.mig_profile)
        return Request(
            cpu_milli=cpu, memory_mib=mem, gpu_count=1, gpu_milli=milli, gpu_models=models
        )
    return Request(cpu_milli=cpu, memory_mib=mem)


def replica_milli(contract: Contract) -> int:
    """What one replica counts against a GPU quota (core/demand.py's arithmetic)."""
    c = contract.compute
    return replica_gpu_milli(gpus=c.gpus, gpu_milli=c.gpu_milli, mig_profile=c.mig_profile)


@dataclass(frozen=True, slots=True)
class FleetState:
    """The fleet for one round of decisions: every node with what is held already taken, and
    per-node facts as arrays so that each contract's filters are vectorised. Binding a
    contract returns a new state that differs only where its replicas went."""

    nodes: tuple[FleetNode, ...]
    snapshot: Snapshot  # MIG-partitioned GPUs count as fully taken here
    index: dict[str, int]
    site_of: IntArray  # node -> position in `sites`
    sites: tuple[FleetNode, ...]  # one representative node per site, for its law and kind
    schedulable: BoolArray
    min_gpu_memory: FloatArray  # smallest GPU memory on the node (0: unknown or no GPU)
    all_nvlink: BoolArray
    tenants_on: dict[str, frozenset[str]]
    dedicated: Mapping[str, str]  # node -> the tenant holding it under dedicated-node
    gpu_ok: BoolArray  # (N, W): the GPU exists and is healthy
    gpu_power: FloatArray  # (N, W) watts
    gpu_rdma: FloatArray  # (N, W) RDMA Gb/s of the GPU's rail NIC share
    mig_used: Mapping[int, tuple[int, ...]]  # node -> per-GPU used memory-slice mask
    cpus_used: Mapping[int, frozenset[int]]
    numa_mem_used: Mapping[int, Mapping[int, int]]
    site_power_used: FloatArray  # watts per site
    site_budget: FloatArray  # watts per site (inf: no budget)
    tier_keys: Mapping[str, IntArray]  # per tier: the node's domain id, -1 outside any
    tier_names: Mapping[str, tuple[str, ...]]
    layout_of: IntArray  # node -> position in `layouts` (-1: no layout)
    layouts: tuple[NodeLayout, ...]

    @classmethod
    def build(
        cls, nodes: Sequence[FleetNode], held: Sequence[Held] = (), *, pristine: bool = False
    ) -> FleetState:
        """Held devices and failed GPUs taken in bulk. `pristine`: an empty, healthy fleet,
        to tell "not now" (Pending) from "never" (Rejected)."""
        nodes = tuple(nodes)
        index = {n.name: i for i, n in enumerate(nodes)}
        snap = (
            Snapshot.build(
                [
                    NodeSpec(n.name, n.cpu_milli, n.memory_mib, len(n.gpu_models), n.model)
                    for n in nodes
                ]
            )
            if nodes
            else _EMPTY
        )
        width = snap.width
        count = len(nodes)
        gpu_ok = np.zeros((count, width), dtype=np.bool_)
        gpu_power = np.zeros((count, width), dtype=np.float64)
        gpu_rdma = np.zeros((count, width), dtype=np.float64)
        layouts: list[NodeLayout] = []
        layout_pos: dict[int, int] = {}
        layout_of = np.full(count, -1, dtype=np.int64)
        for i, n in enumerate(nodes):
            k = len(n.gpu_models)
            healthy = n.gpu_healthy if (n.gpu_healthy and not pristine) else (True,) * k
            gpu_ok[i, :k] = healthy[:k]
            if n.layout is not None:
                lay = n.layout
                if id(lay) not in layout_pos:
                    layout_pos[id(lay)] = len(layouts)
                    layouts.append(lay)
                layout_of[i] = layout_pos[id(lay)]
                m = min(k, lay.gpus)
                gpu_power[i, :m] = lay.power_w[:m]
                gpu_rdma[i, :m] = lay.rdma_gbps[:m]
        site_names: dict[str, int] = {}
        reps: list[FleetNode] = []
        site_of = np.zeros(count, dtype=np.int64)
        for i, n in enumerate(nodes):
            if n.site not in site_names:
                site_names[n.site] = len(reps)
                reps.append(n)
            site_of[i] = site_names[n.site]
        site_budget = np.array(
            [s.site_power_kw * 1000 if s.site_power_kw else np.inf for s in reps], dtype=np.float64
        )
        site_power = np.zeros(len(reps), dtype=np.float64)
        tenants: dict[str, set[str]] = {}
        mig_used: dict[int, list[int]] = {}
        cpus_used: dict[int, set[int]] = {}
        numa_mem: dict[int, dict[int, int]] = {}
        dedicated: dict[str, str] = {}
        if nodes and not pristine:
            gpu = snap.gpu_free.copy()
            cpu = snap.cpu_free.copy()
            mem = snap.memory_free.copy()
            pods = snap.pods_by_class.copy()
            for h in held:
                i = index.get(h.node)  # type: ignore[assignment]
                if i is None:
                    continue
                if h.mig_instance:
                    mask = parse_mig_instance(h.mig_instance)
                    masks = mig_used.setdefault(i, [0] * width)
                    for g in h.gpus[:1]:
                        if g < width:
                            masks[g] |= mask
                            site_power[site_of[i]] += gpu_power[i, g] * bin(mask).count("1") / 8
                else:
                    for g in h.gpus:
                        if g < width:
                            gpu[i, g] -= h.milli
                            site_power[site_of[i]] += gpu_power[i, g] * h.milli / MILLI
                cpu[i] -= h.cpu_milli
                mem[i] -= h.memory_mib
                if h.cpu_set:
                    cpus_used.setdefault(i, set()).update(h.cpu_set)
                if h.dedicated_for:
                    dedicated[h.node] = h.dedicated_for
                if h.numa_node is not None:
                    per = numa_mem.setdefault(i, {})
                    per[h.numa_node] = per.get(h.numa_node, 0) + h.memory_mib
                klass = (
                    width + 1 if not h.gpus else (0 if h.milli < MILLI else min(len(h.gpus), width))
                )
                pods[i, klass] += 1
            for i, masks in mig_used.items():
                for g, mask in enumerate(masks):
                    if mask:
                        gpu[i, g] = 0  # a partitioned GPU is never given whole or shared
            gpu[~gpu_ok] = 0  # a failed GPU is never given out
            for n in nodes:
                tenants[n.name] = set(n.tenants)
            # Two placements racing for one device (a bug, or a store edited by hand) must
            # not stop the controllers: clip, and let the overlap show as no free capacity.
            snap = snap.with_free(
                cpu_free=np.maximum(cpu, 0),
                memory_free=np.maximum(mem, 0),
                gpu_free=np.clip(gpu, 0, MILLI),
                pods_by_class=pods,
            )
        tier_keys, tier_names = _tier_keys(nodes)
        return cls(
            nodes=nodes,
            snapshot=snap,
            index=index,
            site_of=site_of,
            sites=tuple(reps),
            schedulable=np.array([pristine or n.schedulable for n in nodes], dtype=np.bool_),
            min_gpu_memory=np.array(
                [min(n.gpu_memory_gib) if n.gpu_memory_gib else 0.0 for n in nodes],
                dtype=np.float64,
            ),
            all_nvlink=np.array(
                [bool(n.gpu_nvlink) and all(n.gpu_nvlink) for n in nodes], dtype=np.bool_
            ),
            tenants_on={} if pristine else {k: frozenset(v) for k, v in tenants.items() if v},
            dedicated=dedicated,
            gpu_ok=gpu_ok,
            gpu_power=gpu_power,
            gpu_rdma=gpu_rdma,
            mig_used={i: tuple(v) for i, v in mig_used.items()},
            cpus_used={i: frozenset(v) for i, v in cpus_used.items()},
            numa_mem_used=numa_mem,
            site_power_used=site_power,
            site_budget=site_budget,
            tier_keys=tier_keys,
            tier_names=tier_names,
            layout_of=layout_of,
            layouts=tuple(layouts),
        )

    def bind(
        self, tenant: str, bindings: Sequence[ReplicaBinding], *, dedicated: bool = False
    ) -> FleetState:
        """`dedicated`: the contract (or its tenant) asks for dedicated-node isolation, so
        no other tenant may come onto these nodes while it holds them."""
        snap = self.snapshot
        tenants = dict(self.tenants_on)
        owners = dict(self.dedicated)
        mig = dict(self.mig_used)
        cpus = dict(self.cpus_used)
        numa = {k: dict(v) for k, v in self.numa_mem_used.items()}
        power = self.site_power_used.copy()
        for b in bindings:
            i = self.index[b.node]
            gpus: tuple[int, ...] = b.gpus
            milli = (b.milli or MILLI) if b.gpus else 0
            if b.mig_instance:
                masks = list(mig.get(i, (0,) * snap.width))
                g = b.gpus[0]
                fresh = masks[g] == 0
                masks[g] |= parse_mig_instance(b.mig_instance)
                mig[i] = tuple(masks)
                gpus, milli = ((g,), MILLI) if fresh else ((), 0)
            snap = snap.allocate(
                Decision(
                    node=i,
                    node_name=b.node,
                    gpus=gpus,
                    milli=milli,
                    cpu_milli=b.cpu_milli,
                    memory_mib=b.memory_mib,
                )
            )
            if b.cpu_set:
                cpus[i] = cpus.get(i, frozenset()) | frozenset(b.cpu_set)
            if b.numa_node is not None:
                per = numa.setdefault(i, {})
                per[b.numa_node] = per.get(b.numa_node, 0) + b.memory_mib
            power[self.site_of[i]] += b.power_w
            tenants[b.node] = tenants.get(b.node, frozenset()) | {tenant}
            if dedicated:
                owners[b.node] = tenant
        return replace(
            self,
            snapshot=snap,
            tenants_on=tenants,
            mig_used=mig,
            cpus_used=cpus,
            numa_mem_used=numa,
            site_power_used=power,
            dedicated=owners,
        )

    def layout(self, i: int) -> NodeLayout | None:
        return self.nodes[i].layout


def _tier_keys(
    nodes: Sequence[FleetNode],
) -> tuple[dict[str, IntArray], dict[str, tuple[str, ...]]]:
    keys: dict[str, IntArray] = {}
    names: dict[str, tuple[str, ...]] = {}

    def label(n: FleetNode, tier: str) -> str:
        if tier == "nvlink-domain":
            return n.nvlink_domain
        if tier == "rack":
            return f"{n.site}/{n.rack}" if n.rack else ""
        if tier == "rdma":
            has = n.layout is not None and any(x.rdma for x in n.layout.nics)
            return n.site if has else ""
        if tier == "site":
            return n.site
        if tier == "node":
            return n.name
        return "fleet"

    for tier in (*TIERS, "node"):
        seen: dict[str, int] = {}
        arr = np.full(len(nodes), -1, dtype=np.int64)
        for i, n in enumerate(nodes):
            text = label(n, tier)
            if text:
                arr[i] = seen.setdefault(text, len(seen))
        keys[tier] = arr
        names[tier] = tuple(seen)
    return keys, names


_EMPTY = Snapshot.build([NodeSpec("none", 0, 0, 0)])


# ---- one request, as the engine works on it ---------------------------------------------
@dataclass(frozen=True, slots=True)
class _Shape:
    request: Request
    kind: str  # whole | share | mig | cpu
    k: int
    milli: int
    mig: str
    within: str
    cpus: int  # logical CPUs for the CPU set
    aligned: bool
    min_rdma: float
    replicas: int
    spread: str
    min_domains: int

    @classmethod
    def of(cls, ask: WorkloadAsk) -> _Shape:
        c = ask.contract
        request = replica_request(c)
        compute = c.compute
        kind = (
            "whole"
            if compute.gpus
            else "share"
            if compute.gpu_milli
            else "mig"
            if compute.mig_profile
            else "cpu"
        )
        return cls(
            request=request,
            kind=kind,
            k=compute.gpus or (1 if kind != "cpu" else 0),
            milli=compute.gpu_milli or 0,
            mig=compute.mig_profile or "",
            within=c.topology.within_replica,
            cpus=math.ceil(request.cpu_milli / 1000),
            aligned=c.topology.numa_aligned,
            min_rdma=c.topology.min_rdma_gbps_per_gpu or 0.0,
            replicas=ask.replicas,
            spread=c.availability.spread_across,
            min_domains=c.availability.min_domains,
        )


@dataclass
class _Filter:
    clause: str
    why: str
    passed: BoolArray


def _per_layout(state: FleetState, fn: Callable[[NodeLayout], bool]) -> BoolArray:
    ok = np.array([fn(lay) for lay in state.layouts] + [False], dtype=np.bool_)
    mask: BoolArray = ok[state.layout_of]  # -1 picks the trailing False
    return mask


def _gpu_eligible(state: FleetState, shape: _Shape) -> BoolArray:
    ok = state.gpu_ok
    if shape.min_rdma:
        ok = ok & (state.gpu_rdma >= shape.min_rdma)
    return ok


def _filters(state: FleetState, ask: WorkloadAsk, shape: _Shape) -> list[_Filter]:
    """Every node-level hard clause as a mask over the nodes, in the order they are charged."""
    c = ask.contract
    sov = c.sovereignty
    request = shape.request
    n = len(state.nodes)
    jurisdictions = set(sov.jurisdictions)

    def per_site(ok: Callable[[FleetNode], bool]) -> BoolArray:
        site_ok = np.array([ok(s) for s in state.sites], dtype=np.bool_)
        mask: BoolArray = site_ok[state.site_of] if n else np.zeros(0, dtype=np.bool_)
        return mask

    everywhere = np.ones(n, dtype=np.bool_)
    filters = [_Filter("schedulable", "are unhealthy, unreachable or cordoned", state.schedulable)]
    if jurisdictions:
        filters.append(
            _Filter(
                "sovereignty.jurisdictions",
                f"outside {'/'.join(sorted(jurisdictions))}",
                per_site(lambda s: bool(s.jurisdictions & jurisdictions)),
            )
        )
    if ask.tenant_jurisdictions:
        filters.append(
            _Filter(
                "tenant.allowedJurisdictions",
                f"outside the tenant's {'/'.join(sorted(ask.tenant_jurisdictions))}",
                per_site(lambda s: bool(s.jurisdictions & ask.tenant_jurisdictions)),
            )
        )
    if sov.countries:
        filters.append(
            _Filter(
                "sovereignty.countries",
                f"outside {'/'.join(sov.countries)}",
                per_site(lambda s: s.country in sov.countries),
            )
        )
    if sov.site_kinds:
        filters.append(
            _Filter(
                "sovereignty.siteKinds",
                f"not at a {'/'.join(sov.site_kinds)} site",
                per_site(lambda s: s.site_kind in sov.site_kinds),
            )
        )
    if sov.deny_providers:
        filters.append(
            _Filter(
                "sovereignty.denyProviders",
                f"run by {'/'.join(sov.deny_providers)}",
                per_site(lambda s: s.provider not in sov.deny_providers),
            )
        )
    if ask.policy_sites is not None:
        allowed_sites = ask.policy_sites
        filters.append(
            _Filter(
                "policy",
                f"at sites {ask.policy_reason}",
                per_site(lambda s: s.site in allowed_sites),
            )
        )
    if request.gpu_count:
        has = state.snapshot.gpu_count >= (shape.k if shape.kind == "whole" else 1)
        if request.gpu_models:
            has = has & state.snapshot.model_mask(request)
        filters.append(
            _Filter(
                "compute.models",
                f"lack {request.describe_gpu()} in all"
                if request.gpu_models
                else "have too few GPUs",
                has,
            )
        )
    if request.gpu_count and c.compute.min_gpu_memory_gib:
        # 0 means the memory is unknown: it cannot prove the minimum.
        filters.append(
            _Filter(
                "compute.minGpuMemoryGiB",
                f"have GPUs under {c.compute.min_gpu_memory_gib:g} GiB",
                state.min_gpu_memory >= c.compute.min_gpu_memory_gib,
            )
        )
    if shape.kind == "mig":
        filters.append(
            _Filter(
                "compute.migProfile",
                f"have no GPU offering MIG {shape.mig}",
                _per_layout(state, lambda lay: any(shape.mig in m for m in lay.mig)),
            )
        )
    if shape.kind == "whole" and shape.within != "any" and shape.k > 1:
        words = {"nvlink": "NVLink domain", "pcie-switch": "PCIe switch", "numa": "NUMA node"}
        filters.append(
            _Filter(
                "topology.withinReplica",
                f"have no {shape.k} GPUs on one {words[shape.within]}",
                _per_layout(
                    state,
                    lambda lay: any(len(g) >= shape.k for g in lay.level_groups(shape.within)),
                ),
            )
        )
    if shape.aligned:
        filters.append(
            _Filter(
                "topology.numaAligned",
                "do not describe their GPUs' NUMA nodes and CPUs",
                _per_layout(
                    state,
                    lambda lay: bool(lay.numa_cpus) and all(x in lay.numa_cpus for x in lay.numa),
                ),
            )
        )
    if shape.min_rdma:
        need = shape.k if shape.kind == "whole" else 1
        enough = (state.gpu_rdma >= shape.min_rdma).sum(axis=1) >= need
        filters.append(
            _Filter(
                "topology.minRdmaGbpsPerGpu",
                f"lack {need} GPU(s) with {shape.min_rdma:g} Gb/s RDMA each",
                enough,
            )
        )
    if "dedicated-node" in (c.isolation, ask.tenant_isolation) and state.tenants_on:
        others = everywhere.copy()
        for name, tenants in state.tenants_on.items():
            if tenants - {ask.tenant} and name in state.index:
                others[state.index[name]] = False
        filters.append(_Filter("isolation", "hold other tenants' work (dedicated-node)", others))
    if state.dedicated:
        free = everywhere.copy()
        for name, owner in state.dedicated.items():
            if owner != ask.tenant and name in state.index:
                free[state.index[name]] = False
        # Counted as full, never as "dedicated to another tenant": a tenant learns nothing
        # of the others' isolation from its own reasons.
        filters.append(_Filter("compute", "have no room for it now", free))
    if ask.model_quota_left_milli and shape.kind != "cpu":
        need = replica_milli(c)
        left_ok = np.array(
            [ask.model_quota_left_milli.get(m, 1 << 62) >= need for m in state.snapshot.models],
            dtype=np.bool_,
        )
        filters.append(
            _Filter(
                "quota",
                "have a GPU model the tenant's quota has no room for",
                left_ok[state.snapshot.model_idx],
            )
        )
    if ask.avoid_nodes:
        keep = everywhere.copy()
        for name in ask.avoid_nodes:
            if name in state.index:
                keep[state.index[name]] = False
        filters.append(_Filter("queue", "are reserved for a higher-ranked waiting gang", keep))
    return filters


def _capacity(state: FleetState, shape: _Shape) -> tuple[list[_Filter], IntArray]:
    """Replicas each node could take now (an upper bound device choice confirms), and the
    capacity filters with the clause each is charged to."""
    snap = state.snapshot
    req = shape.request
    n = len(state.nodes)
    big = np.full(n, 1 << 30, dtype=np.int64)
    eligible = _gpu_eligible(state, shape)
    if shape.kind == "whole":
        free = (snap.gpu_free == MILLI) & eligible
        if shape.within == "any" or shape.k == 1:
            gpu_cap = free.sum(axis=1) // shape.k
        else:
            gpu_cap = np.zeros(n, dtype=np.int64)
            for pos, lay in enumerate(state.layouts):
                rows = np.flatnonzero(state.layout_of == pos)
                if rows.size == 0:
                    continue
                for group in lay.level_groups(shape.within):
                    cols = np.array([g for g in group if g < snap.width], dtype=np.int64)
                    gpu_cap[rows] += free[np.ix_(rows, cols)].sum(axis=1) // shape.k
        gpu_why = f"lack {shape.k} free GPU(s)" + (
            "" if shape.within == "any" or shape.k == 1 else f" on one {shape.within} group"
        )
    elif shape.kind == "share":
        per = np.where(eligible, snap.gpu_free // max(1, shape.milli), 0)
        gpu_cap = per.sum(axis=1)
        gpu_why = f"lack a GPU with {shape.milli} milli-GPU free"
    elif shape.kind == "mig":
        gpu_cap = _mig_capacity(state, shape, eligible)
        gpu_why = f"lack a free MIG {shape.mig} slot"
    else:
        gpu_cap = big
        gpu_why = ""
    cpu_cap = snap.cpu_free // req.cpu_milli if req.cpu_milli else big
    mem_cap = snap.memory_free // req.memory_mib if req.memory_mib else big
    filters = []
    if shape.kind != "cpu":
        filters.append(_Filter("compute", gpu_why, gpu_cap > 0))
    filters.append(
        _Filter("compute.cpuCores", f"lack {req.cpu_milli / 1000:g} free cores", cpu_cap > 0)
    )
    filters.append(
        _Filter("compute.memoryGiB", f"lack {req.memory_mib} MiB free memory", mem_cap > 0)
    )
    if shape.kind != "cpu":
        # The cheapest replica the node could host must fit the site's power left.
        per_gpu = (
            np.where(eligible, state.gpu_power, np.inf).min(axis=1) if snap.width else np.zeros(n)
        )
        per_gpu = np.where(np.isfinite(per_gpu), per_gpu, 0.0)
        share = (
            shape.k
            if shape.kind == "whole"
            else (shape.milli / MILLI if shape.kind == "share" else 1 / 8)
        )
        left = (state.site_budget - state.site_power_used)[state.site_of]
        filters.append(
            _Filter(
                "site.powerBudgetKW",
                "are at sites without the power left",
                left + 1e-6 >= per_gpu * share,
            )
        )
    cap = np.minimum(np.minimum(gpu_cap, cpu_cap), mem_cap)
    return filters, cap


def _mig_capacity(state: FleetState, shape: _Shape, eligible: BoolArray) -> IntArray:
    n = len(state.nodes)
    cap = np.zeros(n, dtype=np.int64)
    snap = state.snapshot
    for pos, lay in enumerate(state.layouts):
        gpus = [g for g in range(lay.gpus) if shape.mig in lay.mig[g]]
        if not gpus:
            continue
        rows = np.flatnonzero(state.layout_of == pos)
        for g in gpus:
            mig_shape = lay.mig[g][shape.mig]
            whole = (snap.gpu_free[rows, g] == MILLI) & eligible[rows, g]
            cap[rows] += np.where(
                whole, len(mig_shape.starts) if mig_shape.size == 1 else 8 // mig_shape.size, 0
            )
        for i in rows[[int(r) in state.mig_used for r in rows]] if rows.size else []:
            masks = state.mig_used[int(i)]
            for g in gpus:
                if masks[g] and eligible[i, g]:
                    mig_shape = lay.mig[g][shape.mig]
                    cap[i] += sum(1 for s in mig_shape.starts if not masks[g] & mig_shape.run(s))
    return cap


# ---- the scratch copy of the devices a decision works on --------------------------------
class _Work:
    """What one decision has taken so far, over the state: only touched nodes are copied."""

    def __init__(self, state: FleetState) -> None:
        self.state = state
        self.gpu: dict[int, list[int]] = {}
        self.cpu: dict[int, int] = {}
        self.mem: dict[int, int] = {}
        self.mig: dict[int, list[int]] = {}
        self.cpus: dict[int, set[int]] = {}
        self.numa: dict[int, dict[int, int]] = {}
        self.power: dict[int, float] = {}

    def gpu_row(self, i: int) -> list[int]:
        if i not in self.gpu:
            self.gpu[i] = [int(x) for x in self.state.snapshot.gpu_free[i]]
        return self.gpu[i]

    def mig_row(self, i: int) -> list[int]:
        if i not in self.mig:
            self.mig[i] = list(self.state.mig_used.get(i, (0,) * self.state.snapshot.width))
        return self.mig[i]

    def cpu_free(self, i: int) -> int:
        return self.cpu.get(i, int(self.state.snapshot.cpu_free[i]))

    def mem_free(self, i: int) -> int:
        return self.mem.get(i, int(self.state.snapshot.memory_free[i]))

    def cpus_used(self, i: int) -> frozenset[int]:
        return self.state.cpus_used.get(i, frozenset()) | frozenset(self.cpus.get(i, ()))

    def numa_used(self, i: int, numa: int) -> int:
        return self.state.numa_mem_used.get(i, {}).get(numa, 0) + self.numa.get(i, {}).get(numa, 0)

    def power_left(self, i: int) -> float:
        s = int(self.state.site_of[i])
        return float(self.state.site_budget[s] - self.state.site_power_used[s]) - self.power.get(
            s, 0.0
        )


def _replica_on(
    work: _Work, i: int, replica: int, shape: _Shape, preferred: tuple[int, ...] = ()
) -> ReplicaBinding | None:
    """Exact devices for one replica on node i, taken from `work`; None if they are not
    there. `preferred`: GPUs a policy chose (kept when they satisfy every clause)."""
    state = work.state
    req = shape.request
    if work.cpu_free(i) < req.cpu_milli or work.mem_free(i) < req.memory_mib:
        return None
    lay = state.layout(i)
    row = work.gpu_row(i)
    ok = _gpu_eligible_row(state, shape, i)
    gpus: tuple[int, ...] = ()
    mig_text: str | None = None
    mig_mask = 0
    power = 0.0
    if shape.kind == "whole":
        free = [row[g] == MILLI and ok[g] for g in range(len(row))]
        if (
            preferred
            and len(preferred) == shape.k
            and all(free[g] for g in preferred)
            and shape.within == "any"
        ):
            chosen: tuple[int, ...] | None = choose_gpus(
                lay, [g in preferred for g in range(len(row))], shape.k, "any"
            )
        else:
            chosen = choose_gpus(lay, free, shape.k, shape.within)
        if chosen is None:
            return None
        gpus = chosen
        power = float(sum(state.gpu_power[i, g] for g in gpus))
    elif shape.kind == "share":
        fits = [g for g in range(len(row)) if ok[g] and row[g] >= shape.milli]
        if not fits:
            return None
        pick = (
            preferred[0]
            if preferred and preferred[0] in fits
            else min(fits, key=lambda g: (row[g], g))
        )
        gpus = (pick,)
        power = float(state.gpu_power[i, pick]) * shape.milli / MILLI
    elif shape.kind == "mig":
        if lay is None:
            return None
        used = work.mig_row(i)
        found = choose_mig(
            lay,
            used,
            [row[g] == MILLI and ok[g] for g in range(lay.gpus)],
            [used[g] != 0 for g in range(lay.gpus)],
            [bool(ok[g]) for g in range(lay.gpus)],
            shape.mig,
        )
        if found is None:
            return None
        g, start, mshape = found
        gpus = (g,)
        mig_text = mig_slots_text(mshape, g, start)
        mig_mask = mshape.run(start)
        power = float(state.gpu_power[i, g]) * mshape.size / 8
    if power > work.power_left(i) + 1e-6:
        return None
    numa_pref = (
        [lay.numa[g] for g in gpus if lay is not None and g < lay.gpus and lay.numa[g] >= 0]
        if lay is not None
        else []
    )
    picked = choose_cpus(lay, work.cpus_used(i), shape.cpus, numa_pref, shape.aligned)
    if picked is None:
        return None
    cpu_set, numa_node = picked
    if shape.aligned:
        if numa_node is None or (numa_pref and set(numa_pref) != {numa_node}):
            return None
        capacity = lay.numa_memory_mib.get(numa_node, 0) if lay is not None else 0
        if capacity and work.numa_used(i, numa_node) + req.memory_mib > capacity:
            return None
    nics: tuple[str, ...] = ()
    if gpus and lay is not None and lay.nics:
        rails = [
            lay.rail[g] if lay.rail[g] >= 0 else lay.closest_nic[g] for g in gpus if g < lay.gpus
        ]
        picks = [r for r in dict.fromkeys(rails) if r >= 0]
        if (
            shape.aligned
            and numa_node is not None
            and any(lay.nics[r].numa not in (numa_node, -1) for r in picks)
        ):
            same = [
                x
                for x, nic in enumerate(lay.nics)
                if nic.numa == numa_node and (nic.rdma or not shape.min_rdma)
            ]
            if not same:
                return None
            picks = same[:1]
        nics = tuple(lay.nics[r].name for r in picks)
    # Commit to the scratch copy.
    if shape.kind == "mig":
        mrow = work.mig_row(i)
        g = gpus[0]
        if mrow[g] == 0:
            row[g] = 0
        mrow[g] |= mig_mask
    else:
        for g in gpus:
            row[g] -= MILLI if shape.kind == "whole" else shape.milli
    work.cpu[i] = work.cpu_free(i) - req.cpu_milli
    work.mem[i] = work.mem_free(i) - req.memory_mib
    work.cpus.setdefault(i, set()).update(cpu_set)
    if numa_node is not None and cpu_set:
        per = work.numa.setdefault(i, {})
        per[numa_node] = per.get(numa_node, 0) + req.memory_mib
    s = int(state.site_of[i])
    work.power[s] = work.power.get(s, 0.0) + power
    return ReplicaBinding(
        replica=replica,
        node=state.nodes[i].name,
        gpus=gpus,
        milli=shape.milli if shape.kind == "share" else None,
        cpu_milli=req.cpu_milli,
        memory_mib=req.memory_mib,
        mig_instance=mig_text,
        cpu_set=cpu_set,
        numa_node=numa_node if cpu_set else None,
        nics=nics,
        power_w=round(power, 3),
    )


def _gpu_eligible_row(state: FleetState, shape: _Shape, i: int) -> list[bool]:
    ok = state.gpu_ok[i]
    if shape.min_rdma:
        ok = ok & (state.gpu_rdma[i] >= shape.min_rdma)
    return [bool(x) for x in ok]


def _spread_keys(state: FleetState, shape: _Shape) -> IntArray | None:
    if shape.spread == "none":
        return None
    keys = state.tier_keys["node" if shape.spread == "node" else shape.spread]
    if shape.spread == "rack":
        # A node without a rack is a rack of its own.
        keys = np.where(keys >= 0, keys, -2 - np.arange(len(keys)))
    return keys


def _gang(
    state: FleetState, rows: IntArray, cap: IntArray, shape: _Shape, policy: Policy | None
) -> tuple[list[ReplicaBinding], str]:
    """Every replica on `rows`, or none: replica by replica on one scratch copy, so that the
    gang is one decision. Nodes already partly used go first (best fit); a spread clause
    sends each replica to the least used domain first."""
    work = _Work(state)
    left = cap[rows].astype(np.int64).copy()
    spread = _spread_keys(state, shape)
    domain_of = spread[rows] if spread is not None else None
    per_domain: dict[int, int] = {}
    bindings: list[ReplicaBinding] = []
    used_nodes: set[int] = set()
    tries = 0
    policy_first = (
        policy is not None and shape.replicas == 1 and shape.kind in ("whole", "share", "cpu")
    )
    while len(bindings) < shape.replicas:
        tries += 1
        if tries > shape.replicas + 4 * len(rows) + 8:
            break
        open_ = left > 0
        if shape.spread == "node":
            open_ &= ~np.isin(np.arange(len(rows)), list(used_nodes))
        cand = np.flatnonzero(open_)
        if cand.size == 0:
            break
        preferred: tuple[int, ...] = ()
        if policy_first and policy is not None and tries == 1:
            pool = cand[_unbroken_last(state, rows[cand], shape)]
            picked = _policy_pick(state, rows[pool], shape, policy)
            if picked is not None:
                local = int(pool[picked[0]])
                preferred = picked[1]
            else:
                local = int(cand[0])
        else:
            if domain_of is not None:
                seen = np.array([per_domain.get(int(d), 0) for d in domain_of[cand]])
                order = np.lexsort((cand, left[cand], seen))
            else:
                order = np.lexsort((cand, left[cand]))
            local = int(cand[order[0]])
        i = int(rows[local])
        binding = _replica_on(work, i, len(bindings), shape, preferred)
        if binding is None:
            left[local] = 0
            continue
        bindings.append(binding)
        left[local] -= 1
        used_nodes.add(local)
        if domain_of is not None:
            d = int(domain_of[local])
            per_domain[d] = per_domain.get(d, 0) + 1
    if len(bindings) < shape.replicas:
        return [], (
            f"{len(bindings)} of {shape.replicas} replica(s) fit on the devices of "
            f"{len(rows)} eligible node(s)"
        )
    if domain_of is not None:
        need = shape.replicas if shape.spread == "node" else shape.min_domains
        if len(per_domain) < need:
            return [], (
                f"spread across {shape.spread}s needs {need} domains, the replicas "
                f"fit in {len(per_domain)}"
            )
    return bindings, ""


def _unbroken_last(state: FleetState, rows: IntArray, shape: _Shape) -> IntArray:
    """Positions in `rows` a single GPU replica may take without breaking what gangs need:
    nodes already partly used if any fits; else nodes in a rack or NVLink domain already
    partly used; else all. Whole servers in untouched racks and domains stay whole for the
    gangs of the rack and NVLink tiers (the policy then chooses among what is left)."""
    if shape.kind not in ("whole", "share"):
        return np.arange(len(rows))
    snap = state.snapshot
    used = snap.gpu_free_total < snap.gpu_count * MILLI
    mask = used[rows]
    if mask.any():
        return np.flatnonzero(mask)
    near = np.zeros(len(rows), dtype=np.bool_)
    for tier in ("rack", "nvlink-domain"):
        keys = state.tier_keys[tier]
        hit = np.zeros(len(state.tier_names[tier]) + 1, dtype=np.bool_)
        hit[keys[used]] = True  # -1 (no domain) lands in the spare last slot
        hit[-1] = False
        near |= hit[keys[rows]]
    return np.flatnonzero(near) if near.any() else np.arange(len(rows))


def _policy_pick(
    state: FleetState, rows: IntArray, shape: _Shape, policy: Policy
) -> tuple[int, tuple[int, ...]] | None:
    """The policy's choice among `rows` (ascending): its position in `rows` and its GPUs.

    Without a per-GPU restriction the policy scores the fleet's own snapshot with every other
    row made infeasible (no free CPU), so that its per-node cache, kept by snapshot lineage
    and node generation, carries over from one decision to the next: only the nodes that
    changed are scored again. With one (RDMA Gb/s per GPU) it gets a subset snapshot.
    (So one policy follows one line of states, as a controller pass does; states that
    branch from one state, as batch placement's trial orders do, take a policy each.)"""
    if shape.min_rdma:
        decision = policy.place(_policy_view(state, rows, shape), shape.request)
        return (decision.node, decision.gpus) if decision.placed else None
    snap = state.snapshot
    eligible = np.zeros(len(snap.cpu_free), dtype=np.bool_)
    eligible[rows] = True
    cpu = np.where(eligible, snap.cpu_free, -1)
    cpu.flags.writeable = False
    decision = policy.place(replace(snap, cpu_free=cpu), shape.request)
    if not decision.placed:
        return None
    pos = int(np.searchsorted(rows, decision.node))
    if pos >= len(rows) or int(rows[pos]) != decision.node:
        return None
    return pos, decision.gpus


def _policy_view(state: FleetState, rows: IntArray, shape: _Shape) -> Snapshot:
    sub = state.snapshot.subset(rows)
    if shape.min_rdma:
        ok = state.gpu_rdma[rows] >= shape.min_rdma
        sub = sub.with_free(
            cpu_free=sub.cpu_free,
            memory_free=sub.memory_free,
            gpu_free=np.where(ok, sub.gpu_free, 0),
            pods_by_class=sub.pods_by_class,
        )
    return sub


@dataclass
class _Attempt:
    bindings: list[ReplicaBinding]
    tier: str | None
    reasons: list[ClauseNote]
    waiting_on: tuple[str, ...] = ()


def _attempt(state: FleetState, ask: WorkloadAsk, shape: _Shape, policy: Policy | None) -> _Attempt:
    total = len(state.nodes)
    left = np.ones(total, dtype=np.bool_)
    reasons: list[ClauseNote] = []
    if ask.quota_left_milli is not None and shape.kind != "cpu":
        need = replica_milli(ask.contract) * ask.replicas
        if need > ask.quota_left_milli:
            reasons.append(
                ClauseNote(
                    "quota",
                    f"the tenant's GPU quota has {ask.quota_left_milli / MILLI:g} GPUs "
                    f"left; this asks for {need / MILLI:g}",
                    total,
                )
            )
            return _Attempt([], None, reasons)
    static = _filters(state, ask, shape)
    for f in static:
        out = int((left & ~f.passed).sum())
        if out:
            reasons.append(ClauseNote(f.clause, f"{out} {f.why}", out))
        left &= f.passed
    possible = left.copy()  # passes every clause; maybe full now
    capacity_filters, cap = _capacity(state, shape)
    for f in capacity_filters:
        out = int((left & ~f.passed).sum())
        if out:
            reasons.append(ClauseNote(f.clause, f"{out} {f.why}", out))
        left &= f.passed
    rows = np.flatnonzero(left)
    if shape.replicas == 1:
        if rows.size == 0:
            return _Attempt([], None, reasons, _closest(state, possible, "node"))
        bindings, why = _gang(state, rows, cap, shape, policy)
        if bindings:
            return _Attempt(bindings, None, [])
        reasons.append(ClauseNote("compute", why, int(rows.size)))
        return _Attempt([], None, reasons, _closest(state, possible, "node"))
    across = ask.contract.topology.across_replicas
    allowed = TIERS[: TIERS.index(across) + 1]
    cap_eff = np.minimum(cap, 1) if shape.spread == "node" else cap
    for tier in allowed:
        keys = state.tier_keys[tier]
        ok = rows[keys[rows] >= 0]
        if ok.size == 0:
            reasons.append(
                ClauseNote(
                    f"topology.acrossReplicas[{tier}]",
                    f"no eligible node is in any {tier} domain",
                    0,
                )
            )
            continue
        dom_cap = np.bincount(keys[ok], weights=cap_eff[ok], minlength=len(state.tier_names[tier]))
        domains = np.unique(keys[ok])
        fits = domains[dom_cap[domains] >= shape.replicas]
        order = fits[np.lexsort((fits, dom_cap[fits]))]
        tried = 0
        why = ""
        for d in order[:DOMAINS_PER_TIER]:
            tried += 1
            bindings, why = _gang(state, ok[keys[ok] == d], cap, shape, None)
            if bindings:
                return _Attempt(bindings, tier, [])
        reasons.append(
            ClauseNote(
                f"topology.acrossReplicas[{tier}]",
                f"{len(fits)} of {len(domains)} {tier} domain(s) have room for "
                f"{shape.replicas} replicas" + (f"; {tried} tried: {why}" if tried else ""),
                int(len(domains) - len(fits)),
            )
        )
    reserve = {"nvlink-domain": "nvlink-domain", "rack": "rack"}.get(across, "site")
    return _Attempt([], None, reasons, _closest(state, possible, reserve))


def _closest(state: FleetState, possible: BoolArray, tier: str) -> tuple[str, ...]:
    """The domain (of `tier`) of nodes the contract may use with the most free GPU now:
    where a waiting gang is nearest to fitting, to be kept free of smaller work."""
    pos = np.flatnonzero(possible)
    keys = state.tier_keys[tier][pos]
    pos, keys = pos[keys >= 0], keys[keys >= 0]
    if pos.size == 0:
        return ()
    free = np.bincount(
        keys,
        weights=state.snapshot.gpu_free_total[pos].astype(np.float64),
        minlength=len(state.tier_names[tier]),
    )
    best = int(np.argmax(free))
    return tuple(state.nodes[int(i)].name for i in pos[keys == best])


def place_contract(
    state: FleetState,
    ask: WorkloadAsk,
    *,
    policy: Policy | None = None,
    pristine: FleetState | None = None,
    seed: int = 0,
) -> ContractDecision:
    """Bind every replica, or explain per clause why not (and whether it ever could).

    `policy` (default: Stratum's, fresh) picks a single replica's node; pass the same
    object across calls so that it keeps learning the workload mix. `pristine` is the same
    fleet empty and healthy (FleetState.build(..., pristine=True)); without it a failure is
    reported as Pending (ever_possible), never as Rejected.
    """
    policy = policy or make_policy("stratum", seed=seed)
    shape = _Shape.of(ask)
    total = len(state.nodes)
    attempt = _attempt(state, ask, shape, policy) if total else _Attempt([], None, [])
    if attempt.bindings:
        tier = attempt.tier
        return ContractDecision(
            True,
            bindings=tuple(attempt.bindings),
            evidence=tuple(_evidence(state, ask, shape, attempt.bindings, tier)),
            summary=f"{len(attempt.bindings)} replica(s) bound"
            + (f" at tier {tier}" if tier else ""),
            tier=tier,
            dedicated="dedicated-node" in (ask.contract.isolation, ask.tenant_isolation),
        )
    reasons = attempt.reasons
    summary = (
        f"0/{total} nodes can take it now: " + ", ".join(r.message for r in reasons)
        if reasons
        else "no nodes in the fleet"
    )
    if pristine is None:  # not judged here: the caller decides whether waiting can help
        return ContractDecision(
            False, reasons=tuple(reasons), summary=summary, waiting_on=attempt.waiting_on
        )
    ever = ever_satisfiable(pristine, ask)
    if not ever:
        summary = "never satisfiable by the fleet the tenant may use: " + summary
    return ContractDecision(
        False,
        reasons=tuple(reasons),
        ever_possible=ever,
        summary=summary,
        waiting_on=attempt.waiting_on if ever else (),
    )


def ever_satisfiable(pristine: FleetState, ask: WorkloadAsk) -> bool:
    """Whether the contract binds on `pristine` (the fleet empty and healthy) with what only
    holds now (quota, reservations) set aside: Pending (waiting can help) or Rejected."""
    if not len(pristine.nodes):
        return False
    return bool(_attempt(pristine, ask.without_now(), _Shape.of(ask), None).bindings)


# ---- evidence ---------------------------------------------------------------------------
def _gpu_list(gpus: Sequence[int]) -> str:
    return cpus_text(list(gpus))


def _evidence(
    state: FleetState,
    ask: WorkloadAsk,
    shape: _Shape,
    bindings: Sequence[ReplicaBinding],
    tier: str | None,
) -> list[ClauseNote]:
    c = ask.contract
    notes: list[ClauseNote] = []
    for b in bindings:
        i = state.index[b.node]
        node = state.nodes[i]
        cores = f"{b.cpu_milli / 1000:g} cores" + (f" (CPUs {b.cpu_list})" if b.cpu_set else "")
        if b.mig_instance:
            what = f"MIG {b.mig_instance}"
        elif b.gpus:
            what = (
                f"{b.milli} milli-GPU of GPU {b.gpus[0]}"
                if b.milli
                else f"GPUs {_gpu_list(b.gpus)}"
            )
        else:
            what = ""
        notes.append(
            ClauseNote(
                "compute",
                f"replica {b.replica}: "
                + (f"{what} ({node.model}) and " if what else "")
                + f"{cores} on {b.node}",
            )
        )
    lay_words = {
        "nvlink": "NVLink/NVSwitch domain",
        "pcie-switch": "PCIe switch",
        "numa": "NUMA node",
    }
    if shape.within != "any" and shape.kind == "whole":
        for b in bindings:
            lay = state.nodes[state.index[b.node]].layout
            if lay is None:
                label = "?"
            else:
                g = b.gpus[0]
                label = {
                    "nvlink": state.nodes[state.index[b.node]].nvlink_domain or lay.domain[g],
                    "pcie-switch": lay.switch[g],
                    "numa": str(lay.numa[g]),
                }[shape.within]
            notes.append(
                ClauseNote(
                    "topology.withinReplica",
                    f"GPUs {_gpu_list(b.gpus)} on node {b.node} share "
                    f"{lay_words[shape.within]} {label}",
                )
            )
    if len(bindings) > 1 or c.topology.across_replicas != "any":
        where = _tier_where(state, bindings, tier)
        notes.append(
            ClauseNote(
                "topology.acrossReplicas",
                f"tier {tier or 'any'} (clause allows up to {c.topology.across_replicas}): {where}",
            )
        )
    if shape.aligned:
        for b in bindings:
            notes.append(
                ClauseNote(
                    "topology.numaAligned",
                    f"replica {b.replica}: CPUs {b.cpu_list}, "
                    f"{b.memory_mib} MiB and NIC {b.nic or 'none'} on NUMA "
                    f"{b.numa_node} with its GPUs {_gpu_list(b.gpus)}",
                )
            )
    if shape.min_rdma:
        for b in bindings:
            lay = state.nodes[state.index[b.node]].layout
            parts = []
            if lay is not None:
                for g in b.gpus:
                    r = lay.rail[g]
                    nic = lay.nics[r]
                    parts.append(
                        f"GPU {g} -> {nic.name} ({nic.speed_gbps:g} Gb/s RDMA, "
                        f"{lay.rdma_gbps[g]:g} per GPU) on NUMA {nic.numa}"
                    )
            notes.append(
                ClauseNote(
                    "topology.minRdmaGbpsPerGpu",
                    f"replica {b.replica} on {b.node}: " + "; ".join(parts),
                )
            )
    sites = sorted(
        {
            (
                state.nodes[state.index[b.node]].site,
                state.nodes[state.index[b.node]].country,
                "/".join(sorted(state.nodes[state.index[b.node]].jurisdictions)) or "none",
            )
            for b in bindings
        }
    )
    where = "; ".join(f"site {s} in {country}, jurisdictions {j}" for s, country, j in sites)
    notes.append(ClauseNote("sovereignty", where))
    power: dict[int, float] = {}
    for b in bindings:
        s = int(state.site_of[state.index[b.node]])
        power[s] = power.get(s, 0.0) + b.power_w
    for s, watts in sorted(power.items()):
        budget = state.site_budget[s]
        if np.isfinite(budget):
            after = (state.site_power_used[s] + watts) / 1000
            notes.append(
                ClauseNote(
                    "site.powerBudgetKW",
                    f"site {state.sites[s].site}: {after:.1f} of "
                    f"{budget / 1000:g} kW of GPU power bound with these "
                    f"{watts / 1000:.2f} kW",
                )
            )
    if "dedicated-node" in (c.isolation, ask.tenant_isolation):
        notes.append(
            ClauseNote(
                "isolation",
                "no other tenant holds work on " + ", ".join(sorted({b.node for b in bindings})),
            )
        )
    if c.availability.spread_across != "none":
        spread = c.availability.spread_across
        keys = _spread_keys(state, shape)
        n = len({int(keys[state.index[b.node]]) for b in bindings}) if keys is not None else 0
        notes.append(
            ClauseNote(
                "availability", f"{n} distinct {spread}s (at least {c.availability.min_domains})"
            )
        )
    return notes


def _tier_where(state: FleetState, bindings: Sequence[ReplicaBinding], tier: str | None) -> str:
    nodes = sorted({b.node for b in bindings})
    n = len(bindings)
    first = state.nodes[state.index[bindings[0].node]]
    if tier == "nvlink-domain":
        return f"all {n} replicas in NVLink domain {first.nvlink_domain} ({len(nodes)} node(s))"
    if tier == "rack":
        return f"all {n} replicas in rack {first.rack} of site {first.site} ({len(nodes)} nodes)"
    if tier == "rdma":
        return f"all {n} replicas at site {first.site} on nodes with RDMA NICs"
    if tier == "site":
        return f"all {n} replicas at site {first.site}"
    sites = sorted({state.nodes[state.index[b.node]].site for b in bindings})
    return f"{n} replicas on {len(nodes)} node(s) at {', '.join(sites)}"
