"""Inside one node, as placement sees it: GPUs grouped by NVLink domain, PCIe switch and NUMA
node, MIG slot layouts, CPUs per NUMA node and the RDMA NIC each GPU uses; and the choice of
exact devices for one replica. Pure, and small: one node at a time, built once per profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.core.cpulist import format_cpulist, parse_cpulist
from stratum.core.topology import Topology

# NVIDIA's MIG placement rules for GPUs with 7 compute and 8 memory slices (A100, H100, H200;
# `nvidia-smi mig -lgipp`): compute slices -> (memory slices spanned, valid start slices).
# 1g.10gb {0..6}:1, 1g.20gb {0,2,4,6}:2, 2g.20gb {0,2,4}:2, 3g.40gb {0,4}:4, 4g.40gb {0}:4,
# 7g.80gb {0}:8.
MIG_MEMORY_SLICES = 8
_MIG_RULES: Mapping[int, tuple[int, tuple[int, ...]]] = {
    1: (1, (0, 1, 2, 3, 4, 5, 6)),
    2: (2, (0, 2, 4)),
    3: (4, (0, 4)),
    4: (4, (0,)),
    7: (8, (0,)),
}
_MIG_1G_DOUBLE = (2, (0, 2, 4, 6))  # 1g with two memory slices (1g.20gb on an 80 GB GPU)
FULL_MIG = (1 << MIG_MEMORY_SLICES) - 1


@dataclass(frozen=True, slots=True)
class MigShape:
    """Where a MIG profile may sit on one GPU: `size` memory slices from one of `starts`."""

    profile: str
    compute_slices: int
    size: int
    starts: tuple[int, ...]

    def run(self, start: int) -> int:
        return ((1 << self.size) - 1) << start


def mig_shape(
    profile: str, compute_slices: int, profile_memory_gib: float, gpu_memory_gib: float
) -> MigShape | None:
    rule = _MIG_RULES.get(compute_slices)
    if rule is None:
        return None
    size, starts = rule
    slice_gib = gpu_memory_gib / MIG_MEMORY_SLICES if gpu_memory_gib else 0.0
    if compute_slices == 1 and slice_gib and profile_memory_gib > slice_gib * 1.05:
        size, starts = _MIG_1G_DOUBLE
    return MigShape(profile, compute_slices, size, starts)


def mig_slots_text(shape: MigShape, gpu: int, start: int) -> str:
    """The instance as a Placement names it; `parse_mig_instance` reads it back."""
    return f"{shape.profile} on GPU {gpu} slots {start}-{start + shape.size - 1}"


def parse_mig_instance(text: str) -> int:
    """The memory-slice mask an instance named by `mig_slots_text` occupies (0 if unreadable)."""
    try:
        first, last = text.rsplit(" slots ", 1)[1].split("-")
        lo, hi = int(first), int(last)
    except (IndexError, ValueError):
        return 0
    if not 0 <= lo <= hi < MIG_MEMORY_SLICES:
        return 0
    return ((1 << (hi - lo + 1)) - 1) << lo


def mig_placements_left(mask_used: int) -> int:
    """How many (size, start) placements the free slots still allow: a packing score."""
    count = 0
    for size, starts in (*_MIG_RULES.values(), _MIG_1G_DOUBLE):
        for start in starts:
            run = ((1 << size) - 1) << start
            if not mask_used & run:
                count += 1
    return count


@dataclass(frozen=True, slots=True)
class NicInfo:
    name: str
    rdma: bool
    speed_gbps: float
    numa: int


@dataclass(frozen=True, slots=True, eq=False)
class NodeLayout:
    """The static facts of one machine that device choice needs; shared by every node of a
    profile."""

    gpus: int
    numa: tuple[int, ...]  # per GPU; -1 unknown
    switch: tuple[str, ...]  # per GPU; "" unknown
    domain: tuple[str, ...]  # per GPU: NVLink domain name on the profile; "" none
    power_w: tuple[float, ...]
    memory_gib: tuple[float, ...]
    mig: tuple[Mapping[str, MigShape], ...]
    numa_cpus: Mapping[int, tuple[int, ...]]
    numa_memory_mib: Mapping[int, int]
    nics: tuple[NicInfo, ...]
    rail: tuple[int, ...]  # per GPU: index into nics of its closest RDMA NIC; -1 none
    rdma_gbps: tuple[float, ...]  # per GPU: its share of that NIC's speed
    closest_nic: tuple[int, ...]  # per GPU: closest NIC of any kind; -1 none
    nvlink_kind: str  # bridge | mesh | nvswitch | ""
    nvlink_scope: str  # node | rack | ""

    @classmethod
    def from_spec(cls, spec: HardwareProfileSpec) -> NodeLayout:
        topo = Topology.from_spec(spec)
        gpus = topo.gpus
        nics = tuple(
            NicInfo(n.name, n.rdma, n.speed_gbps, n.numa_node if n.numa_node is not None else -1)
            for n in topo.nics
        )
        names = [n.name for n in nics]
        rail = []
        closest = []
        for g in gpus:
            r = topo.closest_nic(g.index, rdma_only=True)
            a = topo.closest_nic(g.index)
            rail.append(names.index(r.name) if r else -1)
            closest.append(names.index(a.name) if a else -1)
        sharing = {r: rail.count(r) for r in set(rail) if r >= 0}
        rdma = tuple(nics[r].speed_gbps / sharing[r] if r >= 0 else 0.0 for r in rail)
        mig: list[Mapping[str, MigShape]] = []
        by_index = {g.index: g for g in spec.gpus}
        for g in gpus:
            shapes: dict[str, MigShape] = {}
            wire = by_index[g.index]
            if wire.mig_capable:
                for p in wire.mig_profiles:
                    shape = mig_shape(p.name, p.slices, p.memory_gib, wire.memory_gib)
                    if shape is not None:
                        shapes[p.name] = shape
            mig.append(shapes)
        numa_cpus = {n.id: tuple(sorted(n.cpus)) for n in topo.numa_nodes if n.cpus}
        numa_mem = {n.id: int(n.memory_gib * 1024) for n in topo.numa_nodes if n.cpus}
        return cls(
            gpus=len(gpus),
            numa=tuple(g.numa_node if g.numa_node is not None else -1 for g in gpus),
            switch=tuple(g.pcie_switch or "" for g in gpus),
            domain=tuple(g.nvlink_domain or "" for g in gpus),
            power_w=tuple(float(by_index[g.index].power_w or 0.0) for g in gpus),
            memory_gib=tuple(g.memory_gib for g in gpus),
            mig=tuple(mig),
            numa_cpus=numa_cpus,
            numa_memory_mib=numa_mem,
            nics=nics,
            rail=tuple(rail),
            rdma_gbps=rdma,
            closest_nic=tuple(closest),
            nvlink_kind=spec.nvlink.kind if spec.nvlink else "",
            nvlink_scope=spec.nvlink.scope if spec.nvlink else "",
        )

    def level_groups(self, level: str) -> tuple[tuple[int, ...], ...]:
        """GPUs grouped at one level: nvlink, pcie-switch, numa (unknown keys left out), any."""
        keys: Sequence[object]
        if level == "any":
            return (tuple(range(self.gpus)),) if self.gpus else ()
        keys = {"nvlink": self.domain, "pcie-switch": self.switch, "numa": self.numa}[level]
        groups: dict[object, list[int]] = {}
        for g, key in enumerate(keys):
            if key not in ("", -1):
                groups.setdefault(key, []).append(g)
        return tuple(tuple(v) for _, v in sorted(groups.items(), key=lambda kv: kv[1][0]))


def _key(layout: NodeLayout, level: str) -> Callable[[int], object]:
    if level == "pcie-switch":
        return lambda g: layout.switch[g] or None
    if level == "numa":
        return lambda g: layout.numa[g] if layout.numa[g] >= 0 else None
    return lambda g: layout.domain[g] or None


def _best_fit(gpus: Sequence[int], k: int, key: Callable[[int], object]) -> list[int] | None:
    groups: dict[object, list[int]] = {}
    for g in gpus:
        label = key(g)
        if label is not None:
            groups.setdefault(label, []).append(g)
    fitting = [v for v in groups.values() if len(v) >= k]
    if not fitting:
        return None
    return min(fitting, key=lambda v: (len(v), v[0]))


def choose_gpus(
    layout: NodeLayout | None, free: Sequence[bool], k: int, within: str
) -> tuple[int, ...] | None:
    """k free GPUs that satisfy `within` (nvlink | pcie-switch | numa | any), from the
    tightest group that fits: the smallest group at the clause's level that holds k free
    GPUs, and inside it the smallest PCIe-switch, then NUMA group that does."""
    candidates = [g for g, ok in enumerate(free) if ok]
    if len(candidates) < k:
        return None
    if layout is None:
        return tuple(candidates[:k]) if within == "any" else None
    group: list[int] = candidates
    if within != "any":
        fitting = _best_fit(candidates, k, _key(layout, within))
        if fitting is None:
            return None
        group = fitting
    for level in ("pcie-switch", "numa"):
        tight = _best_fit(group, k, _key(layout, level))
        if tight is not None:
            return tuple(sorted(tight[:k]))
    spill = sorted(group, key=lambda g: (layout.numa[g], layout.switch[g], g))
    return tuple(sorted(spill[:k]))


def choose_mig(
    layout: NodeLayout,
    used: Sequence[int],
    whole_free: Sequence[bool],
    in_mig: Sequence[bool],
    healthy: Sequence[bool],
    profile: str,
) -> tuple[int, int, MigShape] | None:
    """A GPU and start slice for one MIG instance: a GPU already partitioned first (a GPU
    given whole or in fractions is never partitioned), then the start that keeps the most
    placements open for later instances."""
    best: tuple[tuple[int, int, int], int, int, MigShape] | None = None
    for g in range(layout.gpus):
        shape = layout.mig[g].get(profile)
        if shape is None or not healthy[g]:
            continue
        if not in_mig[g] and not whole_free[g]:
            continue
        mask = used[g] if in_mig[g] else 0
        for start in shape.starts:
            run = shape.run(start)
            if mask & run:
                continue
            after = mask | run
            key = (
                0 if in_mig[g] else 1,
                bin(FULL_MIG & ~after).count("1"),
                -mig_placements_left(after),
            )
            if best is None or key < best[0]:
                best = (key, g, start, shape)
    return None if best is None else (best[1], best[2], best[3])


def choose_cpus(
    layout: NodeLayout | None,
    used: frozenset[int],
    count: int,
    numa_nodes: Sequence[int],
    aligned: bool,
) -> tuple[tuple[int, ...], int | None] | None:
    """`count` free logical CPUs, on the GPUs' NUMA nodes first (only there when `aligned`),
    and the NUMA node they all sit on (None when they span several). A node whose CPUs are
    not described gets no CPU set: ((), None)."""
    if layout is None or not layout.numa_cpus or count <= 0:
        return ((), None)
    order = [n for n in dict.fromkeys(numa_nodes) if n in layout.numa_cpus]
    if not aligned:
        order += [n for n in sorted(layout.numa_cpus) if n not in order]
    elif not order:
        return None
    taken: list[int] = []
    homes: set[int] = set()
    # One NUMA node that holds them all is best; else fill in order.
    for n in order:
        free = [c for c in layout.numa_cpus[n] if c not in used]
        if len(free) >= count:
            return (tuple(free[:count]), n)
    for n in order:
        free = [c for c in layout.numa_cpus[n] if c not in used]
        take = free[: count - len(taken)]
        if take:
            homes.add(n)
        taken += take
        if len(taken) == count:
            return (tuple(sorted(taken)), homes.pop() if len(homes) == 1 else None)
    return None


def cpus_text(cpus: Sequence[int]) -> str:
    return format_cpulist(list(cpus))


def parse_cpus(text: str | None) -> frozenset[int]:
    if not text:
        return frozenset()
    try:
        return parse_cpulist(text)
    except ValueError:
        return frozenset()
