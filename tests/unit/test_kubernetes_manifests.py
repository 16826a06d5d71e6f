"""What the kubernetes backend would apply, without a cluster: every rendered object is valid
against the official OpenAPI schemas of each supported Kubernetes minor (1.34, DRA's GA, on),
claims name exactly the bound GPUs, pods stay on the bound node, golden manifests hold, and
a Node's labels and ResourceSlices read as the hardware they describe, unknowns said."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stratum.backends.base import LaunchSpec, ReplicaLaunch
from stratum.backends.kubernetes.backend import _check_allocation
from stratum.backends.kubernetes.inventory import Device, device_health, read_node
from stratum.backends.kubernetes.manifests import NodeTarget, render
from stratum.testing.k8s_fleet import gpu_uuid

MINORS = ("1.34", "1.35", "1.36", "1.37")
GOLDEN = Path(__file__).parent.parent / "fixtures" / "kubernetes"
DRA = NodeTarget("hgx-a", True, {i: gpu_uuid("hgx-a", i) for i in range(8)})
DRA_NO_UUID = NodeTarget("hgx-b", True, {i: None for i in range(8)})
PLUGIN = NodeTarget("pcie-1", False)
TARGETS = {"hgx-a": DRA, "hgx-b": DRA_NO_UUID, "pcie-1": PLUGIN}


def _spec(replicas: tuple[ReplicaLaunch, ...], **kw: Any) -> LaunchSpec:
    base: dict[str, Any] = {
        "key": "research/train",
        "uid": "0b7e3c1a-5f4e-4d7a-9c1e-2a6f8d9b0c11",
        "attempt": 1,
        "replicas": replicas,
        "workload_type": "training",
    }
    base.update(kw)
    return LaunchSpec(**base)


# Every contract shape the suite places: NVLink gangs, a single GPU, a GPU share, CPU only,
# a device-plugin node, a driver without uuids, services that restart, priorities < 0.
SHAPES: dict[str, LaunchSpec] = {
    "nvlink-2x4": _spec(
        (ReplicaLaunch(0, "hgx-a", (0, 1, 2, 3)), ReplicaLaunch(1, "hgx-b", (4, 5, 6, 7))),
        quota_gpus=8,
    ),
    "one-gpu-inference": _spec(
        (ReplicaLaunch(0, "hgx-a", (5,)),),
        workload_type="inference",
        image="vllm/vllm-openai:v0.6.3",
        command=("vllm", "serve"),
        env=(("MODEL", "mistral-7b"),),
        priority=100,
    ),
    "gpu-share": _spec((ReplicaLaunch(0, "hgx-a", (2,), 250),), workload_type="agent"),
    "cpu-only": _spec((ReplicaLaunch(0, "pcie-1"),), workload_type="batch", priority=-10),
    "device-plugin-2": _spec((ReplicaLaunch(0, "pcie-1", (0, 1)),), quota_gpus=0),
    "eight-gpus-no-uuid": _spec((ReplicaLaunch(0, "hgx-b", tuple(range(8))),), attempt=3),
    "numa-pinned-with-nic": _spec(
        (
            ReplicaLaunch(
                0,
                "hgx-a",
                (0, 1),
                cpu_set="0-15",
                numa_node=0,
                cpu_milli=16_000,
                memory_mib=131_072,
                nic="mlx5_0",
            ),
        ),
        command=("torchrun",),
        args=("--nproc-per-node", "2", "train.py"),
        working_dir="/workspace",
        restart_policy="OnFailure",
        grace_period_seconds=45.5,
    ),
    "mig-slice": _spec(
        (ReplicaLaunch(0, "hgx-a", (3,), mig_instance="3g.40gb on GPU 3 slots 0-3"),),
        workload_type="inference",
        mig_profile="3g.40gb",
        restart_policy="Always",
    ),
    "mig-slice-device-plugin": _spec(
        (ReplicaLaunch(0, "pcie-1", (1,), mig_instance="1g.10gb on GPU 1 slots 6-6"),),
        workload_type="inference",
        mig_profile="1g.10gb",
    ),
}


def _render(name: str) -> list[dict[str, Any]]:
    spec = SHAPES[name]
    return render(spec, TARGETS, priority=spec.priority, quota_gpus=spec.quota_gpus)


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_rendered_object_is_valid_for_every_supported_minor(shape: str, minor: str) -> None:
    for obj in _render(shape):
        kubernetes_validate.validate(obj, minor, strict=True)


def test_the_schema_check_is_strict_enough_to_refuse_a_wrong_field() -> None:
    pod = next(o for o in _render("nvlink-2x4") if o["kind"] == "Pod")
    bad = copy.deepcopy(pod)
    bad["spec"]["resourceClaim"] = bad["spec"].pop("resourceClaims")  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.35", strict=True)


def test_claims_name_exactly_the_bound_gpus_and_pods_stay_on_the_bound_node() -> None:
    objs = _render("nvlink-2x4")
    claims = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ResourceClaim"}
    pods = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Pod"}
    assert sorted(claims) == sorted(pods) == ["train-a1-r0", "train-a1-r1"]
    r0 = claims["train-a1-r0"]["spec"]["devices"]["requests"]
    assert [r["name"] for r in r0] == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]
    assert r0[2]["exactly"]["selectors"][0]["cel"]["expression"] == (
        f'device.attributes["gpu.nvidia.com"].uuid == "{gpu_uuid("hgx-a", 2)}"'
    )
    assert all(r["exactly"]["count"] == 1 for r in r0)
    r1 = claims["train-a1-r1"]["spec"]["devices"]["requests"]  # a driver without uuids
    assert r1[0]["exactly"]["selectors"][0]["cel"]["expression"] == (
        'device.attributes["gpu.nvidia.com"].index == 4'
    )
    term = pods["train-a1-r1"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]["matchFields"][0]
    assert term == {"key": "metadata.name", "operator": "In", "values": ["hgx-b"]}
    assert pods["train-a1-r0"]["spec"]["resourceClaims"] == [
        {"name": "gpus", "resourceClaimName": "train-a1-r0"}
    ]
    assert pods["train-a1-r0"]["spec"]["priorityClassName"] == "stratum-priority-0"


def _pod_of(shape: str) -> dict[str, Any]:
    return next(o for o in _render(shape) if o["kind"] == "Pod")


def _not_enforced(pod: dict[str, Any]) -> dict[str, str]:
    notes = pod["metadata"]["annotations"].get("stratum.dev/not-enforced", "{}")
    return dict(json.loads(notes))


def test_a_device_plugin_node_gets_gpu_limits_and_says_the_kubelet_chooses() -> None:
    objs = _render("device-plugin-2")
    assert not [o for o in objs if o["kind"] == "ResourceClaim"]
    pod = _pod_of("device-plugin-2")
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": "2"}}
    assert _not_enforced(pod) == {
        "compute.gpus": "2 GPU(s) by the device plugin (nvidia.com/gpu): the kubelet chooses "
        "which; Stratum bound GPU(s) 0,1"
    }
    assert _not_enforced(_pod_of("nvlink-2x4")) == {}  # every clause is in the claim


def test_the_run_spec_and_the_bound_cpu_and_memory_are_in_the_pod() -> None:
    pod = _pod_of("numa-pinned-with-nic")
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["torchrun"]
    assert container["args"] == ["--nproc-per-node", "2", "train.py"]
    assert container["workingDir"] == "/workspace"
    assert {"name": "NCCL_IB_HCA", "value": "mlx5_0"} in container["env"]
    # requests = limits: a Guaranteed pod, the only kind the kubelet gives whole cores
    assert container["resources"] == {
        "requests": {"cpu": "16000m", "memory": "131072Mi"},
        "limits": {"cpu": "16000m", "memory": "131072Mi"},
        "claims": [{"name": "gpus"}],
    }
    assert pod["spec"]["restartPolicy"] == "OnFailure"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 46  # never cut short
    notes = _not_enforced(pod)
    assert sorted(notes) == ["compute.cpuSet", "compute.numaNode", "network.nic"]
    assert "CPUs 0-15 are the kubelet's to choose" in notes["compute.cpuSet"]
    assert "Topology Manager" in notes["compute.numaNode"]
    assert "NIC mlx5_0" in notes["network.nic"]


def test_a_share_or_a_mig_slice_never_claims_its_whole_gpu() -> None:
    """A claim holds its device whole: a second share of the same GPU could never be
    allocated. A share asks for a time-sliced GPU, a MIG slice for its profile."""
    for shape, resource in (
        ("gpu-share", "nvidia.com/gpu.shared"),
        ("mig-slice", "nvidia.com/mig-3g.40gb"),
        ("mig-slice-device-plugin", "nvidia.com/mig-1g.10gb"),
    ):
        objs = _render(shape)
        assert not [o for o in objs if o["kind"] == "ResourceClaim"], shape
        pod = _pod_of(shape)
        assert "resourceClaims" not in pod["spec"], shape
        assert pod["spec"]["containers"][0]["resources"] == {"limits": {resource: "1"}}, shape
    share = _not_enforced(_pod_of("gpu-share"))["compute.gpuMilli"]
    assert "no fraction of a GPU" in share and "250/1000" in share
    mig = _not_enforced(_pod_of("mig-slice"))["compute.migProfile"]
    assert mig.endswith("the kubelet chooses which; Stratum bound 3g.40gb on GPU 3 slots 0-3")
    assert _pod_of("mig-slice")["spec"]["restartPolicy"] == "Always"


@pytest.mark.parametrize("shape", ["nvlink-2x4", "device-plugin-2", "mig-slice"])
def test_golden_manifests(shape: str) -> None:
    golden = list(yaml.safe_load_all((GOLDEN / f"{shape}.yaml").read_text()))
    assert _render(shape) == golden


def _slice(node: str, n: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{node}-gpus"},
        "spec": {
            "driver": "gpu.nvidia.com",
            "nodeName": node,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
            "devices": [
                {
                    "name": f"gpu-{i}",
                    "attributes": {
                        "type": {"string": "gpu"},
                        "index": {"int": i},
                        "uuid": {"string": gpu_uuid(node, i)},
                        "productName": {"string": "NVIDIA H100 80GB HBM3"},
                    },
                    "capacity": {"memory": {"value": "80Gi"}},
                }
                for i in range(n)
            ],
        },
    }


def _node(name: str, labels: dict[str, str], allocatable: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def test_a_dra_node_reads_as_its_devices_with_rack_zone_and_nvlink_from_labels() -> None:
    labels = {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "nvidia.com/gpu.count": "8",
        "stratum.dev/rack": "r7",
        "stratum.dev/nvlink-domain": "hgx-a-nvswitch",
        "topology.kubernetes.io/zone": "fra-1a",
    }
    reading = read_node(
        _node("hgx-a", labels, {"cpu": "96", "memory": "1Ti"}), [_slice("hgx-a", 8)], {}
    )
    hw = reading.hardware
    assert reading.dra and sorted(reading.devices) == list(range(8))
    assert reading.devices[3] == Device("gpu.nvidia.com", "hgx-a", "gpu-3", 3, gpu_uuid("hgx-a", 3))
    assert [g.model for g in hw.gpus] == ["H100-SXM5-80GB"] * 8
    assert hw.gpus[0].memory_gib == 80.0
    assert hw.nvlink is not None and hw.nvlink.kind == "nvswitch"
    assert hw.gpus[7].nvlink_peers == [0, 1, 2, 3, 4, 5, 6]
    assert (reading.rack, reading.labels) == ("r7", {"topology.kubernetes.io/zone": "fra-1a"})
    assert hw.memory_gib == 1024.0
    assert any("NUMA layout unknown" in n for n in reading.notes)


def test_a_node_without_slices_or_operator_labels_says_what_is_unknown() -> None:
    labels = {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "2"}
    reading = read_node(
        _node("pcie-1", labels, {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": "2"}), [], {}
    )
    assert not reading.dra and len(reading.hardware.gpus) == 2
    assert reading.hardware.nvlink is None and reading.rack == ""
    notes = " | ".join(reading.notes)
    assert "rack unknown" in notes
    assert "NVLink unknown" in notes
    assert "the kubelet chooses which device" in notes


def test_a_gpus_health_is_what_its_dra_driver_says_by_device_taints() -> None:
    labels = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"}
    node = _node("hgx-a", labels, {"cpu": "96", "memory": "1Ti"})
    published = _slice("hgx-a", 8)
    reading = read_node(node, [published], {})
    assert device_health(reading, [published]) == dict.fromkeys(range(8), "Healthy")
    devices = published["spec"]["devices"]
    devices[1]["taints"] = [{"key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoExecute"}]
    devices[2]["taints"] = [{"key": "gpu.nvidia.com/ecc", "effect": "NoSchedule"}]
    devices[3]["taints"] = [{"key": "gpu.nvidia.com/temp", "effect": "None"}]
    del devices[4]  # no longer published
    health = device_health(reading, [published, _slice("hgx-b", 8)])
    assert [health[i] for i in range(6)] == [
        "Healthy",
        "Failed",
        "Degraded",
        "Degraded",
        "Unknown",
        "Healthy",
    ]
    plugin = read_node(
        _node("pcie-1", labels, {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": "2"}), [], {}
    )
    assert device_health(plugin, []) == {}  # the device plugin names no sick GPU


def test_an_allocation_is_checked_against_the_bound_devices() -> None:
    devices = {i: Device("gpu.nvidia.com", "hgx-a", f"gpu-{i}", i) for i in range(8)}

    def claim(*names: str) -> dict[str, Any]:
        results = [
            {"request": n, "driver": "gpu.nvidia.com", "pool": "hgx-a", "device": n} for n in names
        ]
        return {
            "metadata": {"name": "train-a1-r0"},
            "status": {"allocation": {"devices": {"results": results}}},
        }

    assert _check_allocation({"metadata": {"name": "c"}}, (0, 1), devices) is None
    ok, text = _check_allocation(claim("gpu-0", "gpu-1"), (0, 1), devices) or (False, "")
    assert ok and text == "claim train-a1-r0 allocated hgx-a/gpu-0, hgx-a/gpu-1"
    ok, text = _check_allocation(claim("gpu-0", "gpu-5"), (0, 1), devices) or (True, "")
    assert not ok
    assert text == (
        "claim train-a1-r0 was allocated hgx-a/gpu-0, hgx-a/gpu-5 but Stratum bound "
        "hgx-a/gpu-0, hgx-a/gpu-1"
    )


def _backend_with_run(pending_timeout: float = 300.0) -> tuple[Any, Any, Any]:
    from datetime import timedelta

    from stratum.backends.kubernetes.backend import KubernetesBackend, _Cluster, _Run
    from stratum.testing.clock import FakeClock

    clock = FakeClock()
    backend = KubernetesBackend(
        clock=clock, options={"pendingTimeoutSeconds": str(pending_timeout)}
    )
    labels = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"}
    reading = read_node(
        _node("hgx-a", labels, {"cpu": "96", "memory": "1Ti"}), [_slice("hgx-a", 8)], {}
    )
    cluster = _Cluster("k8s", "fra", client=None, nodes={"hgx-a": reading})  # type: ignore[arg-type]
    spec = _spec((ReplicaLaunch(0, "hgx-a", (0, 1)),))
    run = _Run(spec, "k8s", clock.now())
    clock.advance(timedelta(seconds=1).total_seconds())
    return backend, cluster, run


def _pod(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "train-a1-r0", "labels": {"stratum.dev/replica": "0"}},
        "status": {"phase": phase, **status},
    }


def test_a_pending_pod_carries_the_clusters_reason_and_past_the_timeout_is_a_contract_problem() -> (
    None
):
    backend, cluster, run = _backend_with_run(pending_timeout=60)
    pod = _pod(
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 cannot allocate all claims.",
            }
        ],
    )
    nodes: dict[str, Any] = {"hgx-a": {}}
    state = backend._run_state(cluster, run, [pod], {}, nodes, backend.clock.now())
    assert state.phase == "Starting"
    assert [r.phase for r in state.replicas] == ["Starting"]
    assert state.message == (
        "replica 0 pod Pending: Unschedulable: 0/3 nodes are available: 3 cannot allocate "
        "all claims."
    )
    backend.clock.advance(120)
    state = backend._run_state(cluster, run, [pod], {}, nodes, backend.clock.now())
    assert state.phase == "Failed"
    assert state.message.startswith(
        "contract problem: placed 121s ago, still replica 0 pod Pending"
    )


def test_exit_codes_and_a_lost_node_flow_back() -> None:
    backend, cluster, run = _backend_with_run()
    failed = _pod(
        "Failed",
        containerStatuses=[
            {"restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
        ],
    )
    now = backend.clock.now()
    state = backend._run_state(cluster, run, [failed], {}, {"hgx-a": {}}, now)
    assert (state.phase, state.message) == ("Failed", "replica 0 exited with code 137 (OOMKilled)")
    (replica,) = state.replicas
    assert (replica.phase, replica.exit_code, replica.node) == ("Failed", 137, "hgx-a")
    state = backend._run_state(cluster, run, [failed], {}, {}, now)
    assert (state.phase, state.message) == ("Lost", "node hgx-a left the kubernetes cluster")


def test_each_replica_carries_its_clause_checks_verified_mismatched_or_not_enforceable() -> None:
    """What the Placement's evidence shows per clause: the claim's allocation checked against
    the bound GPUs, and what the pod says the cluster decides (read from the pod itself, so a
    restarted backend says the same)."""
    backend, cluster, run = _backend_with_run()
    notes = {"compute.numaNode": "NUMA node 0: only the node's Topology Manager ..."}

    def pod(*devices: str) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
        p = _pod("Running")
        p["metadata"]["annotations"] = {"stratum.dev/not-enforced": json.dumps(notes)}
        p["spec"] = {"resourceClaims": [{"name": "gpus", "resourceClaimName": "train-a1-r0"}]}
        results = [
            {"request": d, "driver": "gpu.nvidia.com", "pool": "hgx-a", "device": d}
            for d in devices
        ]
        claim = {
            "metadata": {"name": "train-a1-r0"},
            "status": {"allocation": {"devices": {"results": results}}},
        }
        return p, {("research", "train-a1-r0"): claim}

    now = backend.clock.now()
    running, claims = pod("gpu-0", "gpu-1")
    state = backend._run_state(cluster, run, [running], claims, {"hgx-a": {}}, now)
    assert state.phase == "Running"
    assert state.message.startswith(
        "verified by the cluster's allocation: replica 0: claim train-a1-r0 allocated "
        "hgx-a/gpu-0, hgx-a/gpu-1"
    )
    checks = [(c.clause, c.state) for c in state.replicas[0].checks]
    assert checks == [("compute.gpus", "verified"), ("compute.numaNode", "not-enforceable")]
    wrong, claims = pod("gpu-0", "gpu-7")
    state = backend._run_state(cluster, run, [wrong], claims, {"hgx-a": {}}, now)
    assert state.phase == "Failed" and state.message.startswith("contract problem: claim ")
    assert state.replicas[0].checks[0].state == "mismatch"


def test_a_bad_kubeconfig_or_an_absent_api_server_is_named_without_the_secret() -> None:
    from stratum.backends.kubernetes.client import KubeClient, KubeError

    secret = "sekrit-token-0123456789"
    text = (
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        f"users: [{{name: u, user: {{token: {secret}}}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    client = KubeClient(text, cluster="edge")
    with pytest.raises(KubeError) as err:
        client.list("Node")
    assert str(err.value).startswith(
        "cluster edge: the API server at https://127.0.0.1:1 did not answer GET /api/v1/nodes"
    )
    assert secret not in str(err.value)
    client.close()
    with pytest.raises(KubeError, match=r"^cluster edge: the kubeconfig is not YAML at line 1$"):
        KubeClient("clusters: [", cluster="edge")
    with pytest.raises(KubeError, match="is not a kubeconfig"):
        KubeClient("foo: bar", cluster="edge")
