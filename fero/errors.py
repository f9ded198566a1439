"""fero's exceptions and their one mapping to gRPC status codes.

    FeroError                      base; `.code` is the grpc.StatusCode it travels as
    ├── InvalidArgument            bad name, amount, value kind, key path, ticket
    ├── FailedPrecondition         wrong value kind for this counter, counter expired,
    │   └── Expired                   PUSH onto a non-list, ...
    ├── NotFound
    ├── OutOfRange                 an offset older than the log keeps
    ├── Unavailable                owner unknown or moving, node stopping; retry
    ├── ResourceExhausted          too large, backpressure
    ├── Unimplemented              no handler for a custom action
    ├── Unauthenticated / PermissionDenied
    └── Internal                   a bug or a failed disk; the node stops accepting writes

Servicers raise these and `to_status()` turns them into a status; the client turns a
status back into the same class with `from_status()`. Each direction is this one table,
so a code always means the same thing on both sides.
"""

from __future__ import annotations

import re

import grpc


class FeroError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    #: Whether the same call may succeed if tried again (tickets make retries safe).
    retriable: bool = False
    #: Whether the caller should refresh its copy of the ring before retrying.
    refresh_ring: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(FeroError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class FailedPrecondition(FeroError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Expired(FailedPrecondition):
    """The counter's expiry has passed; it takes no more changes."""


class NotFound(FeroError):
    code = grpc.StatusCode.NOT_FOUND


class OutOfRange(FeroError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unavailable(FeroError):
    code = grpc.StatusCode.UNAVAILABLE
    retriable = True


class NotOwner(Unavailable):
    """This node does not own the partition (any more); refresh the ring and retry."""

    refresh_ring = True


class DeadlineExceeded(FeroError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    retriable = True


class ResourceExhausted(FeroError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    retriable = True


class Unimplemented(FeroError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Unauthenticated(FeroError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(FeroError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Internal(FeroError):
    code = grpc.StatusCode.INTERNAL


class Cancelled(FeroError):
    code = grpc.StatusCode.CANCELLED


_BY_CODE: dict[grpc.StatusCode, type[FeroError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        FailedPrecondition,
        NotFound,
        OutOfRange,
        Unavailable,
        DeadlineExceeded,
        ResourceExhausted,
        Unimplemented,
        Unauthenticated,
        PermissionDenied,
        Internal,
        Cancelled,
    )
}

# The tail of Expired's message (fero.counters): matched exactly, so that another
# FailedPrecondition that merely mentions "expired" (say, in a key name) keeps its class.
_EXPIRED = re.compile(r" expired at -?[0-9]+ ms \(Unix\)$")

_BY_VALUE: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


def status_code(number: int) -> grpc.StatusCode:
    """The StatusCode whose wire number is `number` (UNKNOWN if none is)."""
    return _BY_VALUE.get(number, grpc.StatusCode.UNKNOWN)


def from_status(code: grpc.StatusCode, message: str) -> FeroError:
    """The fero error a status stands for; unknown codes become a plain FeroError."""
    cls = _BY_CODE.get(code)
    if cls is None:
        err = FeroError(message)
        err.code = code
        return err
    if cls is Unavailable and message.startswith("not owner"):
        return NotOwner(message)
    if cls is FailedPrecondition and _EXPIRED.search(message):
        return Expired(message)
    return cls(message)
