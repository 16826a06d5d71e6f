"""Leases in the database: several server replicas on one PostgreSQL elect one to act.

A lease is held until `expires_at`; its holder renews it well before then. Another replica
takes it only once it has expired, so two replicas never act at once as long as each stops
acting when a renewal fails (the reconcile runtime does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from stratum.store.objects import ObjectStore
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
