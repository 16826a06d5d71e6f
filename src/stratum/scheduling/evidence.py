"""The evidence for every clause of a bound contract, in words a person can check."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stratum.scheduling.devices import (
    cpus_text,
)
from stratum.scheduling.filters import Shape
from stratum.scheduling.fleetstate import ClauseNote, FleetState, ReplicaBinding, WorkloadAsk
from stratum.scheduling.gang import spread_keys


def gpu_list(gpus: Sequence[int]) -> str:
    return cpus_text(list(gpus))


def evidence_for(
    state: FleetState,
    ask: WorkloadAsk,
    shape: Shape,
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
                f"{b.milli} milli-GPU of GPU {b.gpus[0]}" if b.milli else f"GPUs {gpu_list(b.gpus)}"
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
                    f"GPUs {gpu_list(b.gpus)} on node {b.node} share "
                    f"{lay_words[shape.within]} {label}",
                )
            )
    if len(bindings) > 1 or c.topology.across_replicas != "any":
        where = tier_where(state, bindings, tier)
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
                    f"{b.numa_node} with its GPUs {gpu_list(b.gpus)}",
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
        keys = spread_keys(state, shape)
        n = len({int(keys[state.index[b.node]]) for b in bindings}) if keys is not None else 0
        notes.append(
            ClauseNote(
                "availability", f"{n} distinct {spread}s (at least {c.availability.min_domains})"
            )
        )
    return notes


def tier_where(state: FleetState, bindings: Sequence[ReplicaBinding], tier: str | None) -> str:
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
