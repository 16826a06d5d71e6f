"""The fleet as the contract engine sees it: nodes, what is held, the decision and ask
types, and FleetState (per-node facts as arrays, so that every clause's filter is one
vectorised mask). Binding a decision gives the next state; nothing is changed in place."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from stratum.api.v1alpha1.contract import Contract
from stratum.core.demand import mig_milli, replica_gpu_milli
from stratum.scheduling.decision import Decision
from stratum.scheduling.devices import (
    NodeLayout,
    cpus_text,
    parse_mig_instance,
)
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
            else EMPTY_SNAPSHOT
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
        tier_keys, tier_names = domain_keys(nodes)
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


def domain_keys(
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


EMPTY_SNAPSHOT = Snapshot.build([NodeSpec("none", 0, 0, 0)])


# ---- one request, as the engine works on it ---------------------------------------------
