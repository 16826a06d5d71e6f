"""The topology model: link classes, NVLink domains, PCIe switches, closest NIC, bandwidth."""

from __future__ import annotations

import pytest

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec, LinkMatrix
from stratum.core.cpulist import CpuListError, format_cpulist, parse_cpulist, parse_cpumask
from stratum.core.profiles import get_builtin_profile
from stratum.core.topology import Link, Topology, TopologyError


def spec(**body: object) -> HardwareProfileSpec:
    return HardwareProfileSpec.model_validate(body)


def two_node_box(**extra: object) -> HardwareProfileSpec:
    return spec(
        sockets=[
            {"id": s, "cores": 8, "numaNodes": [{"id": s, "cpus": f"{8 * s}-{8 * s + 7}"}]}
            for s in range(2)
        ],
        gpus=[
            {
                "index": i,
                "model": "L40S-48GB",
                "memoryGiB": 48,
                "numaNode": i // 2,
                "pcieSwitch": f"sw{i // 2}",
            }
            for i in range(4)
        ],
        nics=[
            {"name": "mlx5_0", "rdma": True, "speedGbps": 200, "numaNode": 0, "pcieSwitch": "sw0"},
            {"name": "eth0", "speedGbps": 25, "numaNode": 1},
        ],
        **extra,
    )


# ---- link classes -------------------------------------------------------------------------


def test_link_order_is_nvidia_smis() -> None:
    order = [Link.parse(t) for t in ("NV18", "NV12", "NV1", "PIX", "PXB", "PHB", "NODE", "SYS")]
    assert order == sorted(reversed(order))
    assert Link.parse("SOC") == Link("SYS")  # the pre-384 driver name
    assert str(Link.parse("NV4")) == "NV4" and Link.parse(" X ").kind == "X"
    for bad in ("NV0", "nv4", "QPI", ""):
        with pytest.raises(TopologyError):
            Link.parse(bad)


def test_derived_classes_follow_placement() -> None:
    topo = Topology.from_spec(two_node_box())
    assert str(topo.gpu_link(0, 1)) == "PIX"  # same switch
    assert str(topo.gpu_link(0, 2)) == "SYS"  # other NUMA node
    assert str(topo.link("GPU1", "mlx5_0")) == "PIX"
    assert str(topo.link("GPU2", "eth0")) == "NODE"  # same node, no shared switch
    assert str(topo.link("GPU0", "GPU0")) == "X"
    assert topo.gpus_sharing_pcie_switch() == (frozenset({0, 1}), frozenset({2, 3}))
    assert topo.nvlink_domains() == ()


def test_unknown_numa_is_never_assumed_close() -> None:
    box = two_node_box().model_copy(deep=True)
    box.gpus[2].numa_node = None
    box.gpus[2].pcie_switch = None
    topo = Topology.from_spec(box)
    assert str(topo.gpu_link(2, 3)) == "SYS"


def test_single_numa_node_fills_unreported_nodes() -> None:
    box = spec(
        sockets=[{"id": 0, "cores": 4, "numaNodes": [{"id": 0, "cpus": "0-3"}]}],
        gpus=[{"index": i, "model": "L4-24GB", "memoryGiB": 24} for i in range(2)],
    )
    assert str(Topology.from_spec(box).gpu_link(0, 1)) == "NODE"


def test_measured_matrix_wins_over_placement() -> None:
    box = two_node_box(
        links=LinkMatrix(devices=["GPU0", "GPU1"], classes=[["X", "PXB"], ["PXB", "X"]])
    )
    topo = Topology.from_spec(box)
    assert str(topo.gpu_link(0, 1)) == "PXB"
    assert str(topo.gpu_link(0, 2)) == "SYS"  # not measured: derived
    assert topo.inconsistencies() == []


def test_inconsistencies_name_the_pair() -> None:
    box = two_node_box(
        links=LinkMatrix(devices=["GPU0", "GPU2"], classes=[["X", "PIX"], ["PIX", "X"]])
    )
    problems = Topology.from_spec(box).inconsistencies()
    assert any("GPU0-GPU2 is PIX but they sit on NUMA nodes 0 and 1" in p for p in problems)
    assert any("not on one PCIe switch" in p for p in problems)


def test_nvswitch_domain_gives_every_pair_all_links() -> None:
    topo = Topology.from_spec(get_builtin_profile("hgx-h100-80gb").spec)
    assert topo.nvlink_domains() == (frozenset(range(8)),)
    assert {str(topo.gpu_link(i, j)) for i in range(8) for j in range(8) if i != j} == {"NV18"}
    assert topo.gpus_sharing_pcie_switch() == (
        frozenset({0, 1}),
        frozenset({2, 3}),
        frozenset({4, 5}),
        frozenset({6, 7}),
    )


def test_mesh_splits_links_between_peers() -> None:
    box = spec(
        gpus=[
            {
                "index": i,
                "model": "V100-SXM2-32GB",
                "memoryGiB": 32,
                "nvlinkDomain": "nvl0",
                "nvlinkLinks": 6,
                "nvlinkPeers": [j for j in range(3) if j != i],
            }
            for i in range(3)
        ],
        nvlink={"kind": "mesh", "domainGpus": 3},
    )
    assert str(Topology.from_spec(box).gpu_link(0, 1)) == "NV3"


# ---- closest NIC and bandwidth ------------------------------------------------------------


def test_closest_nic_prefers_link_then_rdma_then_speed() -> None:
    topo = Topology.from_spec(two_node_box())
    assert topo.closest_nic(0).name == "mlx5_0"  # type: ignore[union-attr]
    assert topo.closest_nic(3).name == "eth0"  # type: ignore[union-attr]  # NODE beats SYS
    assert topo.closest_nic(3, rdma_only=True).name == "mlx5_0"  # type: ignore[union-attr]
    cpu_only = Topology.from_spec(get_builtin_profile("cpu-only-2s-epyc").spec)
    with pytest.raises(TopologyError):
        cpu_only.closest_nic(0)


def test_dgx_h100_closest_nic_per_gpu_is_on_its_switch() -> None:
    topo = Topology.from_spec(get_builtin_profile("hgx-h100-80gb").spec)
    for i in range(8):
        nic = topo.closest_nic(i, rdma_only=True)
        assert nic is not None and nic.pcie_switch == topo.gpu(i).pcie_switch
        assert nic.numa_node == topo.gpu(i).numa_node


def test_bandwidth_estimates_rank_like_the_classes() -> None:
    h100 = Topology.from_spec(get_builtin_profile("hgx-h100-80gb").spec)
    assert h100.bandwidth_gbps("GPU0", "GPU7") == 18 * 25.0  # 450 GB/s each way
    l40s = Topology.from_spec(get_builtin_profile("pcie-l40s-8gpu").spec)
    same_switch = l40s.bandwidth_gbps("GPU0", "GPU1")
    cross_socket = l40s.bandwidth_gbps("GPU0", "GPU7")
    assert same_switch == pytest.approx(31.5 * 0.9)
    assert cross_socket < same_switch < h100.bandwidth_gbps("GPU0", "GPU1")
    # A NIC caps the path at its line rate: 200 Gb/s is 25 GB/s.
    assert l40s.bandwidth_gbps("GPU0", "mlx5_0") == pytest.approx(25.0 * 0.9)


def test_unknown_devices_are_errors() -> None:
    topo = Topology.from_spec(two_node_box())
    with pytest.raises(TopologyError, match="no GPU 9"):
        topo.gpu(9)
    with pytest.raises(TopologyError, match="no NIC"):
        topo.link("GPU0", "mlx5_9")


# ---- the wire type refuses what the model could not make sense of ------------------------


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([["X", "NV4"], ["NV2", "X"]], "one class both ways"),
        ([["X", "QPI"], ["QPI", "X"]], "not a link class"),
        ([["X", "X"], ["X", "X"]], "X marks a device against itself"),
        ([["X", "SYS"]], "2x2 matrix"),
    ],
)
def test_link_matrix_validation(classes: list[list[str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinkMatrix(devices=["GPU0", "GPU1"], classes=classes)


def test_spec_refuses_dangling_references() -> None:
    with pytest.raises(ValueError, match="numaNode: 7 is not a NUMA node"):
        spec(
            sockets=[{"id": 0, "numaNodes": [{"id": 0}]}],
            gpus=[{"index": 0, "model": "L4-24GB", "memoryGiB": 24, "numaNode": 7}],
        )
    with pytest.raises(ValueError, match="nvlinkPeers: 3"):
        spec(gpus=[{"index": 0, "model": "x", "memoryGiB": 1, "nvlinkPeers": [3]}])
    with pytest.raises(ValueError, match="neither GPU"):
        spec(
            gpus=[{"index": 0, "model": "x", "memoryGiB": 1}],
            links={"devices": ["GPU0", "mlx5_0"], "classes": [["X", "PIX"], ["PIX", "X"]]},
        )
    with pytest.raises(ValueError, match="domainNodes must be 1"):
        spec(nvlink={"kind": "nvswitch", "domainGpus": 72, "domainNodes": 18})


# ---- CPU lists -------------------------------------------------------------------------


def test_cpulists() -> None:
    assert parse_cpulist("0-3,8,10-11") == frozenset({0, 1, 2, 3, 8, 10, 11})
    assert parse_cpulist("") == frozenset() and parse_cpulist("N/A") == frozenset()
    assert parse_cpulist("0-7:2/4") == frozenset({0, 1, 4, 5})
    assert format_cpulist({0, 1, 2, 3, 64, 65, 7}) == "0-3,7,64-65"
    assert parse_cpumask("00000000,00ffffff") == frozenset(range(24))
    assert parse_cpumask("ffffff00,00000000,00000000") == frozenset(range(72, 96))
    for bad in ("3-1", "a-b", "0,,1"):
        with pytest.raises(CpuListError):
            parse_cpulist(bad)
