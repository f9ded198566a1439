"""The pure parts of fero.client: Acks.parse and Change.from_commit."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest

from fero import values
from fero.client import Acks, Change
from fero.errors import InvalidArgument
from fero.v1 import types_pb2 as pb


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, Acks.LEADER),
        ("none", Acks.NONE),
        ("LEADER", Acks.LEADER),
        (" all ", Acks.ALL),
        ("reply", Acks.REPLY),
        (Acks.REPLY, Acks.REPLY),
        (pb.ACKS_NONE, Acks.NONE),
        (4, Acks.REPLY),
    ],
)
def test_acks_parse(given: object, expected: Acks) -> None:
    got = Acks.parse(given)  # type: ignore[arg-type]
    assert got is expected
    assert int(got) == {"NONE": pb.ACKS_NONE, "LEADER": pb.ACKS_LEADER, "ALL": pb.ACKS_ALL, "REPLY": pb.ACKS_REPLY}[got.name]


@pytest.mark.parametrize("bad", ["sack", "", "leader!", 99, -1])
def test_acks_parse_refuses_with_a_fero_error(bad: object) -> None:
    # A caller catches fero errors; a bare ValueError from the enum would escape that.
    with pytest.raises(InvalidArgument) as info:
        Acks.parse(bad)  # type: ignore[arg-type]
    assert repr(bad) in info.value.message


def _commit(**record: object) -> pb.Commit:
    amount = record.pop("amount", None)
    r = pb.Record(**record)  # type: ignore[arg-type]
    if amount is not None:
        r.amount.CopyFrom(values.to_number(amount))  # type: ignore[arg-type]
    return pb.Commit(partition=7, offset=42, epoch=3, record=r)


@pytest.mark.parametrize(
    "commit, op, amount",
    [
        (_commit(key="n", op=pb.OP_COUNTER_ADD, amount=5, ticket="t"), "counter_add", 5),
        (_commit(key="n", op=pb.OP_COUNTER_ADD, amount=2**64), "counter_add", 2**64),
        (_commit(key="n", op=pb.OP_COUNTER_ADD, amount=Decimal("1.25")), "counter_add", Decimal("1.25")),
        (_commit(key="n", op=pb.OP_COUNTER_ADD, amount=Fraction(1, 3)), "counter_add", Fraction(1, 3)),
        (_commit(key="n", op=pb.OP_COUNTER_SETUP, kind=2), "counter_setup", None),
        (_commit(key="a.b", op=pb.OP_UPDATE, value=b'{"x":1}'), "update", None),
        (_commit(key="a.b", op=pb.OP_REMOVE), "remove", None),
        (_commit(key="a.b", op=pb.OP_ADD, amount=-3), "add", -3),
        (_commit(key="a.l", op=pb.OP_PUSH, value=b"1"), "push", None),
        (_commit(key="a", op=pb.OP_PATCH, value=b"{}"), "patch", None),
        (_commit(key="k", op=pb.OP_ACTION, action="ship", value=b"\x00"), "action", None),
        (_commit(key="k", op=77), "77", None),
    ],
)
def test_change_from_commit(commit: pb.Commit, op: str, amount: object) -> None:
    c = Change.from_commit(commit)
    assert (c.partition, c.offset, c.epoch) == (7, 42, 3)
    assert c.op == op
    assert c.key == commit.record.key and c.value == commit.record.value
    assert c.ticket == commit.record.ticket and c.action == commit.record.action
    assert c.amount == amount
    if amount is not None:
        assert type(c.amount) is type(amount)


def test_change_amount_zero_is_not_none() -> None:
    # An explicitly set zero amount is still an amount (HasField, not truthiness).
    c = Change.from_commit(_commit(key="n", op=pb.OP_COUNTER_ADD, amount=0))
    assert c.amount == 0 and c.amount is not None


def test_change_json() -> None:
    assert Change.from_commit(_commit(key="a", op=pb.OP_UPDATE, value=b'{"x":[1]}')).json() == {"x": [1]}
    assert Change.from_commit(_commit(key="a", op=pb.OP_REMOVE)).json() is None
    with pytest.raises(json.JSONDecodeError):
        Change.from_commit(_commit(key="a", op=pb.OP_UPDATE, value=b"{")).json()
