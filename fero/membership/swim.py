"""SWIM with Lifeguard as a pure state machine (after hashicorp/memberlist `state.go`).

`Swim` does no I/O and reads no clock: the driver calls `handle(sender, msg, now)` for
each received message and `tick(now)` at or after `next_deadline()`, and sends the
returned `Outgoing` messages. Same inputs (including the injected `random.Random`),
same outputs, which is what lets `fero.testing.simnet` run a thousand members.

Protocol, as in memberlist unless noted:
- Probing: one member per (health-scaled) probe interval, round robin over a list
  reshuffled every pass; a direct Ping, then PingReq through K peers after the probe
  timeout; no ack by the interval's end makes the target suspect.
- Incarnation rules: Alive needs a strictly higher incarnation to override what we
  know (a dead member revives only with a newer incarnation); Suspect and Dead need at
  least the current one; dead/left is final for that incarnation. A member that hears
  itself suspected or declared dead refutes with a higher incarnation.
- Suspicion: timeout from `suspicion.py`, shortened by independent confirmations;
  expiry declares the member dead.
- Lifeguard: failed probes without the expected nacks and refutations raise the
  health score (`awareness.py`), successful probes lower it.
- Buddy system (Lifeguard; memberlist only on probes): every packet to a member we
  hold suspect carries that Suspect, and a packet's updates are applied before it is
  answered, so a suspect told in a Ping refutes in the Ack itself.
- Stale accusations (not in memberlist): a Suspect or Dead about us at an incarnation
  we already refuted makes us gossip our Alive again, since the refutation's few
  retransmits (2 in a small local cluster) can all miss one accuser.
- Gossip: updates ride on every packet; a gossip round also sends them to a few
  random members, including recently dead ones (so they can refute). A member's own
  Alive is never sent to it (not in memberlist): that transmission goes to another.
- Push-pull: full state exchange on join and periodically. Unlike memberlist the
  responder replies with its state *after* merging the request, so the requester
  learns the responder's refutations in the same round trip (this is what lets a
  healed split converge quickly).
- Partition healing (Ringpop): each rejoin interval a member, with probability
  attempts/N, push-pulls with a seed it does not see alive or a dead member's address.
- Leave: a Dead about oneself from oneself, status `left`; then only gossip.
- Tombstones: dead and left members are forgotten `tombstone_reap_s` after the change.
- Contact sync (not in memberlist): a Ping, PingReq or Gossip from a member we hold
  dead or do not know triggers a push-pull with its sender, rate-limited.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fero.membership.awareness import Awareness, probe_delta
from fero.membership.broadcast import BroadcastQueue, retransmit_limit
from fero.membership.config import MembershipConfig, push_pull_scale
from fero.membership.member import EventKind, Member, MemberEvent
from fero.membership.messages import (
    ALIVE,
    DEAD,
    LEFT,
    PACKET_OVERHEAD_BYTES,
    SUSPECT,
    Ack,
    Alive,
    Dead,
    Gossip,
    MemberState,
    Message,
    Nack,
    Outgoing,
    Ping,
    PingReq,
    PushPullRequest,
    PushPullResponse,
    Suspect,
    Update,
    encoded_size,
)
from fero.membership.suspicion import (
    Suspicion,
    suspicion_confirmations,
    suspicion_timeout_s,
)

_INF = math.inf
#: The messages that piggyback updates; push-pull carries whole tables instead.
_PACKETS = (Ping, Ack, Nack, PingReq, Gossip)


class _State:
    """Our mutable record of one member; `Member` is its public snapshot."""

    __slots__ = ("address", "id", "incarnation", "ring_checksum", "rtt_ms", "state_change_s", "status")

    def __init__(self, node_id: str, address: str, incarnation: int, now: float) -> None:
        self.id = node_id
        self.address = address
        self.status = ALIVE
        self.incarnation = incarnation
        self.state_change_s = now
        self.ring_checksum = 0
        self.rtt_ms = 0.0

    def snapshot(self) -> Member:
        return Member(
            self.id, self.address, self.status, self.incarnation,
            self.state_change_s, self.ring_checksum, self.rtt_ms,
        )


@dataclass(slots=True)
class _Probe:
    target: str
    incarnation: int
    seq: int
    started_s: float
    timeout_at: float  # when to fall back to indirect probes
    deadline_at: float  # when a missing ack becomes a suspicion
    indirect_sent: bool = False
    expected_nacks: int = 0
    nacks: int = 0


@dataclass(slots=True)
class _Relay:
    """A ping we send on behalf of another member's PingReq."""

    origin_address: str
    origin_seq: int
    nack_at: float  # _INF once the nack is sent or not wanted
    expires_at: float


@dataclass(frozen=True, slots=True)
class SwimStatistics:
    members: int  # including self and tombstones
    alive: int
    suspect: int
    dead: int
    left: int
    incarnation: int
    health_score: int
    coherent: bool
    broadcast_queue: int
    probes: int
    probe_failures: int  # probes that ended in our suspicion of the target
    refutations: int
    push_pulls: int
    heal_attempts: int
    contact_syncs: int
    address_conflicts: int
    events_dropped: int
    messages_handled: int


class Swim:
    """One member's view of the cluster. Not thread-safe: one driver calls it.

    Raises ValueError for an empty `node_id` or `address`, or an invalid config.
    Returned lists and snapshots belong to the caller.
    """

    def __init__(
        self,
        node_id: str,
        address: str,
        config: MembershipConfig | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
    ) -> None:
        if not node_id or not address:
            raise ValueError("a member needs a non-empty id and address")
        self.id = node_id
        self.address = address
        self.config = (config or MembershipConfig.lan()).validate()
        self._rng = rng or random.Random()
        self._awareness = Awareness(self.config.awareness_max_multiplier)
        self._queue = BroadcastQueue()
        self._events: deque[MemberEvent] = deque()
        self._events_dropped = 0

        self._members: dict[str, _State] = {}
        self._counts = {ALIVE: 0, SUSPECT: 0, DEAD: 0, LEFT: 0}
        #: alive_set(), made when asked after a change (None: to be made again).
        self._alive_ids: frozenset[str] | None = None
        #: Whether every other alive member's ring checksum is ours, likewise: every
        #: reply a node gives says whether it is coherent, and a pass over the members
        #: for each cost 16 us with 300 of them.
        self._rings_agree: bool | None = None
        self._ids: list[str] = []  # other members, for O(1) random sampling
        self._pos: dict[str, int] = {}
        self._by_address: dict[str, str] = {}
        self._seeds: tuple[str, ...] = ()
        self._reaped_addresses: dict[str, float] = {}  # dead member's address -> reaped at
        self._now = now  # the latest time a driver gave us
        self._last_contact_sync = -_INF

        self._seq = 0
        self._probe: _Probe | None = None
        self._probe_order: list[str] = []
        self._probe_index = 0
        self._relays: dict[int, _Relay] = {}
        self._suspicions: dict[str, Suspicion] = {}
        self._suspicion_heap: list[tuple[float, str]] = []
        self._reap_queue: deque[tuple[float, str, float]] = deque()
        self._leaving = False
        self._ring_checksum = 0

        cfg = self.config
        # Staggered starts keep a cluster started at once from probing in lockstep.
        self._next_probe_at = now + self._rng.uniform(0, cfg.probe_interval_s)
        self._next_gossip_at = now + self._rng.uniform(0, cfg.gossip_interval_s)
        self._next_push_pull_at = now + self._rng.uniform(0.5, 1.0) * cfg.push_pull_interval_s
        self._next_rejoin_at = now + self._rng.uniform(0.5, 1.0) * cfg.rejoin_interval_s

        self._stat_probes = 0
        self._stat_probe_failures = 0
        self._stat_refutations = 0
        self._stat_push_pulls = 0
        self._stat_heals = 0
        self._stat_contact_syncs = 0
        self._stat_conflicts = 0
        self._stat_handled = 0

        me = _State(node_id, address, 1, now)
        self._add_state(me)
        self._queue.put(node_id, Alive(node_id, address, 1))

    # ------------------------------------------------------------------ driver API

    def join(self, seeds: Iterable[str], now: float) -> list[Outgoing]:
        """Push-pull with every seed address ("host:port"); our own address is skipped.

        Seeds are remembered as heal targets. Joining no seed is a cluster of one.
        The driver resolves DNS names first (a name with several addresses gives
        several seeds); a seed that does not answer is retried by partition healing.
        """
        self._seeds = tuple(dict.fromkeys(s for s in seeds if s and s != self.address))
        return [Outgoing(seed, self._push_pull_request(join=True)) for seed in self._seeds]

    def handle(self, sender_address: str, msg: Message, now: float) -> list[Outgoing]:
        """Process one received message; returns the messages to send in reply.

        Unknown message types raise TypeError (a transport bug, not a peer's fault).
        """
        out: list[Outgoing] = []
        self._stat_handled += 1
        self._now = max(self._now, now)
        kind = type(msg)
        if kind is PushPullRequest:
            if msg.source != self.id:
                self._merge(msg.members, now)
                self._stat_push_pulls += 1
                out.append(Outgoing(sender_address, PushPullResponse(self.id, self._local_state())))
            return out
        if kind is PushPullResponse:
            if msg.source != self.id:
                # A member that knows only itself is joining: the responder's table is
                # the cluster's view already, and echoing it back as N updates would
                # cost N * retransmit limit packets per joiner. Refutations still go.
                self._merge(msg.members, now, gossip=len(self._members) > 1)
            return out
        if kind not in _PACKETS:
            raise TypeError(f"not a membership message: {kind.__name__}")
        # Before answering, so an Ack carries what the updates set off: a member told
        # of its own suspicion in a Ping refutes in the Ack itself.
        for update in msg.updates:
            self._apply(update, now)
        if kind is Ping:
            self._on_ping(sender_address, msg, out)
        elif kind is Ack:
            self._on_ack(msg, now, out)
        elif kind is Nack:
            if self._probe is not None and msg.seq == self._probe.seq:
                self._probe.nacks += 1
        elif kind is PingReq:
            self._on_ping_req(sender_address, msg, now, out)
        if kind is not Ack and kind is not Nack:
            self._sync_on_contact(sender_address, msg.source, now, out)
        return out

    def _sync_on_contact(self, sender_address: str, source: str, now: float, out: list[Outgoing]) -> None:
        interval = self.config.contact_sync_interval_s
        if interval <= 0 or now - self._last_contact_sync < interval or self._leaving:
            return
        state = self._members.get(source)
        if state is not None and state.status != DEAD:
            return
        self._last_contact_sync = now
        self._stat_contact_syncs += 1
        out.append(Outgoing(sender_address, self._push_pull_request(join=True)))

    def tick(self, now: float) -> list[Outgoing]:
        """Run every timer due at `now`; returns the messages to send."""
        out: list[Outgoing] = []
        cfg = self.config
        self._now = max(self._now, now)
        self._expire_suspicions(now)
        if self._relays:
            self._run_relays(now, out)
        probe = self._probe
        if probe is not None and not probe.indirect_sent and now >= probe.timeout_at:
            self._send_indirect(probe, out)
        if probe is not None and now >= probe.deadline_at:
            self._fail_probe(probe, now)
        if not self._leaving and now >= self._next_probe_at:
            self._start_probe(now, out)
        if now >= self._next_gossip_at:
            if len(self._queue):
                self._gossip(now, out)
            self._next_gossip_at = now + cfg.gossip_interval_s
        if not self._leaving and now >= self._next_push_pull_at:
            self._push_pull(out)
            interval = push_pull_scale(cfg.push_pull_interval_s, len(self._members))
            self._next_push_pull_at = now + interval
        if not self._leaving and now >= self._next_rejoin_at:
            self._heal(now, out)
            self._next_rejoin_at = now + cfg.rejoin_interval_s
        if self._reap_queue and self._reap_queue[0][0] <= now:
            self._reap(now)
        return out

    def next_deadline(self) -> float:
        """The earliest time `tick` has work; the driver may tick later, not earlier."""
        deadline = _INF
        if not self._leaving:  # a leaving member stops these timers without moving them
            deadline = min(self._next_push_pull_at, self._next_rejoin_at, self._next_probe_at)
        if len(self._queue):
            deadline = min(deadline, self._next_gossip_at)
        probe = self._probe
        if probe is not None:
            deadline = min(deadline, probe.deadline_at if probe.indirect_sent else probe.timeout_at)
        if self._suspicion_heap:
            deadline = min(deadline, self._suspicion_heap[0][0])
        if self._reap_queue:
            deadline = min(deadline, self._reap_queue[0][0])
        for relay in self._relays.values():
            deadline = min(deadline, relay.nack_at, relay.expires_at)
        return deadline

    def leave(self, now: float) -> list[Outgoing]:
        """Leave gracefully: broadcast our own Dead (status `left`) and stop probing.

        Keep ticking until `statistics().broadcast_queue` is 0 (or a timeout) so the
        news spreads; calling it twice is a no-op returning [].
        """
        if self._leaving:
            return []
        self._leaving = True
        self._probe = None  # a leaving member accuses nobody
        me = self._members[self.id]
        self._dead(Dead(self.id, me.incarnation, self.id), now)
        out: list[Outgoing] = []
        self._gossip(now, out)
        return out

    def set_ring_checksum(self, checksum: int) -> None:
        """The checksum of the ring this node currently serves; sent on pings/acks."""
        if checksum != self._ring_checksum:
            self._ring_checksum = checksum
            self._rings_agree = None

    # ------------------------------------------------------------------ queries

    def members(self) -> list[Member]:
        """Snapshots of every known member (self and tombstones included), by id."""
        return [self._members[k].snapshot() for k in sorted(self._members)]

    def member(self, node_id: str) -> Member | None:
        state = self._members.get(node_id)
        return None if state is None else state.snapshot()

    def address_of(self, node_id: str) -> str | None:
        """member(node_id).address without building a Member: replication asks on
        every step of every link."""
        state = self._members.get(node_id)
        return None if state is None else state.address

    def alive_ids(self) -> list[str]:
        """Ids of members in the ring (alive or suspect, self included), sorted."""
        return sorted(self.alive_set())

    def alive_set(self) -> frozenset[str]:
        """alive_ids() as a set, kept until a member changes: a node with split policy
        "consistent" asks on every write (rebuilt each time from sorted snapshots of
        every member, it cost 540 us a write with 300 members)."""
        if self._alive_ids is None:
            self._alive_ids = frozenset(k for k, s in self._members.items() if s.status in (ALIVE, SUSPECT))
        return self._alive_ids

    def status_counts(self) -> dict[str, int]:
        """Members per status, self included; O(1). The caller owns the dict."""
        return dict(self._counts)

    @property
    def health_score(self) -> int:
        return self._awareness.score

    @property
    def incarnation(self) -> int:
        return self._members[self.id].incarnation

    def is_coherent_locally(self) -> bool:
        """No member suspect or dead (nor reaped dead within `coherence_memory_s`),
        and every alive member's last ring checksum (sent on its pings and acks)
        equals ours. Left members do not count: leaving is not a split."""
        if self._counts[SUSPECT] or self._counts[DEAD]:
            return False
        if self._reaped_addresses:
            horizon = self._now - self.config.coherence_memory_s
            if any(at > horizon for at in self._reaped_addresses.values()):
                return False
        agree = self._rings_agree
        if agree is None:
            mine = self._ring_checksum
            agree = self._rings_agree = all(
                s.ring_checksum == mine for s in self._members.values() if s.status == ALIVE and s.id != self.id)
        return agree

    def drain_events(self) -> list[MemberEvent]:
        """Membership changes since the last call, oldest first; the caller owns them."""
        events = list(self._events)
        self._events.clear()
        return events

    def statistics(self) -> SwimStatistics:
        c = self._counts
        return SwimStatistics(
            members=len(self._members),
            alive=c[ALIVE],
            suspect=c[SUSPECT],
            dead=c[DEAD],
            left=c[LEFT],
            incarnation=self.incarnation,
            health_score=self._awareness.score,
            coherent=self.is_coherent_locally(),
            broadcast_queue=len(self._queue),
            probes=self._stat_probes,
            probe_failures=self._stat_probe_failures,
            refutations=self._stat_refutations,
            push_pulls=self._stat_push_pulls,
            heal_attempts=self._stat_heals,
            contact_syncs=self._stat_contact_syncs,
            address_conflicts=self._stat_conflicts,
            events_dropped=self._events_dropped,
            messages_handled=self._stat_handled,
        )

    # ------------------------------------------------------------------ messages

    def _updates_to(self, address: str) -> tuple[Update, ...]:
        """What a packet to `address` piggybacks. A member we suspect also hears of its
        suspicion (Lifeguard's buddy system; memberlist does it in `probeNode`): the
        gossip that carried it may never have arrived, since a paused process drops
        every message whose deadline passed, and unheard it cannot refute in time."""
        receiver = self._by_address.get(address, "")
        state = self._members.get(receiver)
        updates: tuple[Update, ...] = ()
        budget = self.config.max_packet_bytes - PACKET_OVERHEAD_BYTES
        if state is not None and state.status == SUSPECT:
            buddy = Suspect(state.id, state.incarnation, self.id)
            updates = (buddy,)
            budget -= encoded_size(buddy)
        if len(self._queue):
            limit = retransmit_limit(self.config.retransmit_mult, len(self._members))
            updates += self._queue.take(budget, limit, receiver)
        return updates

    def _on_ping(self, sender_address: str, ping: Ping, out: list[Outgoing]) -> None:
        # A ping for a previous owner of our address must not vouch for us.
        if ping.target != self.id:
            return
        source = self._members.get(ping.source)
        if source is not None:
            self._note_ring(source, ping.ring_checksum)
        updates = self._updates_to(sender_address)
        out.append(Outgoing(sender_address, Ack(ping.seq, self.id, self._ring_checksum, updates)))

    def _on_ack(self, ack: Ack, now: float, out: list[Outgoing]) -> None:
        probe = self._probe
        if probe is not None and ack.seq == probe.seq:
            self._probe = None
            self._awareness.apply_delta(probe_delta(True, probe.expected_nacks, probe.nacks))
            target = self._members.get(probe.target)
            if target is not None and ack.source == probe.target:
                target.rtt_ms = (now - probe.started_s) * 1000.0
                self._note_ring(target, ack.ring_checksum)
            return
        relay = self._relays.pop(ack.seq, None)
        if relay is not None:
            updates = self._updates_to(relay.origin_address)
            out.append(Outgoing(relay.origin_address, Ack(relay.origin_seq, self.id, self._ring_checksum, updates)))

    def _on_ping_req(self, sender_address: str, req: PingReq, now: float, out: list[Outgoing]) -> None:
        self._seq += 1
        cfg = self.config
        nack_at = now + cfg.nack_timeout_fraction * cfg.probe_timeout_s if req.nack else _INF
        self._relays[self._seq] = _Relay(sender_address, req.seq, nack_at, now + cfg.probe_interval_s)
        updates = self._updates_to(req.target_address)
        out.append(Outgoing(req.target_address, Ping(self._seq, self.id, req.target, self._ring_checksum, updates)))

    def _run_relays(self, now: float, out: list[Outgoing]) -> None:
        for seq, relay in list(self._relays.items()):
            if now >= relay.nack_at:
                relay.nack_at = _INF
                updates = self._updates_to(relay.origin_address)
                out.append(Outgoing(relay.origin_address, Nack(relay.origin_seq, self.id, updates)))
            if now >= relay.expires_at:
                del self._relays[seq]

    # ------------------------------------------------------------------ probing

    def _next_probe_target(self) -> _State | None:
        # Bounded by one full pass plus a reshuffle, so a table of tombstones ends.
        for _ in range(len(self._ids) + 1):
            if self._probe_index >= len(self._probe_order):
                self._probe_order = list(self._ids)
                self._rng.shuffle(self._probe_order)
                self._probe_index = 0
                if not self._probe_order:
                    return None
            node_id = self._probe_order[self._probe_index]
            self._probe_index += 1
            state = self._members.get(node_id)
            if state is not None and state.status in (ALIVE, SUSPECT):
                return state
        return None

    def _start_probe(self, now: float, out: list[Outgoing]) -> None:
        cfg = self.config
        self._next_probe_at = now + self._awareness.scale(cfg.probe_interval_s)
        target = self._next_probe_target()
        if target is None:
            return
        self._seq += 1
        self._stat_probes += 1
        self._probe = _Probe(
            target=target.id,
            incarnation=target.incarnation,
            seq=self._seq,
            started_s=now,
            timeout_at=now + self._awareness.scale(cfg.probe_timeout_s),
            deadline_at=self._next_probe_at,
        )
        updates = self._updates_to(target.address)
        out.append(Outgoing(target.address, Ping(self._seq, self.id, target.id, self._ring_checksum, updates)))

    def _send_indirect(self, probe: _Probe, out: list[Outgoing]) -> None:
        probe.indirect_sent = True
        target = self._members.get(probe.target)
        if target is None or self.config.indirect_checks == 0:
            return
        peers = self._random_members(
            self.config.indirect_checks, lambda s: s.status == ALIVE and s.id != probe.target
        )
        for peer in peers:
            updates = self._updates_to(peer.address)
            out.append(Outgoing(peer.address, PingReq(probe.seq, self.id, target.id, target.address, True, updates)))
        probe.expected_nacks = len(peers)

    def _fail_probe(self, probe: _Probe, now: float) -> None:
        self._probe = None
        self._awareness.apply_delta(probe_delta(False, probe.expected_nacks, probe.nacks))
        target = self._members.get(probe.target)
        if target is None or target.status not in (ALIVE, SUSPECT):
            return
        self._stat_probe_failures += 1
        self._suspect(Suspect(target.id, probe.incarnation, self.id), now)

    # ------------------------------------------------------------------ gossip, sync

    def _gossip(self, now: float, out: list[Outgoing]) -> None:
        horizon = now - self.config.gossip_to_the_dead_s

        def reachable(s: _State) -> bool:
            if s.status in (ALIVE, SUSPECT):
                return True
            return s.status == DEAD and s.state_change_s > horizon

        for peer in self._random_members(self.config.gossip_nodes, reachable):
            if not len(self._queue):
                return
            updates = self._updates_to(peer.address)
            if updates:
                out.append(Outgoing(peer.address, Gossip(self.id, updates)))

    def _local_state(self) -> tuple[MemberState, ...]:
        return tuple(MemberState(s.id, s.address, s.incarnation, s.status) for s in self._members.values())

    def _push_pull_request(self, join: bool) -> PushPullRequest:
        return PushPullRequest(self.id, self.address, self._local_state(), join)

    def _push_pull(self, out: list[Outgoing]) -> None:
        peers = self._random_members(1, lambda s: s.status == ALIVE)
        for peer in peers:
            out.append(Outgoing(peer.address, self._push_pull_request(join=False)))

    def _heal(self, now: float, out: list[Outgoing]) -> None:
        horizon = now - self.config.heal_window_s
        forget = now - max(self.config.heal_window_s, self.config.coherence_memory_s)
        for address, reaped_at in list(self._reaped_addresses.items()):
            if reaped_at < forget:
                del self._reaped_addresses[address]
        attempt_probability = self.config.heal_attempts_per_interval / max(1, self._counts[ALIVE])
        if self._rng.random() >= attempt_probability:
            return
        candidates = {a for a, at in self._reaped_addresses.items() if at >= horizon}
        candidates.update(s.address for s in self._members.values() if s.status == DEAD)
        for seed in self._seeds:
            known = self._members.get(self._by_address.get(seed, ""))
            if known is None or known.status not in (ALIVE, SUSPECT):
                candidates.add(seed)
        candidates.discard(self.address)
        if not candidates:
            return
        self._stat_heals += 1
        target = self._rng.choice(sorted(candidates))
        out.append(Outgoing(target, self._push_pull_request(join=True)))

    def _merge(self, members: Iterable[MemberState], now: float, gossip: bool = True) -> None:
        # memberlist `mergeRemoteState`: a remote "dead" only makes us suspect, so a
        # stale table cannot kill a member that is still answering.
        for m in members:
            if m.status == ALIVE:
                self._alive(Alive(m.node, m.address, m.incarnation), now, gossip)
            elif m.status == LEFT:
                self._dead(Dead(m.node, m.incarnation, m.node), now, gossip)
            else:
                self._suspect(Suspect(m.node, m.incarnation, self.id), now, gossip)

    # ------------------------------------------------------------------ state changes

    def _apply(self, update: Update, now: float) -> None:
        kind = type(update)
        if kind is Alive:
            self._alive(update, now)  # type: ignore[arg-type]
        elif kind is Suspect:
            self._suspect(update, now)  # type: ignore[arg-type]
        elif kind is Dead:
            self._dead(update, now)  # type: ignore[arg-type]

    def _alive(self, a: Alive, now: float, gossip: bool = True) -> None:
        state = self._members.get(a.node)
        if a.node == self.id:
            me = self._members[self.id]
            stale = a.incarnation < me.incarnation or (a.incarnation == me.incarnation and a.address == me.address)
            if not stale and not self._leaving:
                self._refute(a.incarnation)
            return
        if state is None:
            state = _State(a.node, a.address, a.incarnation, now)
            self._add_state(state)
            self._reaped_addresses.pop(a.address, None)
            if gossip:
                self._queue.put(a.node, a)
            self._emit(EventKind.JOINED, state, None)
            return
        previous = state.status
        if previous in (DEAD, LEFT):
            reclaim = (
                self.config.dead_reclaim_s > 0
                and a.address != state.address
                and now - state.state_change_s >= self.config.dead_reclaim_s
            )
            if a.incarnation <= state.incarnation and not reclaim:
                return
        else:
            if a.address != state.address:
                # Two processes claim one id; keep the one we know (memberlist).
                self._stat_conflicts += 1
                return
            if a.incarnation <= state.incarnation:
                return
        state.incarnation = a.incarnation
        if a.address != state.address:
            self._set_address(state, a.address)
        self._suspicions.pop(a.node, None)
        if gossip:
            self._queue.put(a.node, a)
        if previous != ALIVE:
            self._set_status(state, ALIVE, now)
            self._emit(EventKind.ALIVE if previous == SUSPECT else EventKind.JOINED, state, previous)
        else:
            self._emit(EventKind.UPDATED, state, previous)

    def _suspect(self, s: Suspect, now: float, gossip: bool = True) -> None:
        state = self._members.get(s.node)
        if state is None or s.incarnation < state.incarnation:
            if s.node == self.id:
                self._gossip_alive()
            return
        suspicion = self._suspicions.get(s.node)
        if suspicion is not None:
            if suspicion.confirm(s.from_node, now):
                heapq.heappush(self._suspicion_heap, (suspicion.deadline_s, s.node))
                if gossip:
                    self._queue.put(s.node, s)
            return
        if state.status != ALIVE:
            return
        if s.node == self.id:
            if not self._leaving:
                self._refute(s.incarnation)
            return
        state.incarnation = s.incarnation
        self._set_status(state, SUSPECT, now)
        cfg = self.config
        n = len(self._members)
        min_s = suspicion_timeout_s(cfg.suspicion_mult, n, cfg.probe_interval_s)
        k = suspicion_confirmations(cfg.suspicion_mult, n)
        suspicion = Suspicion(s.from_node, s.incarnation, k, min_s, cfg.suspicion_max_timeout_mult * min_s, now)
        self._suspicions[s.node] = suspicion
        heapq.heappush(self._suspicion_heap, (suspicion.deadline_s, s.node))
        if gossip:
            self._queue.put(s.node, s)
        self._emit(EventKind.SUSPECT, state, ALIVE)

    def _dead(self, d: Dead, now: float, gossip: bool = True) -> None:
        state = self._members.get(d.node)
        if d.node == self.id and d.incarnation < state.incarnation:
            self._gossip_alive()
            return
        if state is None or d.incarnation < state.incarnation or state.status in (DEAD, LEFT):
            return
        if d.node == self.id and not self._leaving:
            self._refute(d.incarnation)
            return
        previous = state.status
        state.incarnation = d.incarnation
        status = LEFT if d.from_node == d.node else DEAD
        self._set_status(state, status, now)
        self._suspicions.pop(d.node, None)
        if d.node != self.id:
            self._reap_queue.append((now + self.config.tombstone_reap_s, d.node, now))
        if gossip:
            self._queue.put(d.node, d)
        self._emit(EventKind.LEFT if status == LEFT else EventKind.DEAD, state, previous)

    def _refute(self, accused_incarnation: int) -> None:
        me = self._members[self.id]
        me.incarnation = max(me.incarnation + 1, accused_incarnation + 1)
        # Being accused suggests we are the slow one (Lifeguard).
        self._awareness.apply_delta(1)
        self._stat_refutations += 1
        self._gossip_alive()

    def _gossip_alive(self) -> None:
        """Queue our current Alive: a refutation, or the same again for a member still
        accusing an incarnation we refuted. In a small cluster a refutation's few
        retransmits can all miss one member, whose suspicion would then run out."""
        if not self._leaving:
            me = self._members[self.id]
            self._queue.put(self.id, Alive(self.id, self.address, me.incarnation))

    def _expire_suspicions(self, now: float) -> None:
        heap = self._suspicion_heap
        while heap and heap[0][0] <= now:
            _, node_id = heapq.heappop(heap)
            suspicion = self._suspicions.get(node_id)
            # Entries of refuted or replaced suspicions are stale; skip them.
            if suspicion is None or suspicion.deadline_s > now:
                continue
            del self._suspicions[node_id]
            state = self._members.get(node_id)
            if state is not None and state.status == SUSPECT and state.incarnation == suspicion.incarnation:
                self._dead(Dead(node_id, suspicion.incarnation, self.id), now)

    def _reap(self, now: float) -> None:
        queue = self._reap_queue
        while queue and queue[0][0] <= now:
            _, node_id, changed_at = queue.popleft()
            state = self._members.get(node_id)
            if state is None or state.status not in (DEAD, LEFT) or state.state_change_s != changed_at:
                continue
            if state.status == DEAD:
                self._reaped_addresses[state.address] = now
            self._remove_state(state)
            self._emit(EventKind.REAPED, state, state.status)

    # ------------------------------------------------------------------ bookkeeping

    def _add_state(self, state: _State) -> None:
        self._alive_ids = self._rings_agree = None
        self._members[state.id] = state
        self._counts[state.status] += 1
        self._by_address[state.address] = state.id
        if state.id != self.id:
            self._pos[state.id] = len(self._ids)
            self._ids.append(state.id)

    def _remove_state(self, state: _State) -> None:
        self._alive_ids = self._rings_agree = None
        del self._members[state.id]
        self._counts[state.status] -= 1
        if self._by_address.get(state.address) == state.id:
            del self._by_address[state.address]
        index = self._pos.pop(state.id)
        last = self._ids.pop()
        if last != state.id:
            self._ids[index] = last
            self._pos[last] = index

    def _set_status(self, state: _State, status: str, now: float) -> None:
        self._alive_ids = self._rings_agree = None
        self._counts[state.status] -= 1
        self._counts[status] += 1
        state.status = status
        state.state_change_s = now

    def _note_ring(self, state: _State, checksum: int) -> None:
        if state.ring_checksum != checksum:
            state.ring_checksum = checksum
            self._rings_agree = None

    def _set_address(self, state: _State, address: str) -> None:
        if self._by_address.get(state.address) == state.id:
            del self._by_address[state.address]
        state.address = address
        self._by_address[address] = state.id

    def _emit(self, kind: EventKind, state: _State, previous: str | None) -> None:
        if len(self._events) >= self.config.max_pending_events:
            self._events.popleft()
            self._events_dropped += 1
        self._events.append(MemberEvent(kind, state.snapshot(), previous))

    def _random_members(self, k: int, accept: Callable[[_State], bool]) -> list[_State]:
        """Up to k distinct other members passing `accept`, chosen at random.

        Samples at most 6k random slots when the table is large (memberlist
        `kRandomNodes` tries 3n), so it may return fewer than k when most members
        fail `accept`; the callers tolerate that.
        """
        ids = self._ids
        n = len(ids)
        if n == 0 or k <= 0:
            return []
        if n <= 4 * k:
            order = list(ids)
            self._rng.shuffle(order)
            return [s for s in (self._members[i] for i in order) if accept(s)][:k]
        chosen: list[_State] = []
        seen: set[int] = set()
        for _ in range(6 * k):
            index = self._rng.randrange(n)
            if index in seen:
                continue
            seen.add(index)
            state = self._members[ids[index]]
            if accept(state):
                chosen.append(state)
                if len(chosen) == k:
                    break
        return chosen
