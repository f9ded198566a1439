"""Exact numbers: the three counter value kinds and their wire form.

A counter's value is a sum of amounts, and billing needs that sum exact in every
language, so nothing here touches binary floating point:

    kind      Python type          wire (fero.v1.Number)
    int       int (unbounded)      i64 when it fits in 64 bits, else decimal text
    decimal   decimal.Decimal      text, e.g. "12.50"
    rational  fractions.Fraction   text "p/q" (reduced), or "p" when q == 1

Inputs are bounded (`MAX_NUMBER_CHARS`, `MAX_DECIMAL_EXPONENT`) so that one request
cannot make a node do unbounded arithmetic; a decimal sum that would need more than
`DECIMAL_PRECISION` significant digits is refused rather than rounded.
"""

from __future__ import annotations

import decimal
import enum
import re
from decimal import Decimal
from fractions import Fraction
from typing import Union

from fero.errors import FailedPrecondition, InvalidArgument
from fero.v1 import types_pb2

Value = Union[int, Decimal, Fraction]

#: Longest textual amount accepted, in characters (about 850 bits of integer).
MAX_NUMBER_CHARS = 256
#: Decimal amounts must have an exponent within ±this, so sums stay small.
MAX_DECIMAL_EXPONENT = 100
#: Significant digits a decimal counter may reach; beyond it an add is refused.
DECIMAL_PRECISION = 400

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

# The textual forms every language parses alike: ASCII digits only (Python alone would
# also take "1_000" or non-ASCII digits, which a replica or client elsewhere would not).
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RATIONAL_TEXT = re.compile(r"[+-]?[0-9]+(?:/[0-9]+)?")

# Inexact traps: a result that would need rounding raises instead of silently rounding.
_EXACT = decimal.Context(
    prec=DECIMAL_PRECISION,
    Emax=DECIMAL_PRECISION * 2,
    Emin=-DECIMAL_PRECISION * 2,
    traps=[decimal.Inexact, decimal.Overflow, decimal.InvalidOperation, decimal.Rounded],
)


class Kind(enum.IntEnum):
    """Mirrors fero.v1.ValueKind."""

    INT = types_pb2.VALUE_KIND_INT
    DECIMAL = types_pb2.VALUE_KIND_DECIMAL
    RATIONAL = types_pb2.VALUE_KIND_RATIONAL

    @classmethod
    def parse(cls, kind: "Kind | int | str | None") -> "Kind":
        """A Kind from its enum, wire number or name ("int", "decimal", "rational")."""
        if kind is None or kind == 0:
            return cls.INT
        if isinstance(kind, str):
            try:
                return cls[kind.strip().upper()]
            except KeyError:
                raise InvalidArgument(
                    f"unknown value kind {kind!r}; expected int, decimal or rational"
                ) from None
        try:
            return cls(int(kind))
        except ValueError:
            raise InvalidArgument(f"unknown value kind {kind!r}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


def zero(kind: Kind) -> Value:
    if kind is Kind.DECIMAL:
        return Decimal(0)
    if kind is Kind.RATIONAL:
        return Fraction(0)
    return 0


def parse_text(text: str, kind: Kind) -> Value:
    """Parses an amount written as text for `kind`; InvalidArgument says what is wrong."""
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidArgument(f"amount has {len(text)} characters; at most {MAX_NUMBER_CHARS}")
    s = text.strip()
    if not s:
        raise InvalidArgument("amount is empty")
    if kind is Kind.INT:
        if not _INT_TEXT.fullmatch(s):
            raise InvalidArgument(f"amount {text!r} is not an int")
        return int(s, 10)
    if kind is Kind.DECIMAL:
        if not _DECIMAL_TEXT.fullmatch(s):
            raise InvalidArgument(f"amount {text!r} is not a decimal number")
        try:
            d = Decimal(s)
        except decimal.InvalidOperation:
            raise InvalidArgument(f"amount {text!r} is not a decimal number") from None
        if not d.is_finite():
            raise InvalidArgument(f"amount {text!r} is not a finite decimal number")
        exponent = d.as_tuple().exponent
        assert isinstance(exponent, int)
        if abs(exponent) > MAX_DECIMAL_EXPONENT:
            raise InvalidArgument(
                f"amount {text!r} has exponent {exponent}; at most ±{MAX_DECIMAL_EXPONENT}"
            )
        return d
    if not _RATIONAL_TEXT.fullmatch(s):
        raise InvalidArgument(f"amount {text!r} is not a rational; write it as p/q")
    try:
        f = Fraction(s)
    except (ValueError, ZeroDivisionError):
        raise InvalidArgument(f"amount {text!r} is not a rational p/q with q != 0") from None
    return f


def from_number(number: types_pb2.Number, kind: Kind) -> Value:
    """The value of a wire Number for a counter of `kind`."""
    which = number.WhichOneof("repr")
    if which == "i64":
        i = number.i64
        if kind is Kind.DECIMAL:
            return Decimal(i)
        if kind is Kind.RATIONAL:
            return Fraction(i)
        return i
    if which == "text":
        return parse_text(number.text, kind)
    raise InvalidArgument("amount is missing")


def coerce(value: "Value | str | float", kind: Kind) -> Value:
    """A Python value (as a caller passes it) checked for `kind`; floats are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidArgument(
            f"amount {value!r} is a {type(value).__name__}; pass an int, Decimal, Fraction or str"
        )
    if isinstance(value, str):
        return parse_text(value, kind)
    if isinstance(value, int):
        return from_number(types_pb2.Number(i64=value), kind) if _fits(value) else parse_text(str(value), kind)
    return parse_text(format_value(value), kind)


def to_number(value: Value, out: types_pb2.Number | None = None) -> types_pb2.Number:
    """The wire form of a value; fills `out` in place if given."""
    n = out if out is not None else types_pb2.Number()
    if type(value) is int and _I64_MIN <= value <= _I64_MAX:
        n.i64 = value
    else:
        n.text = format_value(value)
    return n


def number_of(value: "Value | str") -> types_pb2.Number:
    """A wire Number for a client-side amount, without knowing the counter's kind."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidArgument(
            f"amount {value!r} is a {type(value).__name__}; pass an int, Decimal, Fraction or str"
        )
    if isinstance(value, str):
        return types_pb2.Number(text=value)
    if isinstance(value, (int, Decimal, Fraction)):
        return to_number(value)
    raise InvalidArgument(f"amount {value!r} is not a number")


def format_value(value: Value) -> str:
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool) or not isinstance(value, int):
        # A float would be silently truncated by int(): refuse rather than lose digits.
        raise InvalidArgument(f"{value!r} is a {type(value).__name__}, not an exact number")
    return str(value)


def parse_number(number: types_pb2.Number) -> Value:
    """Reads a Number without a kind (client side): int, else Fraction "p/q", else Decimal."""
    which = number.WhichOneof("repr")
    if which == "i64":
        return number.i64
    if which != "text":
        return 0
    text = number.text
    if "/" in text:
        return Fraction(text)
    if any(c in text for c in ".eE"):
        return Decimal(text)
    return int(text)


def add(total: Value, amount: Value, kind: Kind) -> Value:
    """total + amount, exactly; a decimal sum that would need rounding is refused."""
    if kind is Kind.DECIMAL:
        try:
            return _EXACT.add(total, amount)  # type: ignore[arg-type]
        except (decimal.Inexact, decimal.Rounded, decimal.Overflow) as exc:
            raise FailedPrecondition(
                f"the sum would need more than {DECIMAL_PRECISION} significant digits"
            ) from exc
    return total + amount  # type: ignore[operator]


def _fits(i: int) -> bool:
    return _I64_MIN <= i <= _I64_MAX
