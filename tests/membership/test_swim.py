"""The SWIM state machine fed by hand: incarnation rules, refutation, probing,
Lifeguard, leave, tombstones, healing targets, events and coherence."""

from __future__ import annotations

import random

import pytest

from fero.membership import EventKind, MembershipConfig, Swim
from fero.membership.messages import (
    PACKET_OVERHEAD_BYTES,
    Ack,
    Alive,
    Dead,
    Gossip,
    MemberState,
    Nack,
    Ping,
    PingReq,
    PushPullRequest,
    PushPullResponse,
    Suspect,
    Update,
    encoded_size,
)

LAN = MembershipConfig.lan()


def make(node_id: str = "a", config: MembershipConfig = LAN, seed: int = 0) -> Swim:
    return Swim(node_id, f"{node_id}:1", config, random.Random(seed))


def tell(swim: Swim, *updates: Update, now: float = 0.0) -> None:
    swim.handle("x:1", Gossip("x", tuple(updates)), now)


def know(swim: Swim, *ids: str, incarnation: int = 1) -> None:
    tell(swim, *(Alive(i, f"{i}:1", incarnation) for i in ids))


def view(swim: Swim, node_id: str) -> tuple[str, int] | None:
    member = swim.member(node_id)
    return None if member is None else (member.status, member.incarnation)


def run_until(swim: Swim, predicate, limit: int = 10_000):  # type: ignore[no-untyped-def]
    """Tick at each deadline until a tick's output satisfies `predicate`; returns
    (time, output). Bounded by `limit` ticks."""
    for _ in range(limit):
        now = swim.next_deadline()
        out = swim.tick(now)
        if predicate(out):
            return now, out
    raise AssertionError("condition not reached")


def run_answering(swim: Swim, predicate, limit: int = 10_000):  # type: ignore[no-untyped-def]
    """Like run_until, but every member answers our pings (nobody is suspected)."""
    for _ in range(limit):
        now = swim.next_deadline()
        out = swim.tick(now)
        for m in out:
            if isinstance(m.msg, Ping):
                swim.handle(m.to, Ack(m.msg.seq, m.msg.target), now + 0.001)
        if predicate(out):
            return now, out
    raise AssertionError("condition not reached")


SETUP = {
    "alive@5": [],
    "suspect@5": [Suspect("b", 5, "c")],
    "dead@5": [Dead("b", 5, "c")],
    "left@5": [Dead("b", 5, "b")],
}


@pytest.mark.parametrize(
    ("start", "update", "expected"),
    [
        ("alive@5", Suspect("b", 4, "c"), ("alive", 5)),  # old news
        ("alive@5", Suspect("b", 5, "c"), ("suspect", 5)),
        ("alive@5", Suspect("b", 6, "c"), ("suspect", 6)),
        ("alive@5", Alive("b", "b:1", 5), ("alive", 5)),
        ("alive@5", Alive("b", "b:1", 6), ("alive", 6)),
        ("alive@5", Alive("b", "elsewhere:1", 6), ("alive", 5)),  # address conflict: keep ours
        ("alive@5", Dead("b", 4, "c"), ("alive", 5)),
        ("alive@5", Dead("b", 5, "c"), ("dead", 5)),
        ("alive@5", Dead("b", 5, "b"), ("left", 5)),  # dead from itself is a leave
        ("suspect@5", Alive("b", "b:1", 5), ("suspect", 5)),  # refuting needs a higher one
        ("suspect@5", Alive("b", "b:1", 6), ("alive", 6)),
        ("suspect@5", Suspect("b", 4, "d"), ("suspect", 5)),
        ("suspect@5", Dead("b", 5, "c"), ("dead", 5)),
        ("dead@5", Alive("b", "b:1", 5), ("dead", 5)),  # a stale alive cannot resurrect
        ("dead@5", Alive("b", "b:1", 6), ("alive", 6)),
        ("dead@5", Suspect("b", 6, "c"), ("dead", 5)),  # dead is not downgraded
        ("dead@5", Dead("b", 6, "c"), ("dead", 5)),
        ("left@5", Alive("b", "b:1", 6), ("alive", 6)),  # rejoined after leaving
    ],
)
def test_incarnation_rules(start: str, update: Update, expected: tuple[str, int]) -> None:
    a = make()
    know(a, "b", "c", "d", incarnation=5)
    know(a, "c", "d", incarnation=5)
    tell(a, *SETUP[start])
    tell(a, update, now=1.0)
    assert view(a, "b") == expected


def test_unknown_members_are_only_learned_from_alive() -> None:
    a = make()
    tell(a, Suspect("z", 3, "c"), Dead("y", 3, "c"))
    assert view(a, "z") is None and view(a, "y") is None
    tell(a, Alive("z", "z:1", 3))
    assert view(a, "z") == ("alive", 3)


@pytest.mark.parametrize(
    ("accusation", "expected_incarnation"),
    [
        (Suspect("a", 1, "b"), 2),
        (Suspect("a", 7, "b"), 8),  # jump past whatever the accuser saw
        (Dead("a", 4, "b"), 5),
        (Alive("a", "a:1", 9), 10),  # someone claims a newer us: outbid it
    ],
)
def test_refutation(accusation: Update, expected_incarnation: int) -> None:
    a = make()
    know(a, "b")
    tell(a, accusation, now=1.0)
    assert a.incarnation == expected_incarnation
    assert view(a, "a") == ("alive", expected_incarnation)
    assert a.health_score == 1  # being accused hints that we are the slow one
    # The refutation rides on the next packet we send.
    [(to, ack)] = a.handle("b:1", Ping(1, "b", "a"), 2.0)
    assert to == "b:1" and Alive("a", "a:1", expected_incarnation) in ack.updates


def test_stale_accusations_are_not_refuted() -> None:
    a = make()
    know(a, "b")
    tell(a, Suspect("a", 1, "b"))
    assert a.incarnation == 2
    tell(a, Suspect("a", 1, "b"), Dead("a", 1, "c"), Alive("a", "a:1", 2))
    assert a.incarnation == 2 and a.statistics().refutations == 1


def drain_broadcasts(swim: Swim, sender: str = "b") -> None:
    """Answer pings from `sender` until our acks carry nothing: every queued update has
    used its retransmits. Bounded."""
    for seq in range(100):
        [(_, ack)] = swim.handle(f"{sender}:1", Ping(seq, sender, swim.id), 1.0)
        if not ack.updates:
            return
    raise AssertionError("the broadcast queue never drained")


@pytest.mark.parametrize("stale", [Suspect("a", 1, "b"), Dead("a", 1, "b")])
def test_stale_accusation_sends_our_alive_again(stale: Update) -> None:
    # Its sender missed our refutation; left alone, its suspicion would run out.
    a = make()
    know(a, "b")
    tell(a, Suspect("a", 1, "c"))
    drain_broadcasts(a)
    [(_, ack)] = a.handle("b:1", Ping(200, "b", "a", 0, (stale,)), 2.0)
    assert ack.updates == (Alive("a", "a:1", 2),)
    assert a.incarnation == 2 and a.statistics().refutations == 1


def test_stale_accusation_while_leaving_does_not_undo_the_leave() -> None:
    a = make()
    know(a, "b")
    tell(a, Suspect("a", 1, "c"))
    a.leave(1.0)
    [(_, ack)] = a.handle("b:1", Ping(1, "b", "a", 0, (Suspect("a", 1, "b"),)), 2.0)
    assert [u for u in ack.updates if u.node == "a"] == [Dead("a", 2, "a")]


def test_ping_that_tells_us_of_our_suspicion_is_answered_with_the_refutation() -> None:
    a = make()
    know(a, "b")
    drain_broadcasts(a)
    [(_, ack)] = a.handle("b:1", Ping(200, "b", "a", 0, (Suspect("a", 1, "b"),)), 2.0)
    assert ack.updates == (Alive("a", "a:1", 2),)


def test_every_packet_to_a_suspect_tells_it_of_its_suspicion() -> None:
    # Lifeguard's buddy system: the gossip that spread the suspicion may have been lost
    # while the suspect was paused.
    a = make()
    suspect = "a-suspect-with-a-long-id"
    know(a, suspect, "c", "d")
    tell(a, Suspect(suspect, 1, "c"))
    buddy = Suspect(suspect, 1, "a")
    now, out = run_answering(a, lambda out: any(isinstance(m.msg, Ping) and m.msg.target == suspect for m in out))
    [ping] = [m.msg for m in out if isinstance(m.msg, Ping)]
    assert ping.updates[0] == buddy
    # A full queue of updates smaller than the buddy must neither push it out nor
    # overflow the packet with it.
    know(a, *(f"m{i:02d}" for i in range(100)))
    [(_, ack)] = a.handle(f"{suspect}:1", Ping(900, suspect, "a"), now)
    assert ack.updates[0] == buddy and len(ack.updates) > 1
    assert sum(encoded_size(u) for u in ack.updates) <= LAN.max_packet_bytes - PACKET_OVERHEAD_BYTES
    [(_, ack)] = a.handle("c:1", Ping(901, "c", "a"), now)
    assert buddy not in ack.updates


def test_refuted_suspicion_reaches_the_accuser() -> None:
    a, b = make("a"), make("b")
    know(a, "b")
    know(b, "a")
    tell(b, Suspect("a", 1, "c"), now=1.0)
    assert view(b, "a") == ("suspect", 1)
    tell(a, Suspect("a", 1, "c"), now=1.0)
    [(_, ack)] = a.handle("b:1", Ping(1, "b", "a"), 1.5)
    b.handle("a:1", ack, 1.6)
    assert view(b, "a") == ("alive", 2)
    assert [e.kind for e in b.drain_events()][-2:] == [EventKind.SUSPECT, EventKind.ALIVE]


def test_ping_for_someone_else_is_not_answered() -> None:
    a = make()
    know(a, "b")
    assert a.handle("b:1", Ping(1, "b", "not-a"), 0.0) == []


def test_contact_from_unknown_or_dead_member_triggers_rate_limited_sync() -> None:
    a = make()
    know(a, "b", "c")
    # (know() itself came from an unknown "x" at 0 s, so syncs are allowed from 5 s.)
    assert [type(m.msg) for m in a.handle("b:1", Ping(1, "b", "a"), 10.0)] == [Ack]
    out = a.handle("z:1", Ping(2, "z", "a"), 11.0)
    assert [(m.to, type(m.msg)) for m in out] == [("z:1", Ack), ("z:1", PushPullRequest)]
    tell(a, Dead("c", 1, "b"), now=11.5)
    out = a.handle("c:1", Gossip("c"), 12.0)  # within contact_sync_interval_s: no sync
    assert out == []
    out = a.handle("c:1", Gossip("c"), 11.0 + LAN.contact_sync_interval_s)
    assert [(m.to, type(m.msg)) for m in out] == [("c:1", PushPullRequest)]
    assert a.statistics().contact_syncs == 3


def _probe_until_indirect(a: Swim):  # type: ignore[no-untyped-def]
    now, out = run_until(a, lambda out: any(isinstance(m.msg, Ping) for m in out))
    [ping] = [m for m in out if isinstance(m.msg, Ping)]
    later, out = run_until(a, lambda out: any(isinstance(m.msg, PingReq) for m in out))
    reqs = [m for m in out if isinstance(m.msg, PingReq)]
    assert later - now == pytest.approx(LAN.probe_timeout_s)
    return ping, reqs


def test_failed_probe_goes_indirect_then_suspects() -> None:
    a = make()
    know(a, "b", "c", "d")
    ping, reqs = _probe_until_indirect(a)
    target = ping.msg.target
    assert {r.msg.target for r in reqs} == {target}
    assert len(reqs) == 2  # K = 3 wanted, but only two peers besides the target
    assert all(r.msg.target_address == f"{target}:1" for r in reqs)
    for r in reqs:
        a.handle(r.to, Nack(r.msg.seq, r.to[:-2]), a.next_deadline() - 0.01)
    run_until(a, lambda out: view(a, target)[0] == "suspect")
    assert a.health_score == 0  # every intermediary answered: not our fault
    assert a.statistics().probe_failures == 1


def test_missing_nacks_raise_health_score_and_acks_lower_it() -> None:
    a = make()
    know(a, "b", "c", "d")
    _probe_until_indirect(a)
    now, out = run_until(a, lambda out: any(isinstance(m.msg, Ping) for m in out))
    assert a.health_score == 2  # two nacks expected, none came
    [ping] = [m for m in out if isinstance(m.msg, Ping)]
    a.handle(ping.to, Ack(ping.msg.seq, ping.msg.target), now + 0.01)
    assert a.health_score == 1
    assert a.member(ping.msg.target).rtt_ms == pytest.approx(10.0)


def test_probe_timeout_and_interval_scale_with_health() -> None:
    a = make()
    know(a, "b", "c", "d")
    _probe_until_indirect(a)
    ping_at, _ = run_until(a, lambda out: any(isinstance(m.msg, Ping) for m in out))
    assert a.health_score == 2
    # Lifeguard: (score + 1) = 3 times the 0.5 s timeout and the 1 s interval.
    req_at, _ = run_until(a, lambda out: any(isinstance(m.msg, PingReq) for m in out))
    assert req_at - ping_at == pytest.approx(1.5)
    next_ping_at, _ = run_until(a, lambda out: any(isinstance(m.msg, Ping) for m in out))
    assert next_ping_at - ping_at == pytest.approx(3.0)


def test_relay_forwards_ack_or_nacks() -> None:
    c = make("c")
    know(c, "a", "b")
    [(to, ping)] = c.handle("a:1", PingReq(42, "a", "b", "b:1"), 10.0)
    assert to == "b:1" and ping.target == "b"
    [(to, ack)] = c.handle("b:1", Ack(ping.seq, "b"), 10.1)
    assert (to, ack.seq) == ("a:1", 42)
    # Without an ack: a nack at 80 % of the probe timeout.
    c.handle("a:1", PingReq(43, "a", "b", "b:1"), 20.0)
    nack_at = 20.0 + 0.8 * LAN.probe_timeout_s
    assert not any(isinstance(m.msg, Nack) for m in c.tick(nack_at - 0.001))
    out = c.tick(nack_at)
    nacks = [m for m in out if isinstance(m.msg, Nack)]
    assert [(m.to, m.msg.seq) for m in nacks] == [("a:1", 43)]


@pytest.mark.parametrize(("confirmers", "expected_timeout_s"), [((), 24.0), (("c", "d"), 4.0)])
def test_suspicion_expires_into_dead(confirmers: tuple[str, ...], expected_timeout_s: float) -> None:
    # 5 members: min = 4 * max(1, log10 5) * 1 s = 4 s; max = 6 * 4 = 24 s; K = 2.
    a = make()
    know(a, "b", "c", "d", "e")
    tell(a, Suspect("b", 1, "e"), now=100.0)
    for i, confirmer in enumerate(confirmers):
        tell(a, Suspect("b", 1, confirmer), now=100.0 + i * 0.1)
    a.tick(100.0 + expected_timeout_s - 0.01)
    assert view(a, "b") == ("suspect", 1)
    a.tick(100.0 + expected_timeout_s)
    assert view(a, "b") == ("dead", 1)
    dead = [e for e in a.drain_events() if e.kind is EventKind.DEAD]
    assert len(dead) == 1 and dead[0].changes_ring


def test_leave_is_gossiped_as_left_and_stops_probing() -> None:
    a, b = make("a"), make("b")
    know(a, "b")
    know(b, "a")
    out = a.leave(5.0)
    assert view(a, "a") == ("left", 1)
    assert a.leave(5.0) == []
    [(_, gossip)] = out
    b.handle("a:1", gossip, 5.1)
    assert view(b, "a") == ("left", 1)
    [event] = [e for e in b.drain_events() if e.kind is EventKind.LEFT]
    assert event.changes_ring
    # A left member refutes nothing and probes nobody.
    tell(a, Suspect("a", 1, "b"), now=6.0)
    assert a.incarnation == 1
    outs = [m for t in range(60) for m in a.tick(6.0 + t)]
    assert not any(isinstance(m.msg, (Ping, PingReq)) for m in outs)
    # Stopped timers must not leave a deadline in the past (a driver would spin).
    assert a.next_deadline() > 65.0


def test_tombstones_are_reaped_then_healed_towards() -> None:
    config = LAN.with_(tombstone_reap_s=10.0, rejoin_interval_s=5.0)

    def is_heal(out) -> bool:  # type: ignore[no-untyped-def]
        return any(isinstance(m.msg, PushPullRequest) and m.msg.join for m in out)

    a = make(config=config)
    know(a, "b", "c")
    tell(a, Dead("b", 1, "c"), now=1.0)
    reaped_at, _ = run_answering(a, lambda out: view(a, "b") is None)
    assert view(a, "c") == ("alive", 1)
    assert reaped_at == pytest.approx(11.0)
    assert [e.kind for e in a.drain_events()][-1] is EventKind.REAPED
    # With 2 alive members, heal probability 3/2 >= 1: every rejoin round tries, and
    # the reaped member's address is the only candidate.
    targets = set()
    for _ in range(4):
        _, out = run_answering(a, is_heal)
        targets.update(m.to for m in out if isinstance(m.msg, PushPullRequest))
    assert targets == {"b:1"}
    # After the heal window the reaped address is no longer tried.
    a2 = make(config=config.with_(heal_window_s=1.0))
    know(a2, "b", "c")
    tell(a2, Dead("b", 1, "c"), now=1.0)
    run_answering(a2, lambda out: view(a2, "b") is None)
    with pytest.raises(AssertionError, match="not reached"):
        run_answering(a2, is_heal, limit=300)


def test_heal_targets_seeds_not_seen_alive() -> None:
    config = LAN.with_(rejoin_interval_s=5.0)
    a = make(config=config)
    out = a.join(["a:1", "s:1", "s:1"], 0.0)
    assert [m.to for m in out] == ["s:1"]  # ourselves and duplicates skipped
    _, out = run_until(a, lambda out: any(isinstance(m.msg, PushPullRequest) for m in out))
    assert [m.to for m in out if isinstance(m.msg, PushPullRequest)] == ["s:1"]
    tell(a, Alive("s", "s:1", 1), now=a.next_deadline())
    with pytest.raises(AssertionError, match="not reached"):
        run_answering(a, lambda out: any(isinstance(m.msg, PushPullRequest) and m.msg.join for m in out), 300)


def test_push_pull_merges_remote_dead_as_suspect_and_answers_after_merging() -> None:
    a = make()
    know(a, "b", "c")
    table = (
        MemberState("b", "b:1", 1, "dead"),
        MemberState("c", "c:1", 2, "alive"),
        MemberState("a", "a:1", 1, "dead"),
        MemberState("n", "n:1", 1, "alive"),
    )
    [(to, response)] = a.handle("c:1", PushPullRequest("c", "c:1", table), 3.0)
    assert view(a, "b") == ("suspect", 1)  # a stale table cannot kill on its own
    assert view(a, "c") == ("alive", 2) and view(a, "n") == ("alive", 1)
    assert to == "c:1" and isinstance(response, PushPullResponse)
    # The reply already carries our refutation, so the caller learns it now.
    assert MemberState("a", "a:1", 2, "alive") in response.members


def test_joiner_does_not_echo_the_table_it_was_given() -> None:
    a = make()
    table = tuple(MemberState(f"n{i}", f"n{i}:1", 1, "alive") for i in range(50))
    a.handle("n0:1", PushPullResponse("n0", table), 0.0)
    assert a.statistics().alive == 51 and a.statistics().broadcast_queue == 1  # only our own alive
    b = make("b")
    know(b, "x")
    b.handle("n0:1", PushPullResponse("n0", table), 0.0)
    assert b.statistics().broadcast_queue > 50  # a member with a view spreads what is new


def test_events_and_ring_changes() -> None:
    a = make()
    know(a, "b")
    tell(a, Suspect("b", 1, "c"), Alive("b", "b:1", 2), Dead("b", 2, "c"), Alive("b", "b:1", 3))
    tell(a, Alive("b", "b:1", 4), Alive("b", "b:1", 4))
    events = a.drain_events()
    assert [(e.kind, e.changes_ring) for e in events] == [
        (EventKind.JOINED, True),
        (EventKind.SUSPECT, False),
        (EventKind.ALIVE, False),
        (EventKind.DEAD, True),
        (EventKind.JOINED, True),
        (EventKind.UPDATED, False),
    ]
    assert events[-1].member.incarnation == 4
    assert a.drain_events() == []


def test_events_are_bounded() -> None:
    a = make(config=LAN.with_(max_pending_events=3))
    know(a, *[f"n{i}" for i in range(10)])
    assert len(a.drain_events()) == 3
    assert a.statistics().events_dropped == 7


def test_coherence_needs_everyone_alive_and_on_our_ring() -> None:
    a = make()
    a.set_ring_checksum(77)
    assert a.is_coherent_locally()
    know(a, "b")
    assert not a.is_coherent_locally()  # b has not told us its ring yet
    a.handle("b:1", Ping(1, "b", "a", ring_checksum=77), 1.0)
    assert a.is_coherent_locally()
    tell(a, Suspect("b", 1, "c"))
    assert not a.is_coherent_locally() and not a.statistics().coherent
    tell(a, Alive("b", "b:1", 2))
    assert a.is_coherent_locally()
    tell(a, Dead("b", 2, "b"))
    assert a.is_coherent_locally()  # a graceful leave is not a split


def test_members_and_alive_ids() -> None:
    a = make()
    know(a, "c", "b")
    tell(a, Dead("c", 1, "b"))
    assert [m.id for m in a.members()] == ["a", "b", "c"]
    assert a.alive_ids() == ["a", "b"]
    with pytest.raises(ValueError):
        Swim("", "x:1")
    with pytest.raises(TypeError):
        a.handle("b:1", "not a message", 0.0)  # type: ignore[arg-type]


def test_address_of_is_the_members_address_without_building_a_member() -> None:
    s = make("a")
    know(s, "b", "c")
    assert s.address_of("a") == "a:1" and s.address_of("b") == "b:1" and s.address_of("c") == "c:1"
    assert all(s.address_of(i) == s.member(i).address for i in ("a", "b", "c"))
    assert s.address_of("nobody") is None
