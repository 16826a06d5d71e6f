"""Per-object retry state: one object that keeps failing is retried later with growing
delays, and never holds up the others (the reconcile work queue's backoff)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stratum.core.errors import PermanentError, TemporaryError


@dataclass
class _Entry:
    failures: int
    not_before: datetime
    permanent_generation: int | None = None
    message: str = ""


@dataclass
class KeyedBackoff:
    base_seconds: float = 0.5
    cap_seconds: float = 60.0
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def ready(self, key: str, now: datetime, generation: int | None = None) -> bool:
        """False while `key` waits out its backoff, or while a permanent error stands and
        the object has not changed since (a new generation clears it)."""
        entry = self._entries.get(key)
        if entry is None:
            return True
        if entry.permanent_generation is not None:
            if generation is not None and generation != entry.permanent_generation:
                del self._entries[key]
                return True
            return False
        return now >= entry.not_before

    def failed(
        self, key: str, now: datetime, error: BaseException, generation: int | None = None
    ) -> float:
        """Record a failure; return the delay before the next try (inf if permanent)."""
        entry = self._entries.get(key) or _Entry(0, now)
        entry.failures += 1
        entry.message = str(error)
        if isinstance(error, PermanentError):
            entry.permanent_generation = generation if generation is not None else -1
            self._entries[key] = entry
            return float("inf")
        delay = min(self.cap_seconds, self.base_seconds * 2.0 ** (entry.failures - 1))
        if isinstance(error, TemporaryError):
            delay = max(delay, error.delay)
        entry.not_before = now + timedelta(seconds=delay)
        self._entries[key] = entry
        return delay

    def succeeded(self, key: str) -> None:
        self._entries.pop(key, None)

    def failures(self, key: str) -> int:
        entry = self._entries.get(key)
        return entry.failures if entry else 0
