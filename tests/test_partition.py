"""fero.partition: applying records is deterministic and reads time only from the record."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from fractions import Fraction

import pytest

from fero import hlc as hlcs
from fero import values
from fero.errors import Expired, FailedPrecondition, InvalidArgument
from fero.partition import PartitionState
from fero.v1 import types_pb2 as pb
from fero.values import Kind

T0 = 1_700_000_000_000


def rec(op: int, key: str, *, at_ms: int = T0, amount: object = None, value: bytes = b"", kind: int = 0,
        expire_at_ms: int = 0, ticket: str = "", logical: int = 0) -> pb.Record:
    r = pb.Record(op=op, key=key, ticket=ticket, value=value, kind=kind, expire_at_ms=expire_at_ms,
                  hlc=hlcs.pack(at_ms, logical))
    if amount is not None:
        r.amount.CopyFrom(values.number_of(amount))  # type: ignore[arg-type]
    return r


def _snapshot(s: PartitionState) -> tuple:
    counters = {c.name: (c.kind, c.value, c.expire_at_ms) for c in s.all_counters()}
    docs = {k: (raw, hlc) for k, raw, hlc, _ in s.documents.items()}
    return counters, docs, list(s.tickets.items())


def _random_records(seed: int, n: int) -> list[pb.Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        at = T0 + i * 10
        choice = rng.randrange(8)
        name = f"c{rng.randrange(4)}"
        if choice == 0:
            out.append(rec(pb.OP_COUNTER_SETUP, name, at_ms=at, kind=rng.choice([1, 2, 3]),
                           expire_at_ms=rng.choice([0, at + rng.randrange(1, 200)]), ticket=f"t{i}"))
        elif choice in (1, 2):
            out.append(rec(pb.OP_COUNTER_ADD, name, at_ms=at, amount=str(rng.randrange(-5, 50)), ticket=f"t{i}"))
        elif choice == 3:
            out.append(rec(pb.OP_UPDATE, f"d{rng.randrange(3)}.x", at_ms=at, value=json.dumps(i).encode(), ticket=f"t{i}"))
        elif choice == 4:
            out.append(rec(pb.OP_PUSH, f"d{rng.randrange(3)}.l", at_ms=at, value=b"1", ticket=f"t{i}"))
        elif choice == 5:
            out.append(rec(pb.OP_ADD, f"d{rng.randrange(3)}.x", at_ms=at, amount=rng.randrange(10), ticket=f"t{i}"))
        elif choice == 6:
            out.append(rec(pb.OP_PATCH, f"d{rng.randrange(3)}", at_ms=at, value=b'{"p":1,"x":null}', ticket=f"t{i}"))
        else:
            out.append(rec(pb.OP_REMOVE, f"d{rng.randrange(3)}.l", at_ms=at, ticket=f"t{i}"))
    return out


def _apply_all(s: PartitionState, records: list[pb.Record]) -> list[object]:
    outcomes: list[object] = []
    offset = 0
    for r in records:
        try:
            outcomes.append(s.apply(r, offset))
            offset += 1
        except (InvalidArgument, FailedPrecondition) as exc:
            outcomes.append(type(exc))
    return outcomes


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_same_records_same_state(seed: int) -> None:
    records = _random_records(seed, 300)
    a, b = PartitionState(0, expired_grace_ms=100), PartitionState(0, expired_grace_ms=100)
    out_a = _apply_all(a, records)
    out_b = _apply_all(b, [pb.Record.FromString(r.SerializeToString()) for r in records])
    assert out_a == out_b
    assert _snapshot(a) == _snapshot(b)
    assert a.counters == b.counters  # held alike too (an int, or a Counter), not only read alike
    # Something of every kind happened, so the comparison is not of two empty states.
    assert a.counters and a.documents.docs and len(a.tickets) > 0
    assert any(isinstance(o, type) and issubclass(o, FailedPrecondition) for o in out_a)


def test_expiry_is_decided_by_record_hlc_not_wall_clock() -> None:
    # Timestamps far in the past and far in the future: the wall clock agrees with neither.
    past = 1_000
    s = PartitionState(0)
    s.apply(rec(pb.OP_COUNTER_SETUP, "bill", at_ms=past, kind=1, expire_at_ms=past + 100), 0)
    assert s.apply(rec(pb.OP_COUNTER_ADD, "bill", at_ms=past + 99, amount=7), 1) == 7
    with pytest.raises(Expired):
        s.apply(rec(pb.OP_COUNTER_ADD, "bill", at_ms=past + 100, amount=1), 2)
    assert s.peek("bill").value == 7

    future = 4_000_000_000_000
    f = PartitionState(0)
    f.apply(rec(pb.OP_COUNTER_SETUP, "x", at_ms=future - 10, expire_at_ms=future), 0)
    # Already past by the wall clock, but not by the record's time: accepted.
    assert f.apply(rec(pb.OP_COUNTER_ADD, "x", at_ms=future - 1, amount=1, logical=65535), 1) == 1


@pytest.mark.parametrize(
    "add_at, outcome",
    [
        (T0 + 99, "open"),  # the last ms before expiry
        (T0 + 100, "expired"),  # expired from its exact ms, inside the grace period
        (T0 + 100 + 1000 - 1, "expired"),  # last ms of the grace period
        (T0 + 100 + 1000, "fresh"),  # grace over: the name is free again
        (T0 + 10**9, "fresh"),
    ],
)
def test_grace_period_frees_the_name(add_at: int, outcome: str) -> None:
    s = PartitionState(0, expired_grace_ms=1000)
    s.apply(rec(pb.OP_COUNTER_SETUP, "c", at_ms=T0, kind=pb.VALUE_KIND_DECIMAL, expire_at_ms=T0 + 50), 0)
    s.apply(rec(pb.OP_COUNTER_ADD, "c", at_ms=T0 + 10, amount="2.5"), 1)
    s.peek("c").expire_at_ms = T0 + 100  # same as a setup at T0 + 20
    if outcome == "open":
        assert s.apply(rec(pb.OP_COUNTER_ADD, "c", at_ms=add_at, amount="1"), 2) == Decimal("3.5")
    elif outcome == "expired":
        with pytest.raises(Expired):
            s.apply(rec(pb.OP_COUNTER_ADD, "c", at_ms=add_at, amount="1"), 2)
        assert s.peek("c").value == Decimal("2.5")
    else:
        # A fresh int counter: "7" is an int now, where the old counter was decimal.
        assert s.apply(rec(pb.OP_COUNTER_ADD, "c", at_ms=add_at, amount="7"), 2) == 7
        assert s.peek("c").kind is Kind.INT and s.peek("c").expire_at_ms == 0


def test_setup_after_grace_may_pick_a_new_kind() -> None:
    s = PartitionState(0, expired_grace_ms=10)
    s.apply(rec(pb.OP_COUNTER_SETUP, "c", at_ms=T0, kind=1, expire_at_ms=T0 + 5), 0)
    with pytest.raises(Expired):
        s.apply(rec(pb.OP_COUNTER_SETUP, "c", at_ms=T0 + 14, kind=3), 1)
    s.apply(rec(pb.OP_COUNTER_SETUP, "c", at_ms=T0 + 15, kind=3), 1)
    assert s.apply(rec(pb.OP_COUNTER_ADD, "c", at_ms=T0 + 16, amount="1/3"), 2) == Fraction(1, 3)


@pytest.mark.parametrize(
    "record, error, says",
    [
        (rec(pb.OP_COUNTER_ADD, "n", amount="1.5"), InvalidArgument, "not an int"),
        (rec(pb.OP_COUNTER_ADD, "n"), InvalidArgument, "missing"),
        (rec(pb.OP_COUNTER_SETUP, "n", kind=pb.VALUE_KIND_RATIONAL), FailedPrecondition, "cannot become rational"),
        (rec(pb.OP_COUNTER_SETUP, "n", kind=9), InvalidArgument, "unknown value kind"),
        (rec(pb.OP_ADD, "d.x", amount="1/2"), InvalidArgument, "not an int"),
        (rec(pb.OP_PUSH, "d.x", value=b"1"), FailedPrecondition, "not a list"),
        (rec(pb.OP_UPDATE, "d.x.y", value=b"1"), FailedPrecondition, "not an object"),
        (rec(pb.OP_PATCH, "d", value=b"{bad"), InvalidArgument, "not valid JSON"),
        (pb.Record(op=99, key="n", hlc=hlcs.pack(T0)), InvalidArgument, "unknown op 99"),
    ],
)
def test_a_failed_record_changes_nothing(record: pb.Record, error: type, says: str) -> None:
    s = PartitionState(0)
    s.apply(rec(pb.OP_COUNTER_ADD, "n", amount=5, ticket="a"), 0)
    s.apply(rec(pb.OP_UPDATE, "d", value=b'{"x":1}', ticket="b"), 1)
    before = _snapshot(s)
    record.ticket = "failing"
    with pytest.raises(error) as info:
        s.apply(record, 2)
    assert says in info.value.message
    assert _snapshot(s) == before
    assert s.tickets.get("failing") is None


def test_tickets_remember_offset_and_value() -> None:
    s = PartitionState(0)
    s.apply(rec(pb.OP_COUNTER_ADD, "n", amount=5, ticket="t1"), 0)
    s.apply(rec(pb.OP_COUNTER_ADD, "n", amount=6, ticket="t2"), 1)
    s.apply(rec(pb.OP_UPDATE, "d", value=b"1", ticket="t3"), 2)
    s.apply(rec(pb.OP_COUNTER_ADD, "n", amount=1, ticket="t4"), 3, remember=False)
    t1, t2, t3 = s.tickets.get("t1"), s.tickets.get("t2"), s.tickets.get("t3")
    assert (t1.offset, t1.value) == (0, 5)  # type: ignore[union-attr]
    assert (t2.offset, t2.value) == (1, 11)  # type: ignore[union-attr]
    assert (t3.offset, t3.value) == (2, None)  # type: ignore[union-attr]
    assert s.tickets.get("t4") is None


def test_compact_drops_by_grace_and_window() -> None:
    s = PartitionState(0, ticket_window_ms=200, expired_grace_ms=1000)
    s.apply(rec(pb.OP_COUNTER_SETUP, "old", at_ms=T0, expire_at_ms=T0 + 10, ticket="a"), 0)
    s.apply(rec(pb.OP_COUNTER_SETUP, "new", at_ms=T0 + 500, expire_at_ms=T0 + 600, ticket="b"), 1)
    s.apply(rec(pb.OP_COUNTER_ADD, "keep", at_ms=T0 + 900, amount=1, ticket="c"), 2)
    assert s.compact(T0 + 1010) == 1
    assert set(s.counters) == {"new", "keep"}
    assert [t for t, _ in s.tickets.items()] == ["c"]
    st = s.statistics()
    assert (st.counters, st.tickets) == (2, 1)


def test_int_counters_without_expiry_are_held_as_plain_ints_the_collector_skips() -> None:
    s = PartitionState(0)
    offset = 0

    def apply(r: pb.Record) -> object:
        nonlocal offset
        offset += 1
        return s.apply(r, offset - 1)

    apply(rec(pb.OP_COUNTER_ADD, "a", amount=5))
    b = pb.Batch(partition=0, ticket="bulk", op=pb.OP_COUNTER_ADD, keys=["a", "b"], amounts=[1, 2],
                 hlc=hlcs.pack(T0, 0), origin="n/1", origin_seq=1)
    assert s.apply_batch(b, offset)[0] == [6, 2]
    apply(rec(pb.OP_COUNTER_SETUP, "c", kind=pb.VALUE_KIND_INT))
    # Plain ints: the collector never tracks an int (nor, up to Python 3.13, a dict of them).
    assert s.counters == {"a": 6, "b": 2, "c": 0} and all(type(v) is int for v in s.counters.values())
    # An int counter that gets an expiry, and a decimal one, are Counters ...
    apply(rec(pb.OP_COUNTER_SETUP, "a", expire_at_ms=T0 + 10_000))
    apply(rec(pb.OP_COUNTER_SETUP, "d", kind=pb.VALUE_KIND_DECIMAL))
    assert (s.peek("a").value, s.peek("a").expire_at_ms) == (6, T0 + 10_000)
    assert apply(rec(pb.OP_COUNTER_ADD, "a", amount=1)) == 7
    assert apply(rec(pb.OP_COUNTER_ADD, "d", amount="0.5")) == Decimal("0.5")
    # ... and a setup that lifts the expiry makes it an int again; the kind still holds.
    apply(rec(pb.OP_COUNTER_SETUP, "a", expire_at_ms=0))
    assert s.counters["a"] == 7
    with pytest.raises(FailedPrecondition, match="is int; it cannot become decimal"):
        apply(rec(pb.OP_COUNTER_SETUP, "b", kind=pb.VALUE_KIND_DECIMAL))
    with pytest.raises(InvalidArgument):
        apply(rec(pb.OP_COUNTER_ADD, "b", amount="0.5"))
    # A snapshot keeps them as they were held.
    again = PartitionState(0)
    again.load_snapshot(s.to_snapshot())
    assert {c.name: (c.kind, c.value, c.expire_at_ms) for c in again.all_counters()} == {
        "a": (Kind.INT, 7, 0), "b": (Kind.INT, 2, 0), "c": (Kind.INT, 0, 0), "d": (Kind.DECIMAL, Decimal("0.5"), 0)}
    assert again.counters["a"] == 7 and again.counters["d"].__class__ is not int


def test_counters_named_lists_open_counters_under_a_prefix_as_held() -> None:
    s = PartitionState(0)
    for i, r in enumerate([
        rec(pb.OP_COUNTER_ADD, "bill.a", amount=3),
        rec(pb.OP_COUNTER_SETUP, "bill.d", kind=pb.VALUE_KIND_DECIMAL, expire_at_ms=T0 + 500),
        rec(pb.OP_COUNTER_ADD, "bill.d", amount="1.5"),
        rec(pb.OP_COUNTER_SETUP, "bill.gone", expire_at_ms=T0 + 100),
        rec(pb.OP_COUNTER_ADD, "other", amount=1),
    ]):
        s.apply(r, i)
    assert sorted(s.counters_named("bill.", T0 + 200)) == [
        ("bill.a", 3, Kind.INT, 0), ("bill.d", Decimal("1.5"), Kind.DECIMAL, T0 + 500)]
    assert sorted(n for n, *_ in s.counters_named("", T0 + 600)) == ["bill.a", "other"]


def _without_documents(s: PartitionState) -> bytes:
    ps = s.to_snapshot()
    ps.ClearField("key_columns")  # documents have their own cut (Documents.cut)
    return ps.SerializeToString()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_cut_is_the_state_when_it_was_taken_whatever_comes_after(seed: int) -> None:
    """A node snapshot takes the cut on the event loop and makes it a message in its
    writer's thread while writes go on: the message must be the state at the cut.
    Counter objects (decimal, rational, expiring) change in place when added to, and
    tickets, tombstones and origins grow, so the cut must hold copies."""
    records = _random_records(seed, 400)
    s = PartitionState(0, ticket_window_max=150)
    _apply_all(s, records[:200])
    assert any(c.__class__ is not int for c in s.counters.values())  # the in-place case is there
    want = _without_documents(s)
    cut = s.cut()
    later = [rec(pb.OP_COUNTER_ADD, name, at_ms=T0 + 2_000 + i, amount="7", ticket=f"later{i}")
             for i, name in enumerate(sorted(s.counters))]
    _apply_all(s, later + records[200:])
    assert _without_documents(s) != want
    assert cut.message().SerializeToString() == want
