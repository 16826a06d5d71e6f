"""Who may do what: principals, roles and the one place where access is decided.

    platform-admin    everything
    platform-viewer   reads everything (compliance, audit), writes nothing
    agent             reads everything; writes Nodes, Events, Placements and any status
    tenant-admin      in its tenant: reads everything, writes Workloads and WorkloadTemplates,
                      creates and revokes service tokens bound to the tenant
    member            in its tenant: reads everything, writes Workloads and WorkloadTemplates
    viewer            in its tenant: reads everything

Tenant roles come from `Tenant.spec.members` (or from a service token bound to a tenant).
Nothing here depends on whether an object exists, so that what a caller is refused never
tells them anything about another tenant: outside their tenants a namespace reads as
missing whether or not it is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from stratum.api.v1alpha1 import CATALOG_NAMESPACE
from stratum.core.errors import Forbidden, NotFound

PLATFORM_ROLES = ("platform-admin", "platform-viewer", "agent")
TENANT_ROLES = ("tenant-admin", "member", "viewer")
Verb = Literal["read", "write", "status"]

# Platform objects a tenant needs to state and understand contracts: where compute lives,
# what it is made of, what can be built. Nodes (they show other tenants' allocations),
# Policies (they name tenants) and the audit log stay with the platform roles.
TENANT_READABLE = frozenset({"Site", "HardwareProfile", "Cluster", "ClusterTemplate"})
TENANT_WRITABLE = frozenset({"Workload", "WorkloadTemplate"})
AGENT_WRITABLE = frozenset({"Node", "Event", "Placement"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, resolved from its token."""

    subject: str
    platform_role: str | None = None
    tenant_roles: Mapping[str, str] = field(default_factory=dict)
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.platform_role == "platform-admin"

    @property
    def reads_everything(self) -> bool:
        return self.platform_role in PLATFORM_ROLES

    def describe(self) -> str:
        roles = [self.platform_role] if self.platform_role else []
        roles += [f"{role} of {tenant}" for tenant, role in sorted(self.tenant_roles.items())]
        return f"{self.subject} ({', '.join(roles) or 'no roles'})"


# The server itself (bootstrap, reconcilers calling services in-process).
SYSTEM = Principal(subject="system:server", platform_role="platform-admin")


def tenant_roles_of(subject: str, tenants: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The roles `subject` holds, from the members of each Tenant (wire dicts)."""
    roles: dict[str, str] = {}
    for tenant in tenants:
        for member in (tenant.get("spec") or {}).get("members") or []:
            if member.get("user") == subject:
                name = tenant["metadata"]["name"]
                role = member.get("role", "member")
                # Listed twice: the stronger role holds.
                if name not in roles or TENANT_ROLES.index(role) < TENANT_ROLES.index(roles[name]):
                    roles[name] = role
    return roles


def namespace_missing(namespace: str) -> NotFound:
    """What a caller outside a tenant hears about its namespace: the same as for none."""
    return NotFound(f'namespace "{namespace}" not found')


def check(
    principal: Principal,
    verb: Verb,
    kind: str,
    *,
    namespaced: bool,
    namespace: str | None = None,
    name: str | None = None,
) -> None:
    """Raise Forbidden or NotFound unless `principal` may `verb` this kind there.

    For a namespaced kind with `namespace=None` (a list across namespaces) this only says
    whether the caller may list at all; `visible_namespaces` narrows what they see.
    """
    role = principal.platform_role
    if role == "platform-admin":
        return
    if role in ("platform-viewer", "agent"):
        if verb == "read":
            return
        if role == "agent" and (verb == "status" or kind in AGENT_WRITABLE):
            return
        raise Forbidden(f"{principal.subject} ({role}) may not change {kind} objects")
    if namespaced:
        if namespace is None:
            if verb == "read":
                return
            raise Forbidden(f"name the namespace to write {kind} objects in")
        tenant_role = principal.tenant_roles.get(namespace)
        if tenant_role is None:
            if namespace == CATALOG_NAMESPACE:
                if verb == "read":
                    return
                raise Forbidden("the catalog is written by platform admins only")
            raise namespace_missing(namespace)
        if verb == "read":
            return
        if verb == "status":
            raise Forbidden(f"the status of {kind} objects is written by the platform")
        if kind not in TENANT_WRITABLE:
            raise Forbidden(f"{kind} objects are written by the platform, not by tenants")
        if tenant_role == "viewer":
            raise Forbidden(
                f"{principal.subject} is a viewer of {namespace} and may not change {kind} objects"
            )
        return
    if kind == "Tenant":
        if verb == "read":
            if name is None or name in principal.tenant_roles:
                return
            raise NotFound(f'Tenant "{name}" not found')
        raise Forbidden("Tenant objects are written by platform admins only")
    if verb == "read" and kind in TENANT_READABLE:
        return
    if verb == "read":
        raise Forbidden(f"{kind} objects are visible to platform roles only")
    raise Forbidden(f"{kind} objects are written by platform admins only")


def visible_namespaces(principal: Principal, kind: str) -> frozenset[str] | None:
    """Namespaces a cross-namespace list or watch may show; None means every namespace."""
    if principal.reads_everything:
        return None
    names = set(principal.tenant_roles)
    if kind == "WorkloadTemplate":
        names.add(CATALOG_NAMESPACE)
    return frozenset(names)


def can_see(principal: Principal, obj: Mapping[str, Any]) -> bool:
    """Whether one object (say, from a watch) belongs to what the caller may read."""
    if principal.reads_everything:
        return True
    kind = str(obj.get("kind"))
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    if ns:
        allowed = visible_namespaces(principal, kind)
        return allowed is None or ns in allowed
    if kind == "Tenant":
        return meta.get("name") in principal.tenant_roles
    return kind in TENANT_READABLE


def may_manage_token(principal: Principal, *, subject: str, tenant: str | None) -> bool:
    """Whether the caller may see or revoke a token of `subject` (bound to `tenant`)."""
    if principal.is_admin or subject == principal.subject:
        return True
    return tenant is not None and principal.tenant_roles.get(tenant) == "tenant-admin"


def check_token_grant(
    principal: Principal, *, subject: str, role: str | None, tenant: str | None
) -> None:
    """Refuse a token that would give more than the creator may give."""
    if role is not None and role not in PLATFORM_ROLES + TENANT_ROLES:
        raise Forbidden(
            f"unknown role {role!r}; expected one of {', '.join(PLATFORM_ROLES + TENANT_ROLES)}"
        )
    if principal.is_admin:
        return
    if tenant is not None:
        if principal.tenant_roles.get(tenant) != "tenant-admin":
            raise (
                namespace_missing(tenant)
                if tenant not in principal.tenant_roles
                else Forbidden(f"only a tenant-admin of {tenant} may create tokens bound to it")
            )
        if role not in TENANT_ROLES:
            raise Forbidden(
                f"a token bound to a tenant takes a tenant role: {', '.join(TENANT_ROLES)}"
            )
        return
    if role is not None:
        raise Forbidden("only platform admins may create tokens with a platform role")
    if subject != principal.subject:
        raise Forbidden(f"you may create tokens for yourself ({principal.subject}) only")
