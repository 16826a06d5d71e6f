"""Leases in the database: several server replicas on one PostgreSQL elect one to act.

A lease is held until `expires_at`; its holder renews it well before then. Another replica
takes it only once it has expired, so two replicas never act at once as long as each stops
acting when a renewal fails (the reconcile runtime does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from stratum.core.clock import Clock
from stratum.core.errors import Conflict
from stratum.store.objects import ObjectStore, Transaction
from stratum.store.tables import LeaseRow


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    expires_at: datetime
    transitions: int


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def try_acquire(store: ObjectStore, *, name: str, holder: str, duration: timedelta) -> bool:
    """Take or renew the lease; True when `holder` holds it afterwards."""
    now = store.clock.now()
    expires = now + duration
    with store.write() as tx:
        conn = tx.connection
        row = conn.execute(select(LeaseRow.__table__).where(LeaseRow.name == name)).first()
        if row is None:
            try:
                conn.execute(
                    insert(LeaseRow).values(
                        name=name,
                        holder=holder,
                        acquired_at=now,
                        renewed_at=now,
                        expires_at=expires,
                        transitions=1,
                    )
                )
            except IntegrityError:
                return False
            return True
        if row.holder != holder and _utc(row.expires_at) > now:
            return False
        changed = conn.execute(
            update(LeaseRow)
            .where(
                LeaseRow.name == name,
                LeaseRow.holder == row.holder,
                LeaseRow.expires_at == row.expires_at,
            )
            .values(
                holder=holder,
                renewed_at=now,
                expires_at=expires,
                acquired_at=row.acquired_at if row.holder == holder else now,
                transitions=row.transitions + (0 if row.holder == holder else 1),
            )
        )
        return changed.rowcount == 1


def release(store: ObjectStore, *, name: str, holder: str) -> None:
    """Give the lease up at once (graceful shutdown), so another replica need not wait."""
    now = store.clock.now()
    with store.write() as tx:
        tx.connection.execute(
            update(LeaseRow)
            .where(LeaseRow.name == name, LeaseRow.holder == holder)
            .values(expires_at=now)
        )


def find(store: ObjectStore, name: str) -> Lease | None:
    with store.read() as tx:
        row = tx.connection.execute(select(LeaseRow.__table__).where(LeaseRow.name == name)).first()
    if row is None:
        return None
    return Lease(row.name, row.holder, _utc(row.expires_at), row.transitions)


class LeaseLost(Conflict):
    """This replica does not hold the lease (any more): its write is refused (fencing)."""


def assert_held(tx: Transaction, *, name: str, holder: str) -> None:
    """Refuse the transaction unless `holder` holds `name` unexpired. The lease row is read
    with a share lock, so a replica taking the lease over waits for this transaction to end
    (PostgreSQL); SQLite's one writer at a time serialises the two already."""
    row = tx.connection.execute(
        select(LeaseRow.__table__).where(LeaseRow.name == name).with_for_update(read=True)
    ).first()
    if row is None or row.holder != holder or _utc(row.expires_at) <= tx.clock.now():
        who = "nobody" if row is None else row.holder
        raise LeaseLost(f"lease {name} is held by {who}, not {holder}: this write is fenced off")


class FencedStore(ObjectStore):
    """The store as the lease holder's controllers write to it: while `fenced` is on, every
    write transaction first checks that this replica still holds the lease, so a replica
    whose pass outlived its lease (a long pass, a stalled renewal) writes nothing after
    another took over. Reads, and writes while not fenced (a pass run by hand, in tests and
    benchmarks), go straight through."""

    def __init__(self, store: ObjectStore, *, name: str, holder: str) -> None:
        self.inner = store
        super().__init__(store.engine, store.clock)
        self.on_transaction = store.on_transaction
        self.name, self.holder = name, holder
        self.fenced = False

    @property
    def clock(self) -> Clock:
        return self.inner.clock

    @clock.setter
    def clock(self, value: Clock) -> None:
        self.inner.clock = value

    @contextmanager
    def write(self, *, dry_run: bool = False) -> Iterator[Transaction]:
        with super().write(dry_run=dry_run) as tx:
            if self.fenced:
                assert_held(tx, name=self.name, holder=self.holder)
            yield tx
