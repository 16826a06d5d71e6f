"""The topology of one machine and the facts derived from it.

A `Topology` is built from a HardwareProfileSpec. It answers what placement needs to know:
the link class between any two devices (GPUs and NICs) in the order `nvidia-smi topo -m`
documents, best first:

    NV#   a bonded set of # NVLinks
    PIX   at most a single PCIe bridge
    PXB   several PCIe bridges, without the PCIe host bridge
    PHB   a PCIe host bridge (typically the CPU)
    NODE  the interconnect between PCIe host bridges within a NUMA node
    SYS   the SMP interconnect between NUMA nodes (QPI/UPI, Infinity Fabric)

the NVLink domains, which GPUs share a PCIe switch, which NIC is closest to a GPU, and an
estimate of the bandwidth of each link. Where the profile carries a measured link matrix
(from `nvidia-smi topo -m`), that matrix is the truth; otherwise the class is derived from
where each device sits (NVLink domain, PCIe switch, NUMA node), conservatively: what is not
known is never assumed to be close.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec
from stratum.core.cpulist import parse_cpulist

# Best first. NV carries its link count; more links is better.
LINK_KINDS: tuple[str, ...] = ("NV", "PIX", "PXB", "PHB", "NODE", "SYS")
_LINK = re.compile(r"^(?:NV(?P<n>[0-9]+)|(?P<kind>X|PIX|PXB|PHB|NODE|SYS|SOC))$")

# PCIe bandwidth per direction of an x16 link, GB/s, after line encoding (PCI-SIG figures).
PCIE_X16_GBPS: Mapping[int, float] = {1: 4.0, 2: 8.0, 3: 15.75, 4: 31.5, 5: 63.0, 6: 121.0}

# Share of the PCIe link rate that peer-to-peer traffic typically reaches through each kind of
# path. Rough figures from p2pBandwidthLatencyTest-style measurements: every hop towards the
# CPU costs, and crossing the SMP interconnect costs the most. Estimates, used to rank, not
# to promise.
PCIE_PATH_EFFICIENCY: Mapping[str, float] = {
    "PIX": 0.9,
    "PXB": 0.85,
    "PHB": 0.7,
    "NODE": 0.6,
    "SYS": 0.4,
}
DEFAULT_NVLINK_GBPS_PER_LINK = 25.0
DEFAULT_PCIE_GEN = 4


class TopologyError(ValueError):
    """A link class that is not one of nvidia-smi's, or a device the topology lacks."""


@dataclass(frozen=True, slots=True)
class Link:
    """A link class. Orders best first: NV18 < NV12 < PIX < PXB < PHB < NODE < SYS."""

    kind: str  # one of LINK_KINDS, or "X" for a device against itself
    nvlinks: int = 0

    @classmethod
    def parse(cls, text: str) -> Link:
        match = _LINK.match(text.strip())
        if not match:
            raise TopologyError(
                f"{text!r} is not a link class; expected X, NV<n>, PIX, PXB, PHB, NODE or SYS"
            )
        if match["n"] is not None:
            links = int(match["n"])
            if links < 1:
                raise TopologyError(f"{text!r}: an NVLink bond has at least one link")
            return cls("NV", links)
        kind = match["kind"]
        return cls("SYS" if kind == "SOC" else kind)

    def __str__(self) -> str:
        return f"NV{self.nvlinks}" if self.kind == "NV" else self.kind

    @property
    def rank(self) -> tuple[int, int]:
        """Sort key, smaller is closer."""
        if self.kind == "X":
            return (-1, 0)
        return (LINK_KINDS.index(self.kind), -self.nvlinks)

    @property
    def is_nvlink(self) -> bool:
        return self.kind == "NV"

    @property
    def within_pcie_switch(self) -> bool:
        """PIX and PXB: the path stays below the host bridge."""
        return self.kind in ("PIX", "PXB")

    @property
    def within_numa_node(self) -> bool:
        """Every class but SYS keeps the traffic inside one NUMA node (NV never leaves the GPUs)."""
        return self.kind != "SYS"

    def __lt__(self, other: Link) -> bool:
        return self.rank < other.rank

    def __le__(self, other: Link) -> bool:
        return self.rank <= other.rank


SELF = Link("X")
SYS = Link("SYS")


@dataclass(frozen=True, slots=True)
class NumaNode:
    id: int
    cpus: frozenset[int]
    memory_gib: float
    kind: str = "dram"
    gpu: int | None = None  # kind gpu-memory: the GPU whose memory the node is (GH200, GB200)


@dataclass(frozen=True, slots=True)
class Socket:
    id: int
    cores: int
    threads_per_core: int
    numa_nodes: tuple[NumaNode, ...]
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Gpu:
    index: int
    model: str
    memory_gib: float
    numa_node: int | None = None
    pcie_switch: str | None = None
    nvlink_domain: str | None = None
    nvlink_links: int = 0
    nvlink_peers: frozenset[int] = frozenset()
    nvlink_gbps_per_link: float | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    mig_capable: bool = False
    family: str | None = None

    @property
    def device(self) -> str:
        return f"GPU{self.index}"


@dataclass(frozen=True, slots=True)
class Nic:
    name: str
    rdma: bool = False
    speed_gbps: float = 0.0
    numa_node: int | None = None
    pcie_switch: str | None = None
    link_layer: str | None = None

    @property
    def device(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Topology:
    """One machine: CPUs and memory by socket and NUMA node, GPUs, NICs and their links."""

    sockets: tuple[Socket, ...] = ()
    gpus: tuple[Gpu, ...] = ()
    nics: tuple[Nic, ...] = ()
    memory_numa_nodes: tuple[NumaNode, ...] = ()
    nvlink_kind: str | None = None  # bridge | mesh | nvswitch
    matrix: Mapping[tuple[str, str], Link] = field(default_factory=dict)

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def from_spec(cls, spec: HardwareProfileSpec) -> Topology:
        sockets = tuple(
            Socket(
                id=s.id,
                cores=s.cores,
                threads_per_core=s.threads_per_core,
                model=s.model,
                numa_nodes=tuple(
                    NumaNode(n.id, parse_cpulist(n.cpus), n.memory_gib, n.kind, n.gpu)
                    for n in s.numa_nodes
                ),
            )
            for s in spec.sockets
        )
        cpu_nodes = [n.id for s in sockets for n in s.numa_nodes if n.cpus]
        # On a machine with one NUMA node a device whose node was not reported can only be
        # there; with several nodes an unknown stays unknown.
        only = cpu_nodes[0] if len(cpu_nodes) == 1 else None
        gpus = tuple(
            Gpu(
                index=g.index,
                model=g.model,
                family=g.family,
                memory_gib=g.memory_gib,
                numa_node=g.numa_node if g.numa_node is not None else only,
                pcie_switch=g.pcie_switch,
                nvlink_domain=g.nvlink_domain,
                nvlink_links=g.nvlink_links,
                nvlink_peers=frozenset(g.nvlink_peers),
                nvlink_gbps_per_link=g.nvlink_gbps_per_link,
                pcie_gen=g.pcie_gen,
                pcie_width=g.pcie_width,
                mig_capable=g.mig_capable,
            )
            for g in sorted(spec.gpus, key=lambda g: g.index)
        )
        nics = tuple(
            Nic(
                name=n.name,
                rdma=n.rdma,
                speed_gbps=n.speed_gbps,
                numa_node=n.numa_node if n.numa_node is not None else only,
                pcie_switch=n.pcie_switch,
                link_layer=n.link_layer,
            )
            for n in spec.nics
        )
        matrix: dict[tuple[str, str], Link] = {}
        if spec.links is not None:
            devices = spec.links.devices
            for i, row in enumerate(spec.links.classes):
                for j, value in enumerate(row):
                    matrix[(devices[i], devices[j])] = Link.parse(value)
        memory_nodes = tuple(
            NumaNode(n.id, parse_cpulist(n.cpus), n.memory_gib, n.kind, n.gpu)
            for n in spec.memory_numa_nodes
        )
        return cls(
            sockets=sockets,
            gpus=gpus,
            nics=nics,
            memory_numa_nodes=memory_nodes,
            nvlink_kind=spec.nvlink.kind if spec.nvlink else None,
            matrix=matrix,
        )

    # ---- lookups ------------------------------------------------------------------------

    @property
    def devices(self) -> tuple[str, ...]:
        """GPUs by index, then NICs, as nvidia-smi orders the matrix."""
        return tuple(g.device for g in self.gpus) + tuple(n.name for n in self.nics)

    @property
    def numa_nodes(self) -> tuple[NumaNode, ...]:
        return tuple(n for s in self.sockets for n in s.numa_nodes) + self.memory_numa_nodes

    def gpu(self, index: int) -> Gpu:
        for gpu in self.gpus:
            if gpu.index == index:
                return gpu
        raise TopologyError(f"no GPU {index}; GPUs are {[g.index for g in self.gpus]}")

    def nic(self, name: str) -> Nic:
        for nic in self.nics:
            if nic.name == name:
                return nic
        raise TopologyError(f"no NIC {name!r}; NICs are {[n.name for n in self.nics]}")

    def _device(self, name: str) -> Gpu | Nic:
        match = re.fullmatch(r"GPU([0-9]+)", name)
        if match and any(g.index == int(match[1]) for g in self.gpus):
            return self.gpu(int(match[1]))
        return self.nic(name)

    # ---- links --------------------------------------------------------------------------

    def link(self, a: str, b: str) -> Link:
        """The link class between two devices (GPU<i> or a NIC name)."""
        measured = self.matrix.get((a, b))
        if measured is not None:
            return measured
        return self.derived_link(a, b)

    def gpu_link(self, i: int, j: int) -> Link:
        return self.link(f"GPU{i}", f"GPU{j}")

    def derived_link(self, a: str, b: str) -> Link:
        """The class that the placement of the two devices implies, ignoring any matrix."""
        da, db = self._device(a), self._device(b)
        if a == b:
            return SELF
        if isinstance(da, Gpu) and isinstance(db, Gpu):
            nv = self._nvlink_between(da, db)
            if nv:
                return Link("NV", nv)
        if da.pcie_switch is not None and da.pcie_switch == db.pcie_switch:
            return Link("PIX")
        if da.numa_node is not None and da.numa_node == db.numa_node:
            return Link("NODE")
        # Different nodes, or a node that was not reported: assume the far side.
        return SYS

    def _nvlink_between(self, a: Gpu, b: Gpu) -> int:
        joined = (
            b.index in a.nvlink_peers
            or a.index in b.nvlink_peers
            or (a.nvlink_domain is not None and a.nvlink_domain == b.nvlink_domain)
        )
        if not joined:
            return 0
        if self.nvlink_kind == "nvswitch":
            # Through NVSwitch every pair gets all of the smaller GPU's links.
            return max(1, min(a.nvlink_links, b.nvlink_links))
        per_a = a.nvlink_links // max(1, len(a.nvlink_peers))
        per_b = b.nvlink_links // max(1, len(b.nvlink_peers))
        return max(1, min(per_a, per_b))

    def link_matrix(self) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
        """Every pair's class: measured where the profile has it, derived elsewhere."""
        devices = self.devices
        return devices, tuple(tuple(str(self.link(a, b)) for b in devices) for a in devices)

    def bandwidth_gbps(self, a: str, b: str) -> float:
        """Estimated GB/s per direction between two devices (see PCIE_PATH_EFFICIENCY)."""
        link = self.link(a, b)
        da, db = self._device(a), self._device(b)
        if link.kind == "X":
            return float("inf")
        if link.is_nvlink:
            per = [d.nvlink_gbps_per_link for d in (da, db) if isinstance(d, Gpu)]
            known = [p for p in per if p]
            return link.nvlinks * (min(known) if known else DEFAULT_NVLINK_GBPS_PER_LINK)
        rates = [_pcie_rate(d) for d in (da, db) if isinstance(d, Gpu)]
        rate = min(rates) if rates else PCIE_X16_GBPS[DEFAULT_PCIE_GEN]
        for dev in (da, db):
            if isinstance(dev, Nic) and dev.speed_gbps > 0:
                rate = min(rate, dev.speed_gbps / 8.0)
        return round(rate * PCIE_PATH_EFFICIENCY[link.kind], 2)

    # ---- derived groupings --------------------------------------------------------------

    def nvlink_domains(self) -> tuple[frozenset[int], ...]:
        """Sets of GPUs joined by NVLink (directly or through NVSwitch), two or more each."""
        parent = {g.index: g.index for g in self.gpus}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        indices = [g.index for g in self.gpus]
        for pos, i in enumerate(indices):
            for j in indices[pos + 1 :]:
                if self.gpu_link(i, j).is_nvlink:
                    parent[find(i)] = find(j)
        return _groups((i, find(i)) for i in indices)

    def gpus_sharing_pcie_switch(self) -> tuple[frozenset[int], ...]:
        """Sets of two or more GPUs below one PCIe switch (no host bridge between them)."""
        by_switch: dict[str, set[int]] = {}
        for gpu in self.gpus:
            if gpu.pcie_switch is not None:
                by_switch.setdefault(gpu.pcie_switch, set()).add(gpu.index)
        groups = [frozenset(v) for v in by_switch.values() if len(v) > 1]
        return tuple(sorted(groups, key=min))

    def gpu_memory_node(self, gpu: int) -> NumaNode | None:
        """The NUMA node that is the GPU's own memory (Grace Hopper/Blackwell), if any."""
        return next((n for n in self.memory_numa_nodes if n.gpu == gpu), None)

    def gpus_on_numa_node(self, node: int) -> tuple[int, ...]:
        return tuple(g.index for g in self.gpus if g.numa_node == node)

    def closest_nic(self, gpu: int, *, rdma_only: bool = False) -> Nic | None:
        """The NIC with the best link to the GPU; ties go to RDMA, then speed, then name."""
        device = self.gpu(gpu).device
        candidates = [n for n in self.nics if n.rdma or not rdma_only]
        if not candidates:
            return None
        return min(
            candidates,
            key=lambda n: (self.link(device, n.name).rank, not n.rdma, -n.speed_gbps, n.name),
        )

    # ---- checks -------------------------------------------------------------------------

    def inconsistencies(self) -> list[str]:
        """Where the measured matrix and the placement of the devices disagree."""
        problems: list[str] = []
        devices = self.devices
        for pos, a in enumerate(devices):
            for b in devices[pos + 1 :]:
                measured = self.matrix.get((a, b))
                if measured is None:
                    continue
                back = self.matrix.get((b, a))
                if back is not None and back != measured:
                    problems.append(f"{a}-{b} is {measured} but {b}-{a} is {back}")
                problems.extend(self._placement_disagrees(a, b, measured))
        return problems

    def _placement_disagrees(self, a: str, b: str, link: Link) -> list[str]:
        da, db = self._device(a), self._device(b)
        out: list[str] = []
        if link.is_nvlink:
            if not (isinstance(da, Gpu) and isinstance(db, Gpu)):
                out.append(f"{a}-{b} is {link} but NVLink joins GPUs only")
            elif da.nvlink_domain is None or da.nvlink_domain != db.nvlink_domain:
                out.append(f"{a}-{b} is {link} but they are not in one NVLink domain")
            return out
        both_numa = da.numa_node is not None and db.numa_node is not None
        # SYS between devices of one NUMA node is allowed: some boards report it (separate
        # root complexes); only a path claimed shorter than the NUMA split is impossible.
        if link.kind != "SYS" and both_numa and da.numa_node != db.numa_node:
            out.append(
                f"{a}-{b} is {link} but they sit on NUMA nodes {da.numa_node} and {db.numa_node}"
            )
        same_switch = da.pcie_switch is not None and da.pcie_switch == db.pcie_switch
        if link.within_pcie_switch and not same_switch:
            out.append(f"{a}-{b} is {link} but they are not on one PCIe switch")
        if same_switch and not link.within_pcie_switch:
            out.append(f"{a}-{b} is {link} but both are on PCIe switch {da.pcie_switch}")
        return out


def _pcie_rate(gpu: Gpu) -> float:
    gen = gpu.pcie_gen or DEFAULT_PCIE_GEN
    width = gpu.pcie_width or 16
    return PCIE_X16_GBPS.get(gen, PCIE_X16_GBPS[DEFAULT_PCIE_GEN]) * width / 16


def _groups(pairs: Iterable[tuple[int, int]]) -> tuple[frozenset[int], ...]:
    by_root: dict[int, set[int]] = {}
    for member, root in pairs:
        by_root.setdefault(root, set()).add(member)
    groups = [frozenset(v) for v in by_root.values() if len(v) > 1]
    return tuple(sorted(groups, key=min))


def switch_groups(
    devices: list[str], classes: Mapping[tuple[str, str], Link]
) -> list[frozenset[str]]:
    """Devices that PIX/PXB links tie below one PCIe switch, two or more per group.

    Used by discovery to name PCIe switches from a measured matrix: in an NVSwitch server
    the GPU pairs show NV#, so the switch shows only through the NICs they share.
    """
    parent = {d: d for d in devices}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for pos, a in enumerate(devices):
        for b in devices[pos + 1 :]:
            link = classes.get((a, b))
            if link is not None and link.within_pcie_switch:
                parent[find(a)] = find(b)
    by_root: dict[str, list[str]] = {}
    for d in devices:
        by_root.setdefault(find(d), []).append(d)
    groups = [frozenset(v) for v in by_root.values() if len(v) > 1]
    order = {d: i for i, d in enumerate(devices)}
    return sorted(groups, key=lambda g: min(order[d] for d in g))
