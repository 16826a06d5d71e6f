"""`stratum cluster render` through the real CLI and a real server: the manifests a placed
Workload runs with on the kubernetes backend, made from the Workload, its Placement and the
bound Nodes; every object valid for each supported Kubernetes minor; an unplaced Workload
is a clear refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from stratum.testing import manifests
from stratum.testing.harness import LiveServer, run_cli
from stratum.testing.k8s_fleet import gpu_uuid


def _node(name: str, dra: bool) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"stratum.dev/gpu-allocation": "dra" if dra else "device-plugin"},
        },
        "spec": {
            "cluster": "fra-k8s",
            "site": "fra",
            "hardware": {
                "gpus": [
                    {
                        "index": i,
                        "model": "H100-SXM5-80GB",
                        "memoryGiB": 80,
                        "uuid": gpu_uuid(name, i),
                    }
                    for i in range(8)
                ]
            },
        },
    }


def test_render_prints_the_claims_and_pods_of_the_placement(tmp_path: Path) -> None:
    server = LiveServer(f"sqlite:///{tmp_path / 's.db'}").start()
    try:
        env = {"STRATUM_SERVER": server.url, "STRATUM_CONFIG": str(tmp_path / "cli.yaml")}
        cluster = manifests.cluster("fra-k8s", "fra", [])
        cluster["spec"]["backend"] = "kubernetes"
        wl = manifests.workload(
            "train",
            "research",
            {"compute": {"gpus": 4}, "lifecycle": {"priority": 50}},
            replicas=2,
        )
        wl["spec"]["run"] = {"command": ["torchrun"], "args": ["train.py"], "workingDir": "/w"}
        placement = {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Placement",
            "metadata": {"name": "train", "namespace": "research"},
            "spec": {
                "workload": "train",
                "attempt": 2,
                "replicas": [
                    {"replica": 0, "node": "hgx-a", "gpus": [0, 1, 2, 3]},
                    {"replica": 1, "node": "pcie-b", "gpus": [4, 5, 6, 7]},
                ],
            },
        }
        docs = [
            manifests.site("fra"),
            manifests.tenant("research", quota={"gpus": 16}),
            cluster,
            _node("hgx-a", dra=True),
            _node("pcie-b", dra=False),
            wl,
        ]
        path = tmp_path / "objs.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        applied = run_cli("apply", "-f", str(path), env=env)
        assert applied.returncode == 0, applied.stderr

        refused = run_cli("cluster", "render", "train", "-n", "research", env=env)
        assert refused.returncode == 1
        assert "Workload research/train is not placed" in refused.stderr

        path.write_text(yaml.safe_dump(placement))
        assert run_cli("apply", "-f", str(path), env=env).returncode == 0
        out = run_cli("cluster", "render", "train", "-n", "research", env=env)
        assert out.returncode == 0, out.stderr
        objs = list(yaml.safe_load_all(out.stdout))
    finally:
        server.stop()
    kinds = [o["kind"] for o in objs]
    assert kinds == [
        "Namespace",
        "ServiceAccount",
        "ResourceQuota",
        "NetworkPolicy",
        "NetworkPolicy",
        "PriorityClass",
        "ConfigMap",
        "ResourceClaim",
        "Pod",
        "Pod",
    ]
    claim = objs[7]
    assert claim["metadata"]["name"] == "train-a2-r0"
    selectors = [
        r["exactly"]["selectors"][0]["cel"]["expression"]
        for r in claim["spec"]["devices"]["requests"]
    ]
    assert selectors == [
        f'device.attributes["gpu.nvidia.com"].uuid == "{gpu_uuid("hgx-a", i)}"' for i in range(4)
    ]
    pod_b = objs[9]
    assert pod_b["spec"]["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": "4"}}
    # The LaunchSpec the controller would hand the backend: the whole run, not part of it.
    main = pod_b["spec"]["containers"][0]
    assert (main["command"], main["args"], main["workingDir"]) == (["torchrun"], ["train.py"], "/w")
    assert (
        pod_b["spec"]["priorityClassName"] == objs[5]["metadata"]["name"] == "stratum-priority-50"
    )
    assert objs[2]["spec"]["hard"]["requests.nvidia.com/gpu"] == "16"
    for minor in ("1.34", "1.37"):
        for obj in objs:
            kubernetes_validate.validate(obj, minor, strict=True)
