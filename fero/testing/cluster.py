"""An in-process cluster for tests: real nodes (real gRPC servers on 127.0.0.1, port 0)
in one event loop, joined through the first, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import AsyncIterator

from fero.config import Config
from fero.membership.config import MembershipConfig
from fero.node import Node


@contextlib.asynccontextmanager
async def local_cluster(n: int = 3, config: Config | None = None, timeout_s: float = 30.0) -> AsyncIterator[list[Node]]:
    """Yields `n` nodes once every one sees all `n` in its ring, the same ring, and calls
    the cluster coherent; TimeoutError after `timeout_s`. Stops them all at the end."""
    cfg = config or Config(membership=MembershipConfig.local())
    nodes = [Node(f"n{i}", port=0, config=cfg) for i in range(n)]
    try:
        await nodes[0].start()
        for node in nodes[1:]:
            node.seeds = [nodes[0].address]
            await node.start()
        deadline = time.monotonic() + timeout_s
        while not (
            all(len(x.ring) == n and x.coherent() for x in nodes) and len({x.ring.checksum() for x in nodes}) == 1
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} nodes did not converge to one coherent ring in {timeout_s}s")
            await asyncio.sleep(0.02)
        yield nodes
    finally:
        for node in nodes:
            await node.stop()
