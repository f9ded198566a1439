"""SWIM wire messages: frozen dataclasses with primitive fields only.

The transport maps each class to a protobuf message one to one; nothing here knows
about encoding. `source` is the sender's member id; the sender's address comes from
the transport. Every packet message carries `updates`, the piggybacked gossip
(Alive/Suspect/Dead), filled up to the packet byte budget.

`encoded_size()` is an estimate of the protobuf size, used only to fill that budget;
it errs large (a tag and a length byte per field, varints as 10 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

# Status names are the strings in fero.v1.MemberStatus.status.
ALIVE = "alive"
SUSPECT = "suspect"
DEAD = "dead"
LEFT = "left"


@dataclass(frozen=True, slots=True)
class Alive:
    """`node` is alive at `incarnation` and reachable at `address`."""

    node: str
    address: str
    incarnation: int


@dataclass(frozen=True, slots=True)
class Suspect:
    """`from_node` suspects `node` at `incarnation`."""

    node: str
    incarnation: int
    from_node: str


@dataclass(frozen=True, slots=True)
class Dead:
    """`from_node` declares `node` dead at `incarnation`; from_node == node is a leave."""

    node: str
    incarnation: int
    from_node: str


Update = Alive | Suspect | Dead


@dataclass(frozen=True, slots=True)
class Ping:
    """Are you `target`? Answered by an Ack with the same `seq`."""

    seq: int
    source: str
    target: str
    ring_checksum: int = 0
    updates: tuple[Update, ...] = ()


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int
    source: str
    ring_checksum: int = 0
    updates: tuple[Update, ...] = ()


@dataclass(frozen=True, slots=True)
class Nack:
    """From an intermediary: the target did not answer my ping in time (Lifeguard)."""

    seq: int
    source: str
    updates: tuple[Update, ...] = ()


@dataclass(frozen=True, slots=True)
class PingReq:
    """Please ping `target` at `target_address` and forward its ack with `seq`."""

    seq: int
    source: str
    target: str
    target_address: str
    nack: bool = True
    updates: tuple[Update, ...] = ()


@dataclass(frozen=True, slots=True)
class Gossip:
    """Updates only, sent each gossip round to a few random members."""

    source: str
    updates: tuple[Update, ...] = ()


@dataclass(frozen=True, slots=True)
class MemberState:
    """One member as a push-pull carries it."""

    node: str
    address: str
    incarnation: int
    status: str  # ALIVE, SUSPECT, DEAD or LEFT


@dataclass(frozen=True, slots=True)
class PushPullRequest:
    """The sender's full member table; answered by a PushPullResponse.

    `join` marks a first contact (join or heal), which is counted separately.
    """

    source: str
    source_address: str
    members: tuple[MemberState, ...]
    join: bool = False


@dataclass(frozen=True, slots=True)
class PushPullResponse:
    source: str
    members: tuple[MemberState, ...]


Message = Ping | Ack | Nack | PingReq | Gossip | PushPullRequest | PushPullResponse


class Outgoing(NamedTuple):
    """A message the driver must send to `to` (a "host:port" address)."""

    to: str
    msg: Message


_FIELD = 2  # tag + length/varint prefix, per field
_VARINT = 10


def encoded_size(update: Update) -> int:
    """Upper estimate of one update's encoded size in bytes."""
    if isinstance(update, Alive):
        return 3 * _FIELD + len(update.node) + len(update.address) + _VARINT + _FIELD
    return 3 * _FIELD + len(update.node) + len(update.from_node) + _VARINT + _FIELD


# Fixed part of a packet message before its updates: the largest of the headers, with
# room for a 64-byte member id and address.
PACKET_OVERHEAD_BYTES = 8 * _FIELD + 3 * _VARINT + 2 * 64 + 64
