"""Every real output in tests/fixtures/hardware parses into what its README says."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfile
from stratum.core.topology import Topology
from stratum.discovery import Discovery, discover_dir

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"


@dataclass(frozen=True)
class Expect:
    gpus: int
    model: str | None = None  # every GPU's canonical model; None: not asserted
    nvlink: str | None = None  # fabric kind, None for no NVLink
    domains: int = 0  # NVLink domains
    cpu_numa: tuple[int, ...] = ()  # NUMA nodes with CPUs
    memory_numa: tuple[int, ...] = ()  # CPU-less NUMA nodes
    nics: int = 0
    rdma_nics: int | None = None
    nic_speed: float | None = None  # speed of the first NIC
    notes: tuple[str, ...] = field(default=())  # substrings some note must contain


CASES: dict[str, Expect] = {
    "topo-hgx-a100-8gpu-roce-8nic.txt": Expect(
        8,
        "unknown",
        "nvswitch",
        1,
        (0, 1),
        nics=8,
        rdma_nics=8,
        notes=("no source names the model",),
    ),
    "topo-hgx-h100-8gpu-8nic-pairs.txt": Expect(
        8, "unknown", "nvswitch", 1, (0, 1), nics=8, rdma_nics=8
    ),
    "topo-hgx-b300-8gpu-cx8-bond.txt": Expect(
        8, "unknown", "nvswitch", 1, (0, 1), nics=8, rdma_nics=8
    ),
    "topo-hgx-h100-8gpu-2socket-no-nic.txt": Expect(8, "unknown", "nvswitch", 1, (0, 1)),
    "topo-pcie-8x-rtx4090-2socket-2nic.txt": Expect(
        8, "unknown", None, 0, (0, 1), nics=2, rdma_nics=0, notes=("RDMA is unknown",)
    ),
    "topo-workstation-2x-rtx5090-threadripper.txt": Expect(2, "unknown", None, 0, (0,)),
    "topo-workstation-2gpu-nvlink-bridge-nv2.txt": Expect(
        2, "unknown", "bridge", 1, (0,), notes=("NUMA affinity N/A",)
    ),
    "topo-consumer-5gpu-2numa-phb-node.txt": Expect(5, "unknown", None, 0, (0, 1)),
    "topo-power9-ac922-4gpu-nvlink-6nic.txt": Expect(
        4, "unknown", "bridge", 2, (0, 8), nics=6, rdma_nics=6
    ),
    "numactl-power9-ac922-gpu-memory-numa-nodes.txt": Expect(
        0, cpu_numa=(0, 8), memory_numa=(252, 253, 254, 255), notes=("no GPU found",)
    ),
    "numactl-2socket-xeon-max-hbm-aurora.txt": Expect(0, cpu_numa=(0, 1), memory_numa=(2, 3)),
    "lscpu-gh200-numa-section.txt": Expect(0, cpu_numa=(0,), memory_numa=tuple(range(1, 9))),
    "ibstatus-hgx-a100-roce-8port.txt": Expect(0, nics=8, rdma_nics=8, nic_speed=100),
    "ibstat-hgx-h100-8x-cx7-ndr400-plus-bf3-eth.txt": Expect(0, nics=9, rdma_nics=9, nic_speed=400),
    "ibstat-a100-9x-cx6-hdr200-mixed-ib-eth.txt": Expect(0, nics=9, rdma_nics=9, nic_speed=200),
    "lspci-nn-a100-8gpu-6nvswitch-8ib-vf.txt": Expect(
        8, "A100-SXM4-80GB", "nvswitch", 1, nics=9, rdma_nics=8
    ),
    "nvidia-smi-nvlink-status-hgx-a100-8gpu.txt": Expect(
        8, "A100-SXM4-80GB", None, 0, notes=("active NVLinks but no source says",)
    ),
    "nccl-topo-xml-azure-ndv4.xml": Expect(
        8, "unknown", None, 0, (0, 1, 2, 3), nics=8, rdma_nics=8
    ),
    "nvidia-smi-q-8x-rtx4090-535.154.05.txt": Expect(8, "RTX4090-24GB"),
    "nvidia-smi-q-x-4x-a100-sxm4-80gb-535.xml": Expect(
        1, "A100-SXM4-80GB", notes=("reports 4 attached GPUs but describes 1",)
    ),
    "nvidia-smi-q-x-a100-sxm4-40gb-mig-enabled.xml": Expect(1, "A100-SXM4-40GB"),
    "nvidia-smi-query-gpu-csv-tesla-p100.csv.txt": Expect(
        1, "P100-PCIE-16GB", notes=("memory.total missing",)
    ),
    "nvidia-smi-capture-h100-mig-590.txt": Expect(1, "H100-SXM5-80GB", None, 0, (0,)),
    "nvidia-smi-capture-l40s-595.txt": Expect(1, "L40S-48GB", None, 0, (0,)),
    "nvidia-smi-mig-lgip-lgipp-lgi-lci-h100-80gb.txt": Expect(
        1, "H100-SXM5-80GB", notes=("inferred from its MIG profile table",)
    ),
    "nvidia-smi-L-h100-mig-1g10gb-and-balanced.txt": Expect(1, "H100-SXM5-80GB"),
    "k8s-node-labels-h100-nfd-gfd-mig-disabled.json": Expect(1, "H100-SXM5-80GB"),
    "k8s-gfd-labels-and-capacity-a100-mig-strategies.rst.txt": Expect(1, "A100-SXM4-40GB"),
    "k8s-gfd-label-reference.md": Expect(0, notes=("label reference",)),
    # Issue #15: inputs nobody tuned for.
    "topo-gb200-nvl-tray-4gpu-8nic-gpu-numa-id.txt": Expect(
        4,
        "unknown",
        "nvswitch",
        1,
        (0, 1),
        memory_numa=(2, 10, 18, 26),
        nics=8,
        rdma_nics=8,
        notes=("NUMA affinity lists nodes 0,3-9,11-17",),
    ),
    "lspci-plain-aws-p5-8x-h100-sxm5-nvswitch.txt": Expect(
        8, "H100-SXM5-80GB", "nvswitch", 1, notes=("ids are missing",)
    ),
    "lspci-pp-8x-mi300x-8x-cx7-no-ids.txt": Expect(
        8, "MI300X-192GB", None, 0, nics=8, rdma_nics=0, notes=("ids are missing",)
    ),
    "rocm-smi-showtopo-concise-meminfo-8x-mi308x.txt": Expect(
        8, "MI308X-192GB", "mesh", 1, notes=("low-power state",)
    ),
    "rocm-smi-concise-8x-mi300x.txt": Expect(8, "MI300X-192GB"),
    "amd-smi-topology-8gpu-xgmi-mi300.txt": Expect(8, "unknown", "mesh", 1),
}


def discover(name: str) -> Discovery:
    return discover_dir(FIXTURES / name, name="fixture")


def test_every_fixture_has_a_case() -> None:
    files = {p.name for p in FIXTURES.iterdir() if p.name != "README.md"}
    assert files == set(CASES)


def test_fixtures_keep_their_provenance_lines() -> None:
    for path in FIXTURES.iterdir():
        if path.name == "README.md":
            continue
        head = path.read_text(encoding="utf-8", errors="replace")[:600]
        assert "source:" in head, path.name


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_what_its_readme_says(name: str) -> None:
    expect = CASES[name]
    result = discover(name)
    spec = result.profile.spec
    HardwareProfile.model_validate(result.profile.model_dump(by_alias=True))  # round-trips
    assert len(spec.gpus) == expect.gpus
    if expect.model is not None:
        assert {g.model for g in spec.gpus} == {expect.model}
    assert (spec.nvlink.kind if spec.nvlink else None) == expect.nvlink
    topology = Topology.from_spec(spec)
    assert len(topology.nvlink_domains()) == expect.domains
    assert tuple(n.id for s in spec.sockets for n in s.numa_nodes) == expect.cpu_numa
    assert tuple(n.id for n in spec.memory_numa_nodes) == expect.memory_numa
    assert len(spec.nics) == expect.nics
    if expect.rdma_nics is not None:
        assert sum(n.rdma for n in spec.nics) == expect.rdma_nics
    if expect.nic_speed is not None:
        assert spec.nics[0].speed_gbps == expect.nic_speed
    text = "\n".join(str(n) for n in result.notes)
    for fragment in expect.notes:
        assert fragment in text
    assert topology.inconsistencies() == []
    if not spec.gpus:
        assert "no GPU found" in text


# ---- facts a user would check against the README, fixture by fixture --------------------


def test_hgx_a100_gpu_pairs_share_a_pcie_switch_with_their_two_nics() -> None:
    topo = Topology.from_spec(discover("topo-hgx-a100-8gpu-roce-8nic.txt").profile.spec)
    assert topo.gpus_sharing_pcie_switch() == (
        frozenset({0, 1}),
        frozenset({2, 3}),
        frozenset({4, 5}),
        frozenset({6, 7}),
    )
    assert str(topo.gpu_link(0, 5)) == "NV12"
    assert topo.gpu(0).nvlink_links == 12 and topo.gpu(0).nvlink_peers == frozenset(range(1, 8))
    assert [topo.closest_nic(i).name for i in range(8)] == [  # type: ignore[union-attr]
        "mlx5_0",
        "mlx5_0",
        "mlx5_2",
        "mlx5_2",
        "mlx5_4",
        "mlx5_4",
        "mlx5_6",
        "mlx5_6",
    ]
    assert str(topo.link("GPU0", "mlx5_0")) == "PXB"
    assert str(topo.link("GPU0", "mlx5_4")) == "SYS"
    assert [g.numa_node for g in topo.gpus] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [n.numa_node for n in topo.nics] == [0, 0, 0, 0, 1, 1, 1, 1]
    spec = discover("topo-hgx-a100-8gpu-roce-8nic.txt").profile.spec
    assert [(s.cores, s.threads_per_core) for s in spec.sockets] == [(32, 2), (32, 2)]
    assert spec.sockets[0].numa_nodes[0].cpus == "0-31,64-95"


def test_hgx_h100_pairs_gpus_without_a_pix_nic_fall_back_to_node() -> None:
    topo = Topology.from_spec(discover("topo-hgx-h100-8gpu-8nic-pairs.txt").profile.spec)
    assert str(topo.link("GPU0", "mlx5_1")) == "PIX"
    assert topo.closest_nic(0).name == "mlx5_0"  # type: ignore[union-attr]
    assert str(topo.link("GPU1", topo.closest_nic(1).name)) == "NODE"  # type: ignore[union-attr]
    assert topo.gpu(3).nvlink_links == 18


def test_b300_one_nic_per_gpu() -> None:
    topo = Topology.from_spec(discover("topo-hgx-b300-8gpu-cx8-bond.txt").profile.spec)
    assert [topo.closest_nic(i).name for i in range(8)] == [  # type: ignore[union-attr]
        f"mlx5_bond_{i}" for i in range(8)
    ]
    assert topo.gpus_sharing_pcie_switch() == ()  # one GPU per switch


def test_h100_no_nic_sockets_and_smt_inferred_from_numbering() -> None:
    result = discover("topo-hgx-h100-8gpu-2socket-no-nic.txt")
    spec = result.profile.spec
    assert [(s.cores, s.threads_per_core) for s in spec.sockets] == [(52, 2), (52, 2)]
    assert any("inferred from the CPU numbering" in n.message for n in result.notes)


def test_rtx4090_all_sys_and_nic_pair() -> None:
    topo = Topology.from_spec(discover("topo-pcie-8x-rtx4090-2socket-2nic.txt").profile.spec)
    assert all(str(topo.gpu_link(0, j)) == "SYS" for j in range(1, 8))
    assert str(topo.link("NIC0", "NIC1")) == "PIX"
    assert topo.closest_nic(6).name == "NIC0"  # type: ignore[union-attr]
    assert str(topo.link("GPU6", "NIC0")) == "PHB"
    assert topo.nic("NIC0").numa_node == 1


def test_power9_nvlink_pairs_and_non_contiguous_numa() -> None:
    spec = discover("topo-power9-ac922-4gpu-nvlink-6nic.txt").profile.spec
    topo = Topology.from_spec(spec)
    assert topo.nvlink_domains() == (frozenset({0, 1}), frozenset({2, 3}))
    assert [g.numa_node for g in spec.gpus] == [0, 0, 8, 8]
    assert str(topo.gpu_link(0, 1)) == "NV3" and str(topo.gpu_link(1, 2)) == "SYS"
    assert {n.name: n.numa_node for n in spec.nics}["mlx5_5"] == 8


def test_consumer_5gpu_odd_numa() -> None:
    spec = discover("topo-consumer-5gpu-2numa-phb-node.txt").profile.spec
    assert [g.numa_node for g in spec.gpus] == [1, 0, 0, 0, 0]
    topo = Topology.from_spec(spec)
    assert str(topo.gpu_link(1, 2)) == "PHB" and str(topo.gpu_link(1, 3)) == "NODE"


def test_numactl_memory_sizes() -> None:
    spec = discover("numactl-power9-ac922-gpu-memory-numa-nodes.txt").profile.spec
    assert spec.memory_numa_nodes[0].memory_gib == pytest.approx(32256 / 1024, abs=0.01)
    assert spec.memory_gib == pytest.approx((257716 + 261728) / 1024, abs=0.01)
    aurora = discover("numactl-2socket-xeon-max-hbm-aurora.txt").profile.spec
    assert [n.cpus for s in aurora.sockets for n in s.numa_nodes] == [
        "0-51,104-155",
        "52-103,156-207",
    ]
    assert [n.memory_gib for n in aurora.memory_numa_nodes] == [64.0, 64.0]


def test_ibstat_models_layers_and_rates() -> None:
    nics = discover("ibstat-hgx-h100-8x-cx7-ndr400-plus-bf3-eth.txt").profile.spec.nics
    assert [n.name for n in nics][-1] == "mlx5_bond_0"
    assert {(n.model, n.link_layer, n.speed_gbps) for n in nics} == {
        ("ConnectX-7", "InfiniBand", 400.0),
        ("BlueField-3", "Ethernet", 200.0),
    }
    mixed = discover("ibstat-a100-9x-cx6-hdr200-mixed-ib-eth.txt").profile.spec.nics
    assert sum(n.link_layer == "InfiniBand" for n in mixed) == 8
    assert sum(n.link_layer == "Ethernet" for n in mixed) == 1


def test_ibstatus_roce() -> None:
    nics = discover("ibstatus-hgx-a100-roce-8port.txt").profile.spec.nics
    assert {(n.link_layer, n.speed_gbps, n.rdma) for n in nics} == {("Ethernet", 100.0, True)}


def test_lspci_gpus_switches_and_ib_functions() -> None:
    spec = discover("lspci-nn-a100-8gpu-6nvswitch-8ib-vf.txt").profile.spec
    assert spec.nvlink is not None and spec.nvlink.switches == 6
    assert [g.pci_bus_id for g in spec.gpus][:2] == ["0001:00:00.0", "0002:00:00.0"]
    assert all(g.nvlink_links == 12 for g in spec.gpus)
    assert sum(n.link_layer == "InfiniBand" for n in spec.nics) == 8


def test_nvlink_status_links_and_speed() -> None:
    spec = discover("nvidia-smi-nvlink-status-hgx-a100-8gpu.txt").profile.spec
    assert {(g.nvlink_links, g.nvlink_gbps_per_link) for g in spec.gpus} == {(12, 25.0)}
    assert spec.gpus[0].uuid == "GPU-5269b708-678a-b1a8-60f0-c90406537486"


def test_nccl_xml_pairs_gpus_with_nics_under_switches() -> None:
    spec = discover("nccl-topo-xml-azure-ndv4.xml").profile.spec
    topo = Topology.from_spec(spec)
    assert len(topo.gpus_sharing_pcie_switch()) == 4
    by_bus = {g.pci_bus_id: g for g in spec.gpus}
    assert by_bus["0001:00:00.0"].numa_node == 1
    nic = topo.closest_nic(spec.gpus[0].index)
    assert nic is not None and nic.name in ("0101:00:00.0", "0102:00:00.0")
    assert spec.sockets[0].numa_nodes[0].cpus == "0-23"


def test_query_text_rtx4090() -> None:
    spec = discover("nvidia-smi-q-8x-rtx4090-535.154.05.txt").profile.spec
    g = spec.gpus[0]
    assert (g.memory_gib, g.pci_bus_id, g.pcie_gen, g.pcie_width) == (23.99, "0000:01:00.0", 4, 16)
    assert g.uuid == "GPU-313bbff0-b0a0-fd26-4820-0578bdef3a12" and not g.mig_capable


def test_query_xml_mig_devices_named_from_memory_and_sms() -> None:
    spec = discover("nvidia-smi-q-x-a100-sxm4-40gb-mig-enabled.xml").profile.spec
    g = spec.gpus[0]
    assert g.mig_enabled and [d.profile for d in g.mig_devices] == ["3g.20gb", "3g.20gb"]
    four = discover("nvidia-smi-q-x-4x-a100-sxm4-80gb-535.xml").profile.spec.gpus[0]
    assert four.memory_gib == 80.0 and four.power_w == 500.0
    assert [d.profile for d in four.mig_devices] == ["1g.20gb"] * 4


def test_capture_h100_mig_names_from_list_memory_from_query() -> None:
    spec = discover("nvidia-smi-capture-h100-mig-590.txt").profile.spec
    g = spec.gpus[0]
    assert [d.profile for d in g.mig_devices] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]
    assert g.mig_devices[0].memory_gib == 39.5
    assert (g.power_w, g.pcie_gen, g.architecture) == (700.0, 5, "Hopper")
    assert spec.sockets[0].numa_nodes[0].cpus == "0-19"


def test_capture_l40s() -> None:
    g = discover("nvidia-smi-capture-l40s-595.txt").profile.spec.gpus[0]
    assert (g.memory_gib, g.power_w, g.mig_capable, g.nvlink_links) == (44.99, 350.0, False, 0)


def test_mig_listing_profiles_and_instances() -> None:
    g = discover("nvidia-smi-mig-lgip-lgipp-lgi-lci-h100-80gb.txt").profile.spec.gpus[0]
    assert [p.name for p in g.mig_profiles][:2] == ["1g.10gb", "1g.10gb+me"]
    assert g.mig_profiles[-1].slices == 7 and g.mig_profiles[0].max_instances == 7
    assert [d.profile for d in g.mig_devices] == ["1g.10gb"] * 7


def test_gpu_list_last_listing_wins() -> None:
    g = discover("nvidia-smi-L-h100-mig-1g10gb-and-balanced.txt").profile.spec.gpus[0]
    assert [d.profile for d in g.mig_devices] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]


def test_k8s_labels() -> None:
    result = discover("k8s-node-labels-h100-nfd-gfd-mig-disabled.json")
    g = result.profile.spec.gpus[0]
    assert (g.memory_gib, g.mig_capable, g.mig_enabled) == (79.65, True, False)
    doc = discover("k8s-gfd-labels-and-capacity-a100-mig-strategies.rst.txt").profile.spec
    assert doc.gpus[0].mig_enabled and doc.gpus[0].mig_devices


def test_csv_p100_memory_from_used_free_reserved() -> None:
    g = discover("nvidia-smi-query-gpu-csv-tesla-p100.csv.txt").profile.spec.gpus[0]
    assert g.memory_gib == pytest.approx(16383 / 1024, abs=0.01)
    assert g.uuid == "GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6"


def test_same_host_outputs_combine(tmp_path: Path) -> None:
    """topo -m and ibstatus of one A100 host: the NICs get speed and link layer as well."""
    for name in ("topo-hgx-a100-8gpu-roce-8nic.txt", "ibstatus-hgx-a100-roce-8port.txt"):
        (tmp_path / f"file-{len(list(tmp_path.iterdir()))}").write_bytes(
            (FIXTURES / name).read_bytes()
        )
    spec = discover_dir(tmp_path).profile.spec
    assert len(spec.nics) == 8
    assert {(n.speed_gbps, n.link_layer) for n in spec.nics} == {(100.0, "Ethernet")}
    assert spec.nics[0].pcie_switch == "pcie-sw0" and spec.nics[0].numa_node == 0


def test_lspci_and_nvlink_status_of_one_host_make_one_nvswitch_domain(tmp_path: Path) -> None:
    for name in (
        "lspci-nn-a100-8gpu-6nvswitch-8ib-vf.txt",
        "nvidia-smi-nvlink-status-hgx-a100-8gpu.txt",
    ):
        (tmp_path / name).write_bytes((FIXTURES / name).read_bytes())
    spec = discover_dir(tmp_path).profile.spec
    assert spec.nvlink is not None and spec.nvlink.kind == "nvswitch"
    assert len(Topology.from_spec(spec).nvlink_domains()) == 1
    assert spec.gpus[0].uuid is not None and spec.gpus[0].pci_bus_id == "0001:00:00.0"


# ---- issue #15: Grace, plain lspci, AMD Instinct ------------------------------------------


def test_gb200_tray_gpu_memory_nodes_belong_to_their_gpus() -> None:
    spec = discover("topo-gb200-nvl-tray-4gpu-8nic-gpu-numa-id.txt").profile.spec
    topo = Topology.from_spec(spec)
    assert [g.numa_node for g in spec.gpus] == [0, 0, 1, 1]
    assert [n.cpus for s in spec.sockets for n in s.numa_nodes] == ["0-71", "72-143"]
    memory = topo.gpu_memory_node(2)
    assert memory is not None and (memory.id, memory.kind, memory.cpus) == (
        18,
        "gpu-memory",
        frozenset(),
    )
    assert str(topo.gpu_link(0, 3)) == "NV18"
    assert {n.numa_node for n in spec.nics} == {None}  # every NIC is SYS from every GPU


def test_gb200_tray_with_numactl_picks_the_node_with_cpus(tmp_path: Path) -> None:
    """numactl -H lists nodes 0 and 1 with CPUs: the Grace affinity list needs no guess."""
    (tmp_path / "topo").write_bytes(
        (FIXTURES / "topo-gb200-nvl-tray-4gpu-8nic-gpu-numa-id.txt").read_bytes()
    )
    (tmp_path / "numa").write_text(
        "available: 3 nodes (0-1,2)\n"
        "node 0 cpus: " + " ".join(map(str, range(72))) + "\nnode 0 size: 489960 MB\n"
        "node 1 cpus: " + " ".join(map(str, range(72, 144))) + "\nnode 1 size: 489823 MB\n"
        "node 2 cpus:\nnode 2 size: 189471 MB\n"
        "node distances:\nnode   0   1   2\n  0:  10  40  80\n  1:  40  10  80\n  2:  80  80  10\n",
        encoding="utf-8",
    )
    result = discover_dir(tmp_path)
    spec = result.profile.spec
    assert [g.numa_node for g in spec.gpus] == [0, 0, 1, 1]
    assert not any("the lowest" in n.message for n in result.notes)
    node2 = next(n for n in spec.memory_numa_nodes if n.id == 2)
    assert (node2.kind, node2.gpu, node2.memory_gib) == ("gpu-memory", 0, round(189471 / 1024, 2))


def test_plain_lspci_p5_names_models_and_nvswitches() -> None:
    result = discover("lspci-plain-aws-p5-8x-h100-sxm5-nvswitch.txt")
    spec = result.profile.spec
    assert [g.pci_bus_id for g in spec.gpus][:2] == ["0000:53:00.0", "0000:64:00.0"]
    assert spec.nvlink is not None and spec.nvlink.switches == 4
    assert all(g.nvlink_links == 18 and g.vendor == "NVIDIA" for g in spec.gpus)


def test_lspci_bridge_paths_pair_each_mi300x_with_its_connectx7() -> None:
    topo = Topology.from_spec(discover("lspci-pp-8x-mi300x-8x-cx7-no-ids.txt").profile.spec)
    assert [topo.closest_nic(i).name for i in range(8)] == [  # type: ignore[union-attr]
        "0000:09:00.0",
        "0000:23:00.0",
        "0000:53:00.0",
        "0000:69:00.0",
        "0000:8f:00.0",
        "0000:9c:00.0",
        "0000:cd:00.0",
        "0000:f1:00.0",
    ]
    assert str(topo.link("GPU0", "0000:09:00.0")) == "PIX"
    assert all(
        g.vendor == "AMD"
        for g in discover("lspci-pp-8x-mi300x-8x-cx7-no-ids.txt").profile.spec.gpus
    )


def test_rocm_smi_mi308x_xgmi_mesh_numa_memory_power() -> None:
    spec = discover("rocm-smi-showtopo-concise-meminfo-8x-mi308x.txt").profile.spec
    assert spec.nvlink is not None and spec.nvlink.interconnect == "xgmi"
    assert (spec.nvlink.kind, spec.nvlink.domain_gpus) == ("mesh", 8)
    assert [g.numa_node for g in spec.gpus] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert {(g.memory_gib, g.power_w, g.vendor) for g in spec.gpus} == {(191.98, 650.0, "AMD")}
    topo = Topology.from_spec(spec)
    assert topo.gpu(0).nvlink_peers == frozenset(range(1, 8)) and topo.gpu(0).nvlink_links == 7
    assert topo.bandwidth_gbps("GPU0", "GPU5") == 64.0  # one xGMI link, 64 GB/s a direction


def test_rocm_smi_concise_names_mi300x_on_the_line_below() -> None:
    spec = discover("rocm-smi-concise-8x-mi300x.txt").profile.spec
    assert {(g.product_name, g.power_w, g.memory_gib) for g in spec.gpus} == {
        ("AMD Instinct MI300X", 750.0, 192.0)
    }


def test_amd_smi_topology_and_addresses() -> None:
    spec = discover("amd-smi-topology-8gpu-xgmi-mi300.txt").profile.spec
    assert [g.pci_bus_id for g in spec.gpus][:2] == ["0000:0c:00.0", "0000:22:00.0"]
    assert spec.nvlink is not None and spec.nvlink.interconnect == "xgmi"
