"""Live discovery: commands and sysfs of a host, NVML, saving outputs and reading them back."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from stratum.discovery import assemble, discover_dir
from stratum.discovery.host import CommandResult, discover_host, run_command
from stratum.discovery.nvml import read_nvml
from stratum.discovery.recognise import parse_text
from stratum.discovery.sysfs import read_sysfs
from stratum.testing.fake_nvml import FakeGpu, FakeNvml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"


def fake_sysfs(root: Path) -> Path:
    """Two NUMA nodes, one NVIDIA GPU and one RDMA NIC, laid out as the kernel does."""
    for node, cpus, kb in ((0, "0-3,8-11", 16 * 1024 * 1024), (1, "4-7,12-15", 16 * 1024 * 1024)):
        d = root / f"sys/devices/system/node/node{node}"
        d.mkdir(parents=True)
        (d / "cpulist").write_text(cpus + "\n")
        (d / "meminfo").write_text(
            f"Node {node} MemTotal:       {kb} kB\nNode {node} MemFree:        1 kB\n"
        )
    (root / "sys/devices/system/node/online").write_text("0-1\n")
    gpu = root / "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0"
    gpu.mkdir(parents=True)
    for name, value in (
        ("class", "0x030200"),
        ("vendor", "0x10de"),
        ("device", "0x27b8"),
        ("numa_node", "1"),
    ):
        (gpu / name).write_text(value + "\n")
    links = root / "sys/bus/pci/devices"
    links.mkdir(parents=True)
    (links / "0000:03:00.0").symlink_to(gpu)
    ib = root / "sys/class/infiniband/mlx5_0"
    (ib / "ports/1").mkdir(parents=True)
    (ib / "ports/1/state").write_text("4: ACTIVE\n")
    (ib / "ports/1/rate").write_text("200 Gb/sec (2X NDR)\n")
    (ib / "ports/1/link_layer").write_text("InfiniBand\n")
    (ib / "device").mkdir()
    (ib / "device/numa_node").write_text("1\n")
    (root / "proc").mkdir()
    (root / "proc/meminfo").write_text("MemTotal:       33554432 kB\n")
    return root


def test_sysfs_tree(tmp_path: Path) -> None:
    facts = read_sysfs(fake_sysfs(tmp_path))
    spec = assemble(facts, name="h").profile.spec
    assert [n.cpus for s in spec.sockets for n in s.numa_nodes] == ["0-3,8-11", "4-7,12-15"]
    assert spec.memory_gib == 32.0
    assert [(g.model, g.numa_node, g.pcie_switch) for g in spec.gpus] == [
        ("L4-24GB", 1, "0000:01:00.0")
    ]
    assert [(n.name, n.rdma, n.speed_gbps, n.numa_node) for n in spec.nics] == [
        ("mlx5_0", True, 200.0, 1)
    ]


def test_commands_run_in_the_c_locale() -> None:
    result = run_command(["sh", "-c", "echo $LC_ALL $LANG"])
    assert (result.returncode, result.stdout.strip()) == (0, "C C")
    assert run_command(["stratum-no-such-tool"]).returncode == 127


def test_missing_and_failing_tools_are_noted(tmp_path: Path) -> None:
    lscpu = (FIXTURES / "lscpu-gh200-numa-section.txt").read_text()
    seen: list[tuple[str, ...]] = []

    def runner(argv: Sequence[str]) -> CommandResult:
        seen.append(tuple(argv))
        if argv[0] == "lscpu" and len(argv) == 1:
            return CommandResult(0, lscpu, "")
        if tuple(argv[:2]) == ("nvidia-smi", "-L"):
            return CommandResult(
                9,
                "",
                "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n",
            )
        return CommandResult(1, "", "")

    installed = {"lscpu", "nvidia-smi"}
    facts = discover_host(
        root=fake_sysfs(tmp_path),
        runner=runner,
        which=lambda name: name if name in installed else None,
    )
    assert ("lscpu",) in seen and ("numactl", "-H") not in seen
    result = assemble(facts)
    text = "\n".join(str(n) for n in result.notes)
    assert "nvidia-smi -L: failed: NVIDIA-SMI has failed" in text
    assert result.profile.spec.gpus[0].model == "L4-24GB"  # from sysfs, despite the driver


def test_save_and_read_back_give_the_same_profile(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path / "root")
    topo = (
        "\tGPU0\tNIC0\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tPIX\t4-7,12-15\t1\n"
        "NIC0\tPIX\t X \n\nNIC Legend:\n\n  NIC0: mlx5_0\n"
    )

    def runner(argv: Sequence[str]) -> CommandResult:
        if list(argv) == ["nvidia-smi", "topo", "-m"]:
            return CommandResult(0, topo, "")
        return CommandResult(127, "", "not here")

    saved = tmp_path / "saved"
    which = {"nvidia-smi": "/usr/bin/nvidia-smi"}.get
    live = assemble(discover_host(root=root, runner=runner, save_to=saved, which=which), name="h")
    again = discover_dir(saved, name="h")
    assert (saved / "nvidia-smi-topo-m.txt").exists()
    assert (saved / "sys/devices/system/node/node1/cpulist").exists()
    for field in ("sockets", "gpus", "nics", "memory_gib", "links"):
        assert getattr(again.profile.spec, field) == getattr(live.profile.spec, field)
    assert live.profile.spec.gpus[0].pcie_switch == "pcie-sw0"  # from topo -m, kept in the copy
    assert live.profile.spec.nics[0].speed_gbps == 200.0


def test_nvml_when_nvidia_smi_is_missing() -> None:
    fake = FakeNvml(
        [
            FakeGpu(
                "NVIDIA H100 80GB HBM3",
                "GPU-a",
                "00000000:1B:00.0",
                85520809984,
                (1, 1),
                700000,
                18,
            ),
            FakeGpu("NVIDIA L4", "GPU-b", "00000000:3B:00.0", 24152899584, None, None, 0),
        ]
    )
    facts = read_nvml(fake)
    spec = assemble(facts).profile.spec
    assert [(g.model, g.mig_capable, g.mig_enabled, g.power_w) for g in spec.gpus] == [
        ("H100-SXM5-80GB", True, True, 700.0),
        ("L4-24GB", False, False, 72),
    ]
    assert spec.gpus[0].pci_bus_id == "0000:1b:00.0" and spec.gpus[0].nvlink_links == 18
    assert not fake.initialised  # shut down after use


def test_nvml_without_a_driver_is_a_note() -> None:
    facts = read_nvml(FakeNvml(fail_init=True))
    assert facts.gpus == () and "NVML not available" in facts.notes[0].message


def test_real_pynvml_on_this_host_does_not_raise() -> None:
    facts = read_nvml()
    assert facts.gpus or "NVML not available" in facts.notes[0].message


def test_ibv_devinfo() -> None:
    # Shape of `ibv_devinfo` (rdma-core); constructed for this test, not from a fixture.
    text = """hca_id:\tmlx5_0
\ttransport:\t\t\tInfiniBand (0)
\tfw_ver:\t\t\t\t28.39.1002
\tvendor_part_id:\t\t\t4129
\tphys_port_cnt:\t\t\t1
\t\tport:\t1
\t\t\tstate:\t\t\tPORT_ACTIVE (4)
\t\t\tactive_width:\t\t4X (2)
\t\t\tactive_speed:\t\t100.0 Gbps (64)
\t\t\tlink_layer:\t\tInfiniBand

hca_id:\tmlx5_1
\ttransport:\t\t\tInfiniBand (0)
\t\tport:\t1
\t\t\tstate:\t\t\tPORT_DOWN (1)
\t\t\tactive_width:\t\t4X (2)
\t\t\tactive_speed:\t\t25.0 Gbps (32)
\t\t\tlink_layer:\t\tEthernet
"""
    facts, pieces = parse_text("ibv", text)
    assert [p.kind for p in pieces] == ["ibv_devinfo"]
    spec = assemble(facts).profile.spec
    assert [(n.name, n.speed_gbps, n.link_layer) for n in spec.nics] == [
        ("mlx5_0", 400.0, "InfiniBand"),
        ("mlx5_1", 0.0, "Ethernet"),
    ]
    assert any("not active" in n.message for n in facts.notes)


def test_this_host_sysfs_matches_the_kernel() -> None:
    facts = read_sysfs(Path("/"))
    spec = assemble(facts).profile.spec
    cpus = sum(
        len(n.cpus.replace("-", ",").split(",")) > 0 for s in spec.sockets for n in s.numa_nodes
    )
    assert cpus >= 1
    nodes = sorted(p.name for p in Path("/sys/devices/system/node").glob("node[0-9]*"))
    assert len([n for s in spec.sockets for n in s.numa_nodes]) + len(
        spec.memory_numa_nodes
    ) == len(nodes)
    assert os.cpu_count()
