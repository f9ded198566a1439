"""Membership timing and fan-out settings, with memberlist's presets.

Every duration is in seconds (suffix `_s`). The defaults come from hashicorp/memberlist
`config.go` (DefaultLANConfig, DefaultLocalConfig); fields memberlist does not have
(partition healing, the heal window) follow Ringpop's healer. The formulas that use
these numbers live in `suspicion.py` (suspicion timeout), `broadcast.py` (retransmit
limit) and `swim.py` (push-pull scaling); their docstrings cite the source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """How a member probes, suspects and gossips. Validate with `validate()`.

    Bounds are checked by `validate()`, which raises ValueError naming the field.
    """

    # Time between the starts of two probes (one member probed per interval). Lower
    # detects failures sooner at the cost of N messages per interval cluster-wide.
    # memberlist LAN and local: 1 s. Bounds: > 0. Scaled by the local health score.
    probe_interval_s: float = 1.0
    # How long to wait for a direct ack before asking K peers to probe indirectly.
    # Should exceed the 99th percentile round trip; memberlist LAN 0.5 s, local 0.2 s.
    # Bounds: 0 < probe_timeout_s < probe_interval_s. Scaled by the local health score.
    probe_timeout_s: float = 0.5
    # K, the peers asked to ping-req a target that missed its direct ack. More peers
    # make one lossy path less likely to cause a suspicion. memberlist LAN 3, local 1.
    # Bounds: >= 0.
    indirect_checks: int = 3
    # Suspicion timeout multiplier: min timeout = mult * max(1, log10 N) * probe interval
    # (memberlist `suspicionTimeout`). Also K for confirmations is mult - 2.
    # memberlist LAN 4, local 3. Bounds: >= 1.
    suspicion_mult: int = 4
    # Max suspicion timeout as a multiple of the min; a suspicion nobody confirms waits
    # this long, so one slow prober alone cannot kill a member quickly (Lifeguard).
    # memberlist: 6. Bounds: >= 1.
    suspicion_max_timeout_mult: int = 6
    # Each update is piggybacked retransmit_mult * ceil(log10(N + 1)) times
    # (memberlist `retransmitLimit`); higher survives more loss, costs bytes.
    # memberlist LAN 4, local 2. Bounds: >= 1.
    retransmit_mult: int = 4
    # Lifeguard: the health score ranges 0..max-1 and multiplies probe interval and
    # timeout by (score + 1), so a member that is itself slow backs off instead of
    # accusing healthy peers. memberlist: 8. 1 disables Lifeguard. Bounds: >= 1.
    awareness_max_multiplier: int = 8
    # Time between gossip rounds that push queued updates to `gossip_nodes` random
    # members (only when the queue is non-empty). memberlist LAN 0.2 s, local 0.1 s.
    # Bounds: > 0.
    gossip_interval_s: float = 0.2
    # Members sent each gossip round; with the interval this sets dissemination speed.
    # memberlist: 3. Bounds: >= 1.
    gossip_nodes: int = 3
    # Dead members still receive gossip for this long, so a member wrongly declared
    # dead (a short split) hears it and refutes. memberlist LAN 30 s, local 15 s.
    # Bounds: >= 0.
    gossip_to_the_dead_s: float = 30.0
    # Full state exchange with one random member; repairs what gossip missed. Scaled up
    # for clusters above 32 members (memberlist `pushPullScale`). memberlist LAN 30 s,
    # local 15 s. Bounds: > 0; 0 is not allowed (use a large value to make it rare).
    push_pull_interval_s: float = 30.0
    # Dead and left members are forgotten (tombstone reaped) this long after their last
    # state change; until then a stale alive at the same incarnation cannot revive them.
    # memberlist reaps at GossipToTheDeadTime: LAN 30 s, local 15 s. Bounds: >= 0.
    tombstone_reap_s: float = 30.0
    # A dead/left member's id may re-bind to a new address after this long (memberlist
    # DeadNodeReclaimTime). 0 disables reclaim, as in memberlist. Bounds: >= 0.
    dead_reclaim_s: float = 0.0
    # Partition healing (Ringpop healer): every interval a member, with probability
    # heal_attempts_per_interval / N, push-pulls with a seed it does not see alive or a
    # dead/reaped member's address, so two sides of a healed split find each other
    # without an operator. Ringpop: 30 s. Bounds: > 0.
    rejoin_interval_s: float = 30.0
    # Cluster-wide expected heal attempts per rejoin interval. The 1/N probability keeps
    # a 1,000-member split from sending 1,000 full-state exchanges at once. Bounds: > 0.
    heal_attempts_per_interval: float = 3.0
    # Addresses of reaped dead members stay heal targets this long; a split that lasts
    # longer heals through seeds only. Bounds: >= 0.
    heal_window_s: float = 3600.0
    # Anti-entropy on contact: a packet from a member we hold dead or do not know
    # means our views differ (typically just after a heal), so we push-pull with its
    # sender, at most once per this interval so a big heal cannot flood anyone. Not
    # in memberlist; it turns a heal's stragglers from minutes (periodic push-pull)
    # into seconds. 0 disables. Bounds: >= 0.
    contact_sync_interval_s: float = 5.0
    # A member that died (rather than left) keeps `is_coherent_locally()` false this
    # long after its tombstone is reaped: from inside, a split looks exactly like the
    # other side crashing, and `coherent` must stay false until the heal. After this
    # long a crash is taken as permanent. Bounds: >= 0.
    coherence_memory_s: float = 600.0
    # Intermediaries send a nack after this fraction of probe_timeout_s without an ack
    # from the target (Lifeguard paper: 80 %), so it arrives before the prober's
    # deadline. Bounds: 0 < fraction <= 1.
    nack_timeout_fraction: float = 0.8
    # Budget for one packet including piggybacked updates (memberlist UDPBufferSize);
    # fits a 1500-byte Ethernet MTU with IP/UDP headers. Bounds: >= 256.
    max_packet_bytes: int = 1400
    # Membership change events kept for `drain_events()`; older ones are dropped (and
    # counted) when the driver falls behind, so memory stays bounded. Bounds: >= 1.
    max_pending_events: int = 100_000

    @classmethod
    def lan(cls) -> MembershipConfig:
        """memberlist DefaultLANConfig: a data-centre network."""
        return cls()

    @classmethod
    def local(cls) -> MembershipConfig:
        """memberlist DefaultLocalConfig: loopback or one rack; faster, less redundant."""
        return cls(
            probe_timeout_s=0.2,
            indirect_checks=1,
            suspicion_mult=3,
            retransmit_mult=2,
            gossip_interval_s=0.1,
            gossip_to_the_dead_s=15.0,
            push_pull_interval_s=15.0,
            tombstone_reap_s=15.0,
            rejoin_interval_s=15.0,
        )

    def with_(self, **changes: object) -> MembershipConfig:
        """A validated copy with `changes` applied."""
        return replace(self, **changes).validate()  # type: ignore[arg-type]

    def validate(self) -> MembershipConfig:
        """Return self; raise ValueError naming the first field out of bounds."""
        checks = [
            ("probe_interval_s", self.probe_interval_s > 0),
            ("probe_timeout_s", 0 < self.probe_timeout_s < self.probe_interval_s),
            ("indirect_checks", self.indirect_checks >= 0),
            ("suspicion_mult", self.suspicion_mult >= 1),
            ("suspicion_max_timeout_mult", self.suspicion_max_timeout_mult >= 1),
            ("retransmit_mult", self.retransmit_mult >= 1),
            ("awareness_max_multiplier", self.awareness_max_multiplier >= 1),
            ("gossip_interval_s", self.gossip_interval_s > 0),
            ("gossip_nodes", self.gossip_nodes >= 1),
            ("gossip_to_the_dead_s", self.gossip_to_the_dead_s >= 0),
            ("push_pull_interval_s", self.push_pull_interval_s > 0),
            ("tombstone_reap_s", self.tombstone_reap_s >= 0),
            ("dead_reclaim_s", self.dead_reclaim_s >= 0),
            ("rejoin_interval_s", self.rejoin_interval_s > 0),
            ("heal_attempts_per_interval", self.heal_attempts_per_interval > 0),
            ("heal_window_s", self.heal_window_s >= 0),
            ("coherence_memory_s", self.coherence_memory_s >= 0),
            ("contact_sync_interval_s", self.contact_sync_interval_s >= 0),
            ("nack_timeout_fraction", 0 < self.nack_timeout_fraction <= 1),
            ("max_packet_bytes", self.max_packet_bytes >= 256),
            ("max_pending_events", self.max_pending_events >= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"MembershipConfig.{name} out of bounds: {getattr(self, name)!r}")
        return self


def push_pull_scale(interval_s: float, members: int) -> float:
    """memberlist `pushPullScale`: above 32 members, stretch the push-pull interval by
    ceil(log2(N) - log2(32)) + 1 so full-state traffic grows as N log N, not N^2."""
    threshold = 32
    if members <= threshold:
        return interval_s
    multiplier = math.ceil(math.log2(members) - math.log2(threshold)) + 1
    return interval_s * multiplier
