"""One consistent read of everything the controllers look at, typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

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


class ModelCache:
    """Typed objects kept between passes, each valid for one resourceVersion. A pass reads
    every object's version (one narrow query per kind) and fetches and validates only the
    objects that changed: at 1,000 hosts the whole read cost most of a core each second.

    A controller may update an object in place after writing it (NodeController does, so
    later controllers in the same pass see the new status); a cached object is reused only
    while its own resourceVersion still equals the store's, so such an object is read again
    whenever the write it reflects did not land."""

    # Past this share of changed objects, one full listing is cheaper than fetching by name.
    FULL_READ_SHARE = 0.5

    def __init__(self) -> None:
        self._kinds: dict[str, dict[tuple[str, str], Resource]] = {}

    def typed(self, tx: Transaction, model: type[R]) -> dict[str, R]:
        cached = self._kinds.get(model.KIND, {})
        versions = tx.versions(model.KIND)
        fresh: dict[tuple[str, str], Resource] = {}
        stale: list[tuple[str, str]] = []
        for key, rv in versions.items():
            obj = cached.get(key)
            if obj is not None and obj.metadata.resource_version == str(rv):
                fresh[key] = obj
            else:
                stale.append(key)
        if stale:
            if len(stale) > self.FULL_READ_SHARE * len(versions):
                items = tx.list(model.KIND).items
            else:
                items = tx.list_named(model.KIND, stale)
            for item in items:
                meta = item["metadata"]
                key = (meta.get("namespace") or "", meta["name"])
                if key in versions and (key not in fresh):
                    fresh[key] = model.model_validate(item)
        self._kinds[model.KIND] = fresh
        ordered = sorted(fresh.values(), key=_order)
        return {key_of(obj): cast(R, obj) for obj in ordered}


def _order(obj: Resource) -> tuple[str, str]:
    """The store's listing order (namespace, name), so a cached read iterates alike."""
    return (obj.metadata.namespace or "", obj.metadata.name)


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
    def read(cls, store: ObjectStore, cache: ModelCache | None = None) -> World:
        """One snapshot of the store; with a `cache`, objects unchanged since the cache last
        saw them are reused rather than fetched and validated again."""
        with store.read() as tx:
            typed = cache.typed if cache is not None else _typed

            def of(model: type[R]) -> dict[str, R]:
                return typed(tx, model)

            return cls(
                sites=of(Site),
                profiles=of(HardwareProfile),
                clusters=of(Cluster),
                nodes=of(Node),
                tenants=of(Tenant),
                workloads=of(Workload),
                placements=of(Placement),
                policies=of(Policy),
                resource_version=tx.current_resource_version(),
            )


def wire(obj: Resource) -> dict[str, Any]:
    from stratum.core.validation import to_wire

    return to_wire(obj)
