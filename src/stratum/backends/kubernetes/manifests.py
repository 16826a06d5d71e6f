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
`metadata.name`. A node without DRA devices gets `nvidia.com/gpu` limits instead: then
the kubelet's device plugin chooses the devices, which the evidence says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
CLAIM_REF = "gpus"
# Work that ends by itself is not restarted in place: Stratum re-places it instead.
_RUN_TO_END = {"training", "finetune", "batch"}


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
    container: dict[str, Any] = {
        "name": "main",
        "image": spec.image or options.default_image,
        "env": [
            *({"name": k, "value": v} for k, v in spec.env),
            {"name": "STRATUM_REPLICA", "value": str(replica.replica)},
            {"name": "STRATUM_REPLICAS", "value": str(len(spec.replicas))},
        ],
    }
    if spec.command:
        container["command"] = list(spec.command)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never" if spec.workload_type in _RUN_TO_END else "Always",
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
    if replica.gpus and target.dra:
        container["resources"] = {"claims": [{"name": CLAIM_REF}]}
        pod_spec["resourceClaims"] = [{"name": CLAIM_REF, "resourceClaimName": pod_name}]
    elif replica.gpus:
        count = str(len(replica.gpus))
        container["resources"] = {"limits": {GPU_RESOURCE: count}}
        annotations["stratum.dev/gpu-choice"] = (
            "device plugin: the kubelet chooses which GPUs; Stratum bound "
            + ",".join(str(g) for g in replica.gpus)
        )
    if replica.gpu_milli:
        annotations["stratum.dev/gpu-milli"] = str(replica.gpu_milli)
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
        if r.gpus and target.dra:
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
