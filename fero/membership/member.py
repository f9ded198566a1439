"""A member as the rest of fero sees it, and the change events the node reacts to."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fero.membership.messages import ALIVE, DEAD, LEFT, SUSPECT

STATUSES = (ALIVE, SUSPECT, DEAD, LEFT)


def in_ring(status: str | None) -> bool:
    """Whether a member with this status holds ring points: suspicion alone does not
    move partitions (a false suspicion would otherwise cost two ownership changes)."""
    return status in (ALIVE, SUSPECT)


@dataclass(frozen=True, slots=True)
class Member:
    """A snapshot of one member; the caller owns it (Swim never mutates it)."""

    id: str
    address: str  # "host:port"
    status: str  # ALIVE, SUSPECT, DEAD or LEFT
    incarnation: int
    state_change_s: float  # Clock.now() seconds of the last status change
    ring_checksum: int = 0  # last ring checksum this member sent us directly; 0 = unknown
    rtt_ms: float = 0.0  # last direct probe round trip; 0 = unknown


class EventKind(enum.Enum):
    JOINED = "joined"  # new, or back from dead/left: enters the ring
    ALIVE = "alive"  # a suspicion was refuted; ring unchanged
    SUSPECT = "suspect"  # ring unchanged
    DEAD = "dead"  # leaves the ring
    LEFT = "left"  # left gracefully; leaves the ring
    UPDATED = "updated"  # alive at a newer incarnation (it refuted a suspicion we missed)
    REAPED = "reaped"  # tombstone forgotten; ring unchanged


@dataclass(frozen=True, slots=True)
class MemberEvent:
    kind: EventKind
    member: Member
    previous_status: str | None  # None for a member we had not known

    @property
    def changes_ring(self) -> bool:
        """True when the ring must be rebuilt: alive/suspect <-> dead/left/unknown."""
        if self.kind is EventKind.REAPED:
            return False
        return in_ring(self.previous_status) != in_ring(self.member.status)
