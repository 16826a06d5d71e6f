"""The tables: every object in one table (as etcd holds every kind), a change feed, a counter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class ObjectRow(Base):
    """The current state of one object. `body` is the whole object as it goes on the wire."""

    __tablename__ = "objects"
    __table_args__ = (
        UniqueConstraint("kind", "namespace", "name", name="uq_objects_kind_ns_name"),
        Index("ix_objects_kind_rv", "kind", "resource_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(63))
    # "" for cluster-scoped kinds, so the unique constraint holds (NULLs never collide).
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(253))
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    resource_version: Mapped[int] = mapped_column(BigInteger)
    generation: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[dict[str, Any]] = mapped_column(JsonDoc)


class ChangeRow(Base):
    """One write, in commit order: what watches read and resume from."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_kind_rv", "kind", "resource_version"),)

    resource_version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(63))
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(253))
    type: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[dict[str, Any]] = mapped_column(JsonDoc)


class CounterRow(Base):
    """Named counters. Bumping `resourceVersion` takes this row's lock, which orders every
    write: a change feed read in resourceVersion order then never skips a later commit."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class LeaseRow(Base):
    """A time-bound claim: the holder of a lease acts, the others wait until it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str] = mapped_column(String(253))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    renewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    transitions: Mapped[int] = mapped_column(BigInteger)


class TokenRow(Base):
    """An API token: who it speaks for and a salted hash of its secret, never the secret."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(253))
    subject: Mapped[str] = mapped_column(String(253), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # user | service
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tenant: Mapped[str | None] = mapped_column(String(63), nullable=True)
    salt: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(253))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The token that made this one (None: the bootstrap or a recovery token).
    issuer_token_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
