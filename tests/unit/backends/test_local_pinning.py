"""The local runtime's pinning plan, its read-back of a real process, and its telemetry:
what each clause becomes on a host, and what it honestly cannot enforce there."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratum.backends.base import ReplicaLaunch
from stratum.backends.local.pinning import HostFacts, plan, visible_devices
from stratum.backends.local.telemetry import HostSampler
from stratum.backends.local.verify import verify
from stratum.discovery.nvml import GpuReading, read_gpu_telemetry
from stratum.testing.fake_nvml import FakeGpu, FakeNvml

HOST = HostFacts(cpus=frozenset({0, 1}), numa_nodes=frozenset({0}), numactl=None, mps_pipe=None)
UUIDS = ("GPU-aaaa", "GPU-bbbb")


def _replica(**fields: object) -> ReplicaLaunch:
    return ReplicaLaunch(replica=0, node="box", **fields)  # type: ignore[arg-type]


def test_visible_devices_name_exactly_the_bound_devices() -> None:
    assert visible_devices(_replica()) is None
    assert visible_devices(_replica(gpus=(1, 3))) == "1,3"
    assert visible_devices(_replica(gpus=(1, 3), gpu_uuids=UUIDS)) == "GPU-aaaa,GPU-bbbb"
    mig = _replica(gpus=(0,), gpu_uuids=UUIDS[:1], mig_instance="MIG-1234")
    assert visible_devices(mig) == "MIG-1234"


def test_indices_come_in_pci_order_and_uuids_need_no_order() -> None:
    assert plan(_replica(gpus=(2,)), HOST)["env"] == {
        "CUDA_VISIBLE_DEVICES": "2",
        "NVIDIA_VISIBLE_DEVICES": "2",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }
    assert "CUDA_DEVICE_ORDER" not in plan(_replica(gpus=(2,), gpu_uuids=UUIDS[:1]), HOST)["env"]


def test_a_gpu_share_is_enforced_through_mps_or_said_not_to_be() -> None:
    without = plan(_replica(gpus=(0,), gpu_milli=250), HOST)
    assert "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE" not in without["env"]
    assert "no MPS daemon runs on this host" in without["notes"]["compute.gpuMilli"]
    mps = HostFacts(HOST.cpus, HOST.numa_nodes, None, "/run/mps")
    shared = plan(_replica(gpus=(0,), gpu_milli=250), mps)
    assert shared["env"]["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "25"
    assert shared["env"]["CUDA_MPS_PIPE_DIRECTORY"] == "/run/mps"
    assert "compute.gpuMilli" not in shared["notes"]


def test_cpus_and_numa_nodes_the_host_lacks_are_named() -> None:
    pin = plan(_replica(cpu_set="1-3", numa_node=1, memory_mib=512), HOST)
    assert pin["cpus"] == [1]
    assert pin["missing"]["compute.cpuSet"] == (
        "CPUs 2-3 of the bound set 1-3 do not exist on this host (it has 0-1)"
    )
    assert pin["missing"]["compute.numaNode"] == (
        "NUMA node 1 does not exist on this host (it has 0)"
    )
    assert pin["memoryBytes"] == 512 * 1024 * 1024
    with_numactl = HostFacts(HOST.cpus, HOST.numa_nodes, "/usr/bin/numactl", None)
    assert plan(_replica(numa_node=0), with_numactl)["numactl"] == [
        "/usr/bin/numactl",
        "--membind=0",
        "--",
    ]


@pytest.fixture
def process() -> Iterator[subprocess.Popen[bytes]]:
    """A real process with GPU-aaaa in its environment, pinned to CPU 0."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "GPU-aaaa", "NVIDIA_VISIBLE_DEVICES": "GPU-aaaa"}
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    yield child
    child.kill()
    child.wait()


def _reading(uuid: str) -> GpuReading:
    return GpuReading(index=0, uuid=uuid, name="NVIDIA L4")


def test_the_read_back_verifies_the_environment_affinity_and_nvml(
    process: subprocess.Popen[bytes],
) -> None:
    pin = plan(_replica(gpus=(0,), gpu_uuids=UUIDS[:1], cpu_set="0", memory_mib=64), HOST)
    nvml_sees = (_reading("GPU-aaaa"),)
    found = verify(process.pid, pin, None, "not writable", gpus=lambda: nvml_sees)
    checks = {c["clause"]: c for c in found}
    assert checks["compute.gpus"]["state"] == "verified"
    assert checks["compute.gpus"]["message"].endswith("NVML: GPU-aaaa = GPU 0 GPU-aaaa (NVIDIA L4)")
    assert checks["compute.cpuSet"] == {
        "clause": "compute.cpuSet",
        "state": "verified",
        "message": "sched_getaffinity: CPUs 0",
    }
    assert checks["compute.memory"]["state"] == "not-enforceable"
    assert "(not writable): the 64 MiB limit is not enforced" in checks["compute.memory"]["message"]
    lost = verify(process.pid, pin, None, "", gpus=lambda: (_reading("GPU-other"),))
    assert lost[0] == {
        "clause": "compute.gpus",
        "state": "mismatch",
        "message": "NVML on this host has no device GPU-aaaa",
    }
    no_nvml = verify(process.pid, pin, None, "", gpus=lambda: None)
    assert "NVML is not available here" in no_nvml[0]["message"]


def test_a_process_given_other_devices_or_cpus_is_a_mismatch(
    process: subprocess.Popen[bytes],
) -> None:
    pin = plan(_replica(gpus=(1,), gpu_uuids=UUIDS[1:], cpu_set="1"), HOST)
    checks = {c["clause"]: c for c in verify(process.pid, pin, None, "", gpus=lambda: None)}
    assert checks["compute.gpus"]["state"] == "mismatch"
    assert "CUDA_VISIBLE_DEVICES='GPU-aaaa'" in checks["compute.gpus"]["message"]
    assert checks["compute.cpuSet"]["message"] == "sched_getaffinity gives CPUs 0, bound 1"
    # Bound CPUs and a NUMA node the host does not have: the model is not the machine.
    absent = plan(_replica(cpu_set="0,7", numa_node=3), HOST)
    found = {c["clause"]: c for c in verify(process.pid, absent, None, "", gpus=lambda: None)}
    assert found["compute.cpuSet"]["state"] == "mismatch"
    assert found["compute.cpuSet"]["message"].endswith(
        "CPUs 7 of the bound set 0,7 do not exist on this host (it has 0-1)"
    )
    assert found["compute.numaNode"] == {
        "clause": "compute.numaNode",
        "state": "mismatch",
        "message": "NUMA node 3 does not exist on this host (it has 0)",
    }


def test_host_telemetry_reads_proc_and_gpus_through_nvml(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text("MemTotal: 8388608 kB\nMemAvailable: 2097152 kB\n")
    (tmp_path / "stat").write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    nvml = FakeNvml(
        [
            FakeGpu(
                "NVIDIA H100",
                "GPU-h",
                "0000:01:00.0",
                80 << 30,
                nvlinks=4,
                utilization_pct=87,
                memory_used_bytes=40 << 30,
                power_mw=512_000,
                temperature_c=61,
                ecc_uncorrected=0,
            ),
            FakeGpu(
                "NVIDIA H100",
                "GPU-i",
                "0000:02:00.0",
                80 << 30,
                nvlinks=4,
                utilization_pct=5,
                power_mw=90_000,
                temperature_c=35,
                ecc_uncorrected=2,
            ),
        ]
    )
    sampler = HostSampler(gpus=lambda: read_gpu_telemetry(nvml), proc=tmp_path)
    assert sampler.host() == (None, 6.0)  # CPU use needs two samples
    (tmp_path / "stat").write_text("cpu  175 0 125 900 0 0 0 0 0 0\n")
    assert sampler.host() == (50.0, 6.0)
    first = sampler.gpus()
    seen = [(g.index, g.health, g.utilization_pct, g.memory_used_gib, g.power_w) for g in first]
    assert seen == [
        (0, "Healthy", 87.0, 40.0, 512.0),
        (1, "Degraded", 5.0, 0.0, 90.0),  # uncorrected ECC errors
    ]
    assert first[0].temperature_c == 61.0 and first[1].ecc_errors == 2
    nvml.gpus[0].down_links = 1
    again = sampler.gpus()
    assert again[0].nvlink_degraded and again[0].health == "Degraded"
    nvml.gpus[1].lost = True
    assert [g.health for g in sampler.gpus()] == ["Degraded", "Failed"]
    assert HostSampler(gpus=lambda: read_gpu_telemetry(FakeNvml(fail_init=True))).gpus() == ()
