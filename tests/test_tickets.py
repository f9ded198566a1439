"""fero.tickets: a bounded window of committed tickets, evicted in commit order."""

from __future__ import annotations

import pytest

from fero.tickets import Committed, TicketTable


def _fill(table: TicketTable, names: list[str], ms: list[int] | None = None) -> None:
    for i, t in enumerate(names):
        table.put(t, Committed(offset=i, value=i * 10, committed_ms=ms[i] if ms else i))


@pytest.mark.parametrize(
    "max_entries, names, kept",
    [
        (3, ["a", "b", "c"], ["a", "b", "c"]),
        (3, ["a", "b", "c", "d"], ["b", "c", "d"]),
        (2, ["z", "a", "m", "b"], ["m", "b"]),  # commit order, not name order
        (1, ["a", "b", "c"], ["c"]),
    ],
)
def test_count_window_evicts_oldest_commit_first(max_entries: int, names: list[str], kept: list[str]) -> None:
    table = TicketTable(window_ms=10**9, max_entries=max_entries)
    _fill(table, names)
    assert [t for t, _ in table.items()] == kept
    assert len(table) == len(kept)
    for t in names:
        if t not in kept:
            assert table.get(t) is None
    last = table.get(names[-1])
    assert last is not None and last.offset == len(names) - 1 and last.value == (len(names) - 1) * 10


@pytest.mark.parametrize(
    "committed_ms, now_ms, window_ms, kept",
    [
        ([100, 200, 300], 300, 150, ["t1", "t2"]),  # 100 < 300-150
        ([100, 200, 300], 250, 150, ["t0", "t1", "t2"]),  # 100 == cutoff: kept
        ([100, 200, 300], 10_000, 150, []),
        ([100, 200, 300], 0, 150, ["t0", "t1", "t2"]),
    ],
)
def test_time_window(committed_ms: list[int], now_ms: int, window_ms: int, kept: list[str]) -> None:
    table = TicketTable(window_ms=window_ms, max_entries=100)
    names = [f"t{i}" for i in range(len(committed_ms))]
    _fill(table, names, committed_ms)
    dropped = table.expire(now_ms)
    assert dropped == len(names) - len(kept)
    assert [t for t, _ in table.items()] == kept


def test_replayed_table_equals_the_lost_one() -> None:
    """Puts in log order with the same bounds give the same table, whatever came before."""
    log = [(f"k{i}", Committed(offset=i, value=i * 10, committed_ms=i)) for i in range(10)]
    a = TicketTable(window_ms=50, max_entries=4)
    b = TicketTable(window_ms=50, max_entries=4)
    for t, c in log:
        a.put(t, c)
    for t, c in log[3:]:  # a replay from a later snapshot point
        b.put(t, c)
    assert list(a.items()) == list(b.items())
    assert [t for t, _ in a.items()] == ["k6", "k7", "k8", "k9"]


@pytest.mark.parametrize("seed", range(5))
def test_the_table_keeps_what_an_ordered_dict_of_the_window_keeps(seed: int) -> None:
    """Random puts (new tickets, tickets put again, batch weights) and expiries, against
    the window written the plain way: an OrderedDict evicted from its front."""
    from collections import OrderedDict
    import random

    rng = random.Random(seed)
    table = TicketTable(window_ms=500, max_entries=40)
    want: OrderedDict[str, Committed] = OrderedDict()
    now = 0
    for i in range(3000):
        now += rng.randrange(3)
        if rng.random() < 0.02:
            table.expire(now)
            while want and next(iter(want.values())).committed_ms < now - 500:
                want.popitem(last=False)
        else:
            ticket = f"t{rng.randrange(200)}"
            c = Committed(offset=i, value=None, committed_ms=now, weight=rng.choice([1, 1, 1, 5]))
            table.put(ticket, c)
            want[ticket] = c
            while sum(x.weight for x in want.values()) > 40 and len(want) > 1:
                want.popitem(last=False)
        assert list(table.items()) == list(want.items())
        assert table.weight == sum(x.weight for x in want.values())
    assert table.copy() == dict(want) and list(table.copy()) == list(want)
