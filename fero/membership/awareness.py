"""Lifeguard local health (memberlist `awareness.go`).

A member that misses acks it should have had, or is asked to refute a suspicion of
itself, is more likely slow itself than surrounded by failures. Its health score
rises, and probe interval and timeout are multiplied by (score + 1), so a degraded
member probes less eagerly and waits longer before accusing anyone.
"""

from __future__ import annotations


class Awareness:
    """A health score in 0..max_multiplier-1; 0 is healthy. Not thread-safe.

    Raises ValueError if `max_multiplier` < 1.
    """

    __slots__ = ("_max", "_score")

    def __init__(self, max_multiplier: int) -> None:
        if max_multiplier < 1:
            raise ValueError(f"max_multiplier must be >= 1, got {max_multiplier}")
        self._max = max_multiplier
        self._score = 0

    @property
    def score(self) -> int:
        return self._score

    def apply_delta(self, delta: int) -> None:
        """Add `delta` and clamp to 0..max-1."""
        self._score = min(max(self._score + delta, 0), self._max - 1)

    def scale(self, seconds: float) -> float:
        """`seconds` stretched by the current health: seconds * (score + 1)."""
        return seconds * (self._score + 1)


def probe_delta(acked: bool, expected_nacks: int, nacks: int) -> int:
    """Health change after one probe (memberlist `probeNode`).

    An ack lowers the score. A failed probe raises it by the nacks that did not come
    back (the intermediaries could reach us, so we are not the problem when they
    all answered) or by 1 when no intermediary was asked.
    """
    if acked:
        return -1
    if expected_nacks > 0:
        return max(0, expected_nacks - nacks)
    return 1
