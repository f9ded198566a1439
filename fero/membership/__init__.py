"""Cluster membership: SWIM failure detection with Lifeguard, as pure state machines.

Where things live (one concept per module, after hashicorp/memberlist):

- `config`     MembershipConfig: every timing and fan-out knob, presets lan()/local()
- `messages`   the wire messages (frozen dataclasses) and `Outgoing`
- `member`     Member snapshots and MemberEvent (what the node rebuilds the ring on)
- `suspicion`  suspicion timeout maths and the confirmation-shortened timer
- `broadcast`  the piggyback queue and its retransmit limit
- `awareness`  Lifeguard local health
- `swim`       `Swim`, the state machine tying them together
- `codec`      messages <-> fero.v1 peer protobufs
- `driver`     the asyncio driver: timers, transport, ring updates

Only `driver` does I/O or reads a clock: it feeds `Swim.handle()` and `Swim.tick()`
(at `Swim.next_deadline()`) and sends what they return. Tests run the same state
machines on `fero.testing.simnet` in virtual time.
"""

from fero.membership.config import MembershipConfig
from fero.membership.member import EventKind, Member, MemberEvent
from fero.membership.messages import ALIVE, DEAD, LEFT, SUSPECT, Outgoing
from fero.membership.swim import Swim, SwimStatistics

__all__ = [
    "ALIVE",
    "DEAD",
    "LEFT",
    "SUSPECT",
    "EventKind",
    "Member",
    "MemberEvent",
    "MembershipConfig",
    "Outgoing",
    "Swim",
    "SwimStatistics",
]
