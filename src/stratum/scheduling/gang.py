"""Gangs across domains: the across-replica tiers tightest first (one NVLink domain, one
rack, RDMA within a site, one site, anywhere), in a tier the domains that can hold the gang
best fit first, and the policy's pick for single replicas."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from stratum.scheduling.devicechoice import Scratch, replica_on
from stratum.scheduling.filters import Shape, free_capacity, hard_filters
from stratum.scheduling.fleetstate import (
    DOMAINS_PER_TIER,
    TIERS,
    BoolArray,
    ClauseNote,
    FleetState,
    IntArray,
    ReplicaBinding,
    WorkloadAsk,
    replica_milli,
)
from stratum.scheduling.policies import Policy
from stratum.scheduling.request import MILLI
from stratum.scheduling.snapshot import Snapshot


def spread_keys(state: FleetState, shape: Shape) -> IntArray | None:
    if shape.spread == "none":
        return None
    keys = state.tier_keys["node" if shape.spread == "node" else shape.spread]
    if shape.spread == "rack":
        # A node without a rack is a rack of its own.
        keys = np.where(keys >= 0, keys, -2 - np.arange(len(keys)))
    return keys


def gang_on(
    state: FleetState, rows: IntArray, cap: IntArray, shape: Shape, policy: Policy | None
) -> tuple[list[ReplicaBinding], str]:
    """Every replica on `rows`, or none: replica by replica on one scratch copy, so that the
    gang is one decision. Nodes already partly used go first (best fit); a spread clause
    sends each replica to the least used domain first."""
    work = Scratch(state)
    left = cap[rows].astype(np.int64).copy()
    spread = spread_keys(state, shape)
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
            pool = cand[unbroken_last(state, rows[cand], shape)]
            picked = policy_pick(state, rows[pool], shape, policy)
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
        binding = replica_on(work, i, len(bindings), shape, preferred)
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


def unbroken_last(state: FleetState, rows: IntArray, shape: Shape) -> IntArray:
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


def policy_pick(
    state: FleetState, rows: IntArray, shape: Shape, policy: Policy
) -> tuple[int, tuple[int, ...]] | None:
    """The policy's choice among `rows` (ascending): its position in `rows` and its GPUs.

    Without a per-GPU restriction the policy scores the fleet's own snapshot with every other
    row made infeasible, so that its per-node cache, kept by snapshot lineage and node
    generation, carries over from one decision to the next: only the nodes that changed are
    scored again. Those rows show -1 MiB of free memory, which no request fits in and no
    policy's cache reads (they count CPU, GPUs and models: hiding rows by their CPU made the
    slot counts of Stratum's reserves take the placeholder for the node's state until it
    changed). With one (RDMA Gb/s per GPU) it gets a subset snapshot.
    (So one policy follows one line of states, as a controller pass does; states that
    branch from one state, as batch placement's trial orders do, take a policy each.)"""
    if shape.min_rdma:
        decision = policy.place(policy_view(state, rows, shape), shape.request)
        return (decision.node, decision.gpus) if decision.placed else None
    snap = state.snapshot
    eligible = np.zeros(snap.size, dtype=np.bool_)
    eligible[rows] = True
    memory = np.where(eligible, snap.memory_free, -1)
    memory.flags.writeable = False
    decision = policy.place(replace(snap, memory_free=memory), shape.request)
    if not decision.placed:
        return None
    pos = int(np.searchsorted(rows, decision.node))
    if pos >= len(rows) or int(rows[pos]) != decision.node:
        return None
    return pos, decision.gpus


def policy_view(state: FleetState, rows: IntArray, shape: Shape) -> Snapshot:
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
class Attempt:
    bindings: list[ReplicaBinding]
    tier: str | None
    reasons: list[ClauseNote]
    waiting_on: tuple[str, ...] = ()
    # The plain sentence before the per-clause reasons: "3 nodes qualify with room for 4
    # replicas; it needs 5".
    headline: str = ""


def try_place(state: FleetState, ask: WorkloadAsk, shape: Shape, policy: Policy | None) -> Attempt:
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
            return Attempt([], None, reasons)
    static = hard_filters(state, ask, shape)
    for f in static:
        out = int((left & ~f.passed).sum())
        if out:
            reasons.append(ClauseNote(f.clause, f"{out} {f.why}", out))
        left &= f.passed
    possible = left.copy()  # passes every clause; maybe full now
    capacity_filters, cap = free_capacity(state, shape)
    for f in capacity_filters:
        out = int((left & ~f.passed).sum())
        if out:
            reasons.append(ClauseNote(f.clause, f"{out} {f.why}", out))
        left &= f.passed
    rows = np.flatnonzero(left)
    if shape.replicas == 1:
        headline = "no node qualifies" if rows.size == 0 else f"{_nodes(rows.size)} qualify"
        if rows.size == 0:
            return Attempt([], None, reasons, closest_domain(state, possible, "node"), headline)
        bindings, why = gang_on(state, rows, cap, shape, policy)
        if bindings:
            return Attempt(bindings, None, [])
        reasons.append(ClauseNote("compute", why, int(rows.size)))
        return Attempt(
            [], None, reasons, closest_domain(state, possible, "node"), headline + ", none fits"
        )
    across = ask.contract.topology.across_replicas
    allowed = TIERS[: TIERS.index(across) + 1]
    cap_eff = np.minimum(cap, 1) if shape.spread == "node" else cap
    # With no node qualifying, the clauses above say why; a line per tier would add only
    # "no eligible node is in any rack domain".
    for tier in allowed if rows.size else ():
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
            bindings, why = gang_on(state, ok[keys[ok] == d], cap, shape, None)
            if bindings:
                return Attempt(bindings, tier, [])
        reasons.append(
            ClauseNote(
                f"topology.acrossReplicas[{tier}]",
                f"{len(fits)} of {len(domains)} {tier} domain(s) have room for "
                f"{shape.replicas} replicas" + (f"; {tried} tried: {why}" if tried else ""),
                int(len(domains) - len(fits)),
            )
        )
    reserve = {"nvlink-domain": "nvlink-domain", "rack": "rack"}.get(across, "site")
    slots = int(cap_eff[rows].sum()) if rows.size else 0
    headline = (
        f"no node qualifies; it needs {shape.replicas}"
        if rows.size == 0
        else f"{_nodes(rows.size)} {'qualifies' if rows.size == 1 else 'qualify'} with room "
        f"for {slots} replica(s); it needs {shape.replicas}"
    )
    if slots >= shape.replicas:
        headline += f", but no {across} domain holds them all"
    return Attempt([], None, reasons, closest_domain(state, possible, reserve), headline)


def _nodes(n: int) -> str:
    return "no node" if n == 0 else "1 node" if n == 1 else f"{n} nodes"


def closest_domain(state: FleetState, possible: BoolArray, tier: str) -> tuple[str, ...]:
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
