"""One replica on one node: the exact GPUs (or MIG instance or share), CPU set, NUMA node
and NICs, chosen on a scratch copy of the fleet's free devices so that a gang is one
decision."""

from __future__ import annotations

from stratum.scheduling.devices import (
    choose_cpus,
    choose_gpus,
    choose_mig,
    mig_slots_text,
)
from stratum.scheduling.filters import Shape
from stratum.scheduling.fleetstate import FleetState, ReplicaBinding
from stratum.scheduling.request import MILLI


class Scratch:
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


def replica_on(
    work: Scratch, i: int, replica: int, shape: Shape, preferred: tuple[int, ...] = ()
) -> ReplicaBinding | None:
    """Exact devices for one replica on node i, taken from `work`; None if they are not
    there. `preferred`: GPUs a policy chose (kept when they satisfy every clause)."""
    state = work.state
    req = shape.request
    if work.cpu_free(i) < req.cpu_milli or work.mem_free(i) < req.memory_mib:
        return None
    lay = state.layout(i)
    row = work.gpu_row(i)
    ok = gpu_eligible_row(state, shape, i)
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


def gpu_eligible_row(state: FleetState, shape: Shape, i: int) -> list[bool]:
    ok = state.gpu_ok[i]
    if shape.min_rdma:
        ok = ok & (state.gpu_rdma[i] >= shape.min_rdma)
    return [bool(x) for x in ok]
