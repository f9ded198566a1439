"""The client side of a cluster-wide subscription: one stream per owner, merged.

A prefix may span every partition, and partitions live on different owners. The
subscriber opens a stream at each owner for the partitions it owns and merges them,
keeping per partition the last commit delivered (offset and lineage). When the ring
changes or a stream breaks, it regroups and resumes each partition at its (new) owner
after that last commit; the owner either continues right after it or, if its log
does not hold that commit (the log was rewritten by a merge), sends a reset first. So
the consumer sees every commit once, in per-partition order, and an explicit reset
where history changed: a Change with op "reset" whose offset is where to continue.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from fero.errors import FeroError, from_status
from fero.v1 import changelog_pb2

if TYPE_CHECKING:
    from fero.client import Change, Client

log = structlog.get_logger("fero.subscriber")

#: How often the subscriber checks whether partitions moved to other owners.
REGROUP_S = 1.0


class ClusterSubscription:
    def __init__(self, client: "Client", request: changelog_pb2.SubscribeRequest, partitions: list[int]) -> None:
        self._client = client
        self._template = request
        self._partitions = partitions
        #: partition -> (offset, epoch, owner) of the last commit delivered, or after a
        #: reset (offset - 1, None, None): continue at offset, lineage unknown
        self._last: dict[int, tuple[int, int | None, str | None]] = {}
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=10_000)
        self._streams: dict[str, tuple[asyncio.Task[None], frozenset[int]]] = {}
        self._opened = False
        self._regroup_task: asyncio.Task[None] | None = None
        self._closed = False
        self._started: dict[str, asyncio.Event] = {}

    async def _open(self) -> "ClusterSubscription":
        if not self._opened:
            self._opened = True
            await self._regroup(first=True)
            await asyncio.gather(*(ev.wait() for ev in self._started.values()))
            self._regroup_task = asyncio.get_running_loop().create_task(self._regroup_loop())
        return self

    def __await__(self) -> Any:
        return self._open().__await__()

    def __aiter__(self) -> "ClusterSubscription":
        return self

    async def __anext__(self) -> "Change":
        await self._open()
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        self._closed = True
        if self._regroup_task is not None:
            self._regroup_task.cancel()
        for task, _ in self._streams.values():
            task.cancel()
        self._streams.clear()

    def close(self) -> None:
        asyncio.get_running_loop().create_task(self.aclose())

    # -- streams --------------------------------------------------------------------

    def _grouping(self) -> dict[str, frozenset[int]]:
        groups: dict[str, set[int]] = {}
        for p in self._partitions:
            groups.setdefault(self._client.address_for_partition(p), set()).add(p)
        return {a: frozenset(ps) for a, ps in groups.items()}

    async def _regroup(self, first: bool = False) -> None:
        if not first:
            await self._client.refresh_ring()
        wanted = self._grouping()
        for address, (task, parts) in list(self._streams.items()):
            if wanted.get(address) != parts or task.done():
                task.cancel()
                del self._streams[address]
        for address, parts in wanted.items():
            if address not in self._streams:
                started = self._started[address] = asyncio.Event()
                task = asyncio.get_running_loop().create_task(self._stream(address, parts, started))
                self._streams[address] = (task, parts)

    async def _regroup_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(REGROUP_S)
            try:
                await self._regroup()
            except Exception:  # the ring could not be refreshed; try again next round
                log.debug("subscriber.regroup_failed", exc_info=True)

    async def _stream(self, address: str, parts: frozenset[int], started: asyncio.Event) -> None:
        from fero.client import Change  # here: fero.client imports this module

        req = changelog_pb2.SubscribeRequest()
        req.CopyFrom(self._template)
        req.ClearField("partitions")
        req.partitions.extend(sorted(parts))
        for p in parts:
            if p in self._last:
                off, epoch, owner = self._last[p]
                if epoch is None or owner is None:
                    req.from_offsets[p] = off + 1
                else:
                    req.resume[p].offset, req.resume[p].epoch, req.resume[p].owner = off, epoch, owner
                    req.from_offsets.pop(p, None)
        call = self._client._conn(address).changelog.Subscribe(req)
        try:
            async for event in call:
                if event.subscribed:
                    started.set()
                    continue
                if event.HasField("reset"):
                    r = event.reset
                    self._last[r.partition] = (r.offset - 1, None, None)
                    await self._queue.put(_reset_change(r))
                    continue
                for c in event.commits:
                    last = self._last.get(c.partition)
                    if last is not None and c.offset <= last[0]:
                        continue  # already delivered through another stream
                    self._last[c.partition] = (c.offset, c.epoch, c.owner)
                    await self._queue.put(Change.from_commit(c))
        except grpc.aio.AioRpcError as exc:
            started.set()
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            err: FeroError = from_status(exc.code(), exc.details() or "")
            if not err.retriable and not self._closed:
                await self._queue.put(err)
            # A retriable failure (the node went away): the next regroup resumes these
            # partitions wherever the ring now puts them.
        finally:
            started.set()
            call.cancel()


def _reset_change(r: changelog_pb2.SubscribeEvent.Reset) -> "Change":
    from fero.client import Change

    return Change(partition=r.partition, offset=r.offset, epoch=r.epoch, key="", op="reset", value=b"",
                  amount=None, action="", ticket="", hlc=0)
