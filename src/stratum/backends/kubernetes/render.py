"""`stratum cluster render`: the manifests a placed Workload is (or would be) launched with,
made from the Stratum objects alone (no access to the cluster): the Workload, its Placement,
the bound Nodes (their Kubernetes names, GPU uuids and how their GPUs are allocated, as the
kubernetes backend's inventory recorded them) and the tenant's GPU quota."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stratum.api.v1alpha1 import Node, Placement, Workload
from stratum.backends.kubernetes.manifests import NodeTarget, RenderOptions, render
from stratum.backends.launching import launch_spec

ALLOCATION_LABEL = "stratum.dev/gpu-allocation"


def node_target(node: Node) -> NodeTarget:
    dra = node.metadata.labels.get(ALLOCATION_LABEL) == "dra"
    gpus = node.spec.hardware.gpus if node.spec.hardware is not None else []
    return NodeTarget(node.metadata.name, dra, {g.index: g.uuid for g in gpus} if dra else {})


def render_workload(
    workload: Workload,
    placement: Placement,
    nodes: Mapping[str, Node],
    quota_gpus: int | None = None,
    options: RenderOptions = RenderOptions(),
) -> list[dict[str, Any]]:
    missing = sorted({r.node for r in placement.spec.replicas if r.node not in nodes})
    if missing:
        raise KeyError(f"Node(s) {', '.join(missing)} of the placement do not exist")
    # The very LaunchSpec the WorkloadController hands the backend for this placement.
    spec = launch_spec(workload, placement, quota_gpus=quota_gpus)
    targets = {r.node: node_target(nodes[r.node]) for r in spec.replicas}
    return render(spec, targets, priority=spec.priority, quota_gpus=quota_gpus, options=options)
