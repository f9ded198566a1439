"""The piggyback queue: retransmit limit table, invalidation, order, byte budget."""

from __future__ import annotations

import pytest

from fero.membership.broadcast import BroadcastQueue, retransmit_limit
from fero.membership.messages import Alive, Dead, Suspect, encoded_size


@pytest.mark.parametrize(
    ("mult", "members", "expected"),
    [
        (3, 0, 0),  # ceil(log10 1) = 0 (memberlist util_test.go)
        (3, 1, 3),  # ceil(log10 2) = 1
        (3, 99, 6),  # ceil(log10 100) = 2
        (4, 9, 4),  # ceil(log10 10) = 1
        (4, 10, 8),  # ceil(log10 11) = 2
        (4, 200, 12),  # ceil(log10 201) = 3
        (2, 1000, 8),  # ceil(log10 1001) = 4
    ],
)
def test_retransmit_limit(mult: int, members: int, expected: int) -> None:
    assert retransmit_limit(mult, members) == expected


def test_newer_update_replaces_older_one_about_the_same_member() -> None:
    queue = BroadcastQueue()
    queue.put("b", Suspect("b", 4, "a"))
    queue.put("c", Alive("c", "c:1", 1))
    queue.put("b", Alive("b", "b:1", 5))
    assert len(queue) == 2
    assert queue.take(10_000, limit=3) == (Alive("b", "b:1", 5), Alive("c", "c:1", 1))
    assert queue.statistics().invalidated_total == 1


def test_updates_retire_after_the_limit() -> None:
    queue = BroadcastQueue()
    queue.put("b", Dead("b", 1, "a"))
    sent = [queue.take(10_000, limit=3) for _ in range(5)]
    assert [len(s) for s in sent] == [1, 1, 1, 0, 0]
    assert len(queue) == 0 and queue.statistics().retired_total == 1


def test_a_members_own_alive_is_not_spent_on_it_but_accusations_are() -> None:
    queue = BroadcastQueue()
    queue.put("b", Alive("b", "b:1", 2))
    queue.put("c", Suspect("c", 1, "a"))
    assert queue.take(10_000, limit=2, receiver="b") == (Suspect("c", 1, "a"),)
    assert queue.take(10_000, limit=2, receiver="c") == (Alive("b", "b:1", 2), Suspect("c", 1, "a"))
    # b's Alive was sent once, to c; the Suspect twice, so it retired.
    assert queue.take(10_000, limit=2, receiver="d") == (Alive("b", "b:1", 2),)
    assert len(queue) == 0


def test_least_transmitted_first_newest_news_first_then_round_robin() -> None:
    queue = BroadcastQueue()
    queue.put("o", Alive("o", "o:1", 1))
    queue.take(10_000, limit=10)  # "o" now sent once
    queue.put("x", Alive("x", "x:1", 1))
    queue.put("y", Alive("y", "y:1", 1))
    one = encoded_size(Alive("x", "x:1", 1))
    assert queue.take(one, limit=10) == (Alive("y", "y:1", 1),)
    assert queue.take(one, limit=10) == (Alive("x", "x:1", 1),)
    # All sent once now: retransmit in the order they were sent, so none starves.
    assert [queue.take(one, limit=10)[0].node for _ in range(4)] == ["o", "y", "x", "o"]


def test_byte_budget_skips_what_does_not_fit() -> None:
    queue = BroadcastQueue()
    big = Alive("b" * 100, "big:1", 1)
    small = Alive("s", "s:1", 1)
    queue.put("big", big)
    queue.put("small", small)
    budget = encoded_size(small) + 5
    assert queue.take(budget, limit=5) == (small,)  # big is newer but does not fit
    assert queue.transmits("big") == 0 and queue.transmits("small") == 1
    assert queue.take(3, limit=5) == ()
    with pytest.raises(ValueError):
        queue.take(100, limit=0)


def test_many_updates_fill_a_packet_without_exceeding_it() -> None:
    queue = BroadcastQueue()
    for i in range(1000):
        queue.put(f"node-{i}", Alive(f"node-{i}", f"10.0.0.{i}:7946", i))
    taken = queue.take(1162, limit=12)
    assert sum(encoded_size(u) for u in taken) <= 1162
    assert len(taken) >= 1162 // encoded_size(Alive("node-999", "10.0.0.999:7946", 999))
    queue.prune(10)
    assert len(queue) == 10
    # Prune drops the most transmitted first: none of the ones just sent remain.
    assert all(queue.transmits(f"node-{i}") == 0 for i in range(1000) if queue.peek(f"node-{i}"))
