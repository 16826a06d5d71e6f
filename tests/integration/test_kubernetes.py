"""The kubernetes backend against a real control plane (kube-apiserver, kube-scheduler,
kube-controller-manager, etcd; kwok plays the kubelets): Stratum registers the cluster,
reads its Nodes and ResourceSlices, places contracts on exact GPUs, and kube-scheduler's
DRA allocation must name the very devices Stratum bound."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum.backends.kubernetes.client import KubeClient
from stratum.backends.kubernetes.manifests import MANAGED_BY
from stratum.backends.kubernetes.render import render_workload
from stratum.reconcile.world import World
from stratum.store.objects import ObjectStore
from stratum.testing import manifests
from stratum.testing.k8s_fleet import (
    KubeStratum,
    add_gpu_node,
    device_class,
    gpu_uuid,
    remove_nodes,
    taint_gpu,
    wait_for,
)
from stratum.testing.k8s_testenv import ControlPlane, bin_dir, missing_binaries

pytestmark = [
    pytest.mark.kubernetes,
    # The first test also starts the control plane (the API server takes tens of seconds
    # on a busy 2-core machine).
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        bool(missing_binaries()),
        reason=f"the k8s test control plane is not built in {bin_dir()} "
        "(tools/k8s-testenv/build; .ci/run builds it)",
    ),
]

NVLINK_CONTRACT = {
    "compute": {"gpus": 4, "models": ["H100-SXM5-80GB"]},
    "topology": {"withinReplica": "nvlink"},
}


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(tmp_path_factory.mktemp("k8s")).start()
    admin = KubeClient(cp.kubeconfig_text(), cluster="testenv")
    admin.apply(device_class())
    yield cp
    admin.close()
    cp.stop()


@pytest.fixture
def kube(control_plane: ControlPlane) -> Iterator[KubeClient]:
    """The admin's client; every node and tenant namespace a test made is removed after."""
    client = KubeClient(control_plane.kubeconfig_text(), cluster="testenv")
    yield client
    remove_nodes(client, [n["metadata"]["name"] for n in client.list("Node")])
    for ns in client.list("Namespace", selector="app.kubernetes.io/managed-by=stratum"):
        client.delete("Namespace", None, ns["metadata"]["name"])
    client.close()


@pytest.fixture
def stratum(tmp_path: Path) -> Iterator[KubeStratum]:
    store = ObjectStore.open(f"sqlite:///{tmp_path / 'stratum.db'}")
    yield KubeStratum(store)
    store.close()


def _pods(kube: KubeClient, ns: str) -> list[dict[str, Any]]:
    return kube.list("Pod", ns)


def _running(kube: KubeClient, ns: str, n: int) -> list[dict[str, Any]] | None:
    pods = _pods(kube, ns)
    ok = len(pods) == n and all(p.get("status", {}).get("phase") == "Running" for p in pods)
    return pods if ok else None


def _allocated(claim: dict[str, Any]) -> set[str]:
    results = claim["status"]["allocation"]["devices"]["results"]
    return {f"{r['pool']}/{r['device']}" for r in results}


def test_register_place_verify_run_and_delete_leaves_nothing(
    control_plane: ControlPlane, kube: KubeClient, stratum: KubeStratum
) -> None:
    for name, rack in (("hgx-a", "r1"), ("hgx-b", "r1"), ("hgx-c", "r2")):
        add_gpu_node(
            kube,
            name,
            labels={
                "stratum.dev/rack": rack,
                "stratum.dev/nvlink-domain": f"{name}-nvswitch",
                "topology.kubernetes.io/zone": f"fra-{rack}",
                "topology.kubernetes.io/region": "eu-central",
            },
        )
    stratum.register(control_plane.kubeconfig_text(), tenants={"research": {"quota": {"gpus": 8}}})
    world = stratum.until("cluster Ready", lambda w: w.clusters["k8s"].status.phase == "Ready")
    cluster = world.clusters["k8s"]
    assert (cluster.status.nodes, cluster.status.gpus) == (3, 24)
    node = world.nodes["hgx-a"]
    assert node.spec.rack == "r1"
    assert node.metadata.labels["topology.kubernetes.io/zone"] == "fra-r1"
    assert node.metadata.labels["stratum.dev/gpu-allocation"] == "dra"
    hw = node.spec.hardware
    assert hw is not None and len(hw.gpus) == 8
    assert {g.model for g in hw.gpus} == {"H100-SXM5-80GB"}
    assert hw.gpus[3].uuid == gpu_uuid("hgx-a", 3)
    assert hw.gpus[0].nvlink_domain == "hgx-a-nvswitch"

    stratum.apply([manifests.workload("train", "research", NVLINK_CONTRACT, replicas=2)])
    world = stratum.until(
        "workload Running", lambda w: w.workloads["research/train"].status.phase == "Running"
    )
    placement = world.placements["research/train"]
    bound = {
        f"train-a1-r{r.replica}": {f"{r.node}/gpu-{g}" for g in r.gpus}
        for r in placement.spec.replicas
    }
    assert sorted(len(v) for v in bound.values()) == [4, 4]
    pods = wait_for("2 pods Running on kwok", lambda: _running(kube, "research", 2))
    assert {p["spec"]["nodeName"] for p in pods} == {r.node for r in placement.spec.replicas}
    claims = kube.list("ResourceClaim", "research")
    assert sorted(c["metadata"]["name"] for c in claims) == sorted(bound)
    for claim in claims:  # kube-scheduler's choice is Stratum's, device for device
        assert _allocated(claim) == bound[claim["metadata"]["name"]]
        assert claim["status"]["reservedFor"][0]["resource"] == "pods"
    # `stratum cluster render` prints what was applied: the same claims, the same pods.
    rendered = render_workload(
        world.workloads["research/train"], placement, world.nodes, quota_gpus=8
    )
    for obj in rendered:
        if obj["kind"] in ("ResourceClaim", "Pod"):
            live = kube.get(obj["kind"], "research", obj["metadata"]["name"])
            assert live is not None
            assert obj["metadata"]["labels"].items() <= live["metadata"]["labels"].items()
            if obj["kind"] == "ResourceClaim":
                assert live["spec"] == obj["spec"]
            else:
                assert live["spec"]["affinity"] == obj["spec"]["affinity"]
                assert live["spec"]["resourceClaims"] == obj["spec"]["resourceClaims"]
    run = next(r for r in stratum.backend.observe().runs if r.key == "research/train")
    assert run.phase == "Running"
    assert run.message.startswith("verified by the cluster's allocation: replica 0: claim ")
    with stratum.store.read() as tx:
        events = [e["spec"]["message"] for e in tx.list("Event", namespace="research").items]
    assert any("verified by the cluster's allocation" in m for m in events), events
    for p in pods:  # the objects say which Workload they belong to, and who manages them
        labels = p["metadata"]["labels"]
        assert labels["stratum.dev/workload"] == "train"
        assert labels["app.kubernetes.io/managed-by"] == "stratum"
        assert p["metadata"]["ownerReferences"][0]["kind"] == "ConfigMap"
        managers = {m["manager"] for m in p["metadata"]["managedFields"]}
        assert "stratum" in managers
    # The tenant's objects are in its namespace, under its quota.
    quota = kube.get("ResourceQuota", "research", "stratum-tenant-quota")
    assert quota is not None
    assert quota["spec"]["hard"]["gpu.nvidia.com.deviceclass.resource.k8s.io/devices"] == "8"
    wait_for(
        "quota counts the 8 claimed GPUs",
        lambda: (
            (kube.get("ResourceQuota", "research", "stratum-tenant-quota") or {})
            .get("status", {})
            .get("used", {})
            .get("gpu.nvidia.com.deviceclass.resource.k8s.io/devices")
            == "8"
        ),
    )
    assert kube.get("NetworkPolicy", "research", "stratum-default-deny") is not None
    others = [
        p
        for p in kube.list("Pod", selector="app.kubernetes.io/managed-by=stratum")
        if p["metadata"]["namespace"] != "research"
    ]
    assert others == []

    with stratum.store.read() as tx:
        synced = [e for e in tx.list("Event").items if e["spec"]["reason"] == "NodesRegistered"]
    # The nodes' heartbeats and the pods do not count as inventory changes: no re-sync churn.
    assert sum(e["spec"].get("count", 1) for e in synced) <= 3, synced
    stratum.service.delete("Workload", "research", "train", ctx=_ctx())
    stratum.until("workload gone", lambda w: "research/train" not in w.workloads)
    wait_for(
        "nothing left in the namespace",
        lambda: (
            not _pods(kube, "research")
            and not kube.list("ResourceClaim", "research")
            and not kube.list(
                "ConfigMap", "research", selector="app.kubernetes.io/managed-by=stratum"
            )
        ),
        timeout=60,
    )


def _ctx() -> Any:
    from stratum.server.security import system_context

    return system_context("test")


def test_a_deleted_node_violates_the_contract_and_it_is_placed_again(
    control_plane: ControlPlane, kube: KubeClient, stratum: KubeStratum
) -> None:
    for name in ("dx-a", "dx-b"):
        add_gpu_node(kube, name, labels={"stratum.dev/nvlink-domain": f"{name}-nvswitch"})
    stratum.register(control_plane.kubeconfig_text(), tenants={"ops": {}})
    stratum.until("cluster Ready", lambda w: w.clusters["k8s"].status.phase == "Ready")
    stratum.apply([manifests.workload("svc", "ops", NVLINK_CONTRACT, type="inference")])
    world = stratum.until("Running", lambda w: w.workloads["ops/svc"].status.phase == "Running")
    first = world.placements["ops/svc"].spec.replicas[0].node
    remove_nodes(kube, [first])

    def replaced(w: World) -> bool:
        wl, p = w.workloads["ops/svc"], w.placements.get("ops/svc")
        return wl.status.phase == "Running" and p is not None and p.spec.replicas[0].node != first

    world = stratum.until("re-placed on the other node", replaced, timeout=90)
    wl = world.workloads["ops/svc"]
    assert any(first in v.message for v in wl.status.violations)
    assert first not in world.nodes  # the inventory follows the cluster: its Node is gone
    pods = wait_for("the new pod Running", lambda: _running(kube, "ops", 1))
    assert pods[0]["spec"]["nodeName"] != first
    add_gpu_node(kube, "dx-c", gpus=4)  # a node that joins is seen without a Cluster edit
    world = stratum.until("the new node registered", lambda w: "dx-c" in w.nodes)
    assert world.clusters["k8s"].status.gpus == 12


def test_a_gpu_its_dra_driver_taints_is_failed_and_the_contract_moves_off_it(
    control_plane: ControlPlane, kube: KubeClient, stratum: KubeStratum
) -> None:
    """A DRA driver marks a sick GPU with a device taint: NoExecute (its pods are evicted)
    is a failed GPU, and the contract holding it is placed again on healthy devices;
    NoSchedule (no new claims) is a degraded one, seen on the Node, and nothing moves."""
    add_gpu_node(kube, "tx-a", labels={"stratum.dev/nvlink-domain": "tx-a-nvswitch"})
    stratum.register(control_plane.kubeconfig_text(), tenants={"gpu-ops": {}})
    stratum.until("cluster Ready", lambda w: w.clusters["k8s"].status.phase == "Ready")
    stratum.apply([manifests.workload("svc", "gpu-ops", NVLINK_CONTRACT, type="inference")])
    world = stratum.until("Running", lambda w: w.workloads["gpu-ops/svc"].status.phase == "Running")
    held = world.placements["gpu-ops/svc"].spec.replicas[0].gpus
    sick, spare = held[0], next(i for i in range(8) if i not in held)
    taint_gpu(kube, "tx-a", spare, "NoSchedule")

    def health(w: World, index: int) -> str:
        return next(g.health for g in w.nodes["tx-a"].status.gpus if g.index == index)

    world = stratum.until("the spare GPU Degraded", lambda w: health(w, spare) == "Degraded")
    assert world.placements["gpu-ops/svc"].spec.replicas[0].gpus == held  # nothing moved
    taint_gpu(kube, "tx-a", sick, "NoExecute")

    def moved(w: World) -> bool:
        wl, p = w.workloads["gpu-ops/svc"], w.placements.get("gpu-ops/svc")
        return (
            wl.status.phase == "Running" and p is not None and sick not in p.spec.replicas[0].gpus
        )

    world = stratum.until("re-placed off the failed GPU", moved, timeout=90)
    assert health(world, sick) == "Failed"
    gpus = world.placements["gpu-ops/svc"].spec.replicas[0].gpus
    assert spare not in gpus  # nor on the degraded one
    wl = world.workloads["gpu-ops/svc"]
    assert any(f"GPU {sick} on tx-a" in v.message for v in wl.status.violations)
    pods = wait_for("the new pod Running", lambda: _running(kube, "gpu-ops", 1))
    claim = kube.get(
        "ResourceClaim",
        "gpu-ops",
        pods[0]["spec"]["resourceClaims"][0].get("resourceClaimName", ""),
    )
    assert claim is not None and _allocated(claim) == {f"tx-a/gpu-{g}" for g in gpus}


def test_a_tenant_namespace_deleted_under_stratum_is_made_anew_and_the_work_runs_again(
    control_plane: ControlPlane, kube: KubeClient, stratum: KubeStratum
) -> None:
    add_gpu_node(kube, "ns-a", labels={"stratum.dev/nvlink-domain": "ns-a-nvswitch"})
    stratum.register(control_plane.kubeconfig_text(), tenants={"lab": {}})
    stratum.until("cluster Ready", lambda w: w.clusters["k8s"].status.phase == "Ready")
    stratum.apply([manifests.workload("svc", "lab", NVLINK_CONTRACT, type="inference")])
    stratum.until("Running", lambda w: w.workloads["lab/svc"].status.phase == "Running")
    first = wait_for("the pod Running", lambda: _running(kube, "lab", 1))[0]
    kube.delete("Namespace", None, "lab")  # an operator's mistake, or a cleanup script's

    def relaunched(w: World) -> bool:
        wl = w.workloads["lab/svc"]
        return wl.status.phase == "Running" and (wl.status.attempt or 0) >= 2

    world = stratum.until("launched again", relaunched, timeout=120)
    violation = world.workloads["lab/svc"].status.violations[-1].message
    assert "was deleted from the cluster, not by Stratum" in violation, violation
    pods = wait_for(
        "a new pod Running in the namespace made anew", lambda: _running(kube, "lab", 1)
    )
    assert pods[0]["metadata"]["uid"] != first["metadata"]["uid"]
    assert kube.get("ResourceQuota", "lab", "stratum-tenant-quota") is not None
    assert pods[0]["spec"]["nodeName"] == "ns-a"


def test_api_server_restart_mid_launch_converges_without_duplicate_pods(
    control_plane: ControlPlane, kube: KubeClient, stratum: KubeStratum
) -> None:
    for name in ("rs-a", "rs-b"):
        add_gpu_node(kube, name, labels={"stratum.dev/nvlink-domain": f"{name}-nvswitch"})
    stratum.register(control_plane.kubeconfig_text(), tenants={"batch": {}})
    stratum.until("cluster Ready", lambda w: w.clusters["k8s"].status.phase == "Ready")
    # The API server goes away in the middle of the launch: after the claims, before the
    # first Pod is applied.
    cluster = stratum.backend._clusters["k8s"]
    real_apply = cluster.client.apply
    crashed: list[str] = []

    def apply(obj: Any) -> dict[str, Any]:
        if obj["kind"] == "Pod" and not crashed:
            crashed.append(obj["metadata"]["name"])
            control_plane.stop_apiserver()
        return real_apply(obj)

    cluster.client.apply = apply  # type: ignore[method-assign]
    stratum.apply([manifests.workload("job", "batch", NVLINK_CONTRACT, replicas=2)])
    stratum.until("Bound", lambda w: w.workloads["batch/job"].status.phase == "Bound")
    assert crashed == ["job-a1-r0"]
    assert control_plane.api_ready() is False
    control_plane.start_apiserver()
    stratum.until(
        "Running", lambda w: w.workloads["batch/job"].status.phase == "Running", timeout=120
    )
    pods = wait_for("2 pods Running", lambda: _running(kube, "batch", 2), timeout=60)
    assert sorted(p["metadata"]["name"] for p in pods) == ["job-a1-r0", "job-a1-r1"]
    claims = kube.list("ResourceClaim", "batch")
    assert sorted(c["metadata"]["name"] for c in claims) == ["job-a1-r0", "job-a1-r1"]


def test_wrong_credentials_are_a_clear_error_on_the_cluster_and_never_logged(
    control_plane: ControlPlane,
    kube: KubeClient,
    stratum: KubeStratum,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "wrong-token-" + "7" * 30
    caplog.set_level(logging.DEBUG)
    stratum.register(control_plane.kubeconfig_text(token=secret))
    world = stratum.until(
        "cluster Degraded", lambda w: w.clusters["k8s"].status.phase == "Degraded"
    )
    condition = world.clusters["k8s"].status.conditions[0]
    assert "credentials were refused (401 Unauthorized)" in condition.message
    assert control_plane.server in condition.message
    assert secret not in condition.message
    assert secret not in caplog.text
    with stratum.store.read() as tx:
        stored = str(tx.list("Event").items) + str(tx.list("Cluster").items)
    assert secret not in stored


def test_a_node_without_dra_falls_back_to_the_device_plugin_and_says_so(
    control_plane: ControlPlane, kube: KubeClient, stratum: KubeStratum
) -> None:
    add_gpu_node(kube, "dp-a", gpus=2, dra=False)
    stratum.register(control_plane.kubeconfig_text(), tenants={"lab": {}})
    world = stratum.until("cluster Ready", lambda w: w.clusters["k8s"].status.phase == "Ready")
    assert world.nodes["dp-a"].metadata.labels["stratum.dev/gpu-allocation"] == "device-plugin"
    stratum.apply([manifests.workload("nb", "lab", {"compute": {"gpus": 1}}, type="agent")])
    stratum.until("Running", lambda w: w.workloads["lab/nb"].status.phase == "Running")
    pod = wait_for("pod Running", lambda: _running(kube, "lab", 1))[0]
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert set(resources["limits"]) == {"cpu", "memory", "nvidia.com/gpu"}  # + what was bound
    assert resources["requests"] == resources["limits"]
    assert pod["status"]["qosClass"] == "Guaranteed"  # as the API server classes it
    said = json.loads(pod["metadata"]["annotations"]["stratum.dev/not-enforced"])
    assert "the kubelet chooses which" in said["compute.gpus"]
    run = next(r for r in stratum.backend.observe().runs if r.key == "lab/nb")
    assert "the kubelet chooses which" in run.message
    # ... and the Placement's evidence names the clause Kubernetes does not hold to the bound GPU
    placement = stratum.until(
        "the clause in the evidence",
        lambda w: any(e.host == "not-enforceable" for e in w.placements["lab/nb"].spec.evidence),
    ).placements["lab/nb"]
    said_here = {e.clause: e for e in placement.spec.evidence if e.host == "not-enforceable"}
    # The GPU, and the CPUs and NUMA node Stratum bound, which only the kubelet chooses.
    assert sorted(said_here) == ["compute.cpuSet", "compute.gpus", "compute.numaNode"]
    assert all(e.holds for e in said_here.values())
    assert said_here["compute.gpus"].message.startswith(
        "replica 0 on dp-a: 1 GPU(s) by the device plugin"
    )
    assert not kube.list("ResourceClaim", "lab")
    assert MANAGED_BY["app.kubernetes.io/managed-by"] == "stratum"
