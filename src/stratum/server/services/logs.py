"""Where a workload's output is: the backend that runs the nodes of its Placement, when
that backend keeps output (backends/base.py LogSource: the local runtime, agents).

Reading logs is reading the workload: the caller must be allowed to read it (tenant-scoped,
the same 404 outside their tenants); the Placement, Node and Cluster that lead to the
backend are then read on the server's behalf."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stratum.api.v1alpha1 import Cluster, Node, Placement
from stratum.backends.base import Backend, LogSource
from stratum.core.errors import Invalid, NotFound
from stratum.server.security import RequestContext
from stratum.server.services.objects import ObjectService
from stratum.store.objects import ObjectStore


@dataclass(frozen=True, slots=True)
class LogTarget:
    source: LogSource
    key: str
    replica: int


def find_logs(
    *,
    objects: ObjectService,
    store: ObjectStore,
    backends: Mapping[str, Backend],
    namespace: str,
    name: str,
    replica: int,
    ctx: RequestContext,
) -> LogTarget:
    """The backend and key to read; NotFound/Invalid say plainly why there is none."""
    workload = objects.get("Workload", namespace, name, ctx=ctx)  # authorizes the read
    key = f"{namespace}/{name}"
    phase = (workload.get("status") or {}).get("phase") or "Pending"
    with store.read() as tx:
        found = tx.find("Placement", namespace, name)
        placement = Placement.model_validate(found) if found is not None else None
        if placement is None or not placement.spec.replicas:
            raise NotFound(f"workload {key} has not been placed (phase {phase}): no logs yet")
        count = len(placement.spec.replicas)
        if not 0 <= replica < count:
            raise Invalid(
                f"replica: workload {key} has {count} replica(s), numbered 0 to {count - 1}; "
                f"got {replica}"
            )
        binding = next(r for r in placement.spec.replicas if r.replica == replica)
        node_body = tx.find("Node", "", binding.node)
        node = Node.model_validate(node_body) if node_body is not None else None
        cluster_body = tx.find("Cluster", "", node.spec.cluster) if node is not None else None
    if node is None or cluster_body is None:
        raise NotFound(f"workload {key}: node {binding.node} of replica {replica} is gone")
    backend_name = Cluster.model_validate(cluster_body).spec.backend
    backend = backends.get(backend_name)
    if backend is None:
        raise NotFound(
            f"workload {key} runs on backend {backend_name!r}, which this server does not run"
        )
    if not isinstance(backend, LogSource):
        raise NotFound(
            f"workload {key} runs on the {backend_name} backend, which keeps no output: "
            "logs come from backends that run real processes (local, agent)"
        )
    return LogTarget(backend, key, replica)
