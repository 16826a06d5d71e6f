"""One consistent read of everything the controllers look at, typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from stratum.api.v1alpha1 import (
    Cluster,
    HardwareProfile,
    Node,
    Placement,
    Policy,
    Resource,
    Site,
    Tenant,
    Workload,
)
from stratum.store.objects import ObjectStore, Transaction

R = TypeVar("R", bound=Resource)


def _typed(tx: Transaction, model: type[R]) -> dict[str, R]:
    """Objects keyed by name (cluster-scoped) or namespace/name (namespaced)."""
    out: dict[str, R] = {}
    for item in tx.list(model.KIND).items:
        obj = model.model_validate(item)
        out[key_of(obj)] = obj
    return out


def key_of(obj: Resource) -> str:
    ns = obj.metadata.namespace
    return f"{ns}/{obj.metadata.name}" if ns else obj.metadata.name


@dataclass
class World:
    sites: dict[str, Site] = field(default_factory=dict)
    profiles: dict[str, HardwareProfile] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    tenants: dict[str, Tenant] = field(default_factory=dict)
    workloads: dict[str, Workload] = field(default_factory=dict)
    placements: dict[str, Placement] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)
    resource_version: int = 0

    @classmethod
    def read(cls, store: ObjectStore) -> World:
        with store.read() as tx:
            return cls(
                sites=_typed(tx, Site),
                profiles=_typed(tx, HardwareProfile),
                clusters=_typed(tx, Cluster),
                nodes=_typed(tx, Node),
                tenants=_typed(tx, Tenant),
                workloads=_typed(tx, Workload),
                placements=_typed(tx, Placement),
                policies=_typed(tx, Policy),
                resource_version=tx.current_resource_version(),
            )


def wire(obj: Resource) -> dict[str, Any]:
    from stratum.core.validation import to_wire

    return to_wire(obj)
