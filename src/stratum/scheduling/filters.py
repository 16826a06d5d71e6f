"""The hard clauses as masks over the nodes: sovereignty, models, GPU memory, MIG profile,
within-replica grouping, NUMA, RDMA, isolation, quota, reservations, free capacity and the
site's power budget. Each excluded node is charged to the first clause that excludes it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from stratum.core.sovereignty import SiteFacts, law_checks
from stratum.scheduling.devices import (
    NodeLayout,
)
from stratum.scheduling.fleetstate import (
    BoolArray,
    FleetNode,
    FleetState,
    IntArray,
    WorkloadAsk,
    replica_milli,
    replica_request,
)
from stratum.scheduling.request import MILLI, Request


@dataclass(frozen=True, slots=True)
class Shape:
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
    def of(cls, ask: WorkloadAsk) -> Shape:
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
class Filter:
    clause: str
    why: str
    passed: BoolArray


def per_layout(state: FleetState, fn: Callable[[NodeLayout], bool]) -> BoolArray:
    ok = np.array([fn(lay) for lay in state.layouts] + [False], dtype=np.bool_)
    mask: BoolArray = ok[state.layout_of]  # -1 picks the trailing False
    return mask


def gpu_eligible(state: FleetState, shape: Shape) -> BoolArray:
    ok = state.gpu_ok
    if shape.min_rdma:
        ok = ok & (state.gpu_rdma >= shape.min_rdma)
    return ok


def hard_filters(state: FleetState, ask: WorkloadAsk, shape: Shape) -> list[Filter]:
    """Every node-level hard clause as a mask over the nodes, in the order they are charged."""
    c = ask.contract
    sov = c.sovereignty
    request = shape.request
    n = len(state.nodes)

    def per_site(ok: Callable[[FleetNode], bool]) -> BoolArray:
        site_ok = np.array([ok(s) for s in state.sites], dtype=np.bool_)
        mask: BoolArray = site_ok[state.site_of] if n else np.zeros(0, dtype=np.bool_)
        return mask

    everywhere = np.ones(n, dtype=np.bool_)
    filters = [Filter("schedulable", "are unhealthy, unreachable or cordoned", state.schedulable)]
    facts = [
        SiteFacts(s.site, s.jurisdictions, s.country, s.site_kind, s.provider) for s in state.sites
    ]
    for check in law_checks(sov, ask.tenant_jurisdictions):  # the law, as admission judges it
        site_ok = np.array([check.holds(f) for f in facts], dtype=np.bool_)
        mask: BoolArray = site_ok[state.site_of] if n else np.zeros(0, dtype=np.bool_)
        filters.append(Filter(check.clause, check.why, mask))
    if ask.policy_sites is not None:
        allowed_sites = ask.policy_sites
        filters.append(
            Filter(
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
            Filter(
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
            Filter(
                "compute.minGpuMemoryGiB",
                f"have GPUs under {c.compute.min_gpu_memory_gib:g} GiB",
                state.min_gpu_memory >= c.compute.min_gpu_memory_gib,
            )
        )
    if shape.kind == "mig":
        filters.append(
            Filter(
                "compute.migProfile",
                f"have no GPU offering MIG {shape.mig}",
                per_layout(state, lambda lay: any(shape.mig in m for m in lay.mig)),
            )
        )
    if shape.kind == "whole" and shape.within != "any" and shape.k > 1:
        words = {"nvlink": "NVLink domain", "pcie-switch": "PCIe switch", "numa": "NUMA node"}
        filters.append(
            Filter(
                "topology.withinReplica",
                f"have no {shape.k} GPUs on one {words[shape.within]}",
                per_layout(
                    state,
                    lambda lay: any(len(g) >= shape.k for g in lay.level_groups(shape.within)),
                ),
            )
        )
    if shape.aligned:
        filters.append(
            Filter(
                "topology.numaAligned",
                "do not describe their GPUs' NUMA nodes and CPUs",
                per_layout(
                    state,
                    lambda lay: bool(lay.numa_cpus) and all(x in lay.numa_cpus for x in lay.numa),
                ),
            )
        )
        if shape.kind == "whole" and shape.k > 1:
            # Aligned means all of a replica's GPUs on one NUMA node (devicechoice): a node
            # whose NUMA nodes each hold fewer can never take it, and the refusal says so.
            filters.append(
                Filter(
                    "topology.numaAligned",
                    f"have no {shape.k} GPUs on one NUMA node",
                    per_layout(
                        state,
                        lambda lay: any(len(g) >= shape.k for g in lay.level_groups("numa")),
                    ),
                )
            )
    if shape.min_rdma:
        need = shape.k if shape.kind == "whole" else 1
        enough = (state.gpu_rdma >= shape.min_rdma).sum(axis=1) >= need
        filters.append(
            Filter(
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
        filters.append(Filter("isolation", "hold other tenants' work (dedicated-node)", others))
    if state.dedicated:
        free = everywhere.copy()
        for name, owner in state.dedicated.items():
            if owner != ask.tenant and name in state.index:
                free[state.index[name]] = False
        # Counted as full, never as "dedicated to another tenant": a tenant learns nothing
        # of the others' isolation from its own reasons.
        filters.append(Filter("compute", "have no room for it now", free))
    if ask.model_quota_left_milli and shape.kind != "cpu":
        need = replica_milli(c)
        left_ok = np.array(
            [ask.model_quota_left_milli.get(m, 1 << 62) >= need for m in state.snapshot.models],
            dtype=np.bool_,
        )
        filters.append(
            Filter(
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
        filters.append(Filter("queue", "are reserved for a higher-ranked waiting gang", keep))
    return filters


def free_capacity(state: FleetState, shape: Shape) -> tuple[list[Filter], IntArray]:
    """Replicas each node could take now (an upper bound device choice confirms), and the
    capacity filters with the clause each is charged to."""
    snap = state.snapshot
    req = shape.request
    n = len(state.nodes)
    big = np.full(n, 1 << 30, dtype=np.int64)
    eligible = gpu_eligible(state, shape)
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
        gpu_cap = mig_capacity(state, shape, eligible)
        gpu_why = f"lack a free MIG {shape.mig} slot"
    else:
        gpu_cap = big
        gpu_why = ""
    cpu_cap = snap.cpu_free // req.cpu_milli if req.cpu_milli else big
    mem_cap = snap.memory_free // req.memory_mib if req.memory_mib else big
    filters = []
    if shape.kind != "cpu":
        filters.append(Filter("compute", gpu_why, gpu_cap > 0))
    filters.append(
        Filter("compute.cpuCores", f"lack {req.cpu_milli / 1000:g} free cores", cpu_cap > 0)
    )
    filters.append(
        Filter("compute.memoryGiB", f"lack {req.memory_mib} MiB free memory", mem_cap > 0)
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
            Filter(
                "site.powerBudgetKW",
                "are at sites without the power left",
                left + 1e-6 >= per_gpu * share,
            )
        )
    cap = np.minimum(np.minimum(gpu_cap, cpu_cap), mem_cap)
    return filters, cap


def mig_capacity(state: FleetState, shape: Shape, eligible: BoolArray) -> IntArray:
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
