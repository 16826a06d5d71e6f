"""The audit log in the store: AuditRecord objects appended, hash-chained, in the same
transaction as the write they record."""

from __future__ import annotations

from typing import Any

from stratum.core.audit import GENESIS, record_hash, record_name
from stratum.store.objects import Transaction, WireObject

AUDIT_COUNTER = "auditSequence"
AUDIT_KIND = "AuditRecord"


def append(
    tx: Transaction,
    *,
    actor: str,
    action: str,
    object_ref: dict[str, Any],
    source: str | None,
    before: str | None,
    after: str | None,
) -> WireObject:
    """Append one record after the newest. The sequence counter's row lock (and the store's
    write ordering) make concurrent writers take turns, so the chain never forks."""
    sequence = tx.bump_counter(AUDIT_COUNTER)
    previous = tx.find(AUDIT_KIND, "", record_name(sequence - 1)) if sequence > 1 else None
    previous_hash = (
        GENESIS if sequence == 1 else str((previous or {}).get("spec", {}).get("hash", ""))
    )
    at = tx.clock.now()
    spec: dict[str, Any] = {
        "sequence": sequence,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "actor": actor,
        "action": action,
        "object": object_ref,
        "sourceAddress": source,
        "beforeDigest": before,
        "afterDigest": after,
        "previousHash": previous_hash,
    }
    spec["hash"] = record_hash(spec)
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
