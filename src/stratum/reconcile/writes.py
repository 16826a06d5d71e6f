"""The controllers' write step: one short transaction, skipped on a concurrent change."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from stratum.core.errors import AlreadyExists, Conflict, NotFound
from stratum.store.objects import ObjectStore, Transaction

T = TypeVar("T")
# What a concurrent writer causes: the object changed (stale resourceVersion), went away, or
# was made meanwhile. The next pass reads the world again and decides anew.
RACES = (Conflict, NotFound, AlreadyExists)


def write_or_skip(store: ObjectStore, write: Callable[[Transaction], T]) -> T | None:
    """Run `write` in one transaction; None (nothing written) if another writer got there
    first. Any other error propagates: it is not a race, and backoff handles it."""
    try:
        with store.write() as tx:
            return write(tx)
    except RACES:
        return None
