"""The object store: optimistic concurrency on resourceVersion, generations, selectors,
pagination and a change feed, on any SQLAlchemy database.

Objects cross this boundary as wire dicts (camelCase JSON, as the API serves them): the
service layer above validates them; the store only keeps them consistent.
"""

from __future__ import annotations

import base64
import builtins
import copy
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from stratum.core.clock import Clock, SystemClock
from stratum.core.errors import AlreadyExists, Conflict, Gone, Invalid, NotFound, Unavailable
from stratum.core.selectors import Selector
from stratum.core.validation import check_json_values
from stratum.store.database import autocommit_options, make_engine, migrate
from stratum.store.tables import ChangeRow, CounterRow, ObjectRow

WireObject = dict[str, Any]
ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]
RV_COUNTER = "resourceVersion"


@dataclass(frozen=True, slots=True)
class Change:
    resource_version: int
    type: ChangeType
    object: WireObject


@dataclass(frozen=True, slots=True)
class Page:
    items: list[WireObject]
    resource_version: int
    continue_token: str | None


def _describe(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace + '/' if namespace else ''}{name}"


def _timestamp(at: datetime) -> str:
    # SQLite hands back naive datetimes; everything Stratum writes is UTC.
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Stamps(Protocol):
    """What stamping reads of a row: an ObjectRow, or a result row as the query gave it."""

    @property
    def uid(self) -> str: ...
    @property
    def resource_version(self) -> int: ...
    @property
    def generation(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...


def _stamp(body: WireObject, row: _Stamps) -> WireObject:
    meta = body.setdefault("metadata", {})
    meta["uid"] = row.uid
    meta["resourceVersion"] = str(row.resource_version)
    meta["generation"] = row.generation
    meta["creationTimestamp"] = _timestamp(row.created_at)
    return body


def _parse_rv(value: str | None, field: str = "metadata.resourceVersion") -> int | None:
    if value is None or value == "":
        return None
    try:
        rv = int(value)
    except (TypeError, ValueError):
        raise Invalid(
            f"{field}: {value!r} is not a resourceVersion (expected a number the server returned)"
        ) from None
    if rv < 0:
        raise Invalid(f"{field}: expected a non-negative resourceVersion, got {rv}")
    return rv


@contextmanager
def _storable(body: WireObject) -> Iterator[None]:
    """Turn the JSON encoder's refusal (NaN, infinity) into Invalid naming the field, before
    anything commits: a 500 after the write, or a body no read can serve, is worse."""
    try:
        yield
    except (StatementError, ValueError) as err:
        cause = err.orig if isinstance(err, StatementError) else err
        if not isinstance(cause, ValueError):
            raise
        check_json_values(body, max_depth=10_000)  # raises Invalid naming the field
        raise


class Transaction:
    """Reads and writes inside one database transaction: all of it commits, or none."""

    def __init__(self, conn: Connection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    @property
    def connection(self) -> Connection:
        """For other modules of the store (leases, tokens) that share this transaction."""
        return self._conn

    @property
    def clock(self) -> Clock:
        return self._clock

    def bump_counter(self, name: str) -> int:
        """Add one to a named counter (creating it at 1) and return the new value."""
        value = self._conn.execute(
            update(CounterRow)
            .where(CounterRow.name == name)
            .values(value=CounterRow.value + 1)
            .returning(CounterRow.value)
        ).scalar()
        if value is None:
            try:
                with self._conn.begin_nested():  # a savepoint: losing the race below is fine
                    self._conn.execute(insert(CounterRow).values(name=name, value=1))
                return 1
            except IntegrityError:  # a concurrent writer created it first: count on it
                value = self._conn.execute(
                    update(CounterRow)
                    .where(CounterRow.name == name)
                    .values(value=CounterRow.value + 1)
                    .returning(CounterRow.value)
                ).scalar()
                assert value is not None, f"counter {name} neither inserted nor found"
        return int(value)

    def counter(self, name: str) -> int:
        value = self._conn.execute(select(CounterRow.value).where(CounterRow.name == name)).scalar()
        return int(value or 0)

    # -- reads -------------------------------------------------------------------------
    def find(self, kind: str, namespace: str, name: str) -> WireObject | None:
        row = self._row(kind, namespace, name)
        # The body was decoded from this row just now: nobody else holds it, no copy needed.
        return None if row is None else _stamp(row.body, row)

    def get(self, kind: str, namespace: str, name: str) -> WireObject:
        found = self.find(kind, namespace, name)
        if found is None:
            raise NotFound(
                f'{kind} "{name}" not found' + (f' in namespace "{namespace}"' if namespace else "")
            )
        return found

    def _row(self, kind: str, namespace: str, name: str) -> ObjectRow | None:
        result = self._conn.execute(_SELECT_ROW, {"k": kind, "ns": namespace, "n": name}).first()
        if result is None:
            return None
        return ObjectRow(**result._mapping)

    # -- writes ------------------------------------------------------------------------
    def _next_rv(self) -> int:
        return int(self._conn.execute(_NEXT_RV).scalar_one())

    def lock(self, name: str) -> None:
        """Hold a named lock until this transaction ends, so that writers that read, decide
        and then write (admission against a quota) take turns. PostgreSQL at READ COMMITTED
        lets them interleave; an SQLite write transaction already holds the whole database."""
        if self._conn.dialect.name != "postgresql":
            return
        key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)
        self._conn.execute(_ADVISORY_LOCK, {"key": key})

    def _record(
        self, rv: int, change: ChangeType, row: ObjectRow, body: WireObject, at: datetime
    ) -> None:
        self._conn.execute(
            _INSERT_CHANGE,
            {
                "resource_version": rv,
                "kind": row.kind,
                "namespace": row.namespace,
                "name": row.name,
                "type": change,
                "at": at,
                "body": body,
            },
        )

    def create(self, obj: WireObject) -> WireObject:
        kind, namespace, name = _identity(obj)
        if self._row(kind, namespace, name) is not None:
            raise AlreadyExists(f"{_describe(kind, namespace, name)} already exists")
        now = self._clock.now()
        rv = self._next_rv()
        body = _strip_server_fields(obj)
        row = ObjectRow(
            kind=kind,
            namespace=namespace,
            name=name,
            uid=str(uuid.uuid4()),
            resource_version=rv,
            generation=1,
            created_at=now,
            body=body,
        )
        try:
            with _storable(body):
                self._conn.execute(
                    _INSERT_OBJECT,
                    {
                        "kind": row.kind,
                        "namespace": row.namespace,
                        "name": row.name,
                        "uid": row.uid,
                        "resource_version": rv,
                        "generation": 1,
                        "created_at": now,
                        "body": body,
                    },
                )
        except IntegrityError as err:  # a concurrent creator won the race
            raise AlreadyExists(f"{_describe(kind, namespace, name)} already exists") from err
        stamped = _stamp(copy.deepcopy(body), row)
        self._record(rv, "ADDED", row, stamped, now)
        return stamped

    def replace(self, obj: WireObject, *, status_only: bool = False) -> WireObject:
        """Write a new spec/metadata (or only the status); bump generation on spec change.

        A `metadata.resourceVersion` in `obj` is a precondition: stale means Conflict.
        """
        kind, namespace, name = _identity(obj)
        row = self._row(kind, namespace, name)
        if row is None:
            raise NotFound(f"{_describe(kind, namespace, name)} not found")
        expected = _parse_rv(obj.get("metadata", {}).get("resourceVersion"))
        _check_precondition(row, expected, kind, namespace, name)
        old = row.body
        new = copy.deepcopy(old)
        incoming = _strip_server_fields(obj)
        if status_only:
            new["status"] = incoming.get("status", {})
        else:
            new["metadata"] = incoming["metadata"]
            new["spec"] = incoming.get("spec")
            if "status" not in new and "status" in incoming:
                new["status"] = incoming["status"]
        if new == old:
            return _stamp(copy.deepcopy(old), row)
        generation = row.generation + (0 if new.get("spec") == old.get("spec") else 1)
        now = self._clock.now()
        rv = self._next_rv()
        with _storable(new):
            result = self._conn.execute(
                _UPDATE_OBJECT,
                {
                    "row_id": row.id,
                    "old_rv": row.resource_version,
                    "new_rv": rv,
                    "new_generation": generation,
                    "new_body": new,
                },
            )
        if result.rowcount != 1:
            raise Conflict(
                f"{_describe(kind, namespace, name)} was changed by another writer; "
                "read it again and retry"
            )
        row.resource_version, row.generation = rv, generation
        stamped = _stamp(new, row)
        self._record(rv, "MODIFIED", row, stamped, now)
        return copy.deepcopy(stamped)

    def delete(
        self, kind: str, namespace: str, name: str, resource_version: str | None = None
    ) -> WireObject:
        row = self._row(kind, namespace, name)
        if row is None:
            raise NotFound(f"{_describe(kind, namespace, name)} not found")
        _check_precondition(
            row, _parse_rv(resource_version, "preconditions.resourceVersion"), kind, namespace, name
        )
        now = self._clock.now()
        rv = self._next_rv()
        self._conn.execute(delete(ObjectRow).where(ObjectRow.id == row.id))
        row.resource_version = rv
        stamped = _stamp(copy.deepcopy(row.body), row)
        self._record(rv, "DELETED", row, stamped, now)
        return stamped

    # -- lists -------------------------------------------------------------------------
    def current_resource_version(self) -> int:
        value = self._conn.execute(
            select(CounterRow.value).where(CounterRow.name == RV_COUNTER)
        ).scalar_one()
        return int(value)

    def list(
        self,
        kind: str,
        *,
        namespace: str | None = None,
        selector: Selector | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        namespaces: Collection[str] | None = None,
        names: Collection[str] | None = None,
    ) -> Page:
        """Objects of one kind ordered by namespace and name; `continue_token` resumes.

        `namespaces` and `names` narrow a list to what a tenant may see."""
        rv = self.current_resource_version()
        query = select(ObjectRow.__table__).where(ObjectRow.kind == kind)
        if namespace is not None:
            query = query.where(ObjectRow.namespace == namespace)
        if namespaces is not None:
            query = query.where(ObjectRow.namespace.in_(sorted(namespaces)))
        if names is not None:
            query = query.where(ObjectRow.name.in_(sorted(names)))
        if continue_token:
            after_ns, after_name = _decode_continue(continue_token)
            query = query.where(
                (ObjectRow.namespace > after_ns)
                | and_(ObjectRow.namespace == after_ns, ObjectRow.name > after_name)
            )
        query = query.order_by(ObjectRow.namespace, ObjectRow.name)
        unfiltered = selector is None or selector.empty
        if unfiltered and limit is not None:
            query = query.limit(limit + 1)  # one more tells whether another page follows
        items: list[WireObject] = []
        last: tuple[str, str] | None = None
        more = False
        # Selector matching happens here rather than in SQL so that set-based terms behave
        # the same on every database; rows stream in chunks to bound memory.
        with self._conn.execute(query.execution_options(yield_per=500)) as rows:
            # Each result row as it is: an ObjectRow built from it (ORM instrumentation for
            # an object nobody writes) cost three times the JSON decoding of its body.
            for row in rows:
                if selector is not None and not unfiltered:
                    labels = row.body.get("metadata", {}).get("labels") or {}
                    if not selector.matches(labels):
                        continue
                if limit is not None and len(items) >= limit:
                    more = True
                    break
                items.append(_stamp(row.body, row))
                last = (row.namespace, row.name)
        token = _encode_continue(*last) if more and last else None
        return Page(items=items, resource_version=rv, continue_token=token)

    def versions(self, kind: str) -> dict[tuple[str, str], int]:
        """(namespace, name) -> resourceVersion of every object of one kind, without their
        bodies: a reader that keeps typed copies (the controllers' World) fetches only the
        objects that changed since it last looked."""
        query = select(ObjectRow.namespace, ObjectRow.name, ObjectRow.resource_version).where(
            ObjectRow.kind == kind
        )
        return {(ns, name): int(rv) for ns, name, rv in self._conn.execute(query)}

    def field_values(
        self, kind: str, path: tuple[str, ...], *, names: Collection[str] | None = None
    ) -> dict[tuple[str, str], str | None]:
        """(namespace, name) -> the text at `path` in the body of each object of one kind
        (None where it is missing), picked out by the database: a reader that needs one field
        of a large kind (each Node's site, not its GPU telemetry) decodes no body. `names`
        narrows it to those objects, 500 names to a query."""
        query = select(ObjectRow.namespace, ObjectRow.name, ObjectRow.body[path].as_string())
        query = query.where(ObjectRow.kind == kind)
        if names is None:
            queries = [query]
        else:
            wanted = sorted(set(names))
            queries = [
                query.where(ObjectRow.name.in_(wanted[start : start + 500]))
                for start in range(0, len(wanted), 500)
            ]
        return {(ns, name): found for q in queries for ns, name, found in self._conn.execute(q)}

    def list_named(self, kind: str, keys: Collection[tuple[str, str]]) -> builtins.list[WireObject]:
        """The objects of one kind with these (namespace, name) keys; missing ones are left
        out. Fetched in batches of 500 names, so any number of keys is one bounded query each."""
        wanted = sorted(keys)
        items: builtins.list[WireObject] = []
        by_namespace: dict[str, builtins.list[str]] = {}
        for ns, name in wanted:
            by_namespace.setdefault(ns, []).append(name)
        for ns, names in by_namespace.items():
            for start in range(0, len(names), 500):
                query = select(ObjectRow.__table__).where(
                    ObjectRow.kind == kind,
                    ObjectRow.namespace == ns,
                    ObjectRow.name.in_(names[start : start + 500]),
                )
                for row in self._conn.execute(query):
                    items.append(_stamp(row.body, row))
        return items

    def changes_since(
        self,
        resource_version: int,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        limit: int = 500,
        namespaces: Collection[str] | None = None,
    ) -> builtins.list[Change]:
        """Changes after `resource_version`, oldest first. Gone if that history was compacted."""
        oldest = self._conn.execute(select(func.min(ChangeRow.resource_version))).scalar()
        current = self.current_resource_version()
        if resource_version > current:
            raise Invalid(
                f"resourceVersion {resource_version} is in the future (the store is at {current})"
            )
        if oldest is not None and resource_version < int(oldest) - 1:
            raise Gone(
                f"resourceVersion {resource_version} is too old: the change feed now "
                f"starts at {oldest}; list again and watch from its resourceVersion"
            )
        query = select(ChangeRow.resource_version, ChangeRow.type, ChangeRow.body).where(
            ChangeRow.resource_version > resource_version
        )
        if kind is not None:
            query = query.where(ChangeRow.kind == kind)
        if namespace is not None:
            query = query.where(ChangeRow.namespace == namespace)
        if namespaces is not None:
            query = query.where(ChangeRow.namespace.in_(sorted(namespaces)))
        query = query.order_by(ChangeRow.resource_version).limit(limit)
        return [Change(int(r.resource_version), r.type, r.body) for r in self._conn.execute(query)]

    def compact(self, *, keep: int) -> int:
        """Drop all but the newest `keep` changes; return how many were dropped."""
        current = self.current_resource_version()
        result = self._conn.execute(
            delete(ChangeRow).where(ChangeRow.resource_version <= current - keep)
        )
        return int(result.rowcount or 0)


# Statements built once: building one per call (and its cache key) costs more than running
# it on SQLite.
_SELECT_ROW = select(ObjectRow.__table__).where(
    ObjectRow.kind == bindparam("k"),
    ObjectRow.namespace == bindparam("ns"),
    ObjectRow.name == bindparam("n"),
)
_NEXT_RV = (
    update(CounterRow)
    .where(CounterRow.name == RV_COUNTER)
    .values(value=CounterRow.value + 1)
    .returning(CounterRow.value)
)
_INSERT_OBJECT = insert(ObjectRow)
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_INSERT_CHANGE = insert(ChangeRow)
_UPDATE_OBJECT = (
    update(ObjectRow)
    .where(ObjectRow.id == bindparam("row_id"), ObjectRow.resource_version == bindparam("old_rv"))
    .values(
        resource_version=bindparam("new_rv"),
        generation=bindparam("new_generation"),
        body=bindparam("new_body", type_=ObjectRow.__table__.c.body.type),
    )
)


def _identity(obj: WireObject) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj["kind"]), str(meta.get("namespace") or ""), str(meta["name"])


_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp")


def _strip_server_fields(obj: WireObject) -> WireObject:
    """The fields the server owns are columns, never trusted from the caller."""
    body = copy.deepcopy(obj)
    meta = body.setdefault("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    return body


def _check_precondition(
    row: ObjectRow, expected: int | None, kind: str, namespace: str, name: str
) -> None:
    if expected is not None and expected != row.resource_version:
        raise Conflict(
            f"{_describe(kind, namespace, name)} has been modified: you sent resourceVersion "
            f"{expected}, the store has {row.resource_version}; read it again and retry"
        )


def _encode_continue(namespace: str, name: str) -> str:
    raw = json.dumps([namespace, name]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        namespace, name = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return str(namespace), str(name)
    except (ValueError, TypeError):
        raise Invalid(f"continue token {token[:40]!r} is not one this server issued") from None


class ObjectStore:
    """Opens transactions on one database. Safe to share between threads."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self._autocommit = autocommit_options(engine)
        # Told (mode, outcome, seconds) after each transaction: the server's metrics.
        self.on_transaction: Callable[[str, str, float], None] | None = None

    @classmethod
    def open(cls, url: str, clock: Clock | None = None) -> ObjectStore:
        engine = make_engine(url)
        migrate(engine)
        return cls(engine, clock)

    @contextmanager
    def write(self, *, dry_run: bool = False) -> Iterator[Transaction]:
        """A write transaction: commits when the block ends, rolls back if it raises.

        With `dry_run` every check runs and every write is made, then all is rolled back.
        """
        started, outcome = time.perf_counter(), "error"
        try:
            with self.engine.connect().execution_options(stratum_write=True) as conn:
                transaction = conn.begin()
                try:
                    yield Transaction(conn, self.clock)
                except BaseException:
                    transaction.rollback()
                    outcome = "rollback"
                    raise
                if dry_run:
                    transaction.rollback()
                    outcome = "rollback"
                else:
                    transaction.commit()
                    outcome = "commit"
        except OperationalError as err:
            outcome = "error"
            raise Unavailable(f"the store could not complete the write: {err.orig}") from err
        finally:
            if self.on_transaction is not None:
                self.on_transaction("write", outcome, time.perf_counter() - started)

    @contextmanager
    def read(self, *, snapshot: bool = True) -> Iterator[Transaction]:
        """A read-only snapshot (one transaction, so a list and its resourceVersion agree).

        `snapshot=False` is for a block that runs one statement (a GET): on an autocommit
        connection that statement is its own snapshot, and PostgreSQL is spared the BEGIN
        and COMMIT round trips, two of a GET's three."""
        started, outcome = time.perf_counter(), "error"
        try:
            with self.engine.connect() as conn:
                if not snapshot:
                    conn = conn.execution_options(**self._autocommit)
                elif self.engine.dialect.name == "postgresql":
                    # READ COMMITTED gives each statement its own snapshot: a World read
                    # could see a workload and its placement from different moments.
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield Transaction(conn, self.clock)
            outcome = "commit"
        except OperationalError as err:
            raise Unavailable(f"the store could not be read: {err.orig}") from err
        finally:
            if self.on_transaction is not None:
                self.on_transaction("read", outcome, time.perf_counter() - started)

    def ping(self) -> None:
        with self.read() as tx:
            tx.current_resource_version()

    def close(self) -> None:
        self.engine.dispose()
