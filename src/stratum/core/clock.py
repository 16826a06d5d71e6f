"""Time as an injected dependency: core, scheduling and reconcilers never read the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock, for production."""

    def now(self) -> datetime:
        return datetime.now(UTC)
