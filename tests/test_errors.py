"""fero.errors: one table from exception to status code and back."""

from __future__ import annotations

import grpc
import pytest

from fero import errors

CLASSES = [
    errors.InvalidArgument,
    errors.FailedPrecondition,
    errors.NotFound,
    errors.OutOfRange,
    errors.Unavailable,
    errors.DeadlineExceeded,
    errors.ResourceExhausted,
    errors.Unimplemented,
    errors.Unauthenticated,
    errors.PermissionDenied,
    errors.Internal,
    errors.Cancelled,
]


@pytest.mark.parametrize("cls", CLASSES)
def test_round_trip_every_class(cls: type[errors.FeroError]) -> None:
    err = cls("something went wrong")
    back = errors.from_status(err.code, err.message)
    assert type(back) is cls
    assert back.code == err.code and back.message == "something went wrong"
    # And through the wire number, as a per-record Result carries it.
    assert errors.status_code(err.code.value[0]) is err.code


def test_codes_are_distinct() -> None:
    assert len({c.code for c in CLASSES}) == len(CLASSES)


@pytest.mark.parametrize(
    "err",
    [
        errors.NotOwner("not owner of partition 7; its owner is n2"),
        errors.Expired("counter 'bill' expired at 1700000000000 ms (Unix)"),
    ],
)
def test_round_trip_subclasses(err: errors.FeroError) -> None:
    back = errors.from_status(err.code, err.message)
    assert type(back) is type(err)


def test_expired_is_a_failed_precondition() -> None:
    assert issubclass(errors.Expired, errors.FailedPrecondition)
    assert errors.Expired.code is grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    "message",
    [
        "counter 'expired-invoices' is int; it cannot become decimal",
        "'expired.list' holds a number, not a list; PUSH needs a list",
    ],
)
def test_failed_precondition_mentioning_expired_is_not_expired(message: str) -> None:
    back = errors.from_status(grpc.StatusCode.FAILED_PRECONDITION, message)
    assert type(back) is errors.FailedPrecondition


def test_unknown_code_keeps_its_code() -> None:
    back = errors.from_status(grpc.StatusCode.DATA_LOSS, "disk ate it")
    assert type(back) is errors.FeroError
    assert back.code is grpc.StatusCode.DATA_LOSS
    assert str(back) == "DATA_LOSS: disk ate it"
    # The class attribute is untouched.
    assert errors.FeroError.code is grpc.StatusCode.UNKNOWN


@pytest.mark.parametrize(
    "cls, retriable, refresh",
    [
        (errors.Unavailable, True, False),
        (errors.NotOwner, True, True),
        (errors.DeadlineExceeded, True, False),
        (errors.ResourceExhausted, True, False),
        (errors.InvalidArgument, False, False),
        (errors.FailedPrecondition, False, False),
        (errors.Internal, False, False),
    ],
)
def test_retriable_flags(cls: type[errors.FeroError], retriable: bool, refresh: bool) -> None:
    assert cls.retriable is retriable and cls.refresh_ring is refresh


def test_status_code_of_unknown_number() -> None:
    assert errors.status_code(999) is grpc.StatusCode.UNKNOWN
    assert errors.status_code(0) is grpc.StatusCode.OK
