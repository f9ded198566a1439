"""fero.counters: kinds fixed at set-up, expiry at the exact millisecond."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from fero.counters import Counter
from fero.errors import Expired, FailedPrecondition
from fero.values import Kind


@pytest.mark.parametrize(
    "kind, amounts, expected",
    [
        (Kind.INT, [1, 2, -5, 10**30], 10**30 - 2),
        (Kind.DECIMAL, [Decimal("0.1")] * 10, Decimal("1.0")),
        (Kind.DECIMAL, [Decimal("12.50"), Decimal("-0.25")], Decimal("12.25")),
        (Kind.RATIONAL, [Fraction(1, 3)] * 3, Fraction(1)),
        (Kind.RATIONAL, [Fraction(1, 2), Fraction(-1, 3)], Fraction(1, 6)),
    ],
)
def test_add_is_exact_per_kind(kind: Kind, amounts: list, expected: object) -> None:
    c = Counter.new("c", kind)
    for a in amounts:
        c.add(a, at_ms=1)
    assert c.value == expected
    assert type(c.value) is type(expected)


@pytest.mark.parametrize("kind", list(Kind))
def test_new_counter_starts_at_zero_of_its_kind(kind: Kind) -> None:
    c = Counter.new("c", kind)
    assert c.value == 0 and type(c.value) is {Kind.INT: int, Kind.DECIMAL: Decimal, Kind.RATIONAL: Fraction}[kind]


@pytest.mark.parametrize("old", list(Kind))
@pytest.mark.parametrize("new", list(Kind))
def test_setup_cannot_change_kind(old: Kind, new: Kind) -> None:
    c = Counter.new("bill", old)
    c.add(Counter.new("x", old).value + 3, at_ms=1)
    if old is new:
        c.setup(new, expire_at_ms=500, at_ms=2)
        assert c.expire_at_ms == 500
    else:
        with pytest.raises(FailedPrecondition) as info:
            c.setup(new, expire_at_ms=500, at_ms=2)
        assert not isinstance(info.value, Expired)
        assert old.label in info.value.message and new.label in info.value.message
        assert c.kind is old and c.expire_at_ms == 0
    assert c.value == 3


@pytest.mark.parametrize(
    "expire_at_ms, at_ms, expired",
    [
        (0, 10**15, False),  # 0 = never
        (1000, 999, False),
        (1000, 1000, True),  # the exact boundary is expired
        (1000, 1001, True),
    ],
)
def test_expiry_boundary(expire_at_ms: int, at_ms: int, expired: bool) -> None:
    c = Counter.new("c", Kind.INT, expire_at_ms)
    assert c.expired(at_ms) is expired
    if expired:
        with pytest.raises(Expired) as info:
            c.add(1, at_ms)
        assert str(expire_at_ms) in info.value.message
        assert c.value == 0
        with pytest.raises(Expired):
            c.setup(Kind.INT, 0, at_ms)
        assert c.expire_at_ms == expire_at_ms
    else:
        assert c.add(1, at_ms) == 1


def test_setup_moves_expiry_of_an_open_counter() -> None:
    c = Counter.new("c", Kind.INT, expire_at_ms=100)
    c.setup(Kind.INT, expire_at_ms=0, at_ms=99)
    assert not c.expired(10**12)
    assert c.add(5, at_ms=10**12) == 5
