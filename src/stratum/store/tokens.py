"""API tokens in the store: salted hashes of their secrets, never the secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, update

from stratum.store.objects import Transaction
from stratum.store.tables import TokenRow


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    name: str
    subject: str
    kind: str
    role: str | None
    tenant: str | None
    salt: str
    secret_hash: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    issuer_token_id: str | None = None


def _utc(at: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything Stratum writes is UTC.
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _record(row: object) -> TokenRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return TokenRecord(
        id=m["id"],
        name=m["name"],
        subject=m["subject"],
        kind=m["kind"],
        role=m["role"],
        tenant=m["tenant"],
        salt=m["salt"],
        secret_hash=m["secret_hash"],
        created_at=_utc(m["created_at"]),  # type: ignore[arg-type]
        created_by=m["created_by"],
        expires_at=_utc(m["expires_at"]),
        revoked_at=_utc(m["revoked_at"]),
        issuer_token_id=m["issuer_token_id"],
    )


def insert_token(tx: Transaction, record: TokenRecord) -> None:
    tx.connection.execute(
        insert(TokenRow).values(
            id=record.id,
            name=record.name,
            subject=record.subject,
            kind=record.kind,
            role=record.role,
            tenant=record.tenant,
            salt=record.salt,
            secret_hash=record.secret_hash,
            created_at=record.created_at,
            created_by=record.created_by,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
            issuer_token_id=record.issuer_token_id,
        )
    )


def find_token(tx: Transaction, token_id: str) -> TokenRecord | None:
    row = tx.connection.execute(select(TokenRow.__table__).where(TokenRow.id == token_id)).first()
    return None if row is None else _record(row)


def list_tokens(tx: Transaction) -> list[TokenRecord]:
    rows = tx.connection.execute(
        select(TokenRow.__table__).order_by(TokenRow.created_at, TokenRow.id)
    )
    return [_record(r) for r in rows]


def count_tokens(tx: Transaction) -> int:
    return int(tx.connection.execute(select(func.count()).select_from(TokenRow)).scalar_one())


def revoke_token(tx: Transaction, token_id: str, at: datetime) -> None:
    tx.connection.execute(
        update(TokenRow)
        .where(TokenRow.id == token_id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=at)
    )


def tokens_of(tx: Transaction, subject: str) -> list[TokenRecord]:
    rows = tx.connection.execute(
        select(TokenRow.__table__).where(TokenRow.subject == subject).order_by(TokenRow.created_at)
    )
    return [_record(r) for r in rows]


def platform_tokens(tx: Transaction, role: str) -> list[TokenRecord]:
    """Unbound tokens that carry platform role `role`, revoked or not."""
    rows = tx.connection.execute(
        select(TokenRow.__table__).where(TokenRow.role == role, TokenRow.tenant.is_(None))
    )
    return [_record(r) for r in rows]


TOKEN_WRITES = "tokenWrites"


def lock_tokens(tx: Transaction) -> None:
    """Make token writes take turns (a counter's row lock): two revocations cannot each see
    the other's token as the platform's remaining admin, and no token is issued by one that
    is being revoked at that moment."""
    tx.bump_counter(TOKEN_WRITES)
