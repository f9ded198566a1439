"""Property: two copies of a partition that diverged (a split: each side's owner
committed its own records after a common prefix) merge to the same state whichever
side pulls from which, and merging again changes nothing (commutative, idempotent).

Covered ops are the ones fero promises converge under a split: counter adds of every
value kind (including a client's retry that reached both sides under one ticket), and
whole-document UPDATE/REMOVE resolved last-writer-wins by hybrid logical clock.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from fero import values
from fero.hlc import pack
from fero.partition import PartitionState
from fero.v1 import types_pb2

KEYS = ["a", "b", "c"]
COUNTERS = ["x", "y"]

op = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(COUNTERS), st.integers(-1000, 1000), st.integers(0, 5)),
    st.tuples(st.just("update"), st.sampled_from(KEYS), st.integers(0, 9), st.integers(0, 5)),
    st.tuples(st.just("remove"), st.sampled_from(KEYS), st.just(0), st.integers(0, 5)),
)


class Side:
    """One side's owner: commits records as an owner would, keeping its log."""

    def __init__(self, origin, state, clock_ms):
        self.origin = origin
        self.state = state
        self.log: list[types_pb2.Record] = []
        self.clock_ms = clock_ms
        self.logical = 0

    def commit(self, kind, key, n, retry_ticket, shared_tickets):
        self.logical += 1
        rec = types_pb2.Record(key=key, hlc=pack(self.clock_ms, self.logical), origin=self.origin,
                               origin_seq=self.state.next_origin_seq(self.origin))
        if kind == "add":
            rec.op = types_pb2.OP_COUNTER_ADD
            rec.amount.CopyFrom(values.number_of(n))
            # Ticket ids 1..5 stand for client retries that may reach both sides.
            rec.ticket = f"retry-{key}-{n}-{retry_ticket}" if retry_ticket else f"{self.origin}-{len(self.log)}"
        elif kind == "update":
            rec.op, rec.value, rec.ticket = types_pb2.OP_UPDATE, str(n).encode(), f"{self.origin}-{len(self.log)}"
        else:
            rec.op, rec.ticket = types_pb2.OP_REMOVE, f"{self.origin}-{len(self.log)}"
        if self.state.tickets.get(rec.ticket) is not None:
            return  # the owner acknowledges a repeated ticket without logging it
        self.state.apply(rec, self.state.next_offset)
        self.state.next_offset += 1
        self.log.append(rec)


def pull(into: PartitionState, log: list[types_pb2.Record]) -> None:
    """What a merge does: apply, in the other side's log order, what `into` lacks."""
    for rec in log:
        if not into.has(rec):
            into.apply(rec, into.next_offset)
            into.next_offset += 1


def state_of(p: PartitionState):
    return (
        {c.name: c.value for c in p.all_counters()},
        {k: raw for k, raw, _, _ in p.documents.items()},
        dict(p.origins),
    )


def build(common, a_ops, b_ops, a_clock, b_clock):
    base = PartitionState(0)
    prefix = Side("p/0", base, 1_000)
    for o in common:
        prefix.commit(*o, shared_tickets=None)

    def copy():
        s = PartitionState(0)
        pull(s, prefix.log)
        return s

    a, b = Side("a/1", copy(), a_clock), Side("b/1", copy(), b_clock)
    for o in a_ops:
        a.commit(*o, shared_tickets=None)
    for o in b_ops:
        b.commit(*o, shared_tickets=None)
    return a, b


@settings(max_examples=300, deadline=None)
@given(
    common=st.lists(op, max_size=6),
    a_ops=st.lists(op, max_size=12),
    b_ops=st.lists(op, max_size=12),
    a_clock=st.integers(2_000, 2_010),
    b_clock=st.integers(2_000, 2_010),
)
def test_merge_is_commutative_and_idempotent(common, a_ops, b_ops, a_clock, b_clock):
    a1, b1 = build(common, a_ops, b_ops, a_clock, b_clock)
    a2, b2 = build(common, a_ops, b_ops, a_clock, b_clock)
    # Order 1: a pulls from b, then b from a. Order 2: b pulls first.
    pull(a1.state, b1.log)
    pull(b1.state, a1.log)
    pull(b2.state, a2.log)
    pull(a2.state, b2.log)
    results = [state_of(s.state) for s in (a1, b1, a2, b2)]
    assert all(r == results[0] for r in results), results
    # Idempotent: pulling everything again changes nothing.
    pull(a1.state, b1.log + a1.log)
    assert state_of(a1.state) == results[0]


@settings(max_examples=200, deadline=None)
@given(a_ops=st.lists(op, max_size=12), b_ops=st.lists(op, max_size=12))
def test_merged_counters_equal_the_sum_of_distinct_tickets(a_ops, b_ops):
    a, b = build([], a_ops, b_ops, 2_000, 2_001)
    pull(a.state, b.log)
    by_ticket = {}
    for rec in a.log + b.log:
        if rec.op == types_pb2.OP_COUNTER_ADD:
            by_ticket[rec.ticket] = (rec.key, values.parse_number(rec.amount))
    expected = {}
    for key, amount in by_ticket.values():
        expected[key] = expected.get(key, 0) + amount
    assert {c.name: c.value for c in a.state.all_counters()} == expected
