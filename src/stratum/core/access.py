"""Who may do what: principals, roles and the one place where access is decided.

    platform-admin    everything
    platform-viewer   reads everything (compliance, audit), writes nothing
    agent             reads everything; writes Events and the status of Nodes (a fleet-wide
                      telemetry service, never a host: it may no longer write a Node's spec
                      or any Placement, which let one token rebind the whole fleet)
    node              one host's `stratum agent` (subject node:NAME, issued at join): reads
                      and writes its own Node only; its Placements and reports go through
                      the agent protocol (server/routers/agents.py), which asks `check_node`
    tenant-admin      in its tenant: reads everything, writes Workloads and WorkloadTemplates,
                      creates tokens bound to the tenant (for service subjects and the
                      tenant's members) and revokes the tokens it issued
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
# A node-bound token: never created through the token API, only by an agent's join.
NODE_ROLE = "node"
NODE_PREFIX = "node:"
TENANT_ROLES = ("tenant-admin", "member", "viewer")  # strongest first
# The subject of the first platform-admin token; `system:` subjects are the server's own.
BOOTSTRAP_SUBJECT = "admin"
SYSTEM_PREFIX = "system:"
SERVICE_PREFIX = "service:"
Verb = Literal["read", "write", "status"]

# Platform objects a tenant needs to state and understand contracts: where compute lives,
# what it is made of, what can be built. Nodes (they show other tenants' allocations),
# Policies (they name tenants) and the audit log stay with the platform roles.
TENANT_READABLE = frozenset({"Site", "HardwareProfile", "Cluster", "ClusterTemplate"})
TENANT_WRITABLE = frozenset({"Workload", "WorkloadTemplate"})
AGENT_WRITABLE = frozenset({"Event"})
AGENT_STATUS = frozenset({"Node"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, resolved from its token."""

    subject: str
    platform_role: str | None = None
    tenant_roles: Mapping[str, str] = field(default_factory=dict)
    token_id: str | None = None
    # Who made the token, then who made theirs...: (subject, token id), nearest first. The
    # audit log names them, so that a token made for someone else's name shows its maker.
    issued_by: tuple[tuple[str, str], ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.platform_role == "platform-admin"

    @property
    def reads_everything(self) -> bool:
        return self.platform_role in PLATFORM_ROLES

    @property
    def node(self) -> str | None:
        """The one Node a node-bound token speaks for; None for every other principal."""
        if self.platform_role != NODE_ROLE or not self.subject.startswith(NODE_PREFIX):
            return None
        return self.subject[len(NODE_PREFIX) :]

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
    if role == NODE_ROLE:
        own = principal.node
        if kind == "Node" and name is not None and name == own:
            return
        raise Forbidden(
            f"{principal.subject} is a node token: it may read and write Node {own!r} only "
            "(its runs and reports go through /agent/v1)"
        )
    if role in ("platform-viewer", "agent"):
        if verb == "read":
            return
        if role == "agent" and (
            (verb == "status" and kind in AGENT_STATUS)
            or (verb == "write" and kind in AGENT_WRITABLE)
        ):
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


def check_node(principal: Principal, node: str) -> None:
    """Raise unless `principal` may speak the agent protocol for `node`: its own node-bound
    token, or a platform admin (tools, tests). A token for another node hears Forbidden."""
    if principal.is_admin:
        return
    own = principal.node
    if own is None:
        raise Forbidden(f"{principal.subject}: the agent protocol takes a node-bound token")
    if own != node:
        raise Forbidden(f"{principal.subject} is a token for node {own!r}, not for {node!r}")


def visible_namespaces(principal: Principal, kind: str) -> frozenset[str] | None:
    """Namespaces a cross-namespace list or watch may show; None means every namespace."""
    if principal.platform_role == NODE_ROLE:
        return frozenset()
    if principal.reads_everything:
        return None
    names = set(principal.tenant_roles)
    if kind == "WorkloadTemplate":
        names.add(CATALOG_NAMESPACE)
    return frozenset(names)


def can_see(principal: Principal, obj: Mapping[str, Any]) -> bool:
    """Whether one object (say, from a watch) belongs to what the caller may read."""
    kind = str(obj.get("kind"))
    meta = obj.get("metadata") or {}
    if principal.platform_role == NODE_ROLE:
        return kind == "Node" and meta.get("name") == principal.node
    if principal.reads_everything:
        return True
    ns = meta.get("namespace")
    if ns:
        allowed = visible_namespaces(principal, kind)
        return allowed is None or ns in allowed
    if kind == "Tenant":
        return meta.get("name") in principal.tenant_roles
    return kind in TENANT_READABLE


def is_platform_token(*, role: str | None, tenant: str | None) -> bool:
    return tenant is None and role in PLATFORM_ROLES


def may_manage_token(
    principal: Principal,
    *,
    subject: str,
    tenant: str | None,
    role: str | None,
    created_by: str,
) -> bool:
    """Whether the caller may see or revoke one token.

    Platform admins: every token. Others never touch a token that carries a platform role
    (whatever its subject); they manage their own subject's tokens within their tenants,
    and, as tenant-admins, the tokens they issued bound to a tenant they administer."""
    if principal.is_admin:
        return True
    if is_platform_token(role=role, tenant=tenant):
        return False
    if subject == principal.subject:
        return tenant is None or tenant in principal.tenant_roles
    return (
        created_by == principal.subject
        and tenant is not None
        and principal.tenant_roles.get(tenant) == "tenant-admin"
    )


@dataclass(frozen=True, slots=True)
class SubjectRoles:
    """What a token's subject already holds, from the store: its roles from Tenant
    members, the tenants its active tokens are bound to, and whether an active token gives
    it a platform role."""

    member_roles: Mapping[str, str] = field(default_factory=dict)
    token_tenants: frozenset[str] = frozenset()
    platform: bool = False


def _at_most(role: str, limit: str) -> bool:
    return TENANT_ROLES.index(role) >= TENANT_ROLES.index(limit)


def check_token_grant(
    principal: Principal,
    *,
    subject: str,
    role: str | None,
    tenant: str | None,
    holds: SubjectRoles = SubjectRoles(),  # frozen: one shared empty value is safe
) -> None:
    """Refuse a token that would give more than its issuer may give, or speak for someone
    the issuer does not administer.

    A token is for the issuer's own subject, or, from a tenant-admin, for a service subject
    or a member of its tenant, bound to that tenant; with at most the issuer's role there
    (and a member's own role), never for a subject that holds a platform role or a role in
    a tenant the issuer does not administer. Platform roles only from platform admins.
    What a refusal says never names another tenant."""
    if role is not None and role not in PLATFORM_ROLES + TENANT_ROLES:
        raise Forbidden(
            f"unknown role {role!r}; expected one of {', '.join(PLATFORM_ROLES + TENANT_ROLES)}"
        )
    if principal.is_admin:
        return
    if principal.platform_role == NODE_ROLE:
        raise Forbidden(f"{principal.subject} is a node token: it creates no tokens")
    if role is not None and role not in TENANT_ROLES:
        raise Forbidden("only platform admins may create tokens with a platform role")
    if tenant is not None and tenant not in principal.tenant_roles:
        raise namespace_missing(tenant)
    if subject == principal.subject:
        if tenant is None or role is None:
            return
        mine = principal.tenant_roles[tenant]
        if not _at_most(role, mine):
            raise Forbidden(
                f"you are {mine} of {tenant}: a token you make for it carries at most {mine}"
            )
        return
    if tenant is None:
        raise Forbidden(
            f"you may create tokens for yourself ({principal.subject}) only, or, as a "
            "tenant-admin, tokens bound to your tenant (--tenant) for its members and "
            "service subjects"
        )
    if principal.tenant_roles[tenant] != "tenant-admin":
        raise Forbidden(f"only a tenant-admin of {tenant} may create tokens for others")
    if holds.platform or subject == BOOTSTRAP_SUBJECT or subject.startswith(SYSTEM_PREFIX):
        raise Forbidden(
            f"{subject} holds a platform role: only a platform admin may create tokens for it"
        )
    elsewhere = (set(holds.member_roles) | holds.token_tenants) - {tenant}
    if any(principal.tenant_roles.get(t) != "tenant-admin" for t in elsewhere):
        raise Forbidden(
            f"{subject} holds roles outside the tenants you administer: only a platform "
            "admin may create tokens for it"
        )
    if subject.startswith(SERVICE_PREFIX):
        return
    theirs = holds.member_roles.get(tenant)
    if theirs is None:
        raise Forbidden(
            f"{subject} is not a member of {tenant}: tokens for others are for the tenant's "
            "members (Tenant spec.members) and service subjects (--service)"
        )
    if role is not None and not _at_most(role, theirs):
        raise Forbidden(
            f"{subject} is {theirs} of {tenant}: a token for them carries at most {theirs}"
        )
