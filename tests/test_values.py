"""fero.values: exact numbers, their text and wire forms, and their bounds."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fero import values
from fero.counters import Counter
from fero.errors import FailedPrecondition, InvalidArgument
from fero.v1 import types_pb2
from fero.values import MAX_DECIMAL_EXPONENT, MAX_NUMBER_CHARS, Kind

INT, DEC, RAT = Kind.INT, Kind.DECIMAL, Kind.RATIONAL


@pytest.mark.parametrize(
    "text, kind, expected",
    [
        ("0", INT, 0),
        ("-17", INT, -17),
        ("+7", INT, 7),
        (" 42 ", INT, 42),
        ("123456789012345678901234567890", INT, 123456789012345678901234567890),
        ("12.50", DEC, Decimal("12.50")),
        ("-0.001", DEC, Decimal("-0.001")),
        ("1E+5", DEC, Decimal("1E+5")),
        (".5", DEC, Decimal("0.5")),
        ("7", DEC, Decimal(7)),
        ("3/4", RAT, Fraction(3, 4)),
        ("6/8", RAT, Fraction(3, 4)),
        ("-1/3", RAT, Fraction(-1, 3)),
        ("5", RAT, Fraction(5)),
    ],
)
def test_parse_text_accepts(text: str, kind: Kind, expected: values.Value) -> None:
    got = values.parse_text(text, kind)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    "text, kind, says",
    [
        ("", INT, "empty"),
        ("   ", DEC, "empty"),
        ("1.5", INT, "not an int"),
        ("1e3", INT, "not an int"),
        ("abc", INT, "not an int"),
        ("1/2", INT, "not an int"),
        ("1_000", INT, "not an int"),  # Python-only syntax: other languages would not parse it
        ("\u0663", INT, "not an int"),  # ARABIC-INDIC DIGIT THREE
        ("0x10", INT, "not an int"),
        ("NaN", DEC, "not a"),
        ("Infinity", DEC, "not a"),
        ("-inf", DEC, "not a"),
        ("1/2", DEC, "not a decimal"),
        ("1_0.5", DEC, "not a decimal"),
        ("1.5", RAT, "p/q"),
        ("1e2", RAT, "p/q"),
        ("1/0", RAT, "q != 0"),
        ("1/-2", RAT, "p/q"),
        ("1_0/3", RAT, "p/q"),
        ("x", RAT, "p/q"),
    ],
)
def test_parse_text_refuses(text: str, kind: Kind, says: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        values.parse_text(text, kind)
    assert says in info.value.message


@pytest.mark.parametrize("kind", list(Kind))
def test_max_number_chars_is_the_exact_bound(kind: Kind) -> None:
    ok = "1" * MAX_NUMBER_CHARS
    assert values.parse_text(ok, kind) == int(ok)
    with pytest.raises(InvalidArgument) as info:
        values.parse_text("1" * (MAX_NUMBER_CHARS + 1), kind)
    assert str(MAX_NUMBER_CHARS) in info.value.message


@pytest.mark.parametrize(
    "text, ok",
    [
        (f"1E+{MAX_DECIMAL_EXPONENT}", True),
        (f"1E-{MAX_DECIMAL_EXPONENT}", True),
        (f"1E+{MAX_DECIMAL_EXPONENT + 1}", False),
        (f"1E-{MAX_DECIMAL_EXPONENT + 1}", False),
        ("1E+999999999", False),
        ("0." + "0" * MAX_DECIMAL_EXPONENT + "1", False),  # exponent -(MAX+1)
    ],
)
def test_decimal_exponent_bound(text: str, ok: bool) -> None:
    if ok:
        assert values.parse_text(text, DEC) == Decimal(text)
    else:
        with pytest.raises(InvalidArgument) as info:
            values.parse_text(text, DEC)
        assert "exponent" in info.value.message


def test_decimal_sum_that_needs_rounding_is_refused() -> None:
    big = values.parse_text("9" * 250 + f"E+{MAX_DECIMAL_EXPONENT}", DEC)
    tiny = values.parse_text(f"1E-{MAX_DECIMAL_EXPONENT}", DEC)
    # Each is exact; their sum has 451 significant digits, more than DECIMAL_PRECISION.
    with pytest.raises(FailedPrecondition) as info:
        values.add(big, tiny, DEC)
    assert "significant digits" in info.value.message
    # A sum that fits is exact to the last digit.
    assert values.add(Decimal("0.1"), Decimal("0.2"), DEC) == Decimal("0.3")
    assert Fraction(values.add(Decimal("1E+100"), Decimal("1E-100"), DEC)) == Fraction(10**100) + Fraction(1, 10**100)


def test_counter_refused_add_keeps_value() -> None:
    c = Counter.new("bill", DEC)
    c.add(values.parse_text("9" * 250 + "E+100", DEC), at_ms=1)
    before = c.value
    with pytest.raises(FailedPrecondition):
        c.add(values.parse_text("1E-100", DEC), at_ms=2)
    assert c.value == before


@pytest.mark.parametrize("bad", [1.5, 0.0, float("nan"), True, False])
@pytest.mark.parametrize("kind", list(Kind))
def test_floats_and_bools_are_refused(bad: object, kind: Kind) -> None:
    with pytest.raises(InvalidArgument) as info:
        values.coerce(bad, kind)  # type: ignore[arg-type]
    assert type(bad).__name__ in info.value.message
    with pytest.raises(InvalidArgument):
        values.number_of(bad)  # type: ignore[arg-type]


def test_format_value_refuses_float_instead_of_truncating() -> None:
    with pytest.raises(InvalidArgument):
        values.format_value(2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value, which",
    [
        (0, "i64"),
        (2**63 - 1, "i64"),
        (-(2**63), "i64"),
        (2**63, "text"),
        (-(2**63) - 1, "text"),
        (10**40, "text"),
        (Decimal("12.50"), "text"),
        (Decimal(5), "text"),
        (Fraction(3, 4), "text"),
        (Fraction(2), "text"),
    ],
)
def test_wire_form_at_the_i64_boundary(value: values.Value, which: str) -> None:
    n = values.to_number(value)
    assert n.WhichOneof("repr") == which
    # Through the bytes of the wire and back, exactly.
    again = types_pb2.Number.FromString(n.SerializeToString())
    assert values.parse_number(again) == value


@pytest.mark.parametrize("value", [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**70])
@pytest.mark.parametrize("kind", list(Kind))
def test_coerce_large_ints_for_every_kind(value: int, kind: Kind) -> None:
    got = values.coerce(value, kind)
    assert got == value
    assert type(got) is type(values.zero(kind))


@pytest.mark.parametrize(
    "value, text",
    [
        (Fraction(6, 8), "3/4"),
        (Fraction(-2, 4), "-1/2"),
        (Fraction(4, 2), "2"),
        (Decimal("12.50"), "12.50"),
        (Decimal("1E+5"), "1E+5"),
        (-5, "-5"),
    ],
)
def test_format_and_round_trip(value: values.Value, text: str) -> None:
    assert values.format_value(value) == text
    kind = {int: INT, Decimal: DEC, Fraction: RAT}[type(value)]
    assert values.parse_text(text, kind) == value
    assert values.from_number(values.to_number(value), kind) == value


@pytest.mark.parametrize(
    "number, kind, expected",
    [
        (types_pb2.Number(i64=-3), DEC, Decimal(-3)),
        (types_pb2.Number(i64=-3), RAT, Fraction(-3)),
        (types_pb2.Number(i64=9), INT, 9),
        (types_pb2.Number(text="1/3"), RAT, Fraction(1, 3)),
        (types_pb2.Number(text=str(2**64)), INT, 2**64),
    ],
)
def test_from_number(number: types_pb2.Number, kind: Kind, expected: values.Value) -> None:
    got = values.from_number(number, kind)
    assert got == expected and type(got) is type(expected)


def test_from_number_missing_amount() -> None:
    with pytest.raises(InvalidArgument) as info:
        values.from_number(types_pb2.Number(), INT)
    assert "missing" in info.value.message


@pytest.mark.parametrize(
    "given_kind, expected",
    [(None, INT), (0, INT), (1, INT), (2, DEC), (3, RAT), ("decimal", DEC), (" Rational ", RAT), (Kind.DECIMAL, DEC)],
)
def test_kind_parse(given_kind: object, expected: Kind) -> None:
    assert Kind.parse(given_kind) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["float", "", 4, 99, -1])
def test_kind_parse_refuses(bad: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        Kind.parse(bad)  # type: ignore[arg-type]
    assert repr(bad) in info.value.message


# -- the sum is the exact sum, whatever the amounts ------------------------------------

_ints = st.integers(min_value=-(10**30), max_value=10**30)
_decimals = st.decimals(min_value=-(10**12), max_value=10**12, places=6, allow_nan=False, allow_infinity=False)
_fractions = st.fractions(max_denominator=10**6).filter(lambda f: abs(f) < 10**12)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(list(Kind)), data=st.data())
def test_counter_sum_equals_exact_fraction_sum(kind: Kind, data: st.DataObject) -> None:
    if kind is INT:
        amounts = data.draw(st.lists(_ints, max_size=40))
    elif kind is DEC:
        amounts = data.draw(st.lists(st.one_of(_decimals, _ints.map(lambda i: i % 10**9)), max_size=40))
    else:
        amounts = data.draw(st.lists(st.one_of(_fractions, _ints), max_size=40))
    counter = Counter.new("c", kind)
    reference = Fraction(0)
    for i, amount in enumerate(amounts):
        # Every amount goes through its wire form, as it would from a client.
        wire = types_pb2.Number.FromString(values.number_of(amount).SerializeToString())
        counter.add(values.from_number(wire, kind), at_ms=i)
        reference += Fraction(amount)
    assert Fraction(counter.value) == reference
    assert type(counter.value) is type(values.zero(kind))
    # The value survives the wire too.
    assert Fraction(values.parse_number(values.to_number(counter.value))) == reference
