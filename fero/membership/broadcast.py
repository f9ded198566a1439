"""The piggyback queue: updates waiting to ride on outgoing packets (memberlist
`queue.go`, TransmitLimitedQueue).

- Each update is sent at most `retransmit_limit(mult, N)` times, then dropped.
- A newer update about a member replaces any queued one about the same member (an
  alive refutes a suspect; there is no point sending both).
- The least-transmitted updates go first (new news spreads fastest); never-sent ones
  newest first, retransmissions in the order they were last sent (round robin);
  updates that do not fit the byte budget are skipped, not cut. (memberlist breaks
  ties by size, then newest; fero's updates are all about one size, and tiers per
  transmit count keep the queue O(1).)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fero.membership.messages import Alive, Update, encoded_size


def retransmit_limit(retransmit_mult: int, members: int) -> int:
    """retransmit_mult * ceil(log10(N + 1)) (memberlist `retransmitLimit`): enough
    rounds for epidemic spread to reach everyone with high probability."""
    return retransmit_mult * math.ceil(math.log10(members + 1))


@dataclass(slots=True)
class _Entry:
    key: str
    update: Update
    size: int
    transmits: int


@dataclass(frozen=True, slots=True)
class BroadcastStatistics:
    queued: int
    enqueued_total: int
    invalidated_total: int
    retired_total: int  # dropped after reaching the retransmit limit


class BroadcastQueue:
    """Updates keyed by member id; `take()` pops what fits a budget. Not thread-safe.

    Entries sit in one tier per transmit count, each an insertion-ordered dict. Costs: `put` O(1); `take` O(t + s) for t updates taken and s
    skipped because they did not fit; `prune` O(removed + tiers).
    """

    def __init__(self) -> None:
        self._by_key: dict[str, _Entry] = {}
        self._tiers: list[dict[str, _Entry]] = [{}]
        self._enqueued = 0
        self._invalidated = 0
        self._retired = 0
        # The smallest update ever queued: with less room than this nothing fits, so
        # `take` stops instead of scanning the whole queue for a tiny gap.
        self._min_size = 1 << 30

    def __len__(self) -> int:
        return len(self._by_key)

    def put(self, key: str, update: Update) -> None:
        """Queue `update` about member `key`, replacing any queued update about it."""
        old = self._by_key.pop(key, None)
        if old is not None:
            del self._tiers[old.transmits][key]
            self._invalidated += 1
        entry = _Entry(key, update, encoded_size(update), 0)
        self._min_size = min(self._min_size, entry.size)
        self._by_key[key] = entry
        self._tiers[0][key] = entry
        self._enqueued += 1

    def take(self, budget_bytes: int, limit: int, receiver: str = "") -> tuple[Update, ...]:
        """Updates fitting `budget_bytes`, each counted as transmitted once more.

        Least-transmitted first (see the module docstring). An update reaching
        `limit` transmissions is removed. Returns () when the budget fits nothing.
        The Alive of member `receiver` is left for others: a member knows it is alive,
        and a transmission spent on it is one fewer for a member that may not (in a
        small cluster a refutation has 2). Raises ValueError if `limit` < 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if not self._by_key:
            return ()
        free = budget_bytes
        smallest = self._min_size
        chosen: list[_Entry] = []
        for index, tier in enumerate(self._tiers):
            if free < smallest:
                break
            # Fresh news newest first; retransmissions round-robin in promotion order.
            entries = reversed(tier.values()) if index == 0 else tier.values()
            for entry in entries:
                if entry.size <= free and (entry.key != receiver or entry.update.__class__ is not Alive):
                    chosen.append(entry)
                    free -= entry.size
                    if free < smallest:
                        break
        tiers = self._tiers
        for entry in chosen:
            del tiers[entry.transmits][entry.key]
            entry.transmits += 1
            if entry.transmits >= limit:
                del self._by_key[entry.key]
                self._retired += 1
                continue
            if entry.transmits == len(tiers):
                tiers.append({})
            tiers[entry.transmits][entry.key] = entry
        return tuple(entry.update for entry in chosen)

    def peek(self, key: str) -> Update | None:
        entry = self._by_key.get(key)
        return None if entry is None else entry.update

    def transmits(self, key: str) -> int | None:
        entry = self._by_key.get(key)
        return None if entry is None else entry.transmits

    def prune(self, max_queued: int) -> None:
        """Drop the most-transmitted (then oldest) updates beyond `max_queued`
        (memberlist `Prune`)."""
        for tier in reversed(self._tiers):
            while len(self._by_key) > max_queued and tier:
                key = next(iter(tier))
                del tier[key]
                del self._by_key[key]
                self._retired += 1

    def statistics(self) -> BroadcastStatistics:
        return BroadcastStatistics(
            queued=len(self._by_key),
            enqueued_total=self._enqueued,
            invalidated_total=self._invalidated,
            retired_total=self._retired,
        )
