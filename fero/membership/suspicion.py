"""Suspicion timeouts, shortened by independent confirmations (Lifeguard LHA-Suspicion).

A port of hashicorp/memberlist `suspicion.go` and `util.go` without timers: a
`Suspicion` knows its deadline and the owner (`Swim`) checks it on `tick(now)`.

- min timeout = SuspicionMult * max(1, log10(N)) * ProbeInterval (`suspicionTimeout`)
- max timeout = SuspicionMaxTimeoutMult * min
- after n of the K wanted independent confirmations the timeout is
  max(min, floor_ms(max - log(n + 1) / log(K + 1) * (max - min)))
  (`remainingSuspicionTime`), measured from when the suspicion started.
"""

from __future__ import annotations

import math


def suspicion_timeout_s(suspicion_mult: int, members: int, probe_interval_s: float) -> float:
    """The minimum suspicion timeout for a cluster of `members` (memberlist
    `suspicionTimeout`): the log10 factor gives gossip time to reach everyone, and
    the refutation time to come back, as the cluster grows."""
    node_scale = max(1.0, math.log10(max(1.0, float(members))))
    return suspicion_mult * node_scale * probe_interval_s


def suspicion_confirmations(suspicion_mult: int, members: int) -> int:
    """K, the confirmations that bring the timeout down to its minimum (memberlist
    `suspectNode`: SuspicionMult - 2, or 0 when fewer than K others could confirm)."""
    k = suspicion_mult - 2
    if members - 2 < k:
        return 0
    return max(0, k)


def remaining_suspicion_time_s(
    confirmations: int, k: int, elapsed_s: float, min_s: float, max_s: float
) -> float:
    """Time left after `confirmations` of `k` (memberlist `remainingSuspicionTime`).

    The total timeout falls logarithmically from max to min as confirmations arrive
    and is floored to whole milliseconds as memberlist does; may be negative when
    already overdue. With k == 0 the total is min.
    """
    if k < 1:
        return min_s - elapsed_s
    fraction = math.log(confirmations + 1.0) / math.log(k + 1.0)
    raw = max_s - fraction * (max_s - min_s)
    timeout = math.floor(1000.0 * raw) / 1000.0
    return max(timeout, min_s) - elapsed_s


class Suspicion:
    """One suspected member's timer: start time, confirmers, current deadline.

    `from_node` (the first accuser) does not count as a confirmation; each further
    distinct accuser does, up to K. Owned by `Swim`; not thread-safe.
    """

    __slots__ = ("confirmers", "deadline_s", "incarnation", "k", "max_s", "min_s", "start_s")

    def __init__(
        self, from_node: str, incarnation: int, k: int, min_s: float, max_s: float, now: float
    ) -> None:
        self.incarnation = incarnation
        self.start_s = now
        self.k = k
        self.min_s = min_s
        self.max_s = max_s
        self.confirmers = {from_node}
        self.deadline_s = now + (max_s if k >= 1 else min_s)

    @property
    def confirmations(self) -> int:
        return len(self.confirmers) - 1

    def confirm(self, from_node: str, now: float) -> bool:
        """Count an independent accusation; True if it was new (so worth gossiping)."""
        if self.confirmations >= self.k or from_node in self.confirmers:
            return False
        self.confirmers.add(from_node)
        remaining = remaining_suspicion_time_s(
            self.confirmations, self.k, now - self.start_s, self.min_s, self.max_s
        )
        self.deadline_s = now + remaining
        return True
