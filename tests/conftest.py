"""Shared fixtures: real nodes in-process and real `fero serve` processes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import pytest

import fero
from fero.testing.process import ServeProcess

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Polls `check` until it is true; fails the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_node(**kwargs: Any) -> AsyncIterator[fero.Node]:
    """A started in-process node on 127.0.0.1, port 0, stopped on exit."""
    node = fero.Node(port=0, **kwargs)
    await node.start()
    try:
        yield node
    finally:
        await node.stop(grace_s=1.0)


@pytest.fixture
def serve(tmp_path):
    """Starts `fero serve` processes; kills whatever is left at the end of the test."""
    procs: list[ServeProcess] = []

    def start(data_dir=None, **kwargs) -> ServeProcess:
        p = ServeProcess(data_dir if data_dir is not None else tmp_path / f"node{len(procs)}", **kwargs).start()
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
