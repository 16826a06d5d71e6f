"""Apply → Pods Running on a real Kubernetes control plane, for one 100-replica workload.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_kubernetes_launch.py [--replicas 100]

Starts the test control plane (tools/k8s-testenv/build must have run), makes GPU nodes
(8 GPUs each, DRA ResourceSlices, kwok), registers them as a Stratum Cluster, applies one
Workload of N one-GPU replicas and reports wall-clock seconds from the apply to: the
contract Bound in Stratum, the backend's launch done (every object server-side-applied),
every ResourceClaim allocated by kube-scheduler, every Pod Running on kwok, and the
Workload Running in Stratum with its allocations verified.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from stratum.backends.base import LaunchSpec
from stratum.backends.kubernetes.client import KubeClient
from stratum.store.objects import ObjectStore
from stratum.testing import manifests
from stratum.testing.k8s_fleet import KubeStratum, add_gpu_node, device_class
from stratum.testing.k8s_testenv import ControlPlane


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=100)
    args = parser.parse_args()
    n = args.replicas
    with tempfile.TemporaryDirectory(prefix="bench-k8s-") as tmp:
        cp = ControlPlane(Path(tmp) / "cp").start()
        try:
            kube = KubeClient(cp.kubeconfig_text(), cluster="bench")
            kube.apply(device_class())
            for i in range(math.ceil(n / 8)):
                add_gpu_node(kube, f"bench-{i:03d}", labels={"stratum.dev/rack": f"r{i // 4}"})
            store = ObjectStore.open(f"sqlite:///{tmp}/stratum.db")
            stratum = KubeStratum(store)
            stratum.register(cp.kubeconfig_text(), tenants={"bench": {}})
            stratum.until("cluster Ready", lambda w: w.clusters["k8s"].status.phase == "Ready")
            key = "bench/wide"
            launches: list[tuple[float, float]] = []
            launch = stratum.backend.launch

            def timed_launch(spec: LaunchSpec) -> None:
                start = time.monotonic()
                launch(spec)
                launches.append((start - t0, time.monotonic() - t0))

            stratum.backend.launch = timed_launch  # type: ignore[method-assign]
            t0 = time.monotonic()
            stratum.apply(
                [manifests.workload("wide", "bench", {"compute": {"gpus": 1}}, replicas=n)]
            )
            marks: dict[str, float] = {}
            while "running" not in marks:
                world = stratum.step()  # one pass: bind, launch, observe
                wl = world.workloads[key]
                now = time.monotonic() - t0
                if launches and "launched" not in marks:
                    marks["bound"], marks["launched"] = launches[0]  # launch starts on bind
                claims = kube.list("ResourceClaim", "bench")
                if (
                    "allocated" not in marks
                    and len(claims) == n
                    and all((c.get("status") or {}).get("allocation") for c in claims)
                ):
                    marks["allocated"] = now
                pods = kube.list("Pod", "bench")
                if (
                    "pods_running" not in marks
                    and len(pods) == n
                    and all((p.get("status") or {}).get("phase") == "Running" for p in pods)
                ):
                    marks["pods_running"] = now
                if wl.status.phase == "Running":
                    marks["running"] = now
                if now > 600:
                    raise TimeoutError(f"not Running after 600 s: {marks}")
            run = next(r for r in stratum.backend.observe().runs if r.key == key)
            verified = run.message.startswith("verified by the cluster's allocation")
            result = {
                "replicas": n,
                "nodes": math.ceil(n / 8),
                "seconds": {k: round(v, 2) for k, v in marks.items()},
                "verified": verified,
            }
            print(json.dumps(result, indent=2))
            store.close()
            kube.close()
        finally:
            cp.stop()


if __name__ == "__main__":
    main()
