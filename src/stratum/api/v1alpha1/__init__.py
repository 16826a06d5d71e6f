"""The stratum.dev/v1alpha1 API: every kind, and a registry to find them by kind or plural."""

from __future__ import annotations

from stratum.api.v1alpha1.auditrecords import AuditRecord
from stratum.api.v1alpha1.clusters import Cluster
from stratum.api.v1alpha1.clustertemplates import ClusterTemplate
from stratum.api.v1alpha1.events import Event
from stratum.api.v1alpha1.hardwareprofiles import HardwareProfile
from stratum.api.v1alpha1.meta import API_GROUP, API_VERSION, ObjectMeta, Resource
from stratum.api.v1alpha1.nodes import Node
from stratum.api.v1alpha1.placements import Placement
from stratum.api.v1alpha1.policies import Policy
from stratum.api.v1alpha1.sites import Site
from stratum.api.v1alpha1.tenants import Tenant
from stratum.api.v1alpha1.workloads import Workload
from stratum.api.v1alpha1.workloadtemplates import WorkloadTemplate

# Order matters: `apply` writes a file in this order so that what an object refers to
# (a tenant for its namespace, a site for its cluster) exists before it.
KINDS: tuple[type[Resource], ...] = (
    Site,
    HardwareProfile,
    ClusterTemplate,
    Cluster,
    Node,
    Tenant,
    Policy,
    WorkloadTemplate,
    Workload,
    Placement,
    Event,
    AuditRecord,
)

BY_KIND: dict[str, type[Resource]] = {k.KIND: k for k in KINDS}
BY_PLURAL: dict[str, type[Resource]] = {k.PLURAL: k for k in KINDS}

# Namespaces that exist without a Tenant: platform events and the shared catalog.
SYSTEM_NAMESPACE = "stratum-system"
CATALOG_NAMESPACE = "catalog"
RESERVED_NAMESPACES = frozenset({SYSTEM_NAMESPACE, CATALOG_NAMESPACE})


def resolve_kind(word: str) -> type[Resource] | None:
    """Find a kind from what a person types: Kind, kind, plural or a short name."""
    lowered = word.lower()
    for k in KINDS:
        if lowered in (k.KIND.lower(), k.PLURAL, *k.SHORT_NAMES):
            return k
    return None


__all__ = [
    "API_GROUP",
    "API_VERSION",
    "BY_KIND",
    "BY_PLURAL",
    "CATALOG_NAMESPACE",
    "KINDS",
    "RESERVED_NAMESPACES",
    "SYSTEM_NAMESPACE",
    "AuditRecord",
    "Cluster",
    "ClusterTemplate",
    "Event",
    "HardwareProfile",
    "Node",
    "ObjectMeta",
    "Placement",
    "Policy",
    "Resource",
    "Site",
    "Tenant",
    "Workload",
    "WorkloadTemplate",
    "resolve_kind",
]
