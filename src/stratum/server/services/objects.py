"""Object service: validation, scoping rules and write semantics for every kind.

Routers stay thin: they parse the request and call one function here. Every write goes
through one store transaction, so a batch is applied all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from stratum.api.v1alpha1 import KINDS, RESERVED_NAMESPACES, Resource
from stratum.core.errors import ApiError, Cause, Conflict, Forbidden, Invalid, NotFound
from stratum.core.selectors import parse_selector
from stratum.core.validation import identify, parse_object, to_wire
from stratum.store.objects import ObjectStore, Page, Transaction, WireObject

ApplyAction = Literal["created", "configured", "unchanged"]
_KIND_ORDER = {k.KIND: i for i, k in enumerate(KINDS)}
# Kinds that only the server writes: the API may read them, never create or change them.
SERVER_WRITTEN = frozenset({"AuditRecord"})
MAX_LIST_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class ApplyResult:
    action: ApplyAction
    object: WireObject


class ObjectService:
    def __init__(self, store: ObjectStore, on_write: Callable[[], None] | None = None) -> None:
        self.store = store
        self._on_write = on_write or (lambda: None)

    # -- validation --------------------------------------------------------------------
    def validate(self, data: Any, *, kind: str | None = None, namespace: str | None = None,
                 name: str | None = None) -> Resource:
        """Parse a body and check it agrees with the URL it was sent to."""
        obj = parse_object(data, expected_kind=kind)
        model = type(obj)
        meta = obj.metadata
        if model.NAMESPACED:
            if namespace is not None:
                if meta.namespace is None:
                    meta.namespace = namespace
                elif meta.namespace != namespace:
                    raise _invalid("metadata.namespace",
                                   f"the body says {meta.namespace!r} but the URL says "
                                   f"{namespace!r}")
            if meta.namespace is None:
                raise _invalid("metadata.namespace",
                               f"{model.KIND} is namespaced: set metadata.namespace to the "
                               "tenant it belongs to")
        elif meta.namespace is not None:
            raise _invalid("metadata.namespace",
                           f"{model.KIND} is cluster-scoped: remove metadata.namespace "
                           f"(got {meta.namespace!r})")
        if name is not None and meta.name != name:
            raise _invalid("metadata.name",
                           f"the body says {meta.name!r} but the URL says {name!r}")
        return obj

    def _check_write(self, tx: Transaction, obj: Resource, pending_tenants: set[str]) -> None:
        kind = obj.KIND
        if kind in SERVER_WRITTEN:
            raise Forbidden(f"{kind} objects are written by the server only (append-only)")
        ns = obj.metadata.namespace
        if ns is not None and ns not in RESERVED_NAMESPACES and ns not in pending_tenants \
                and tx.find("Tenant", "", ns) is None:
            raise NotFound(f'namespace "{ns}" does not exist: namespaces are tenants; '
                           f'create Tenant "{ns}" first')
        if kind in ("ClusterTemplate", "WorkloadTemplate"):
            existing = tx.find(kind, ns or "", obj.metadata.name)
            if existing and existing.get("spec", {}).get("published") and \
                    existing.get("spec") != to_wire(obj).get("spec"):
                raise _invalid("spec", f"{kind} {obj.metadata.name} version "
                               f"{existing['spec'].get('version')} is published and immutable; "
                               "publish a new version under a new name")

    def validate_batch(self, items: Any) -> list[Resource]:
        """Validate every item of a List before anything is written; name the first bad one."""
        if not isinstance(items, list):
            raise _invalid("items", f"expected a list of objects, got {type(items).__name__}")
        parsed = []
        for i, item in enumerate(items):
            try:
                parsed.append(self.validate(item))
            except ApiError as err:
                where = f"items[{i}] ({identify(item)})"
                causes = [Cause(f"items[{i}].{c.field}", c.message, c.reason)
                          for c in err.causes] or [Cause(f"items[{i}]", err.message)]
                raise type(err)(f"{where}: {err.message}", causes=causes) from None
        seen: dict[tuple[str, str, str], int] = {}
        for i, obj in enumerate(parsed):
            key = (obj.KIND, obj.metadata.namespace or "", obj.metadata.name)
            if key in seen:
                raise _invalid(f"items[{i}]", f"{identify(items[i])} appears twice (also "
                               f"items[{seen[key]}]); each object may appear once")
            seen[key] = i
        return parsed

    # -- writes ------------------------------------------------------------------------
    def create(self, obj: Resource, *, dry_run: bool = False) -> WireObject:
        with self.store.write(dry_run=dry_run) as tx:
            self._check_write(tx, obj, set())
            created = tx.create(_for_create(obj))
        self._notify(dry_run)
        return created

    def replace(self, obj: Resource, *, dry_run: bool = False) -> WireObject:
        with self.store.write(dry_run=dry_run) as tx:
            self._check_write(tx, obj, set())
            replaced = tx.replace(to_wire(obj))
        self._notify(dry_run)
        return replaced

    def replace_status(self, obj: Resource, *, dry_run: bool = False) -> WireObject:
        with self.store.write(dry_run=dry_run) as tx:
            if obj.KIND in SERVER_WRITTEN:
                raise Forbidden(f"{obj.KIND} objects are written by the server only")
            replaced = tx.replace(to_wire(obj), status_only=True)
        self._notify(dry_run)
        return replaced

    def apply(self, obj: Resource, *, dry_run: bool = False) -> ApplyResult:
        return self.apply_many([obj], dry_run=dry_run)[0]

    def apply_many(self, objs: list[Resource], *, dry_run: bool = False) -> list[ApplyResult]:
        """Create or update each object, in dependency order, in one transaction."""
        order = sorted(range(len(objs)), key=lambda i: _KIND_ORDER[objs[i].KIND])
        tenants = {o.metadata.name for o in objs if o.KIND == "Tenant"}
        results: dict[int, ApplyResult] = {}
        with self.store.write(dry_run=dry_run) as tx:
            for i in order:
                try:
                    results[i] = self._apply_one(tx, objs[i], tenants)
                except ApiError as err:
                    if len(objs) > 1:
                        raise _in_item(err, i, objs[i]) from None
                    raise
        self._notify(dry_run)
        return [results[i] for i in range(len(objs))]

    def _apply_one(self, tx: Transaction, obj: Resource, tenants: set[str]) -> ApplyResult:
        self._check_write(tx, obj, tenants)
        existing = tx.find(obj.KIND, obj.metadata.namespace or "", obj.metadata.name)
        if existing is None:
            return ApplyResult("created", tx.create(_for_create(obj)))
        updated = tx.replace(to_wire(obj))
        same = updated["metadata"]["resourceVersion"] == existing["metadata"]["resourceVersion"]
        return ApplyResult("unchanged" if same else "configured", updated)

    def delete(self, kind: str, namespace: str | None, name: str, *,
               resource_version: str | None = None, dry_run: bool = False) -> WireObject:
        if kind in SERVER_WRITTEN:
            raise Forbidden(f"{kind} objects are append-only: they cannot be deleted")
        with self.store.write(dry_run=dry_run) as tx:
            if kind == "Tenant":
                self._refuse_if_namespace_in_use(tx, name)
            deleted = tx.delete(kind, namespace or "", name, resource_version)
        self._notify(dry_run)
        return deleted

    def _refuse_if_namespace_in_use(self, tx: Transaction, tenant: str) -> None:
        for model in KINDS:
            if model.NAMESPACED and model.KIND != "Event":
                page = tx.list(model.KIND, namespace=tenant, limit=1)
                if page.items:
                    raise Conflict(
                        f'Tenant "{tenant}" still owns {model.KIND} '
                        f'"{page.items[0]["metadata"]["name"]}": delete its objects first')

    # -- reads -------------------------------------------------------------------------
    def get(self, kind: str, namespace: str | None, name: str) -> WireObject:
        with self.store.read() as tx:
            return tx.get(kind, namespace or "", name)

    def list(self, kind: str, *, namespace: str | None = None, label_selector: str | None = None,
             limit: int | None = None, continue_token: str | None = None) -> Page:
        if limit is not None and not 1 <= limit <= MAX_LIST_LIMIT:
            raise _invalid("limit", f"expected 1..{MAX_LIST_LIMIT}, got {limit}")
        selector = parse_selector(label_selector)
        with self.store.read() as tx:
            return tx.list(kind, namespace=namespace, selector=selector, limit=limit,
                           continue_token=continue_token)

    def _notify(self, dry_run: bool) -> None:
        if not dry_run:
            self._on_write()


def _for_create(obj: Resource) -> WireObject:
    """Status is the server's to write: a create starts from the kind's empty status."""
    wire = to_wire(obj)
    default_status = type(obj).model_fields["status"].get_default(call_default_factory=True)
    if default_status is not None:
        wire["status"] = default_status.model_dump(mode="json", by_alias=True,
                                                   exclude_none=True)
    return wire


def _invalid(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", causes=[Cause(field, message)])


def _in_item(err: ApiError, index: int, obj: Resource) -> ApiError:
    """Re-raise an error of one item of a batch so that it names the item."""
    where = f"items[{index}] ({identify(to_wire(obj))})"
    causes = [Cause(f"items[{index}].{c.field}", c.message, c.reason) for c in err.causes]
    return type(err)(f"{where}: {err.message}",
                     causes=causes or [Cause(f"items[{index}]", err.message)])
