"""The change feed's past: rewriting the bodies it keeps, for secrets sealed again under a new
key (a retired key must not still open values kept in history)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update

from stratum.store.objects import Transaction, WireObject
from stratum.store.tables import ChangeRow


def rewrite(
    tx: Transaction, kind: str, transform: Callable[[WireObject], WireObject | None]
) -> int:
    """Replace each kept change body of `kind` by `transform(body)` where that is not None;
    return how many changed. Runs in the caller's transaction."""
    conn = tx.connection
    rows = conn.execute(
        select(ChangeRow.resource_version, ChangeRow.body).where(ChangeRow.kind == kind)
    ).all()
    changed = 0
    for rv, body in rows:
        fresh = transform(body)
        if fresh is None or fresh == body:
            continue
        conn.execute(update(ChangeRow).where(ChangeRow.resource_version == rv).values(body=fresh))
        changed += 1
    return changed
