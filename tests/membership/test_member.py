"""Which membership changes move ring points."""

from __future__ import annotations

import pytest

from fero.membership.member import EventKind, Member, MemberEvent


@pytest.mark.parametrize(
    ("kind", "previous", "status", "changes_ring"),
    [
        (EventKind.JOINED, None, "alive", True),
        (EventKind.JOINED, "dead", "alive", True),
        (EventKind.SUSPECT, "alive", "suspect", False),  # suspicion never moves partitions
        (EventKind.ALIVE, "suspect", "alive", False),
        (EventKind.DEAD, "suspect", "dead", True),
        (EventKind.DEAD, "alive", "dead", True),
        (EventKind.LEFT, "alive", "left", True),
        (EventKind.REAPED, "dead", "dead", False),
        (EventKind.UPDATED, "alive", "alive", False),
    ],
)
def test_changes_ring(kind: EventKind, previous: str | None, status: str, changes_ring: bool) -> None:
    member = Member("b", "b:1", status, 1, 0.0)
    assert MemberEvent(kind, member, previous).changes_ring is changes_ring
