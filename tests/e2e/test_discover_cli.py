"""`stratum discover` as a real process: on saved outputs, on this host, on bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfile
from stratum.core.cpulist import parse_cpulist
from stratum.testing.harness import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hardware"


def test_discover_from_a_directory_of_saved_outputs_as_json(tmp_path: Path) -> None:
    # Names say nothing: the files are recognised by their content.
    shutil.copy(FIXTURES / "topo-hgx-a100-8gpu-roce-8nic.txt", tmp_path / "a")
    shutil.copy(FIXTURES / "ibstatus-hgx-a100-roce-8port.txt", tmp_path / "b.log")
    done = run_cli("discover", "--from", str(tmp_path), "-o", "json", "--name", "a100-host")
    assert done.returncode == 0, done.stderr
    profile = HardwareProfile.model_validate(json.loads(done.stdout))
    spec = profile.spec
    assert profile.metadata.name == "a100-host"
    assert len(spec.gpus) == 8 and spec.nvlink is not None and spec.nvlink.kind == "nvswitch"
    assert [n.name for n in spec.nics] == [f"mlx5_{i}" for i in range(8)]
    assert {(n.speed_gbps, n.link_layer, n.rdma) for n in spec.nics} == {(100.0, "Ethernet", True)}
    assert spec.links is not None and spec.links.classes[0][1] == "NV12"
    assert "warning:" in done.stderr and "no source names the model" in done.stderr
    assert "warning" not in done.stdout


def test_discover_this_host(tmp_path: Path) -> None:
    done = run_cli("discover")
    assert done.returncode == 0, done.stderr
    profile = HardwareProfile.model_validate(yaml.safe_load(done.stdout))
    spec = profile.spec
    nodes = sorted(Path("/sys/devices/system/node").glob("node[0-9]*"))
    cpu_nodes = [n for n in nodes if (n / "cpulist").read_text().strip()]
    numa = [n for s in spec.sockets for n in s.numa_nodes]
    assert len(numa) == len(cpu_nodes)
    logical = sum(len(parse_cpulist(n.cpus)) for n in numa)
    assert logical == len(os.sched_getaffinity(0)) or logical == os.cpu_count()
    assert sum(s.cores * s.threads_per_core for s in spec.sockets) == logical
    meminfo = Path("/proc/meminfo").read_text()
    total_kib = int(meminfo.split("MemTotal:")[1].split()[0])
    assert abs(spec.memory_gib - total_kib / 1024 / 1024) < 0.5
    nics = {p.name for p in Path("/sys/class/net").iterdir() if (p / "device").exists()}
    assert {n.name for n in spec.nics} >= nics
    if not spec.gpus:
        assert "no GPU found" in done.stderr


def test_save_then_read_back_elsewhere(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    live = run_cli("discover", "-o", "json", "--save", str(saved), "--name", "h")
    assert live.returncode == 0, live.stderr
    assert (saved / "lscpu.txt").exists()
    again = run_cli("discover", "--from", str(saved), "-o", "json", "--name", "h")
    assert again.returncode == 0, again.stderr
    a, b = json.loads(live.stdout)["spec"], json.loads(again.stdout)["spec"]
    for key in ("sockets", "memoryGiB", "gpus", "architecture"):
        assert a.get(key) == b.get(key), key


def test_unreadable_output_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    lines = (FIXTURES / "topo-hgx-a100-8gpu-roce-8nic.txt").read_text().split("\n")
    (tmp_path / "topo.txt").write_text("\n".join(lines[:12]))  # cut after NIC4's row
    done = run_cli("discover", "--from", str(tmp_path / "topo.txt"))
    assert done.returncode == 2
    assert f"{tmp_path / 'topo.txt'}:13: expected a row for each of the 16 devices" in done.stderr
    assert done.stdout == ""


def test_discover_reads_a_gb200_tray_and_a_plain_lspci_with_warnings_on_stderr(
    tmp_path: Path,
) -> None:
    """Issue #15: both were refused; now a profile on stdout and located warnings on stderr."""
    shutil.copy(FIXTURES / "topo-gb200-nvl-tray-4gpu-8nic-gpu-numa-id.txt", tmp_path / "topo")
    done = run_cli("discover", "--from", str(tmp_path), "-o", "json")
    assert done.returncode == 0, done.stderr
    spec = HardwareProfile.model_validate(json.loads(done.stdout)).spec
    assert [(n.id, n.kind, n.gpu) for n in spec.memory_numa_nodes] == [
        (2, "gpu-memory", 0),
        (10, "gpu-memory", 1),
        (18, "gpu-memory", 2),
        (26, "gpu-memory", 3),
    ]
    assert "NUMA affinity lists nodes 0,3-9,11-17" in done.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(FIXTURES / "lspci-plain-aws-p5-8x-h100-sxm5-nvswitch.txt", plain / "lspci")
    done = run_cli("discover", "--from", str(plain), "-o", "json")
    assert done.returncode == 0, done.stderr
    spec = HardwareProfile.model_validate(json.loads(done.stdout)).spec
    assert {g.model for g in spec.gpus} == {"H100-SXM5-80GB"} and len(spec.gpus) == 8
    assert f"{plain / 'lspci'}:5: plain lspci (no -nn)" in done.stderr
