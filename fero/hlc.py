"""Hybrid logical clock (Kulkarni et al., 2014), packed in 64 bits.

    hlc = wall_ms << 16 | logical

`now()` never goes backwards and never repeats, even if the wall clock does; `observe()`
moves it past a timestamp seen from another node, so causally later writes compare
later. Last-writer-wins on keys and the expiry check of counters read the wall part,
which is why expiry is decided by the commit's timestamp, not by when a log is replayed.
"""

from __future__ import annotations

from fero.clock import Clock

LOGICAL_BITS = 16
_LOGICAL_MASK = (1 << LOGICAL_BITS) - 1


def wall_ms(hlc: int) -> int:
    return hlc >> LOGICAL_BITS


def pack(wall: int, logical: int = 0) -> int:
    return (wall << LOGICAL_BITS) | (logical & _LOGICAL_MASK)


class HybridClock:
    def __init__(self, clock: Clock, last: int = 0) -> None:
        self._clock = clock
        self.last = last

    def now(self) -> int:
        physical = self._clock.wall_ms() << LOGICAL_BITS
        # A run of more than 65,535 timestamps in one millisecond borrows from the next
        # millisecond; the wall part then runs slightly ahead, which is harmless.
        self.last = physical if physical > self.last else self.last + 1
        return self.last

    def reserve(self, n: int) -> int:
        """The first of `n` consecutive timestamps, all later than any before."""
        first = self.now()
        self.last = first + max(0, n - 1)
        return first

    def observe(self, remote: int) -> None:
        if remote > self.last:
            self.last = remote
