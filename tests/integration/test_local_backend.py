"""backend: local runs real processes on this host, through the live controllers and a
real store: pinned as the contract binds them (GPUs by environment, a CPU set, memory),
with evidence from the host for every clause, output readable, exit codes honoured."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum.backends.local.backend import LocalBackend
from stratum.backends.local.runtime import LocalRuntime
from stratum.core.cpulist import parse_cpulist
from stratum.reconcile.manager import ControllerManager, ManagerSettings
from stratum.reconcile.world import World
from stratum.server.security import system_context
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore
from stratum.testing import localhost, manifests
from stratum.testing.clock import FakeClock

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "local-host"
GPU0 = "GPU-6f1a2b3c-0000-4000-8000-00000000a000"
GPU1 = "GPU-6f1a2b3c-0000-4000-8000-00000000a001"


@pytest.fixture
def cgroup_parent() -> Iterator[str]:
    parent = localhost.cgroup_parent()
    yield parent
    localhost.remove_cgroups(parent)


def _fleet(store: ObjectStore, tmp_path: Path, parent: str) -> tuple[ControllerManager, Path]:
    clock = FakeClock()
    store.clock = clock
    runtime = LocalRuntime(tmp_path / "runtime", clock, cgroup_parent=parent)
    manager = ControllerManager(
        store, {"local": LocalBackend(runtime, clock)}, settings=ManagerSettings()
    )
    ObjectService(store).apply_documents(
        [
            manifests.site("here", country="DE"),
            manifests.tenant("team"),
            localhost.local_cluster("this-host", "here", hardware_from=FIXTURE, node_name="box"),
        ],
        ctx=system_context("test"),
    )
    manager.run_once()
    return manager, localhost.write_program(tmp_path)


def _job(name: str, program: Path, seconds: float, code: int, gpus: int = 1) -> dict[str, Any]:
    return manifests.workload(
        name,
        "team",
        {"compute": {"gpus": gpus, "cpuCores": 1, "memoryGiB": 0.5}},
        type="batch",
        run={"command": [sys.executable, str(program)], "args": [str(seconds), str(code)]},
    )


def _until(manager: ControllerManager, done: Any, timeout: float = 30.0) -> World:
    deadline = time.monotonic() + timeout
    while True:
        world = manager.run_once()
        if done(world):
            return manager.run_once()
        if time.monotonic() > deadline:
            states = [f"{k} {w.status.phase}: {w.status.message}" for k, w in _items(world)]
            raise AssertionError("timed out: " + "; ".join(states))
        time.sleep(0.1)


def _items(world: World) -> list[tuple[str, Any]]:
    return sorted(world.workloads.items())


def test_a_real_program_runs_pinned_with_host_evidence_and_its_output(
    store: ObjectStore, tmp_path: Path, cgroup_parent: str
) -> None:
    manager, program = _fleet(store, tmp_path, cgroup_parent)
    world = World.read(store)
    # The node is this host, its hardware as discovered (here: the saved outputs).
    node = world.nodes["box"]
    assert node.spec.hardware is not None
    assert [g.uuid for g in node.spec.hardware.gpus] == [GPU0, GPU1]
    # Its status carries the host's own telemetry (from /proc).
    assert node.status.phase == "Ready" and node.status.memory_used_gib is not None
    ObjectService(store).apply_documents([_job("pinned", program, 1.0, 0)], ctx=system_context("t"))
    world = _until(manager, lambda w: w.workloads["team/pinned"].status.phase == "Succeeded")

    placement = world.placements["team/pinned"]
    binding = placement.spec.replicas[0]
    assert binding.node == "box" and len(binding.gpus) == 1 and binding.cpu_set
    host = {e.clause: e for e in placement.spec.evidence if e.host is not None}
    bound_uuid = [GPU0, GPU1][binding.gpus[0]]
    assert host["compute.gpus"].host == "verified"
    assert f"CUDA_VISIBLE_DEVICES={bound_uuid}" in host["compute.gpus"].message
    assert host["compute.cpuSet"].host == "verified"
    assert f"CPUs {binding.cpu_set}" in host["compute.cpuSet"].message
    memory = host["compute.memory"]
    if localhost.memory_cgroup_writable(cgroup_parent):
        assert memory.host == "verified" and "512 MiB" in memory.message
    else:
        assert memory.host == "not-enforceable" and "not enforced" in memory.message
    # The model's evidence stays beside the host's.
    assert any(e.host is None and e.clause == "compute" for e in placement.spec.evidence)

    backend = manager.backends["local"]
    assert isinstance(backend, LocalBackend)
    output = backend.logs("team/pinned")
    assert f"CUDA_VISIBLE_DEVICES={bound_uuid}\n" in output
    assert f"NVIDIA_VISIBLE_DEVICES={bound_uuid}\n" in output
    affinity = output.split("affinity=", 1)[1].split("\n", 1)[0]
    assert {int(c) for c in affinity.split(",")} == parse_cpulist(binding.cpu_set or "")
    assert output.endswith("done\n")
    assert backend.logs("team/pinned", tail=1) == "done\n"
    wl = world.workloads["team/pinned"]
    assert wl.status.message == "replica 0 on box: exit code 0"


def test_exit_code_3_fails_the_workload_with_the_code(
    store: ObjectStore, tmp_path: Path, cgroup_parent: str
) -> None:
    manager, program = _fleet(store, tmp_path, cgroup_parent)
    ObjectService(store).apply_documents([_job("crash", program, 0.2, 3)], ctx=system_context("t"))
    world = _until(manager, lambda w: w.workloads["team/crash"].status.phase == "Failed")
    wl = world.workloads["team/crash"]
    assert wl.status.message == "replica 0 on box: exit code 3"
    assert world.placements["team/crash"].status.phase == "Failed"


def test_inventory_is_read_again_and_a_changed_host_is_seen(
    store: ObjectStore, tmp_path: Path, cgroup_parent: str
) -> None:
    saved = tmp_path / "saved"
    shutil.copytree(FIXTURE, saved)
    clock = FakeClock()
    store.clock = clock
    runtime = LocalRuntime(tmp_path / "runtime", clock, cgroup_parent=cgroup_parent)
    manager = ControllerManager(
        store,
        {"local": LocalBackend(runtime, clock)},
        settings=ManagerSettings(inventory_seconds=30),
    )
    ObjectService(store).apply_documents(
        [
            manifests.site("here", country="DE"),
            localhost.local_cluster("this-host", "here", hardware_from=saved, node_name="box"),
        ],
        ctx=system_context("test"),
    )
    manager.run_once()
    first = World.read(store)
    # The Node's generation (its spec; its status takes telemetry) and the whole Cluster.
    versions = (
        first.nodes["box"].metadata.generation,
        first.clusters["this-host"].metadata.resource_version,
    )
    clock.advance(31)
    manager.run_once()  # read again, nothing changed: nothing written
    same = World.read(store)
    assert (
        same.nodes["box"].metadata.generation,
        same.clusters["this-host"].metadata.resource_version,
    ) == versions
    # A GPU leaves the host: the next refresh sees it, the Cluster unchanged meanwhile.
    listing = saved / "nvidia-smi-L.txt"
    listing.write_text("\n".join(listing.read_text().splitlines()[:2]) + "\n")
    clock.advance(10)
    manager.run_once()
    not_yet = World.read(store).nodes["box"].spec.hardware
    assert not_yet is not None and len(not_yet.gpus) == 2  # not due yet
    clock.advance(25)
    manager.run_once()
    after = World.read(store)
    hardware = after.nodes["box"].spec.hardware
    assert hardware is not None and [g.uuid for g in hardware.gpus] == [GPU0]
    assert after.clusters["this-host"].status.gpus == 1
