"""Properties of derived link classes over random machines (Hypothesis).

Whatever the machine: classes are symmetric; NV# exactly between GPUs of one NVLink domain;
PIX exactly below one PCIe switch; never a path shorter than SYS across NUMA nodes; the
closest NIC is at least as close as every other; and a matrix printed the way
`nvidia-smi topo -m` prints it parses back to the same classes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec, LinkMatrix
from stratum.core.cpulist import format_cpulist
from stratum.core.topology import Gpu, Topology
from stratum.discovery.recognise import parse_text


@st.composite
def machines(draw: st.DrawFn) -> HardwareProfileSpec:
    numa = draw(st.integers(1, 4))
    cores = draw(st.integers(1, 8))
    sockets = [
        {
            "id": n,
            "cores": cores,
            "numaNodes": [
                {"id": n, "cpus": format_cpulist(set(range(n * cores, (n + 1) * cores)))}
            ],
        }
        for n in range(numa)
    ]
    n_gpus = draw(st.integers(0, 8))
    kind = draw(st.sampled_from(["nvswitch", "mesh", "bridge"]))
    domain_of = draw(
        st.lists(st.one_of(st.none(), st.integers(0, 2)), min_size=n_gpus, max_size=n_gpus)
    )
    members: dict[int, list[int]] = {}
    for i, d in enumerate(domain_of):
        if d is not None:
            members.setdefault(d, []).append(i)
    gpus: list[dict[str, Any]] = []
    for i in range(n_gpus):
        node = draw(st.one_of(st.none(), st.integers(0, numa - 1)))
        switch = draw(st.one_of(st.none(), st.integers(0, 1)))
        gpu: dict[str, Any] = {
            "index": i,
            "model": "H100-SXM5-80GB",
            "memoryGiB": 80,
            "numaNode": node,
        }
        if switch is not None and node is not None:
            gpu["pcieSwitch"] = f"sw{node}-{switch}"  # a switch hangs off one NUMA node
        d = domain_of[i]
        if d is not None and len(members[d]) > 1:
            gpu.update(
                nvlinkDomain=f"nvl{d}",
                nvlinkLinks=draw(st.integers(1, 18)),
                nvlinkPeers=[j for j in members[d] if j != i],
            )
        gpus.append(gpu)
    nics = []
    for k in range(draw(st.integers(0, 4))):
        node = draw(st.one_of(st.none(), st.integers(0, numa - 1)))
        switch = draw(st.one_of(st.none(), st.integers(0, 1)))
        nic: dict[str, Any] = {
            "name": f"mlx5_{k}",
            "rdma": draw(st.booleans()),
            "speedGbps": draw(st.sampled_from([0, 100, 200, 400])),
            "numaNode": node,
        }
        if switch is not None and node is not None:
            nic["pcieSwitch"] = f"sw{node}-{switch}"
        nics.append(nic)
    used = any("nvlinkDomain" in g for g in gpus)
    body: dict[str, Any] = {"sockets": sockets, "gpus": gpus, "nics": nics}
    if used:
        body["nvlink"] = {"kind": kind, "domainGpus": max(len(m) for m in members.values())}
    return HardwareProfileSpec.model_validate(body)


@settings(max_examples=150, deadline=None)
@given(machines())
def test_classes_are_symmetric_and_match_placement(spec: HardwareProfileSpec) -> None:
    topo = Topology.from_spec(spec)
    devices = topo.devices
    for a in devices:
        assert str(topo.link(a, a)) == "X"
        for b in devices:
            if a == b:
                continue
            link = topo.link(a, b)
            assert link == topo.link(b, a)
            da = topo.gpu(int(a[3:])) if a.startswith("GPU") else topo.nic(a)
            db = topo.gpu(int(b[3:])) if b.startswith("GPU") else topo.nic(b)
            same_domain = (
                isinstance(da, Gpu)  # the GPU* devices, as topo.gpu returns them
                and isinstance(db, Gpu)
                and da.nvlink_domain is not None
                and da.nvlink_domain == db.nvlink_domain
            )
            assert link.is_nvlink == same_domain
            if link.is_nvlink:
                continue
            same_switch = da.pcie_switch is not None and da.pcie_switch == db.pcie_switch
            assert (link.kind == "PIX") == same_switch
            if (
                da.numa_node is not None
                and db.numa_node is not None
                and da.numa_node != db.numa_node
            ):
                assert link.kind == "SYS"
            if link.kind in ("PIX", "NODE"):
                assert da.numa_node is not None and da.numa_node == db.numa_node


@settings(max_examples=150, deadline=None)
@given(machines())
def test_derived_matrix_is_a_valid_consistent_measured_matrix(spec: HardwareProfileSpec) -> None:
    devices, classes = Topology.from_spec(spec).link_matrix()
    measured = spec.model_copy(
        update={"links": LinkMatrix(devices=list(devices), classes=[list(r) for r in classes])}
    )
    again = Topology.from_spec(HardwareProfileSpec.model_validate(measured.model_dump()))
    assert again.inconsistencies() == []
    assert again.link_matrix() == (devices, classes)


@settings(max_examples=150, deadline=None)
@given(machines())
def test_groupings_agree_with_link_classes(spec: HardwareProfileSpec) -> None:
    topo = Topology.from_spec(spec)
    for domain in topo.nvlink_domains():
        assert all(topo.gpu_link(i, j).is_nvlink for i in domain for j in domain if i != j)
    in_a_domain = set().union(*topo.nvlink_domains()) if topo.nvlink_domains() else set()
    for g in topo.gpus:
        assert (g.index in in_a_domain) == (g.nvlink_domain is not None)
    for group in topo.gpus_sharing_pcie_switch():
        assert len({topo.gpu(i).numa_node for i in group}) == 1
    for g in topo.gpus:
        best = topo.closest_nic(g.index)
        if best is None:
            assert not topo.nics
            continue
        assert all(topo.link(g.device, best.name) <= topo.link(g.device, n.name) for n in topo.nics)
        assert topo.bandwidth_gbps(g.device, best.name) > 0


def render_topo(spec: HardwareProfileSpec) -> str:
    """The matrix as `nvidia-smi topo -m` prints it, with its affinity columns and legend."""
    topo = Topology.from_spec(spec)
    devices, classes = topo.link_matrix()
    shown = [
        d if d.startswith("GPU") else f"NIC{pos - len(topo.gpus)}" for pos, d in enumerate(devices)
    ]
    cpus = {n.id: n.cpus for s in spec.sockets for n in s.numa_nodes}
    lines = ["\t" + "\t".join(shown) + "\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID"]
    for name, row in zip(shown, classes, strict=True):
        cells = [" X " if c == "X" else c for c in row]
        if name.startswith("GPU"):
            node = topo.gpu(int(name[3:])).numa_node
            affinity = cpus[node] if node is not None else "N/A"
            cells += [affinity, str(node) if node is not None else "N/A", "", "N/A"]
        lines.append(name + "\t" + "\t".join(cells))
    lines += ["", "Legend:", "", "  X    = Self", "", "NIC Legend:", ""]
    lines += [f"  {s}: {d}" for s, d in zip(shown, devices, strict=True) if s.startswith("NIC")]
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(machines())
def test_printed_matrix_parses_back(spec: HardwareProfileSpec) -> None:
    if not spec.gpus:
        return
    facts, pieces = parse_text("topo", render_topo(spec))
    assert [p.kind for p in pieces] == ["nvidia-smi topo -m"]
    topo = Topology.from_spec(spec)
    devices, classes = topo.link_matrix()
    assert facts.links[0].devices == devices
    assert facts.links[0].classes == classes
    assert [g.numa_node for g in facts.gpus] == [g.numa_node for g in topo.gpus]
