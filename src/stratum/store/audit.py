"""The audit log in the store: AuditRecord objects appended, hash-chained, in the same
transaction as the write they record.

The chain's key lives outside the database; `use_key` hands it to the store once, at
start, so that every writer (API services, controllers, recovery) signs with it without
carrying it around."""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.engine import Engine

from stratum.core.access import Principal
from stratum.core.audit import GENESIS, AuditKey, record_hash, record_name
from stratum.store.objects import ObjectStore, Transaction, WireObject

AUDIT_COUNTER = "auditSequence"
AUDIT_KIND = "AuditRecord"

# engine -> the key its records are signed with. Weak: a disposed store takes its key along.
_KEYS: weakref.WeakKeyDictionary[Engine, AuditKey] = weakref.WeakKeyDictionary()


def use_key(store: ObjectStore, key: AuditKey | None) -> None:
    """Sign every record appended through this store with `key` (None: unsigned, as
    before keys existed; verification says so)."""
    if key is None:
        _KEYS.pop(store.engine, None)
    else:
        _KEYS[store.engine] = key


def append(
    tx: Transaction,
    *,
    actor: str | Principal,
    action: str,
    object_ref: dict[str, Any],
    source: str | None,
    before: str | None,
    after: str | None,
) -> WireObject:
    """Append one record after the newest. The sequence counter's row lock (and the store's
    write ordering) make concurrent writers take turns, so the chain never forks.

    Given a Principal, the record also names the token it used and who issued that token
    (and theirs): a token made for someone else's name shows its maker."""
    sequence = tx.bump_counter(AUDIT_COUNTER)
    previous = tx.find(AUDIT_KIND, "", record_name(sequence - 1)) if sequence > 1 else None
    previous_hash = (
        GENESIS if sequence == 1 else str((previous or {}).get("spec", {}).get("hash", ""))
    )
    at = tx.clock.now()
    spec: dict[str, Any] = {
        "sequence": sequence,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "actor": actor if isinstance(actor, str) else actor.subject,
        "action": action,
        "object": object_ref,
        "sourceAddress": source,
        "beforeDigest": before,
        "afterDigest": after,
        "previousHash": previous_hash,
    }
    if isinstance(actor, Principal) and actor.token_id is not None:
        spec["token"] = actor.token_id
        if actor.issued_by:
            spec["issuedBy"] = [{"subject": s, "token": t} for s, t in actor.issued_by]
    key = _KEYS.get(tx.connection.engine)
    if key is not None:
        spec["keyId"] = key.id
    spec["hash"] = record_hash(spec, None if key is None else key.secret)
    return tx.create(
        {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": AUDIT_KIND,
            "metadata": {"name": record_name(sequence)},
            "spec": spec,
            "status": {},
        }
    )


def records(tx: Transaction) -> list[WireObject]:
    """Every record, in sequence order (names are zero-padded sequence numbers)."""
    items: list[WireObject] = []
    token = None
    while True:
        page = tx.list(AUDIT_KIND, limit=5000, continue_token=token)
        items += page.items
        if not page.continue_token:
            return items
        token = page.continue_token


def appended(tx: Transaction) -> int:
    """How many records the server has appended, whatever the table now holds."""
    return tx.counter(AUDIT_COUNTER)


def head(tx: Transaction) -> tuple[int, str] | None:
    """(sequence, hash) of the newest record the counter names, None when there is none
    (or it is gone: then there is nothing trustworthy to anchor)."""
    sequence = appended(tx)
    if sequence == 0:
        return None
    newest = tx.find(AUDIT_KIND, "", record_name(sequence))
    if newest is None:
        return None
    return sequence, str(newest["spec"].get("hash"))


def hash_at(tx: Transaction, sequence: int) -> str | None:
    record = tx.find(AUDIT_KIND, "", record_name(sequence))
    return None if record is None else str(record["spec"].get("hash"))
