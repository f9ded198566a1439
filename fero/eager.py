"""Tasks that start at once: `start(coro)` runs the coroutine's first step now, in the
caller's step, and leaves the rest to a task (Python 3.12's eager tasks, for 3.11).

Why: a server that gives each request on a stream its own task (so a slow one does not
hold up those behind it) paid a task switch before each request began: the new task
ran only after the rest of the loop's round, the stream's next read among it. A commit
that does not wait for replicas (acks LEADER, with fsync interval or never) now commits
and starts writing its reply before the stream is read again; one that waits for them
has woken their links first (which send a round later: see Replicator.notify).

As with 3.12's: the task exists from the start and is the current task during the
first step too (asyncio.timeout() and current_task() inside it work as in any task),
and the first step runs in the task's own context, not the caller's. Cancelling it
before its first scheduled step cancels what it waits on, and it wakes when that is
done, as any task does. It differs in two ways: the task is done only after that
scheduled step even if its coroutine already returned (and a cancel() meanwhile does
not change the outcome), and a KeyboardInterrupt in the first step is raised a round
later, as create_task's would be, not out of start().
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
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
    ctx = contextvars.copy_context()
    task = loop.create_task(resumed, name=name, context=ctx)  # its first step is scheduled, not run
    outer = asyncio.current_task(loop)
    if outer is not None:
        asyncio.tasks._leave_task(loop, outer)  # type: ignore[attr-defined]
    asyncio.tasks._enter_task(loop, task)  # type: ignore[attr-defined]
    try:
        ctx.run(resumed.first_step)
    finally:
        asyncio.tasks._leave_task(loop, task)  # type: ignore[attr-defined]
        if outer is not None:
            asyncio.tasks._enter_task(loop, outer)  # type: ignore[attr-defined]
    return task


class _Resumed(collections.abc.Coroutine):  # type: ignore[type-arg]
    """`coro` with its first step already taken: the task's first send hands the task
    what that step yielded (the future it waits on), or its outcome; after that every
    send and throw goes straight to `coro`."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        # The task's repr and asyncio's warnings name the coroutine by these.
        self.__name__ = getattr(coro, "__name__", type(coro).__name__)
        self.__qualname__ = getattr(coro, "__qualname__", self.__name__)
        self._first: tuple[str, Any] | None = None  # ("yield", value) | ("return", v) | ("raise", exc)
        self._pending = True  # the task has not had what the first step gave yet
        self._blocking = False

    def first_step(self) -> None:
        try:
            got = self.coro.send(None)
            self._first = ("yield", got)
            # As a task does at once with what its step yielded: until the task takes it,
            # a future marked as awaited breaks anyone else's await of it.
            if getattr(got, "_asyncio_future_blocking", False):
                got._asyncio_future_blocking = False
                self._blocking = True
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
                if self._blocking:
                    got._asyncio_future_blocking = True
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
            if isinstance(got, asyncio.Future) and got.cancel():
                # As Task.cancel() does with what it waits on: the task wakes when that
                # is done (a task it awaits may take time to stop, or not stop at all).
                if self._blocking:
                    got._asyncio_future_blocking = True
                return got
        if val is None and tb is None:
            return self.coro.throw(typ)
        return self.coro.throw(typ, val, tb)

    def close(self) -> None:
        self.coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        raise TypeError("an eager.start() task's coroutine is the task's own")
