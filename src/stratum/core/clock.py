"""Time as an injected dependency: nothing outside this module reads the wall clock.

One clock is built in the composition root (server/app.py) and handed to the store, the
controllers and every backend, so that timestamps, deadlines, budgets and simulated work all
share one time base; under `--speed 60` that base is simulated time.
"""

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


def clock_rate(clock: Clock) -> float:
    """Clock seconds per real second: the speed of a ScaledClock, 1 for any other. Durations
    that are real by nature (how long a lease lasts unrenewed) are turned into this clock's
    seconds with it."""
    return float(getattr(clock, "speed", 1.0))


def make_clock(speed: float = 1.0) -> Clock:
    """The platform's clock: real time, or a ScaledClock when the simulated fleet runs faster."""
    return SystemClock() if speed == 1.0 else ScaledClock(speed)


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
