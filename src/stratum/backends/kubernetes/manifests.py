"""The Kubernetes objects that run one placement, as plain dicts (pure; `stratum cluster
render` prints them, the backend server-side-applies them).

Per tenant (its Stratum namespace is the Kubernetes namespace): the Namespace, a
ServiceAccount the pods run as, a ResourceQuota (the tenant's GPU quota, counted both as
DRA devices of the GPU device class and as device-plugin GPUs), a default-deny
NetworkPolicy with one that lets the tenant's own pods talk to each other, and one
PriorityClass per priority level (preemptionPolicy Never: Stratum decides preemption).

Per workload: an anchor ConfigMap that owns everything else (deleting it lets the garbage
collector remove the rest), and per replica a ResourceClaim whose requests name exactly
the bound GPUs (one request per GPU, a CEL selector on the device's uuid, or its index
when the driver publishes no uuid) and a Pod held to the bound node by node affinity on
`metadata.name`, with the bound CPU and memory as requests equal to limits (a Guaranteed
pod, which the kubelet's CPU and Topology Managers need to give it whole cores on one NUMA
node). A node without DRA devices gets `nvidia.com/gpu` limits instead of a claim, a MIG
slice the device plugin's `nvidia.com/mig-PROFILE`, a GPU share a time-sliced GPU: then
the kubelet chooses the device, and `not_enforced` says so per clause (the pod's
`stratum.dev/not-enforced` annotation and the run's evidence).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from stratum.backends.base import LaunchSpec, ReplicaLaunch

FIELD_MANAGER = "stratum"
MANAGED_BY = {"app.kubernetes.io/managed-by": "stratum"}
WORKLOAD_LABEL = "stratum.dev/workload"
UID_LABEL = "stratum.dev/workload-uid"
ATTEMPT_LABEL = "stratum.dev/attempt"
REPLICA_LABEL = "stratum.dev/replica"
KEY_ANNOTATION = "stratum.dev/workload-key"
# What a backend that restarted reads back to adopt the run: the bound node and GPUs.
NODE_ANNOTATION = "stratum.dev/node"
GPUS_ANNOTATION = "stratum.dev/gpus"
REPLICAS_ANNOTATION = "stratum.dev/replicas"
SERVICE_ACCOUNT = "stratum-workload"
QUOTA_NAME = "stratum-tenant-quota"
DEFAULT_IMAGE = "registry.k8s.io/pause:3.10"
GPU_RESOURCE = "nvidia.com/gpu"
# What NVIDIA's device plugin advertises for time-sliced GPUs (renameByDefault: true).
SHARED_GPU_RESOURCE = "nvidia.com/gpu.shared"
# NVIDIA's device plugin in its mixed MIG strategy advertises each profile as a resource.
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
NOT_ENFORCED_ANNOTATION = "stratum.dev/not-enforced"
CLAIM_REF = "gpus"
# How one replica's GPUs reach its pod: a DRA claim naming exactly the bound GPUs, or a
# device-plugin resource whose device the kubelet chooses (whole GPUs, a MIG profile, a
# time-sliced GPU for a share).
GpuRoute = Literal["none", "claim", "device-plugin", "mig", "shared"]


@dataclass(frozen=True, slots=True)
class NodeTarget:
    """A bound node as the cluster knows it: its Kubernetes name, and per GPU index the
    DRA device (uuid or None) when the node publishes ResourceSlices; empty: device plugin."""

    k8s_name: str
    dra: bool
    uuids: Mapping[int, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    device_class: str = "gpu.nvidia.com"
    driver: str = "gpu.nvidia.com"
    default_image: str = DEFAULT_IMAGE
    shared_gpu_resource: str = SHARED_GPU_RESOURCE


def dns_label(text: str, limit: int = 63) -> str:
    """`text` as a DNS-1123 label of at most `limit` characters; long ones keep a hash."""
    clean = "".join(c if c.isalnum() or c == "-" else "-" for c in text.lower()).strip("-")
    if len(clean) <= limit:
        return clean or "x"
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{clean[: limit - 9].rstrip('-')}-{digest}"


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def priority_class_name(priority: int) -> str:
    return f"stratum-priority-{'m' if priority < 0 else ''}{abs(priority)}"


def anchor_name(workload: str) -> str:
    return dns_label(f"stratum-{workload}", 253)


def replica_name(workload: str, attempt: int, replica: int) -> str:
    """Pods and claims of one attempt: a relaunch (a new attempt) never reuses a name, and
    the same attempt always maps to the same name (so a retried launch adopts)."""
    return dns_label(f"{workload}-a{attempt}-r{replica}")


def workload_labels(spec: LaunchSpec) -> dict[str, str]:
    _, name = split_key(spec.key)
    return {
        **MANAGED_BY,
        WORKLOAD_LABEL: dns_label(name),
        UID_LABEL: dns_label(spec.uid) if spec.uid else "none",
        ATTEMPT_LABEL: str(spec.attempt),
    }


def tenant_objects(
    namespace: str,
    priorities: tuple[int, ...] = (0,),
    quota_gpus: int | None = None,
    options: RenderOptions = RenderOptions(),
) -> list[dict[str, Any]]:
    """The tenant's namespace and what isolates it (applied before its first workload)."""
    hard: dict[str, str] = {}
    if quota_gpus is not None:
        hard[f"{options.device_class}.deviceclass.resource.k8s.io/devices"] = str(quota_gpus)
        hard[f"requests.{GPU_RESOURCE}"] = str(quota_gpus)
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {**MANAGED_BY, "stratum.dev/tenant": namespace},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": MANAGED_BY},
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": QUOTA_NAME, "namespace": namespace, "labels": MANAGED_BY},
            "spec": {"hard": hard},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "stratum-default-deny",
                "namespace": namespace,
                "labels": MANAGED_BY,
            },
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": "stratum-same-tenant",
                "namespace": namespace,
                "labels": MANAGED_BY,
            },
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [{"to": [{"podSelector": {}}]}],
            },
        },
    ]
    for p in sorted(set(priorities)):
        objects.append(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": priority_class_name(p), "labels": MANAGED_BY},
                "value": p,
                "globalDefault": False,
                "preemptionPolicy": "Never",
                "description": f"Stratum priority {p}; Stratum decides preemption",
            }
        )
    return objects


def anchor_object(spec: LaunchSpec, replicas: Mapping[int, str]) -> dict[str, Any]:
    """The ConfigMap that owns the workload's objects and records what was bound."""
    namespace, name = split_key(spec.key)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": anchor_name(name),
            "namespace": namespace,
            "labels": workload_labels(spec),
            "annotations": {KEY_ANNOTATION: spec.key},
        },
        "data": {
            "key": spec.key,
            "uid": spec.uid,
            "attempt": str(spec.attempt),
            **{f"replica-{r}": where for r, where in sorted(replicas.items())},
        },
    }


def _owner(anchor: Mapping[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """`ownerReferences` to the anchor once it exists (has a uid); nothing before."""
    if anchor is None or not anchor.get("metadata", {}).get("uid"):
        return {}
    meta = anchor["metadata"]
    return {
        "ownerReferences": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": meta["name"],
                "uid": meta["uid"],
                "blockOwnerDeletion": False,
            }
        ]
    }


def device_selector(driver: str, index: int, uuid: str | None) -> str:
    """The CEL expression that names exactly one GPU of the bound node."""
    if uuid:
        return f'device.attributes["{driver}"].uuid == "{uuid}"'
    return f'device.attributes["{driver}"].index == {index}'


def request_name(index: int) -> str:
    return f"gpu-{index}"


def claim_object(
    spec: LaunchSpec,
    replica: ReplicaLaunch,
    target: NodeTarget,
    anchor: Mapping[str, Any] | None = None,
    options: RenderOptions = RenderOptions(),
) -> dict[str, Any]:
    namespace, name = split_key(spec.key)
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "name": replica_name(name, spec.attempt, replica.replica),
            "namespace": namespace,
            "labels": {**workload_labels(spec), REPLICA_LABEL: str(replica.replica)},
            "annotations": {KEY_ANNOTATION: spec.key, NODE_ANNOTATION: replica.node},
            **_owner(anchor),
        },
        "spec": {
            "devices": {
                "requests": [
                    {
                        "name": request_name(g),
                        "exactly": {
                            "deviceClassName": options.device_class,
                            "allocationMode": "ExactCount",
                            "count": 1,
                            "selectors": [
                                {
                                    "cel": {
                                        "expression": device_selector(
                                            options.driver, g, target.uuids.get(g)
                                        )
                                    }
                                }
                            ],
                        },
                    }
                    for g in replica.gpus
                ]
            }
        },
    }


def gpu_route(spec: LaunchSpec, replica: ReplicaLaunch, target: NodeTarget) -> GpuRoute:
    """The one rule for how a replica's GPUs are asked for (see GpuRoute). A share and a
    MIG slice never take a DRA claim: a claim holds its whole device, so a second share of
    the same GPU could never be allocated."""
    if spec.mig_profile and (replica.gpus or replica.mig_instance):
        return "mig"
    if not replica.gpus:
        return "none"
    if replica.gpu_milli:
        return "shared"
    return "claim" if target.dra else "device-plugin"


def not_enforced(
    spec: LaunchSpec,
    replica: ReplicaLaunch,
    target: NodeTarget,
    options: RenderOptions = RenderOptions(),
) -> dict[str, str]:
    """Per contract clause, what the cluster rather than Stratum decides for this replica,
    and why: Kubernetes cannot express it per pod. Empty when every clause is in the pod."""
    notes: dict[str, str] = {}
    route = gpu_route(spec, replica, target)
    bound = ",".join(str(g) for g in replica.gpus)
    if route == "device-plugin":
        notes["compute.gpus"] = (
            f"{len(replica.gpus)} GPU(s) by the device plugin ({GPU_RESOURCE}): the kubelet "
            f"chooses which; Stratum bound GPU(s) {bound}"
        )
    elif route == "mig":
        notes["compute.migProfile"] = (
            f"one {spec.mig_profile} instance by the device plugin "
            f"({MIG_RESOURCE_PREFIX}{spec.mig_profile}): the kubelet chooses which; Stratum "
            f"bound {replica.mig_instance or 'GPU ' + bound}"
        )
    elif route == "shared":
        notes["compute.gpuMilli"] = (
            f"Kubernetes has no fraction of a GPU: the pod asks for one time-sliced GPU "
            f"({options.shared_gpu_resource}) the kubelet chooses, and nothing holds it to "
            f"{replica.gpu_milli}/1000 (Stratum bound GPU {bound})"
        )
    if replica.cpu_set:
        notes["compute.cpuSet"] = (
            f"CPUs {replica.cpu_set} are the kubelet's to choose: with its CPU Manager's "
            "static policy a Guaranteed pod (requests = limits, as rendered) gets whole cores "
            "of its own, but not named ones"
        )
    if replica.numa_node is not None:
        notes["compute.numaNode"] = (
            f"NUMA node {replica.numa_node}: only the node's Topology Manager "
            "(single-numa-node policy) aligns a pod's CPUs, memory and devices, and it picks "
            "the NUMA node itself"
        )
    if replica.nic:
        notes["network.nic"] = (
            f"NIC {replica.nic}: a pod gets the node's pod network; a named RDMA NIC needs an "
            f"SR-IOV or DRA network driver Stratum does not drive (NCCL_IB_HCA={replica.nic} "
            "is set as a hint)"
        )
    return notes


def container_resources(
    spec: LaunchSpec,
    replica: ReplicaLaunch,
    target: NodeTarget,
    options: RenderOptions = RenderOptions(),
) -> dict[str, Any]:
    """The bound CPU and memory as requests equal to limits, and the GPUs by their route."""
    requests: dict[str, str] = {}
    if replica.cpu_milli:
        requests["cpu"] = f"{replica.cpu_milli}m"
    if replica.memory_mib:
        requests["memory"] = f"{replica.memory_mib}Mi"
    limits = dict(requests)
    route = gpu_route(spec, replica, target)
    if route == "device-plugin":
        limits[GPU_RESOURCE] = str(len(replica.gpus))
    elif route == "mig":
        limits[f"{MIG_RESOURCE_PREFIX}{spec.mig_profile}"] = "1"
    elif route == "shared":
        limits[options.shared_gpu_resource] = "1"
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    if route == "claim":
        out["claims"] = [{"name": CLAIM_REF}]
    return out


def pod_object(
    spec: LaunchSpec,
    replica: ReplicaLaunch,
    target: NodeTarget,
    anchor: Mapping[str, Any] | None = None,
    options: RenderOptions = RenderOptions(),
    priority: int = 0,
) -> dict[str, Any]:
    namespace, name = split_key(spec.key)
    pod_name = replica_name(name, spec.attempt, replica.replica)
    env = [
        *({"name": k, "value": v} for k, v in spec.env),
        {"name": "STRATUM_REPLICA", "value": str(replica.replica)},
        {"name": "STRATUM_REPLICAS", "value": str(len(spec.replicas))},
    ]
    if replica.nic:
        env.append({"name": "NCCL_IB_HCA", "value": replica.nic})
    container: dict[str, Any] = {
        "name": "main",
        "image": spec.image or options.default_image,
        "env": env,
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    resources = container_resources(spec, replica, target, options)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "restartPolicy": spec.restart_policy,
        "terminationGracePeriodSeconds": math.ceil(spec.grace_period_seconds),
        "priorityClassName": priority_class_name(priority),
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {
                                    "key": "metadata.name",
                                    "operator": "In",
                                    "values": [target.k8s_name],
                                }
                            ]
                        }
                    ]
                }
            }
        },
        "containers": [container],
    }
    annotations = {
        KEY_ANNOTATION: spec.key,
        NODE_ANNOTATION: replica.node,
        GPUS_ANNOTATION: ",".join(str(g) for g in replica.gpus),
        REPLICAS_ANNOTATION: str(len(spec.replicas)),
    }
    if gpu_route(spec, replica, target) == "claim":
        pod_spec["resourceClaims"] = [{"name": CLAIM_REF, "resourceClaimName": pod_name}]
    if replica.gpu_milli:
        annotations["stratum.dev/gpu-milli"] = str(replica.gpu_milli)
    notes = not_enforced(spec, replica, target, options)
    if notes:
        annotations[NOT_ENFORCED_ANNOTATION] = json.dumps(notes, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": namespace,
            "labels": {**workload_labels(spec), REPLICA_LABEL: str(replica.replica)},
            "annotations": annotations,
            **_owner(anchor),
        },
        "spec": pod_spec,
    }


def workload_objects(
    spec: LaunchSpec,
    targets: Mapping[str, NodeTarget],
    anchor: Mapping[str, Any] | None = None,
    options: RenderOptions = RenderOptions(),
    priority: int = 0,
) -> list[dict[str, Any]]:
    """Claims then pods of every replica (the anchor is applied first, by the caller)."""
    claims, pods = [], []
    for r in spec.replicas:
        target = targets[r.node]
        if gpu_route(spec, r, target) == "claim":
            claims.append(claim_object(spec, r, target, anchor, options))
        pods.append(pod_object(spec, r, target, anchor, options, priority))
    return claims + pods


def render(
    spec: LaunchSpec,
    targets: Mapping[str, NodeTarget],
    *,
    priority: int = 0,
    quota_gpus: int | None = None,
    options: RenderOptions = RenderOptions(),
) -> list[dict[str, Any]]:
    """Everything one launch applies, in apply order (owner references are added at apply
    time, once the anchor exists and has a uid)."""
    namespace, _ = split_key(spec.key)
    replicas = {r.replica: f"{targets[r.node].k8s_name}:{list(r.gpus)}" for r in spec.replicas}
    return [
        *tenant_objects(namespace, (priority,), quota_gpus, options),
        anchor_object(spec, replicas),
        *workload_objects(spec, targets, None, options, priority),
    ]
