"""Object service: validation, scoping rules and write semantics for every kind.

Routers stay thin: they parse the request and call one function here. Every write goes
through one store transaction, so a batch is applied all or nothing. Secrets are sealed
here before the store sees them, and every object this service returns has them redacted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from stratum.api.v1alpha1 import BY_KIND, KINDS, RESERVED_NAMESPACES, Policy, Resource, Workload
from stratum.core import access
from stratum.core.audit import digest
from stratum.core.errors import (
    AlreadyExists,
    ApiError,
    Cause,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
)
from stratum.core.policies import check_policy_expression
from stratum.core.secrets import SECRET_PATHS, Keyring, redact, reseal, seal, secret_count
from stratum.core.selectors import parse_selector
from stratum.core.validation import identify, parse_object, to_wire
from stratum.server.security import RequestContext
from stratum.server.services.admission import AdmissionCache, list_all, tenant_usage
from stratum.store import audit, history
from stratum.store.objects import ObjectStore, Page, Transaction, WireObject

ApplyAction = Literal["created", "configured", "unchanged"]
_KIND_ORDER = {k.KIND: i for i, k in enumerate(KINDS)}
# Kinds that only the server writes: the API may read them, never create or change them.
SERVER_WRITTEN = frozenset({"AuditRecord"})
MAX_LIST_LIMIT = 5000
# Each lost race means another writer committed: a few tries settle any realistic contention.
APPLY_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class ApplyResult:
    action: ApplyAction
    object: WireObject


@dataclass(frozen=True, slots=True)
class Rotation:
    objects: int
    secrets: int
    key_id: str


class ObjectService:
    def __init__(
        self,
        store: ObjectStore,
        on_write: Callable[[], None] | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.store = store
        self._on_write = on_write or (lambda: None)
        self.keyring = keyring

    # -- validation --------------------------------------------------------------------
    def validate(
        self,
        data: Any,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
    ) -> Resource:
        """Parse a body and check it agrees with the URL it was sent to."""
        obj = parse_object(data, expected_kind=kind)
        model = type(obj)
        meta = obj.metadata
        if model.NAMESPACED:
            if namespace is not None:
                if meta.namespace is None:
                    meta.namespace = namespace
                elif meta.namespace != namespace:
                    raise _invalid(
                        "metadata.namespace",
                        f"the body says {meta.namespace!r} but the URL says {namespace!r}",
                    )
            if meta.namespace is None:
                raise _invalid(
                    "metadata.namespace",
                    f"{model.KIND} is namespaced: set metadata.namespace to the "
                    "tenant it belongs to",
                )
        elif meta.namespace is not None:
            raise _invalid(
                "metadata.namespace",
                f"{model.KIND} is cluster-scoped: remove metadata.namespace "
                f"(got {meta.namespace!r})",
            )
        if name is not None and meta.name != name:
            raise _invalid(
                "metadata.name", f"the body says {meta.name!r} but the URL says {name!r}"
            )
        if isinstance(obj, Policy):
            # Invalid names the line and column, the bound or the misspelled field path.
            check_policy_expression(obj.spec.expression)
        return obj

    # -- authorization before any parsing ----------------------------------------------
    def authorize_write(
        self,
        kind: str,
        *,
        namespace: str | None,
        name: str | None = None,
        verb: access.Verb = "write",
        ctx: RequestContext,
    ) -> None:
        """Refuse a write from the URL alone (403, or 404 for a namespace the caller may
        not see), before its body is read: parsing, validation and CEL are work that a
        caller without the right must not be able to cause (issue #11). The write itself
        checks again, with the body's own namespace and name."""
        model = BY_KIND[kind]
        access.check(
            ctx.principal, verb, kind, namespaced=model.NAMESPACED, namespace=namespace, name=name
        )
        if kind in SERVER_WRITTEN:
            raise Forbidden(f"{kind} objects are written by the server only (append-only)")

    def authorize_any_write(self, ctx: RequestContext) -> None:
        """Refuse a caller who may write no kind anywhere, before a List body is parsed."""
        principal = ctx.principal
        places: list[str | None] = [*principal.tenant_roles, None]
        for model in KINDS:
            for namespace in places if model.NAMESPACED else [None]:
                try:
                    self.authorize_write(model.KIND, namespace=namespace, ctx=ctx)
                except ApiError:
                    continue
                return
        raise Forbidden(f"{principal.describe()} may not write any objects")

    def authorize_items(self, items: Any, ctx: RequestContext) -> None:
        """Check each raw item of a List against the caller's rights, from its kind and
        metadata alone, before any item is validated (or its CEL compiled)."""
        if not isinstance(items, list):
            return  # validate_batch names the problem
        for i, item in enumerate(items):
            if not isinstance(item, dict) or item.get("kind") not in BY_KIND:
                continue  # not an object of a kind: validation refuses it, cheaply
            meta = item.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            namespace, name = meta.get("namespace"), meta.get("name")
            if BY_KIND[item["kind"]].NAMESPACED and not isinstance(namespace, str):
                continue  # validation refuses it (422, naming metadata.namespace)
            try:
                self.authorize_write(
                    str(item["kind"]),
                    namespace=namespace if isinstance(namespace, str) else None,
                    name=name if isinstance(name, str) else None,
                    ctx=ctx,
                )
            except ApiError as err:
                where = f"items[{i}] ({identify(item)})"
                raise type(err)(
                    f"{where}: {err.message}", causes=[Cause(f"items[{i}]", err.message)]
                ) from None

    def _check_write(
        self,
        tx: Transaction,
        obj: Resource,
        pending_tenants: set[str],
        ctx: RequestContext,
    ) -> None:
        kind = obj.KIND
        principal = ctx.principal
        access.check(
            principal,
            "write",
            kind,
            namespaced=obj.NAMESPACED,
            namespace=obj.metadata.namespace,
            name=obj.metadata.name,
        )
        if kind in SERVER_WRITTEN:
            raise Forbidden(f"{kind} objects are written by the server only (append-only)")
        ns = obj.metadata.namespace
        if (
            ns is not None
            and ns not in RESERVED_NAMESPACES
            and ns not in pending_tenants
            and tx.find("Tenant", "", ns) is None
        ):
            raise NotFound(
                f'namespace "{ns}" does not exist: namespaces are tenants; '
                f'create Tenant "{ns}" first'
            )
        if kind in ("ClusterTemplate", "WorkloadTemplate"):
            existing = tx.find(kind, ns or "", obj.metadata.name)
            if (
                existing
                and existing.get("spec", {}).get("published")
                and existing.get("spec") != to_wire(obj).get("spec")
            ):
                raise _invalid(
                    "spec",
                    f"{kind} {obj.metadata.name} version "
                    f"{existing['spec'].get('version')} is published and immutable; "
                    "publish a new version under a new name",
                )

    def validate_batch(self, items: Any, *, ctx: RequestContext) -> list[Resource]:
        """Validate every item of a List before anything is written; name the first bad one.
        With a caller's context, every item is authorized first (authorize_items)."""
        if ctx is not None:
            self.authorize_items(items, ctx)
        if not isinstance(items, list):
            raise _invalid("items", f"expected a list of objects, got {type(items).__name__}")
        parsed = []
        for i, item in enumerate(items):
            try:
                parsed.append(self.validate(item))
            except ApiError as err:
                where = f"items[{i}] ({identify(item)})"
                causes = [
                    Cause(f"items[{i}].{c.field}", c.message, c.reason) for c in err.causes
                ] or [Cause(f"items[{i}]", err.message)]
                raise type(err)(f"{where}: {err.message}", causes=causes) from None
        seen: dict[tuple[str, str, str], int] = {}
        for i, obj in enumerate(parsed):
            key = (obj.KIND, obj.metadata.namespace or "", obj.metadata.name)
            if key in seen:
                raise _invalid(
                    f"items[{i}]",
                    f"{identify(items[i])} appears twice (also "
                    f"items[{seen[key]}]); each object may appear once",
                )
            seen[key] = i
        return parsed

    # -- writes ------------------------------------------------------------------------
    def create(self, obj: Resource, *, dry_run: bool = False, ctx: RequestContext) -> WireObject:
        with self.store.write(dry_run=dry_run) as tx:
            self._check_write(tx, obj, set(), ctx)
            self._admit(AdmissionCache(tx), obj, None, ctx, batch=False)
            created = tx.create(seal(self.keyring, _for_create(obj), None))
            self._audit(tx, ctx, "create", None, created)
        self._notify(dry_run)
        return redact(created)

    def replace(self, obj: Resource, *, dry_run: bool = False, ctx: RequestContext) -> WireObject:
        with self.store.write(dry_run=dry_run) as tx:
            self._check_write(tx, obj, set(), ctx)
            existing = self._existing(tx, obj, ctx)
            self._admit(AdmissionCache(tx), obj, existing, ctx, batch=False)
            replaced = tx.replace(seal(self.keyring, to_wire(obj), existing))
            self._audit(tx, ctx, "update", existing, replaced)
        self._notify(dry_run)
        return redact(replaced)

    def replace_status(
        self, obj: Resource, *, dry_run: bool = False, ctx: RequestContext
    ) -> WireObject:
        with self.store.write(dry_run=dry_run) as tx:
            access.check(
                ctx.principal,
                "status",
                obj.KIND,
                namespaced=obj.NAMESPACED,
                namespace=obj.metadata.namespace,
                name=obj.metadata.name,
            )
            if obj.KIND in SERVER_WRITTEN:
                raise Forbidden(f"{obj.KIND} objects are written by the server only")
            existing = tx.find(obj.KIND, obj.metadata.namespace or "", obj.metadata.name)
            replaced = tx.replace(to_wire(obj), status_only=True)
            self._audit(tx, ctx, "status", existing, replaced)
        self._notify(dry_run)
        return redact(replaced)

    def apply(self, obj: Resource, *, dry_run: bool = False, ctx: RequestContext) -> ApplyResult:
        return self.apply_many([obj], dry_run=dry_run, ctx=ctx)[0]

    def apply_documents(
        self, items: Any, *, dry_run: bool = False, ctx: RequestContext
    ) -> list[ApplyResult]:
        """Validate raw manifests (naming the first bad one), then apply them all or none."""
        return self.apply_many(self.validate_batch(items, ctx=ctx), dry_run=dry_run, ctx=ctx)

    def apply_many(
        self, objs: list[Resource], *, dry_run: bool = False, ctx: RequestContext
    ) -> list[ApplyResult]:
        """Create or update each object, in dependency order, in one transaction.

        Apply states what should exist, not which version it replaces: when the caller sent
        no resourceVersion, losing a race to another writer of the same object (it created
        or changed it between our read and our write) is retried on a fresh read, not
        answered 409. A resourceVersion the caller sent is a precondition and is kept."""
        retry = not any(o.metadata.resource_version for o in objs)
        warnings = len(ctx.warnings)
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                return self._apply_all(objs, dry_run=dry_run, ctx=ctx)
            except (AlreadyExists, Conflict):
                if not retry or attempt == APPLY_ATTEMPTS:
                    raise
                del ctx.warnings[warnings:]  # the next attempt says them again
        raise AssertionError("unreachable")

    def _apply_all(
        self, objs: list[Resource], *, dry_run: bool, ctx: RequestContext
    ) -> list[ApplyResult]:
        order = sorted(range(len(objs)), key=lambda i: _KIND_ORDER[objs[i].KIND])
        tenants = {o.metadata.name for o in objs if o.KIND == "Tenant"}
        results: dict[int, ApplyResult] = {}
        with self.store.write(dry_run=dry_run) as tx:
            cache = AdmissionCache(tx)
            cache.lock_tenants({o.metadata.namespace or "" for o in objs if o.KIND == "Workload"})
            for i in order:
                try:
                    results[i] = self._apply_one(
                        tx, objs[i], tenants, ctx, cache, batch=len(objs) > 1
                    )
                except ApiError as err:
                    if len(objs) > 1:
                        raise _in_item(err, i, objs[i]) from None
                    raise
        self._notify(dry_run)
        return [results[i] for i in range(len(objs))]

    def _apply_one(
        self,
        tx: Transaction,
        obj: Resource,
        tenants: set[str],
        ctx: RequestContext,
        cache: AdmissionCache,
        *,
        batch: bool,
    ) -> ApplyResult:
        self._check_write(tx, obj, tenants, ctx)
        existing = tx.find(obj.KIND, obj.metadata.namespace or "", obj.metadata.name)
        self._admit(cache, obj, existing, ctx, batch=batch)
        if existing is None:
            created = tx.create(seal(self.keyring, _for_create(obj), None))
            self._audit(tx, ctx, "create", None, created)
            return ApplyResult("created", redact(created))
        updated = tx.replace(seal(self.keyring, to_wire(obj), existing))
        same = updated["metadata"]["resourceVersion"] == existing["metadata"]["resourceVersion"]
        if not same:
            self._audit(tx, ctx, "update", existing, updated)
        return ApplyResult("unchanged" if same else "configured", redact(updated))

    def _existing(self, tx: Transaction, obj: Resource, ctx: RequestContext) -> WireObject:
        found = tx.find(obj.KIND, obj.metadata.namespace or "", obj.metadata.name)
        if found is None:
            ns = obj.metadata.namespace or ""
            raise NotFound(f"{obj.KIND} {ns + '/' if ns else ''}{obj.metadata.name} not found")
        return found

    def _admit(
        self,
        cache: AdmissionCache,
        obj: Resource,
        existing: WireObject | None,
        ctx: RequestContext,
        *,
        batch: bool,
    ) -> None:
        """Quota, budget, sovereignty and policies for a new or changed Workload spec."""
        if not isinstance(obj, Workload):
            return
        if existing is not None and existing.get("spec") == to_wire(obj).get("spec"):
            return
        warnings = cache.admit(obj, existing)
        prefix = f"Workload {obj.metadata.namespace}/{obj.metadata.name}: " if batch else ""
        ctx.warnings += [prefix + w for w in warnings]

    def _audit(
        self,
        tx: Transaction,
        ctx: RequestContext,
        action: str,
        before: WireObject | None,
        after: WireObject | None,
    ) -> None:
        """Append the record of this write to the hash chain, in the write's transaction."""
        obj = after if after is not None else before
        assert obj is not None
        meta = obj["metadata"]
        ref = {"kind": obj["kind"], "name": meta["name"]}
        if meta.get("namespace"):
            ref["namespace"] = meta["namespace"]
        if meta.get("uid"):
            ref["uid"] = meta["uid"]
        audit.append(
            tx,
            actor=ctx.principal,
            action=action,
            object_ref=ref,
            source=ctx.source,
            before=digest(before),
            after=digest(after),
        )

    def delete(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        resource_version: str | None = None,
        dry_run: bool = False,
        ctx: RequestContext,
    ) -> WireObject:
        model = BY_KIND[kind]
        access.check(
            ctx.principal,
            "write",
            kind,
            namespaced=model.NAMESPACED,
            namespace=namespace,
            name=name,
        )
        if kind in SERVER_WRITTEN:
            raise Forbidden(f"{kind} objects are append-only: they cannot be deleted")
        with self.store.write(dry_run=dry_run) as tx:
            if kind == "Tenant":
                self._refuse_if_namespace_in_use(tx, name)
            deleted = tx.delete(kind, namespace or "", name, resource_version)
            self._audit(tx, ctx, "delete", deleted, None)
        self._notify(dry_run)
        return redact(deleted)

    def _refuse_if_namespace_in_use(self, tx: Transaction, tenant: str) -> None:
        for model in KINDS:
            if model.NAMESPACED and model.KIND != "Event":
                page = tx.list(model.KIND, namespace=tenant, limit=1)
                if page.items:
                    raise Conflict(
                        f'Tenant "{tenant}" still owns {model.KIND} '
                        f'"{page.items[0]["metadata"]["name"]}": delete its objects first'
                    )

    # -- reads -------------------------------------------------------------------------
    def get(
        self, kind: str, namespace: str | None, name: str, *, ctx: RequestContext
    ) -> WireObject:
        access.check(
            ctx.principal,
            "read",
            kind,
            namespaced=BY_KIND[kind].NAMESPACED,
            namespace=namespace,
            name=name,
        )
        # One SELECT, so no snapshot is needed: except a Tenant, whose usage is read too.
        with self.store.read(snapshot=kind == "Tenant") as tx:
            found = tx.get(kind, namespace or "", name)
            return tenant_usage(tx, [found])[0] if kind == "Tenant" else redact(found)

    def list(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        ctx: RequestContext,
    ) -> Page:
        if limit is not None and not 1 <= limit <= MAX_LIST_LIMIT:
            raise _invalid("limit", f"expected 1..{MAX_LIST_LIMIT}, got {limit}")
        model = BY_KIND[kind]
        access.check(ctx.principal, "read", kind, namespaced=model.NAMESPACED, namespace=namespace)
        selector = parse_selector(label_selector)
        namespaces = (
            access.visible_namespaces(ctx.principal, kind)
            if model.NAMESPACED and namespace is None
            else None
        )
        names = (
            None
            if kind != "Tenant" or ctx.principal.reads_everything
            else set(ctx.principal.tenant_roles)
        )
        with self.store.read() as tx:
            page = tx.list(
                kind,
                namespace=namespace,
                selector=selector,
                limit=limit,
                continue_token=continue_token,
                namespaces=namespaces,
                names=names,
            )
            if kind == "Tenant":
                tenant_usage(tx, page.items)
            if kind in SECRET_PATHS:
                page.items[:] = [redact(item) for item in page.items]
            return page

    # -- secrets -----------------------------------------------------------------------
    def rotate_secrets(self, *, dry_run: bool = False, ctx: RequestContext) -> Rotation:
        """Seal every stored secret again under the newest key, in one transaction: the
        objects (a new resourceVersion each, audited) and their past versions in the change
        feed, so that no value sealed under a retired key is left behind."""
        if not ctx.principal.is_admin:
            raise Forbidden("rotating the secret keys is for platform admins")
        if self.keyring is None:
            raise Invalid(
                "this server has no secret key to rotate to: set "
                "STRATUM_SECRET_KEYS or start it with --secret-key-file"
            )
        keyring = self.keyring
        objects = values = 0
        with self.store.write(dry_run=dry_run) as tx:
            for kind in SECRET_PATHS:
                # History first, so that the versions written below are sealed only once.
                history.rewrite(tx, kind, lambda body: reseal(keyring, body, strict=False))
                for item in list_all(tx, kind):
                    fresh = reseal(keyring, item)
                    if fresh is None:
                        continue
                    updated = tx.replace(fresh)
                    self._audit(tx, ctx, "update", item, updated)
                    objects += 1
                    values += secret_count(fresh)
        self._notify(dry_run)
        return Rotation(objects=objects, secrets=values, key_id=keyring.key_id)

    def _notify(self, dry_run: bool) -> None:
        if not dry_run:
            self._on_write()


def _for_create(obj: Resource) -> WireObject:
    """Status is the server's to write: a create starts from the kind's empty status."""
    wire = to_wire(obj)
    default_status = type(obj).model_fields["status"].get_default(call_default_factory=True)
    if default_status is not None:
        wire["status"] = default_status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return wire


def _invalid(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", causes=[Cause(field, message)])


def _in_item(err: ApiError, index: int, obj: Resource) -> ApiError:
    """Re-raise an error of one item of a batch so that it names the item."""
    where = f"items[{index}] ({identify(to_wire(obj))})"
    causes = [Cause(f"items[{index}].{c.field}", c.message, c.reason) for c in err.causes]
    return type(err)(
        f"{where}: {err.message}", causes=causes or [Cause(f"items[{index}]", err.message)]
    )
