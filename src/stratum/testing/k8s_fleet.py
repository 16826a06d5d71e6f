"""Stratum's store and live controllers driving the kubernetes backend against a real test
control plane (stratum.testing.k8s_testenv), on the real clock: for the Kubernetes tests
and benchmark. The test plays NVIDIA's DRA driver and GPU Feature Discovery: it makes the
GPU Nodes (managed by kwok, so pods bound to them run), their labels, the DeviceClass and
the ResourceSlices that a driver would publish."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from cryptography.fernet import Fernet

from stratum.backends.kubernetes.backend import KubernetesBackend
from stratum.backends.kubernetes.client import KubeClient, KubeError, path_of
from stratum.core.clock import SystemClock
from stratum.core.secrets import Keyring
from stratum.reconcile.manager import ControllerManager, ManagerSettings
from stratum.reconcile.world import World
from stratum.server.security import system_context
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore
from stratum.testing import manifests

DRIVER = "gpu.nvidia.com"
H100 = "NVIDIA H100 80GB HBM3"
T = TypeVar("T")


def device_class() -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": DRIVER},
        "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]},
    }


def gpu_uuid(node: str, index: int) -> str:
    digest = hashlib.sha256(f"{node}/{index}".encode()).hexdigest()
    return f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def add_gpu_node(
    client: KubeClient,
    name: str,
    *,
    gpus: int = 8,
    product: str = H100,
    dra: bool = True,
    labels: Mapping[str, str] | None = None,
) -> None:
    """A kwok Node with GFD's labels, 96 CPUs, 1 TiB and `gpus` GPUs: published as DRA
    devices in a ResourceSlice (dra) or as the device plugin's nvidia.com/gpu."""
    gfd = {
        "nvidia.com/gpu.product": product.replace(" ", "-"),
        "nvidia.com/gpu.count": str(gpus),
        "nvidia.com/gpu.memory": "81559",
    }
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                **gfd,
                **(labels or {}),
            },
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "spec": {},
    }
    client.apply(node)
    capacity = {"cpu": "96", "memory": "1Ti", "pods": "250"}
    if not dra:
        capacity["nvidia.com/gpu"] = str(gpus)
    client.request(
        "PATCH",
        f"/api/v1/nodes/{name}/status",
        body={"status": {"capacity": capacity, "allocatable": capacity}},
        content_type="application/merge-patch+json",
    )
    if dra:
        client.apply(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceSlice",
                "metadata": {"name": f"{name}-gpus"},
                "spec": {
                    "driver": DRIVER,
                    "nodeName": name,
                    "pool": {"name": name, "generation": 1, "resourceSliceCount": 1},
                    "devices": [
                        {
                            "name": f"gpu-{i}",
                            "attributes": {
                                "type": {"string": "gpu"},
                                "index": {"int": i},
                                "uuid": {"string": gpu_uuid(name, i)},
                                "productName": {"string": product},
                                "architecture": {"string": "Hopper"},
                            },
                            "capacity": {"memory": {"value": "80Gi"}},
                        }
                        for i in range(gpus)
                    ],
                },
            }
        )


def taint_gpu(client: KubeClient, node: str, index: int, effect: str) -> None:
    """Taint GPU `index` of a node `add_gpu_node` made, as a DRA driver marks a sick device
    in its ResourceSlice (KEP-5055 device taints; the test control plane enables them)."""
    name = f"{node}-gpus"
    found = client.get("ResourceSlice", None, name)
    if found is None:
        raise LookupError(f"no ResourceSlice {name}")
    for device in found["spec"]["devices"]:
        if device["name"] == f"gpu-{index}":
            device["taints"] = [{"key": "gpu.nvidia.com/xid", "value": "79", "effect": effect}]
    client.request("PUT", path_of("ResourceSlice", None, name), body=found)
    stored = client.get("ResourceSlice", None, name) or {}
    if not any(d.get("taints") for d in stored["spec"]["devices"]):
        raise RuntimeError("the API server dropped the taint: is the DRADeviceTaints gate on?")


def remove_nodes(client: KubeClient, names: Iterable[str]) -> None:
    for name in names:
        client.delete("ResourceSlice", None, f"{name}-gpus")
        client.delete("Node", None, name)


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not after {timeout:.0f}s (last: {last!r})")


class KubeStratum:
    """One Stratum (store, ObjectService with a keyring, ControllerManager with the
    kubernetes backend) on the real clock; `step()` is one controller pass."""

    def __init__(self, store: ObjectStore, *, options: Mapping[str, str] | None = None) -> None:
        self.clock = SystemClock()
        store.clock = self.clock
        self.store = store
        self.keyring = Keyring((Fernet.generate_key().decode(),))
        self.service = ObjectService(store, keyring=self.keyring)
        self.backend = KubernetesBackend(clock=self.clock, options=options)
        self.manager = ControllerManager(
            store,
            {"kubernetes": self.backend},
            clock=self.clock,
            keyring=self.keyring,
            settings=ManagerSettings(telemetry_seconds=0.5, usage_flush_seconds=3600),
        )

    def apply(self, docs: Iterable[Mapping[str, Any]]) -> None:
        self.service.apply_documents([dict(d) for d in docs], ctx=system_context("test"))

    def register(
        self,
        kubeconfig: str,
        *,
        cluster: str = "k8s",
        site: str = "fra",
        tenants: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        doc = manifests.cluster(cluster, site, [])
        doc["spec"]["backend"] = "kubernetes"
        doc["spec"]["credentials"] = {"kubeconfig": kubeconfig}
        self.apply(
            [
                manifests.site(site),
                *(manifests.tenant(t, **spec) for t, spec in (tenants or {}).items()),
                doc,
            ]
        )

    def step(self) -> World:
        self.manager.run_once()
        return World.read(self.store)

    def until(self, what: str, probe: Callable[[World], object], timeout: float = 60.0) -> World:
        """Run controller passes until `probe(world)` holds; returns that world."""

        def once() -> World | None:
            try:
                world = self.step()
            except KubeError:
                return None
            return world if probe(world) else None

        return wait_for(what, once, timeout, every=0.1)
