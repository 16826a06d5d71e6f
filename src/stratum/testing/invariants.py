"""Invariants over a store that must hold whatever crashed when: checked by the crash,
multi-replica and reliability tests, and usable by operators
(`python -m stratum.testing.invariants URL`, add `--settled` on a quiet fleet; the audit
keys from $STRATUM_AUDIT_KEYS).

Two sets. `store_problems` holds at every instant, even straight after a kill -9: no GPU
given beyond its capacity, no live placement without its workload, no Bound/Running
workload without a live placement, and an audit chain that verifies. `settled_problems`
adds what holds once the controllers have caught up with the world: every Running
contract's clauses hold on the devices it was given, and nothing is left over from
deleted workloads.
"""

from __future__ import annotations

import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from stratum.api.v1alpha1 import HardwareProfile, Node, Placement, Site, Workload
from stratum.core.audit import AuditKey, audit_keys, verify
from stratum.core.secrets import Keyring
from stratum.scheduling.devices import parse_mig_instance
from stratum.scheduling.fleet import HOLDING_PHASES, node_hardware
from stratum.store import audit
from stratum.store.objects import ObjectStore, Transaction

MILLI = 1000
# How verify() names a record signed with a key it was not given.
UNVERIFIABLE = "which this server does not hold"


@contextmanager
def snapshot(store: ObjectStore) -> Iterator[Transaction]:
    """One consistent view across several lists. `store.read()` on PostgreSQL runs at READ
    COMMITTED, where each statement sees its own snapshot, so workloads listed before a
    concurrent commit and placements listed after it disagree (docs/reliability.md, R4):
    a check that compares kinds asks for REPEATABLE READ."""
    if store.engine.dialect.name != "postgresql":
        with store.read() as tx:
            yield tx
        return
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield Transaction(conn, store.clock)


def store_problems(store: ObjectStore, *, audit_keys: Sequence[AuditKey] = ()) -> list[str]:
    """Every broken always-invariant, in words; empty when the store is consistent:
    no GPU given beyond its capacity (MIG instances of one GPU never overlap, nor share it
    with whole or fractional use), no Bound/Running workload without a live placement, and
    the audit chain verifies. (A placement may outlive its deleted workload by a pass: the
    controllers release it next; `settled_problems` checks that they did.)"""
    with snapshot(store) as tx:
        workloads = _workloads(tx)
        placements = [Placement.model_validate(p) for p in tx.list("Placement").items]
        problems = audit_problems(tx, audit_keys)
    taken: Counter[tuple[str, int]] = Counter()
    mig: dict[tuple[str, int], int] = {}
    live: dict[str, Placement] = {}
    for p in placements:
        if p.status.phase not in HOLDING_PHASES:
            continue
        key = f"{p.metadata.namespace}/{p.spec.workload}"
        live[key] = p
        for r in p.spec.replicas:
            if r.mig_instance:
                for g in r.gpus[:1]:
                    mask = parse_mig_instance(r.mig_instance)
                    if mig.get((r.node, g), 0) & mask:
                        problems.append(f"MIG slots of GPU {g} on {r.node} are given twice ({key})")
                    mig[(r.node, g)] = mig.get((r.node, g), 0) | mask
                continue
            for g in r.gpus:
                taken[(r.node, g)] += r.gpu_milli or MILLI
    for (node, gpu), milli in sorted(taken.items()):
        if milli > MILLI:
            problems.append(f"GPU {gpu} on {node} is given {milli} milli-GPU (> {MILLI})")
        if (node, gpu) in mig:
            problems.append(f"GPU {gpu} on {node} is given as MIG instances and as {milli} milli")
    for key, wl in workloads.items():
        if wl.status.phase in ("Bound", "Running") and key not in live:
            problems.append(f"workload {key} is {wl.status.phase} without a live placement")
        elif wl.status.phase in ("Bound", "Running"):
            uid = live[key].spec.workload_uid
            if uid and uid != wl.metadata.uid:
                problems.append(f"workload {key} is {wl.status.phase} on another's placement")
    return problems


def audit_problems(tx: Transaction, keys: Sequence[AuditKey] = ()) -> list[str]:
    """The chain verifies and ends where the server's own count of records says. The keys
    that sign it live outside the store: without them, signed records are checked for
    their sequence and count only (their signatures and links need the key)."""
    expected = audit.appended(tx)  # first: every record it counts is visible after it
    result = verify(audit.records(tx), expected=expected, keys=keys)
    return [
        f"audit log: {p.message}" for p in result.problems if keys or UNVERIFIABLE not in p.message
    ]


def settled_problems(store: ObjectStore, *, audit_keys: Sequence[AuditKey] = ()) -> list[str]:
    """`store_problems`, and what holds on a quiet fleet: every Running contract's clauses
    hold, no Placement outlives its workload, no node lists an allocation nobody holds."""
    problems = store_problems(store, audit_keys=audit_keys)
    with snapshot(store) as tx:
        workloads = _workloads(tx)
        placements = [Placement.model_validate(p) for p in tx.list("Placement").items]
        nodes = {n["metadata"]["name"]: Node.model_validate(n) for n in tx.list("Node").items}
        sites = {s["metadata"]["name"]: Site.model_validate(s) for s in tx.list("Site").items}
        profiles = {
            p["metadata"]["name"]: HardwareProfile.model_validate(p)
            for p in tx.list("HardwareProfile").items
        }
    by_workload = {f"{p.metadata.namespace}/{p.spec.workload}": p for p in placements}
    for key, wl in sorted(workloads.items()):
        if wl.status.phase != "Running" or key not in by_workload:
            continue
        for problem in contract_problems(wl, by_workload[key], nodes, sites, profiles):
            problems.append(f"workload {key} is Running but {problem}")
    problems += leftover_problems(workloads, placements, nodes)
    return problems


def contract_problems(
    wl: Workload,
    placement: Placement,
    nodes: Mapping[str, Node],
    sites: Mapping[str, Site],
    profiles: Mapping[str, HardwareProfile],
) -> list[str]:
    """The clauses of a Running contract that its placement breaks, re-checked from the
    objects rather than trusted from the placement's own evidence."""
    c = wl.spec.contract
    found = [
        f"its placement's evidence says {e.clause} does not hold: {e.message}"
        for e in placement.spec.evidence
        if not e.holds
    ]
    if placement.spec.workload_uid and placement.spec.workload_uid != wl.metadata.uid:
        found.append("its placement was made for another workload of the same name")
    if len(placement.spec.replicas) != wl.spec.replicas:
        found.append(f"has {len(placement.spec.replicas)} replica(s), not {wl.spec.replicas}")
    tenant = wl.metadata.namespace or ""
    used_nodes: set[str] = set()
    for r in placement.spec.replicas:
        used_nodes.add(r.node)
        where = f"replica {r.replica} on {r.node}"
        node = nodes.get(r.node)
        if node is None:
            found.append(f"{where}: the node does not exist")
            continue
        if node.status.phase != "Ready":
            found.append(f"{where}: the node is {node.status.phase}")
        health = {g.index: g.health for g in node.status.gpus}
        for g in r.gpus:
            if health.get(g) == "Failed":
                found.append(f"{where}: GPU {g} has failed")
        if c.compute.gpus is not None and len(r.gpus) != c.compute.gpus:
            found.append(f"{where}: {len(r.gpus)} GPU(s), contract says {c.compute.gpus}")
        if c.compute.gpu_milli is not None and (len(r.gpus) != 1 or r.gpu_milli is None):
            found.append(f"{where}: not a fraction of one GPU ({r.gpus}, {r.gpu_milli})")
        if c.compute.mig_profile is not None and not r.mig_instance:
            found.append(f"{where}: no MIG instance for {c.compute.mig_profile}")
        hw = node_hardware(node, profiles)
        if c.compute.models and hw is not None:
            models = {hw.gpus[g].model for g in r.gpus if g < len(hw.gpus)}
            if models - set(c.compute.models):
                found.append(f"{where}: GPU model {sorted(models)} not in {c.compute.models}")
        site = sites.get(node.spec.site)
        if site is None:
            found.append(f"{where}: its site {node.spec.site} does not exist")
            continue
        sov = c.sovereignty
        if sov.jurisdictions and not set(sov.jurisdictions) & set(site.spec.jurisdictions):
            found.append(f"{where}: site {site.metadata.name} is outside {sov.jurisdictions}")
        if sov.countries and site.spec.country not in sov.countries:
            found.append(f"{where}: site country {site.spec.country} not in {sov.countries}")
        if sov.site_kinds and site.spec.kind not in sov.site_kinds:
            found.append(f"{where}: site kind {site.spec.kind} not in {sov.site_kinds}")
        if site.spec.provider in sov.deny_providers:
            found.append(f"{where}: provider {site.spec.provider} is denied")
        if c.isolation == "dedicated-node":
            others = {a.namespace for a in node.status.allocations} - {tenant}
            if others:
                found.append(f"{where}: dedicated node shared with {sorted(others)}")
    if c.availability.spread_across == "node" and len(used_nodes) < c.availability.min_domains:
        found.append(
            f"spread over {len(used_nodes)} node(s), contract says {c.availability.min_domains}"
        )
    return found


def leftover_problems(
    workloads: Mapping[str, Workload], placements: list[Placement], nodes: Mapping[str, Node]
) -> list[str]:
    """Nothing of a deleted workload is left: no Placement in any phase (so no devices held
    for it), no allocation on a node."""
    problems = []
    for p in placements:
        key = f"{p.metadata.namespace}/{p.spec.workload}"
        wl = workloads.get(key)
        if wl is None or (p.spec.workload_uid and wl.metadata.uid != p.spec.workload_uid):
            problems.append(f"placement {p.metadata.namespace}/{p.metadata.name} is left over")
    holders: dict[str, set[str]] = defaultdict(set)
    for p in placements:
        if p.status.phase in HOLDING_PHASES:
            holders[f"{p.metadata.namespace}/{p.spec.workload}"].update(
                r.node for r in p.spec.replicas
            )
    for name, node in sorted(nodes.items()):
        for a in node.status.allocations:
            key = f"{a.namespace}/{a.workload}"
            if name not in holders.get(key, set()):
                problems.append(f"node {name} lists an allocation for {key}, which holds none")
    return problems


def keys_from(text: str) -> tuple[AuditKey, ...]:
    """Audit keys from the text $STRATUM_AUDIT_KEYS holds (comma-separated, newest first)."""
    return audit_keys(Keyring.parse(text).keys) if text.strip() else ()


def _workloads(tx: Transaction) -> dict[str, Workload]:
    return {
        f"{w['metadata']['namespace']}/{w['metadata']['name']}": Workload.model_validate(w)
        for w in tx.list("Workload").items
    }


def main() -> None:
    settled = "--settled" in sys.argv[1:]
    urls = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(urls) != 1:
        sys.stderr.write("usage: python -m stratum.testing.invariants [--settled] DATABASE_URL\n")
        sys.exit(2)
    store = ObjectStore.open(urls[0])
    keys = keys_from(os.environ.get("STRATUM_AUDIT_KEYS", ""))
    problems = (
        settled_problems(store, audit_keys=keys)
        if settled
        else store_problems(store, audit_keys=keys)
    )
    for p in problems:
        sys.stdout.write(p + "\n")
    sys.stdout.write("consistent\n" if not problems else f"{len(problems)} problem(s)\n")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
