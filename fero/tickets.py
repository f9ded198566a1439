"""The ticket table of a partition: which idempotency keys are committed, and with what
result, so that a retried record is acknowledged again and never applied twice.

The table is a bounded window, as in Kafka's idempotent producer: a ticket is
recognised while it is among the last `max_entries` records of its partition (a
batch ticket counts as its records) and younger than
`window_ms`. Clients retry within seconds; the defaults (see fero.config) cover far
longer than any retry policy, and bound memory when a partition takes millions of
writes. Entries are evicted in commit order, which is also their order in the log, so
a table rebuilt by replaying the log equals the one that was lost.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterator, Sequence

from fero.values import Value


@dataclass(frozen=True, slots=True)
class Committed:
    offset: int
    value: Value | None  # the value after the record, for ADD-like ops
    committed_ms: int
    # A batch ticket (fero.batch): the identity of the batch's first record, and the
    # committed records' values and failed records (index, code, message), if known.
    origin: str = ""
    first_seq: int = 0
    values: Sequence[Value] | None = None
    errors: tuple[tuple[int, int, str], ...] = ()
    weight: int = 1  # records it stands for: the window counts records, not tickets


class TicketTable:
    def __init__(self, window_ms: int, max_entries: int) -> None:
        self.window_ms = window_ms
        self.max_entries = max_entries
        # A plain dict, and the commit order in a deque for eviction: an OrderedDict
        # took 0.6-1 s to copy a million entries, a dict 20 ms (a snapshot copies the
        # table on the event loop, see copy()).
        self._entries: dict[str, Committed] = {}
        self._order: deque[str] = deque()
        self._weight = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def weight(self) -> int:
        """Records the remembered tickets stand for."""
        return self._weight

    def get(self, ticket: str) -> Committed | None:
        return self._entries.get(ticket)

    def put(self, ticket: str, committed: Committed) -> None:
        entries = self._entries
        old = entries.get(ticket)
        if old is not None:
            self._weight -= old.weight  # it keeps its place in the order
        else:
            self._order.append(ticket)
        entries[ticket] = committed
        self._weight += committed.weight
        while self._weight > self.max_entries and len(entries) > 1:
            self._weight -= entries.pop(self._order.popleft()).weight

    def expire(self, now_ms: int) -> int:
        """Drops entries older than the window; returns how many."""
        cutoff = now_ms - self.window_ms
        entries, order = self._entries, self._order
        dropped = 0
        while order:
            first = entries[order[0]]
            if first.committed_ms >= cutoff:
                break
            del entries[order.popleft()]
            self._weight -= first.weight
            dropped += 1
        return dropped

    def items(self) -> Iterator[tuple[str, Committed]]:
        """In commit order (a dict keeps insertion order, and only the oldest go)."""
        return iter(self._entries.items())

    def copy(self) -> dict[str, Committed]:
        """Every entry, in commit order, as a dict later puts do not change (entries
        are immutable)."""
        return dict(self._entries)
