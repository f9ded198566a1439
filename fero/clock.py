"""Injectable clocks, so protocol code and tests never read the wall clock directly.

`Clock.now()` is monotonic seconds (for timeouts and intervals); `Clock.wall_ms()` is
Unix time in milliseconds (for expiry and hybrid logical clocks, which must mean the
same thing on every node). `ManualClock` moves only when a test says so, which is what
lets a simulation of a thousand members run in virtual time without a single sleep.
"""

from __future__ import annotations

import time


class Clock:
    """The real clock."""

    def now(self) -> float:
        """Monotonic seconds; only differences are meaningful."""
        return time.monotonic()

    def wall_ms(self) -> int:
        """Unix time in milliseconds."""
        return time.time_ns() // 1_000_000


class ManualClock(Clock):
    """A clock that advances only through `advance()`; starts at `start` seconds."""

    def __init__(self, start: float = 0.0, wall_start_ms: int = 1_700_000_000_000) -> None:
        self._now = start
        self._wall_start_ms = wall_start_ms
        self._start = start

    def now(self) -> float:
        return self._now

    def wall_ms(self) -> int:
        return self._wall_start_ms + int((self._now - self._start) * 1000)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self._now += seconds


REAL = Clock()
