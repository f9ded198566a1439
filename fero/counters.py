"""The counter state machine: a value of a fixed kind, an optional expiry, and adds.

A counter comes to exist on its first add or setup. Its kind is fixed then (int unless
set up otherwise); an add whose amount is not of that kind is INVALID_ARGUMENT, a setup
that asks for another kind is FAILED_PRECONDITION. After `expire_at_ms` the counter is
closed: adds are FAILED_PRECONDITION (`Expired`), reads too, until compaction drops it
and the name is free again. Idempotency (tickets) lives in the partition, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fero import values
from fero.errors import Expired, FailedPrecondition
from fero.values import Kind, Value


@dataclass(slots=True)
class Counter:
    name: str
    kind: Kind
    value: Value
    expire_at_ms: int = 0  # 0: never

    @classmethod
    def new(cls, name: str, kind: Kind = Kind.INT, expire_at_ms: int = 0) -> "Counter":
        return cls(name, kind, values.zero(kind), expire_at_ms)

    def expired(self, at_ms: int) -> bool:
        return self.expire_at_ms != 0 and at_ms >= self.expire_at_ms

    def check_open(self, at_ms: int) -> None:
        if self.expired(at_ms):
            raise Expired(f"counter {self.name!r} expired at {self.expire_at_ms} ms (Unix)")

    def add(self, amount: Value, at_ms: int) -> Value:
        """Adds `amount` (already of this counter's kind) as of `at_ms`; the new value."""
        self.check_open(at_ms)
        self.value = values.add(self.value, amount, self.kind)
        return self.value

    def setup(self, kind: Kind, expire_at_ms: int, at_ms: int) -> None:
        self.check_open(at_ms)
        if kind is not self.kind:
            raise FailedPrecondition(
                f"counter {self.name!r} is {self.kind.label}; it cannot become {kind.label}"
            )
        self.expire_at_ms = expire_at_ms
