"""Reconcile the facts of every source into one HardwareProfile, with notes where it guessed.

Rules, in the order they matter:
- A GPU is identified by nvidia-smi's index. Sources that only know PCI addresses (lspci,
  sysfs, NCCL XML) are matched by address when another source gives it, else by PCI order,
  which is nvidia-smi's index order.
- For each field the most detailed source wins (the one that reports the most fields);
  sources that disagree on a GPU's name, UUID or address produce a note.
- What no source says stays unknown (None or 0 on the wire), and a note says so when it
  matters for placement: GPU model, memory, sockets, threads per core, memory size.
- Inference is limited to what a measured fact implies: an NVSwitch fabric from uniform NV#
  classes that no direct wiring could give, PCIe switches from PIX/PXB classes, a NIC's NUMA
  node from the GPUs it is close to, SMT from the kernel's CPU numbering. Each is noted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, fields, replace

from stratum.api.v1alpha1.hardwareprofiles import (
    MIG_PROFILE_NAME_PATTERN,
    GpuSpec,
    HardwareProfile,
    HardwareProfileSpec,
    LinkMatrix,
    MigDeviceSpec,
    MigProfileSpec,
    NicSpec,
    NumaNodeSpec,
    NvlinkFabricSpec,
    SocketSpec,
)
from stratum.api.v1alpha1.meta import ObjectMeta
from stratum.core.cpulist import format_cpulist
from stratum.core.gpucatalog import CATALOG, GpuModel, find_model, find_model_by_pci_id
from stratum.core.gpucatalog import normalise_product_name as _normalise
from stratum.core.topology import Link, Topology, switch_groups
from stratum.discovery.sources import (
    CpuFact,
    Facts,
    GpuFact,
    LinkFact,
    MigDeviceFact,
    NicFact,
    Note,
    NumaFact,
)

# No GPU has more NVLinks than this (H100, B200: 18); a clique whose NV# classes add up to
# more per GPU can only be wired through NVSwitch.
MAX_DIRECT_NVLINKS = 18
MAX_NUMA_NODE = 1023  # the wire's bound on a NUMA node id
MAX_GPU_INDEX = 1023  # the wire's bound on a GPU index
UNKNOWN_MODEL = "unknown"
_MIG_NAME = re.compile(MIG_PROFILE_NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class Discovery:
    """The profile and what the assembler had to guess or could not read."""

    profile: HardwareProfile
    notes: tuple[Note, ...]

    @property
    def gpu_count(self) -> int:
        return len(self.profile.spec.gpus)


def assemble(facts: Facts, *, name: str = "discovered", description: str = "") -> Discovery:
    notes: list[Note] = list(facts.notes)
    facts = _valid_mig_names(facts, notes)
    facts = _resolve_gpu_numa(facts, notes)
    gpus_by_index = _gpu_identities(facts, notes)
    links = _link_fact(facts, notes)
    classes: dict[tuple[str, str], Link] = {}
    if links is not None:
        for i, a in enumerate(links.devices):
            for j, b in enumerate(links.devices):
                classes[(a, b)] = Link.parse(links.classes[i][j])
    switches = _switches(links, classes)
    numa_nodes, memory_nodes, sockets, arch = _cpus_and_numa(facts, notes)
    memory_nodes = _gpu_memory_nodes(facts, memory_nodes, sockets, notes)
    known_numa = {n.id for s in sockets for n in s.numa_nodes} | {n.id for n in memory_nodes}

    gpu_specs: list[GpuSpec] = []
    for index in sorted(gpus_by_index):
        gpu_specs.append(_gpu_spec(index, gpus_by_index[index], facts, switches, known_numa, notes))
    for node in memory_nodes:
        if node.kind == "gpu-memory" and not node.memory_gib and node.gpu is not None:
            # The node is the GPU's HBM (Grace Hopper/Blackwell), as large as the GPU memory.
            node.memory_gib = next((g.memory_gib for g in gpu_specs if g.index == node.gpu), 0.0)
    fabric = _nvlink(gpu_specs, classes, facts, notes)
    nic_specs = _nics(facts, classes, switches, gpu_specs, known_numa, notes)

    link_matrix = None
    if links is not None:
        link_matrix = LinkMatrix(
            devices=list(links.devices), classes=[list(row) for row in links.classes]
        )
    memory_gib = round(sum(n.memory_gib for s in sockets for n in s.numa_nodes), 2)
    if facts.memory_mib:
        # MemTotal is the kernel's own total; per-node counts can lag it (memory hot-plug,
        # deferred struct-page init in VMs), so the total wins and a gap is reported.
        total = round(facts.memory_mib / 1024, 2)
        cpu_nodes = [n for s in sockets for n in s.numa_nodes]
        if memory_gib and abs(total - memory_gib) > 0.05 * total:
            notes.append(
                Note(
                    "discovery",
                    f"NUMA nodes report {memory_gib} GiB but MemTotal "
                    f"is {total} GiB; memoryGiB is MemTotal",
                )
            )
            if len(cpu_nodes) == 1 and not memory_nodes:
                cpu_nodes[0].memory_gib = total
        memory_gib = total
    if not memory_gib:
        notes.append(
            Note(
                "discovery",
                "no source reports the memory size (numactl -H or sysfs): memoryGiB is 0",
            )
        )
    del numa_nodes
    spec = HardwareProfileSpec(
        description=description,
        architecture=arch,
        sockets=sockets,
        memory_numa_nodes=memory_nodes,
        memory_gib=memory_gib,
        gpus=gpu_specs,
        nvlink=fabric,
        nics=nic_specs,
        links=link_matrix,
    )
    for problem in Topology.from_spec(spec).inconsistencies():
        notes.append(Note("discovery", f"the link matrix disagrees with the placement: {problem}"))
    if not gpu_specs:
        notes.append(Note("discovery", "no GPU found"))
    profile = HardwareProfile(
        metadata=ObjectMeta(name=name, labels={"stratum.dev/discovered": "true"}),
        spec=spec,
    )
    return Discovery(profile=profile, notes=tuple(_dedupe(notes)))


def _dedupe(notes: list[Note]) -> list[Note]:
    """Drop repeats; fold 'GPU n: same message' notes into one 'GPUs 0-7: message'."""
    per_gpu: dict[tuple[str, str], list[int]] = defaultdict(list)
    out: list[Note] = []
    seen: set[str] = set()
    for note in notes:
        match = re.match(r"^GPU (\d+): (.*)$", note.message)
        if match and note.line is None:
            key = (note.source, match[2])
            if key not in per_gpu:
                out.append(note)
            per_gpu[key].append(int(match[1]))
            continue
        if str(note) not in seen:
            seen.add(str(note))
            out.append(note)
    folded: list[Note] = []
    for note in out:
        match = re.match(r"^GPU (\d+): (.*)$", note.message)
        if match and note.line is None:
            indices = per_gpu[(note.source, match[2])]
            if len(indices) > 1:
                label = format_cpulist(sorted(set(indices)))
                note = Note(note.source, f"GPUs {label}: {match[2]}")
        folded.append(note)
    return folded


# ---- GPUs ------------------------------------------------------------------------------


def _detail(fact: GpuFact) -> int:
    return sum(getattr(fact, f.name) is not None for f in fields(fact))


def _gpu_identities(facts: Facts, notes: list[Note]) -> dict[int, list[GpuFact]]:
    by_index: dict[int, list[GpuFact]] = defaultdict(list)
    bus_to_index: dict[str, int] = {}
    for fact in facts.gpus:
        if fact.index is not None and not 0 <= fact.index <= MAX_GPU_INDEX:
            notes.append(Note(fact.source, f"GPU index {fact.index} is out of range; skipped"))
            continue
        if fact.index is not None:
            by_index[fact.index].append(fact)
            if fact.pci_bus_id:
                bus_to_index.setdefault(fact.pci_bus_id, fact.index)
    for index in sorted({p.gpu for p in facts.mig_profiles} | {d.gpu for d in facts.mig_devices}):
        if index not in by_index and 0 <= index <= MAX_GPU_INDEX:
            # Only a MIG listing names this GPU; its model is inferred from the profile table.
            by_index[index].append(
                GpuFact(
                    "MIG listing",
                    index=index,
                    mig_capable=True,
                    mig_enabled=any(d.gpu == index for d in facts.mig_devices),
                )
            )
    unindexed: dict[str, list[GpuFact]] = defaultdict(list)
    for fact in facts.gpus:
        if fact.index is None:
            unindexed[fact.source].append(fact)
    for source, items in unindexed.items():
        ordered = sorted(items, key=lambda f: f.pci_bus_id or "")
        if by_index and len(ordered) != len(by_index):
            notes.append(
                Note(
                    source,
                    f"lists {len(ordered)} NVIDIA GPU(s) on the PCI bus but "
                    f"other sources describe {len(by_index)}",
                )
            )
        for position, fact in enumerate(ordered):
            index = bus_to_index.get(fact.pci_bus_id or "", position)
            by_index[index].append(fact)
    counts = {f.source: 0 for f in facts.gpus}
    for fact in facts.gpus:
        counts[fact.source] += 1
    if len(set(counts.values())) > 1 and by_index:
        detail = ", ".join(f"{s}: {n}" for s, n in counts.items())
        notes.append(
            Note(
                "discovery",
                f"sources disagree on the GPU count ({detail}); the profile lists {len(by_index)}",
            )
        )
    return dict(by_index)


def _first(facts: list[GpuFact], attr: str) -> object:
    for fact in facts:
        value = getattr(fact, attr)
        if value is not None:
            return value
    return None


def _conflict(index: int, facts: list[GpuFact], attr: str, notes: list[Note]) -> None:
    values = {str(getattr(f, attr)): f.source for f in facts if getattr(f, attr) is not None}
    if attr == "product_name":
        values = {_normalise(v): s for v, s in values.items()}
    if len(values) > 1:
        detail = "; ".join(f"{s} says {v}" for v, s in values.items())
        notes.append(Note("discovery", f"GPU {index}: sources disagree on {attr} ({detail})"))


def _gpu_spec(
    index: int,
    facts: list[GpuFact],
    all_facts: Facts,
    switches: dict[str, str],
    known_numa: set[int],
    notes: list[Note],
) -> GpuSpec:
    ranked = sorted(facts, key=_detail, reverse=True)
    for attr in ("product_name", "uuid", "pci_bus_id"):
        _conflict(index, ranked, attr, notes)
    product = _first(ranked, "product_name")
    device_id = _first(ranked, "pci_device_id")
    model: GpuModel | None = None
    if isinstance(product, str):
        model = find_model(product)
    if model is None and isinstance(device_id, str):
        model = find_model_by_pci_id(device_id)
    if model is None and product is None:
        model = _model_from_mig_table(index, all_facts, notes)
    if model is not None:
        model_name: str = model.model
    elif isinstance(product, str):
        model_name = _normalise(product) or UNKNOWN_MODEL
        notes.append(
            Note(
                "discovery",
                f"GPU {index}: {product!r} is not a GPU model Stratum "
                "knows; no catalog facts (MIG profiles, NVLink speed, "
                "power) were added",
            )
        )
    else:
        model_name = UNKNOWN_MODEL
        notes.append(
            Note(
                "discovery",
                f"GPU {index}: no source names the model "
                + (
                    "(amd-smi topology does not; add rocm-smi or rocm-smi --showproductname)"
                    if _first(ranked, "vendor") == "AMD"
                    else "(nvidia-smi topo -m does not; add nvidia-smi -L or -q output)"
                ),
            )
        )
    memory_mib = _first(ranked, "memory_mib")
    if isinstance(memory_mib, float):
        memory = round(memory_mib / 1024, 2)
    elif model is not None:
        memory = model.memory_gib
    else:
        memory = 0.0
        notes.append(Note("discovery", f"GPU {index}: memory unknown (0 on the wire)"))
    numa = _first(ranked, "numa_node")
    if isinstance(numa, int) and known_numa and numa not in known_numa:
        notes.append(
            Note(
                "discovery",
                f"GPU {index}: NUMA node {numa} is not among the "
                f"nodes found ({sorted(known_numa)}); left unknown",
            )
        )
        numa = None
    capable = _first(ranked, "mig_capable")
    enabled = _first(ranked, "mig_enabled")
    mig_capable = bool(capable) if capable is not None else bool(model and model.mig_capable)
    power = _first(ranked, "power_limit_w")
    gen = _first(ranked, "pcie_gen")
    width = _first(ranked, "pcie_width")
    switch = switches.get(f"GPU{index}") or _first(ranked, "pcie_switch")
    return GpuSpec(
        index=index,
        model=model_name,
        family=model.family if model else None,
        vendor=_str(_first(ranked, "vendor")) or (model.vendor if model else None),
        product_name=product if isinstance(product, str) else None,
        architecture=_str(_first(ranked, "architecture"))
        or (model.architecture if model else None),
        memory_gib=memory,
        uuid=_str(_first(ranked, "uuid")),
        pci_bus_id=_str(_first(ranked, "pci_bus_id")),
        pcie_gen=gen if isinstance(gen, int) else None,
        pcie_width=width if isinstance(width, int) else None,
        numa_node=numa if isinstance(numa, int) else None,
        pcie_switch=_str(switch),
        mig_capable=mig_capable,
        mig_enabled=bool(enabled) if enabled is not None else False,
        mig_profiles=_mig_profiles(index, all_facts, model, mig_capable),
        mig_devices=_mig_devices(index, all_facts, model, notes),
        power_w=power
        if isinstance(power, float) and power > 0
        else (model.tdp_w if model else None),
        idle_power_w=model.idle_w if model else None,
    )


def _model_from_mig_table(index: int, facts: Facts, notes: list[Note]) -> GpuModel | None:
    """The one catalog model whose MIG profiles (names, memory) all appear in `-lgip`."""
    listed = {p.name: p for p in facts.mig_profiles if p.gpu == index}
    if not listed:
        return None
    # A100 80GB and H100 80GB share profile names and nearly their memory; the SM count of
    # each profile tells them apart, so only a catalog entry whose SM counts are known and
    # equal is taken.
    fits = [
        m
        for m in CATALOG
        if m.mig_profiles
        and all(
            p.name in listed
            and abs(listed[p.name].memory_gib - p.memory_gib) <= 0.03 * p.memory_gib
            and p.sms
            and listed[p.name].sms == p.sms
            for p in m.mig_profiles
        )
    ]
    if len(fits) == 1:
        notes.append(
            Note(
                "discovery",
                f"GPU {index}: model {fits[0].model} inferred from its "
                "MIG profile table (no source names it)",
            )
        )
        return fits[0]
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _mig_profiles(
    index: int, facts: Facts, model: GpuModel | None, capable: bool
) -> list[MigProfileSpec]:
    listed = [p for p in facts.mig_profiles if p.gpu == index]
    if listed:
        return [
            MigProfileSpec(
                name=p.name, slices=p.slices, memory_gib=p.memory_gib, max_instances=p.max_instances
            )
            for p in listed
        ]
    if model is None or not capable:
        return []
    return [
        MigProfileSpec(
            name=p.name, slices=p.slices, memory_gib=p.memory_gib, max_instances=p.max_instances
        )
        for p in model.mig_profiles
    ]


def _mig_devices(
    index: int, facts: Facts, model: GpuModel | None, notes: list[Note]
) -> list[MigDeviceSpec]:
    mine = [m for m in facts.mig_devices if m.gpu == index]
    if not mine:
        return []
    by_source: dict[str, list[MigDeviceFact]] = defaultdict(list)
    for fact in mine:
        by_source[fact.source].append(fact)
    named = [s for s, items in by_source.items() if all(m.profile for m in items)]
    unnamed = [s for s in by_source if s not in named]
    detail = {m.index: m for s in unnamed for m in by_source[s]}
    if named:
        chosen = by_source[named[-1]]
        return [
            MigDeviceSpec(
                index=m.index,
                profile=m.profile or "",
                uuid=m.uuid,
                memory_gib=round(
                    (
                        m.memory_mib
                        or (detail[m.index].memory_mib if m.index in detail else None)
                        or 0
                    )
                    / 1024,
                    2,
                ),
            )
            for m in chosen
        ]
    out: list[MigDeviceSpec] = []
    for m in by_source[unnamed[-1]]:
        profile = _match_mig_profile(m, model)
        if profile is None:
            notes.append(
                Note(
                    "discovery",
                    f"GPU {index} MIG device {m.index}: which profile it "
                    f"is ({(m.memory_mib or 0):.0f} MiB, {m.sms} SMs) is ambiguous or "
                    "unknown; add nvidia-smi -L output to name it",
                )
            )
            continue
        out.append(
            MigDeviceSpec(
                index=m.index, profile=profile, memory_gib=round((m.memory_mib or 0) / 1024, 2)
            )
        )
    return out


def _match_mig_profile(device: MigDeviceFact, model: GpuModel | None) -> str | None:
    """The catalog profile whose memory (within 3%) and SM count fit the device."""
    if model is None or device.memory_mib is None:
        return None
    gib = device.memory_mib / 1024
    candidates = [p for p in model.mig_profiles if abs(p.memory_gib - gib) <= 0.03 * p.memory_gib]
    if device.sms is not None and any(p.sms for p in candidates):
        candidates = [p for p in candidates if p.sms == device.sms]
    return candidates[0].name if len(candidates) == 1 else None


# ---- links, NVLink, PCIe switches ------------------------------------------------------


def _link_fact(facts: Facts, notes: list[Note]) -> LinkFact | None:
    if not facts.links:
        return None
    if len({(f.devices, f.classes) for f in facts.links}) > 1:
        notes.append(
            Note(
                facts.links[-1].source,
                "several different topo -m matrices; the last one read is used",
            )
        )
    return facts.links[-1]


def _switches(links: LinkFact | None, classes: dict[tuple[str, str], Link]) -> dict[str, str]:
    if links is None:
        return {}
    out: dict[str, str] = {}
    for k, group in enumerate(switch_groups(list(links.devices), classes)):
        for device in group:
            out[device] = f"pcie-sw{k}"
    return out


def _nvlink(
    gpus: list[GpuSpec], classes: dict[tuple[str, str], Link], facts: Facts, notes: list[Note]
) -> NvlinkFabricSpec | None:
    by_index = {g.index: g for g in gpus}
    status = {f.index: f for f in facts.gpus if f.nvlink_active is not None and f.index is not None}
    peers: dict[int, dict[int, int]] = {g.index: {} for g in gpus}
    for (a, b), link in classes.items():
        if link.is_nvlink and a.startswith("GPU") and b.startswith("GPU"):
            ia, ib = int(a[3:]), int(b[3:])
            if ia in peers and ib in by_index:
                peers[ia][ib] = link.nvlinks
    xgmi = _xgmi_peers(facts, gpus, notes)
    nvlinked = any(peers.values())
    for i, others in xgmi.items():
        for j in others:
            peers[i].setdefault(j, 1)  # one Infinity Fabric link per directly joined pair
    interconnect = "xgmi" if xgmi and not nvlinked else None
    switches = facts.nvswitches or 0
    if not any(peers.values()):
        active = [i for i, f in status.items() if f.nvlink_active]
        for i in active:
            if i in by_index:
                g = by_index[i]
                by_index[i] = g.model_copy(
                    update={
                        "nvlink_links": status[i].nvlink_active or 0,
                        "nvlink_gbps_per_link": status[i].nvlink_gbps_per_link,
                    }
                )
        if not active and switches and len(by_index) > 1:
            # NVSwitch chips sit only on NVSwitch baseboards (HGX), where every SXM GPU is
            # wired to every switch: the GPUs whose model has NVLinks form one domain.
            active = [
                i
                for i, g in by_index.items()
                if (m := find_model(g.product_name or g.model)) and m.nvlink_links
            ]
            for i in active:
                m = find_model(by_index[i].product_name or by_index[i].model)
                by_index[i] = by_index[i].model_copy(
                    update={
                        "nvlink_links": m.nvlink_links if m else 0,
                        "nvlink_gbps_per_link": m.nvlink_gbps_per_link if m else None,
                    }
                )
        if active and switches and len(active) > 1:
            # NVSwitch chips on the bus and active links: every linked GPU reaches every other.
            for i in active:
                peers[i] = {j: by_index[i].nvlink_links for j in active if j != i}
            notes.append(
                Note(
                    "discovery",
                    f"{switches} NVSwitch chip(s) on the PCI bus: the "
                    f"{len(active)} NVLink GPUs form one NVSwitch domain",
                )
            )
        elif active:
            notes.append(
                Note(
                    "discovery",
                    f"{len(active)} GPU(s) have active NVLinks but no "
                    "source says which GPUs they reach (add nvidia-smi "
                    "topo -m); no NVLink domain is set",
                )
            )
        _write_back(gpus, by_index)
        if not any(peers.values()):
            return None
    domains = _components(peers)
    nvswitch = switches > 0
    for domain in domains:
        counts = {peers[a][b] for a in domain for b in domain if a != b and b in peers[a]}
        size = len(domain)
        full = all(b in peers[a] for a in domain for b in domain if a != b)
        if (
            full
            and size >= 3
            and len(counts) == 1
            and (size - 1) * counts.pop() > MAX_DIRECT_NVLINKS
        ):
            nvswitch = True
    if nvswitch:
        kind = "nvswitch"
    elif all(len(d) == 2 for d in domains):
        kind = "bridge"
    else:
        kind = "mesh"
    for k, domain in enumerate(domains):
        for i in sorted(domain):
            g = by_index[i]
            mine = peers[i]
            if i in status and status[i].nvlink_active:
                total = status[i].nvlink_active or 0
            elif kind == "nvswitch":
                total = max(mine.values(), default=0)
            else:
                total = sum(mine.values())
            per_link = status[i].nvlink_gbps_per_link if i in status else None
            if per_link is None:
                model = find_model(g.product_name or g.model)
                per_link = (
                    model.nvlink_gbps_per_link if model and model.nvlink_gbps_per_link else None
                )
            by_index[i] = g.model_copy(
                update={
                    "nvlink_domain": f"nvl{k}",
                    "nvlink_links": total,
                    "nvlink_peers": sorted(mine),
                    "nvlink_gbps_per_link": per_link,
                }
            )
    _write_back(gpus, by_index)
    return NvlinkFabricSpec(
        kind=kind,
        interconnect=interconnect,
        switches=switches,
        domain_gpus=max(len(d) for d in domains),
    )


def _xgmi_peers(facts: Facts, gpus: list[GpuSpec], notes: list[Note]) -> dict[int, set[int]]:
    """GPU pairs that rocm-smi or amd-smi say are joined by xGMI, by GPU index."""
    by_bus = {g.pci_bus_id: g.index for g in gpus if g.pci_bus_id}
    indices = {g.index for g in gpus}
    out: dict[int, set[int]] = defaultdict(set)
    for fact in facts.xgmi:
        for a, b in fact.pairs:
            ia, ib = _gpu_key(a, by_bus), _gpu_key(b, by_bus)
            if ia is None or ib is None or ia not in indices or ib not in indices:
                notes.append(
                    Note(fact.source, f"xGMI link {a}-{b}: no such GPU among those found; skipped")
                )
                continue
            if ia != ib:
                out[ia].add(ib)
                out[ib].add(ia)
    return dict(out)


def _gpu_key(key: str, by_bus: dict[str, int]) -> int | None:
    if re.fullmatch(r"GPU[0-9]+", key):
        return int(key[3:])
    return by_bus.get(key)


def _write_back(gpus: list[GpuSpec], by_index: dict[int, GpuSpec]) -> None:
    for pos, g in enumerate(gpus):
        gpus[pos] = by_index[g.index]


def _components(peers: dict[int, dict[int, int]]) -> list[frozenset[int]]:
    seen: set[int] = set()
    out: list[frozenset[int]] = []
    for start in sorted(peers):
        if start in seen or not peers[start]:
            continue
        stack, group = [start], set()
        while stack:
            x = stack.pop()
            if x in group:
                continue
            group.add(x)
            stack.extend(p for p in peers.get(x, {}) if p not in group)
        seen |= group
        out.append(frozenset(group))
    return out


# ---- NICs ------------------------------------------------------------------------------


def _nics(
    facts: Facts,
    classes: dict[tuple[str, str], Link],
    switches: dict[str, str],
    gpus: list[GpuSpec],
    known_numa: set[int],
    notes: list[Note],
) -> list[NicSpec]:
    named = [f for f in facts.nics if not f.from_pci_only]
    pci_only = [f for f in facts.nics if f.from_pci_only]
    chosen = named or pci_only
    if named and pci_only:
        names = {f.name for f in named}
        rdma_pci = [f for f in pci_only if f.rdma]
        if len(rdma_pci) != len({n for n in names}):
            notes.append(
                Note(
                    pci_only[0].source,
                    f"{len(rdma_pci)} RDMA controller(s) on the "
                    f"PCI bus, {len(names)} RDMA device(s) named elsewhere",
                )
            )
    by_name: dict[str, list[NicFact]] = defaultdict(list)
    for fact in chosen:
        by_name[fact.name].append(fact)
    gpu_numa = {f"GPU{g.index}": g.numa_node for g in gpus}
    out: list[NicSpec] = []
    for name, items in by_name.items():

        def pick(attr: str, items: list[NicFact] = items) -> object:
            for f in items:
                value = getattr(f, attr)
                if value is not None:
                    return value
            return None

        numa = pick("numa_node")
        if numa is None and classes:
            near = {
                gpu_numa[g]
                for g in gpu_numa
                if (name, g) in classes and classes[(name, g)].kind != "SYS"
            }
            near.discard(None)
            if len(near) == 1:
                numa = near.pop()
        if isinstance(numa, int) and known_numa and numa not in known_numa:
            numa = None
        speed = pick("speed_gbps")
        layer = pick("link_layer")
        out.append(
            NicSpec(
                name=name,
                model=_str(pick("model")),
                rdma=bool(pick("rdma")),
                speed_gbps=speed if isinstance(speed, float) else 0.0,
                numa_node=numa if isinstance(numa, int) else None,
                pcie_switch=switches.get(name) or _str(pick("pcie_switch")),
                pci_bus_id=_str(pick("pci_bus_id")),
                link_layer="InfiniBand"
                if layer == "InfiniBand"
                else ("Ethernet" if layer == "Ethernet" else None),
            )
        )
    return out


# ---- CPUs and NUMA ---------------------------------------------------------------------


def _valid_mig_names(facts: Facts, notes: list[Note]) -> Facts:
    """Drop MIG profiles and devices whose name is not a MIG profile name (a garbled field)."""
    bad = [p.name for p in facts.mig_profiles if not _MIG_NAME.match(p.name)]
    bad += [d.profile for d in facts.mig_devices if d.profile and not _MIG_NAME.match(d.profile)]
    if not bad:
        return facts
    notes.append(
        Note(
            "discovery",
            f"MIG profile name(s) {sorted(set(bad))} are not of the form 1g.10gb; skipped",
        )
    )
    return replace(
        facts,
        mig_profiles=tuple(p for p in facts.mig_profiles if _MIG_NAME.match(p.name)),
        mig_devices=tuple(
            d for d in facts.mig_devices if not d.profile or _MIG_NAME.match(d.profile)
        ),
    )


def _resolve_gpu_numa(facts: Facts, notes: list[Note]) -> Facts:
    """Pick a GPU's CPU node among the several a Grace system lists as its NUMA affinity."""
    if not any(g.numa_candidates for g in facts.gpus):
        return facts
    cpu_nodes = {f.id for f in facts.numa if f.cpus}
    for cpu in facts.cpus:
        cpu_nodes |= {node for _c, _core, _sock, node in cpu.per_cpu if node >= 0}
    gpus: list[GpuFact] = []
    for gpu in facts.gpus:
        if gpu.numa_candidates:
            hits = gpu.numa_candidates & cpu_nodes
            if len(hits) == 1:
                gpu = replace(gpu, numa_node=next(iter(hits)))
            elif not hits:
                notes.append(
                    Note(
                        gpu.source,
                        f"GPU {gpu.index}: NUMA affinity lists nodes "
                        f"{format_cpulist(gpu.numa_candidates or frozenset())}; the lowest "
                        f"({gpu.numa_node}) is taken as its CPU node "
                        "(add numactl -H or lscpu to confirm)",
                    )
                )
        gpus.append(gpu)
    return replace(facts, gpus=tuple(gpus))


def _gpu_memory_nodes(
    facts: Facts, memory_nodes: list[NumaNodeSpec], sockets: list[SocketSpec], notes: list[Note]
) -> list[NumaNodeSpec]:
    """Mark the CPU-less nodes that nvidia-smi names as a GPU's own memory (GPU NUMA ID)."""
    owners: dict[int, int] = {}
    for gpu in facts.gpus:
        if gpu.memory_numa_node is not None and gpu.index is not None:
            owners.setdefault(gpu.memory_numa_node, gpu.index)
    if not owners:
        return memory_nodes
    cpu_ids = {n.id for s in sockets for n in s.numa_nodes}
    by_id = {n.id: n for n in memory_nodes}
    for node, gpu_index in sorted(owners.items()):
        if node in cpu_ids or node > MAX_NUMA_NODE:
            notes.append(
                Note(
                    "discovery",
                    f"GPU {gpu_index}: its memory NUMA node {node} is a node with CPUs or out "
                    "of range; not marked as GPU memory",
                )
            )
            continue
        spec = by_id.get(node)
        if spec is None:
            by_id[node] = NumaNodeSpec(id=node, cpus="", kind="gpu-memory", gpu=gpu_index)
        else:
            spec.kind = "gpu-memory"
            spec.gpu = gpu_index
    return sorted(by_id.values(), key=lambda n: n.id)


def _cpus_and_numa(
    facts: Facts, notes: list[Note]
) -> tuple[dict[int, NumaFact], list[NumaNodeSpec], list[SocketSpec], str | None]:
    nodes: dict[int, NumaFact] = {}
    for fact in facts.numa:
        if not 0 <= fact.id <= MAX_NUMA_NODE:
            notes.append(Note(fact.source, f"NUMA node {fact.id} is out of range; skipped"))
            continue
        old = nodes.get(fact.id)
        if old is None:
            nodes[fact.id] = fact
        else:
            nodes[fact.id] = NumaFact(
                old.source,
                fact.id,
                cpus=old.cpus if old.cpus is not None else fact.cpus,
                memory_mib=old.memory_mib if old.memory_mib is not None else fact.memory_mib,
                distances=old.distances or fact.distances,
            )
            if old.cpus is not None and fact.cpus is not None and old.cpus != fact.cpus:
                notes.append(
                    Note(
                        "discovery",
                        f"NUMA node {fact.id}: {old.source} and "
                        f"{fact.source} give different CPU lists; kept the first",
                    )
                )
    # GPU rows of topo -m also say which CPUs each NUMA node has.
    for gpu in facts.gpus:
        if gpu.cpu_affinity is None:
            continue
        node = gpu.numa_node
        if node is None:
            if any(n.cpus for n in nodes.values()):
                continue
            node = 0
            notes.append(
                Note(
                    gpu.source,
                    "NUMA affinity N/A: one NUMA node (0) assumed with the GPUs' CPU affinity",
                )
            )
        if node not in nodes:
            nodes[node] = NumaFact(gpu.source, node, cpus=gpu.cpu_affinity)
        elif nodes[node].cpus is None:
            old = nodes[node]
            nodes[node] = NumaFact(
                old.source,
                node,
                cpus=gpu.cpu_affinity,
                memory_mib=old.memory_mib,
                distances=old.distances,
            )
    cpu = _merge_cpu(facts.cpus)
    cpu_nodes = sorted(n for n, f in nodes.items() if f.cpus)
    memory_nodes = [
        NumaNodeSpec(id=n, cpus="", memory_gib=round((f.memory_mib or 0) / 1024, 2), kind="unknown")
        for n, f in sorted(nodes.items())
        if f.cpus is not None and not f.cpus
    ]
    if not cpu_nodes and cpu is not None and cpu.logical_cpus:
        notes.append(
            Note("discovery", "no source lists NUMA nodes: one node (0) with all CPUs assumed")
        )
        nodes[0] = NumaFact("assembler", 0, cpus=frozenset(range(cpu.logical_cpus)))
        cpu_nodes = [0]

    def spec(n: int) -> NumaNodeSpec:
        f = nodes[n]
        return NumaNodeSpec(
            id=n,
            cpus=format_cpulist(f.cpus or frozenset()),
            memory_gib=round((f.memory_mib or 0) / 1024, 2),
        )

    sockets: list[SocketSpec] = []
    model = cpu.model_name if cpu else None
    if cpu is not None and cpu.per_cpu:
        by_socket: dict[int, set[int]] = defaultdict(set)
        cores: dict[int, set[int]] = defaultdict(set)
        logical: dict[int, int] = defaultdict(int)
        for _cpu, core, sock, node in cpu.per_cpu:
            if node >= 0:
                by_socket[sock].add(node)
            cores[sock].add(core)
            logical[sock] += 1
        if not any(by_socket.values()):
            for sock in cores:
                by_socket[sock] = set(n for n in cpu_nodes if _cpus_on(nodes[n], cpu, sock))
        for sock in sorted(cores):
            threads = max(1, logical[sock] // max(1, len(cores[sock])))
            sockets.append(
                SocketSpec(
                    id=sock,
                    model=model,
                    cores=len(cores[sock]),
                    threads_per_core=threads,
                    numa_nodes=[spec(n) for n in sorted(by_socket[sock])],
                )
            )
    elif cpu_nodes:
        count = cpu.sockets if cpu and cpu.sockets else None
        smt = cpu.threads_per_core if cpu and cpu.threads_per_core else None
        if smt is None:
            smt = _smt_from_numbering([nodes[n].cpus or frozenset() for n in cpu_nodes])
            if smt > 1:
                notes.append(
                    Note(
                        "discovery",
                        "threads per core inferred from the CPU "
                        f"numbering ({smt}); add lscpu to confirm",
                    )
                )
            elif cpu is None or cpu.threads_per_core is None:
                notes.append(
                    Note(
                        "discovery",
                        "threads per core unknown (no full lscpu): "
                        "cores are counted as logical CPUs",
                    )
                )
        if count is None:
            count = len(cpu_nodes)
            notes.append(
                Note(
                    "discovery",
                    f"socket count unknown (no full lscpu): one socket "
                    f"per NUMA node with CPUs assumed ({count})",
                )
            )
        groups = _split(cpu_nodes, count)
        if count not in (1, len(cpu_nodes)) and len(cpu_nodes) % count == 0:
            notes.append(
                Note(
                    "discovery",
                    f"{len(cpu_nodes)} NUMA nodes over {count} sockets: "
                    "nodes assigned to sockets in id order",
                )
            )
        elif count not in (1, len(cpu_nodes)):
            notes.append(
                Note(
                    "discovery",
                    f"{len(cpu_nodes)} NUMA nodes do not divide over "
                    f"{count} sockets; all placed on socket 0",
                )
            )
            groups = [cpu_nodes] + [[] for _ in range(count - 1)]
        for sock, group in enumerate(groups):
            in_socket = sum(len(nodes[n].cpus or ()) for n in group)
            cores_n = cpu.cores_per_socket if cpu and cpu.cores_per_socket else in_socket // smt
            sockets.append(
                SocketSpec(
                    id=sock,
                    model=model,
                    cores=cores_n,
                    threads_per_core=smt,
                    numa_nodes=[spec(n) for n in group],
                )
            )
    arch = cpu.architecture if cpu else None
    return nodes, memory_nodes, sockets, arch


def _cpus_on(node: NumaFact, cpu: CpuFact, sock: int) -> bool:
    mine = {c for c, _, s, _ in cpu.per_cpu if s == sock}
    return bool(node.cpus and node.cpus & mine)


def _split(items: list[int], count: int) -> list[list[int]]:
    if count <= 1:
        return [items]
    if len(items) % count:
        return [items] + [[] for _ in range(count - 1)]
    size = len(items) // count
    return [items[k * size : (k + 1) * size] for k in range(count)]


def _merge_cpu(items: tuple[CpuFact, ...]) -> CpuFact | None:
    if not items:
        return None
    ranked = sorted(items, key=lambda f: bool(f.per_cpu), reverse=True)

    def pick(attr: str) -> object:
        for f in ranked:
            value = getattr(f, attr)
            if value not in (None, ()):
                return value
        return None

    return CpuFact(
        ranked[0].source,
        architecture=_str(pick("architecture")),
        model_name=_str(pick("model_name")),
        vendor=_str(pick("vendor")),
        logical_cpus=_int(pick("logical_cpus")),
        sockets=_int(pick("sockets")),
        cores_per_socket=_int(pick("cores_per_socket")),
        threads_per_core=_int(pick("threads_per_core")),
        numa_nodes=_int(pick("numa_nodes")),
        per_cpu=ranked[0].per_cpu,
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _smt_from_numbering(node_cpus: list[frozenset[int]]) -> int:
    """2 when Linux's SMT numbering shows: each node holds c..d and c+N/2..d+N/2."""
    every = frozenset().union(*node_cpus)
    total = max(every, default=-1) + 1
    if len(node_cpus) < 2 or total % 2 or every != frozenset(range(total)):
        return 1
    half = total // 2
    for cpus in node_cpus:
        low = {c for c in cpus if c < half}
        high = {c - half for c in cpus if c >= half}
        if not low or low != high or len(re.findall(",", format_cpulist(cpus))) != 1:
            return 1
    return 2
