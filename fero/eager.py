"""Tasks that start at once: `start(coro)` runs the coroutine's first step now, in the
caller's step, and leaves the rest to a task (Python 3.12's eager tasks, for 3.11).

Why: a server that gives each request on a stream its own task (so a slow one does not
hold up those behind it) paid a task switch before each request began: the new task
ran only after the rest of the loop's round, the stream's next read among it. A commit
that does not wait (acks LEADER) now commits and starts writing its reply before the
stream is read again; one that waits for replicas has woken them first.

The task exists from the start and is the current task during the first step too, so
asyncio.timeout() and current_task() inside it work as in any task. Cancelling the task
before its first scheduled step throws into the coroutine where it waits, as for any
task waiting there.
"""

from __future__ import annotations

import asyncio
import collections.abc
import sys
from typing import Any, Coroutine, Generator, TypeVar

T = TypeVar("T")

_NATIVE = sys.version_info >= (3, 12)


def start(coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
    """A task running `coro`, whose first step (up to its first real wait) has run."""
    loop = asyncio.get_running_loop()
    if _NATIVE:
        return asyncio.Task(coro, loop=loop, name=name, eager_start=True)  # type: ignore[call-arg]
    resumed = _Resumed(coro)
    task = loop.create_task(resumed, name=name)  # its first step is scheduled, not run
    outer = asyncio.current_task(loop)
    if outer is not None:
        asyncio.tasks._leave_task(loop, outer)  # type: ignore[attr-defined]
    asyncio.tasks._enter_task(loop, task)  # type: ignore[attr-defined]
    try:
        resumed.first_step()
    finally:
        asyncio.tasks._leave_task(loop, task)  # type: ignore[attr-defined]
        if outer is not None:
            asyncio.tasks._enter_task(loop, outer)  # type: ignore[attr-defined]
    return task


class _Resumed(collections.abc.Coroutine):  # type: ignore[type-arg]
    """`coro` with its first step already taken: the task's first send hands the task
    what that step yielded (the future it waits on), or its outcome; after that every
    send and throw goes straight to `coro`."""

    __slots__ = ("coro", "_first", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self._first: tuple[str, Any] | None = None  # ("yield", value) | ("return", v) | ("raise", exc)
        self._pending = True  # the task has not had what the first step gave yet

    def first_step(self) -> None:
        try:
            self._first = ("yield", self.coro.send(None))
        except StopIteration as stop:
            self._first = ("return", stop.value)
        except BaseException as exc:  # the task raises it, as if its own step had
            self._first = ("raise", exc)

    def send(self, value: Any) -> Any:
        if self._pending:
            self._pending = False
            kind, got = self._first  # type: ignore[misc]
            self._first = None
            if kind == "yield":
                return got
            if kind == "return":
                raise StopIteration(got)
            raise got
        return self.coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:  # type: ignore[override]
        if self._pending:
            self._pending = False
            kind, got = self._first  # type: ignore[misc]
            self._first = None
            if kind == "return":
                # The coroutine has finished: the task takes its outcome, as it does
                # from a coroutine that stops right as it is cancelled.
                raise StopIteration(got)
            if kind == "raise":
                raise got
            if isinstance(got, asyncio.Future):
                # A task only throws in to cancel, and cancelling a task cancels what it
                # waits on: this task never got to wait on it.
                got.cancel()
        if val is None and tb is None:
            return self.coro.throw(typ)
        return self.coro.throw(typ, val, tb)

    def close(self) -> None:
        self.coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        raise TypeError("an eager.start() task's coroutine is the task's own")
