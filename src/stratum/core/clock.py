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


class ScaledClock:
    """A clock that runs `speed` times faster than real time from the moment it is made:
    the simulator's clock (`--speed 60` turns an hour of simulated work into a minute)."""

    def __init__(self, speed: float = 1.0, base: Clock | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        import time

        self.speed = speed
        self._base = base or SystemClock()
        self._start = self._base.now()
        self._monotonic = time.monotonic
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        from datetime import timedelta

        return self._start + timedelta(seconds=(self._monotonic() - self._t0) * self.speed)
