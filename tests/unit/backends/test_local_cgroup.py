"""The replica's cgroup, written into a stand-in for /sys/fs/cgroup: v2 where the unified
hierarchy offers cpuset and memory, v1's hierarchies otherwise, none where neither can be
written (and why)."""

from __future__ import annotations

from pathlib import Path

from stratum.backends.local import cgroup


def test_cgroup_v2_enables_the_controllers_and_writes_the_limits(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    group, why = cgroup.create(
        "team.job.u.1.0",
        parent="stratum",
        cpus=[2, 3, 4],
        numa_node=1,
        memory_bytes=1 << 30,
        root=tmp_path,
    )
    assert group is not None and why == ""
    leaf = tmp_path / "stratum" / "team.job.u.1.0"
    assert group.version == 2 and group.dirs == {"cpuset": leaf, "memory": leaf}
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpuset +memory"
    assert (tmp_path / "stratum" / "cgroup.subtree_control").read_text() == "+cpuset +memory"
    assert (leaf / "cpuset.cpus").read_text() == "2-4"
    assert (leaf / "cpuset.mems").read_text() == "1"
    assert (leaf / "memory.max").read_text() == str(1 << 30)
    assert group.procs_files() == [leaf / "cgroup.procs"]


def test_cgroup_v1_fills_an_empty_parent_cpuset_before_the_replica(tmp_path: Path) -> None:
    for controller in ("cpuset", "memory"):
        (tmp_path / controller).mkdir()
        (tmp_path / controller / "cgroup.procs").write_text("")
    (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-7\n")
    (tmp_path / "cpuset" / "cpuset.mems").write_text("0-1\n")
    (tmp_path / "cpuset" / "stratum").mkdir()
    for file in ("cpuset.cpus", "cpuset.mems"):  # a new v1 cpuset starts empty
        (tmp_path / "cpuset" / "stratum" / file).write_text("")
    group, _ = cgroup.create(
        "r", parent="stratum", cpus=[1], numa_node=None, memory_bytes=512 << 20, root=tmp_path
    )
    assert group is not None and group.version == 1
    assert (tmp_path / "cpuset/stratum/cpuset.cpus").read_text() == "0-7"
    assert (tmp_path / "cpuset/stratum/r/cpuset.cpus").read_text() == "1"
    assert (tmp_path / "cpuset/stratum/r/cpuset.mems").read_text() == "0-1"
    assert (tmp_path / "memory/stratum/r/memory.limit_in_bytes").read_text() == str(512 << 20)


def test_no_cgroup_says_why(tmp_path: Path) -> None:
    assert cgroup.create("r", parent="p", cpus=None, numa_node=None, memory_bytes=None) == (
        None,
        "nothing to limit",
    )
    none, why = cgroup.create(
        "r", parent="p", cpus=[0], numa_node=None, memory_bytes=None, root=tmp_path
    )
    assert none is None and why == "no cgroup hierarchy with cpuset or memory is mounted"
    (tmp_path / "cgroup.controllers").write_text("cpuset memory")
    (tmp_path / "cgroup.subtree_control").mkdir()  # cannot be written
    none, why = cgroup.create(
        "r", parent="p", cpus=[0], numa_node=None, memory_bytes=None, root=tmp_path
    )
    assert none is None and why.startswith("cgroup not writable here")
