"""A subscriber's view of the changelog: history from an offset, then live commits.

The engine registers a subscription before it reads history, so live commits queue up
while history is read; both pass through one per-partition cursor (`next_offset`), so
what reaches the subscriber is every matching commit once, in offset order per
partition. History is read lazily, a batch at a time, as the subscriber asks for more.

A subscriber that falls `max_queued` batches behind is closed with RESOURCE_EXHAUSTED
naming the offsets to resubscribe from: a slow reader must not hold a node's memory.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from typing import Callable, Iterable, Iterator

from fero import batch as batches
from fero.documents import partition_key
from fero.errors import FeroError, ResourceExhausted
from fero.ring import partition_of
from fero.v1 import changelog_pb2, storage_pb2, types_pb2

HISTORY_BATCH = 512


class Subscription:
    def __init__(self, partition: int | None = None, prefix: str | None = None, max_queued: int = 4096) -> None:
        self.partition = partition
        self.prefix = prefix if partition is None else None
        #: Per partition read, the next offset to hand on. Its keys are the partitions
        #: read, set by Engine.subscribe and fixed after: the engine indexes them.
        self.next_offset: dict[int, int] = {}
        self.on_close: Callable[["Subscription"], None] | None = None
        self._history: collections.deque[Iterator[types_pb2.Commit]] = collections.deque()
        self._live: collections.deque[list[storage_pb2.LogEntry]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._max_queued = max_queued
        self._closed = False
        self._error: FeroError | None = None
        self._resets: collections.deque[changelog_pb2.SubscribeEvent.Reset] = collections.deque()
        #: Only these partitions of the scope (None: all).
        self.only: set[int] | None = None

    def partitions(self, P: int) -> Iterable[int]:
        """The partitions this subscription reads."""
        if self.partition is not None:
            return (self.partition,)
        prefix = self.prefix or ""
        if "." in prefix:  # the first segment is complete: one partition holds all of it
            scope: Iterable[int] = (partition_of(partition_key(prefix), P),)
        else:
            scope = range(P)
        if self.only is not None:
            return [p for p in scope if p in self.only]
        return scope

    def matches(self, key: str) -> bool:
        return self.prefix is None or key.startswith(self.prefix)

    def deliver_history(self, commits: Iterable[types_pb2.Commit]) -> None:
        self._history.append(iter(commits))
        self._wakeup.set()

    def deliver_reset(self, partition: int, epoch: int, offset: int, force: bool = False) -> None:
        """The log of `partition` was cut back to `offset`: what came after is void.
        `force`: announce it even before the cursor is set (a resume that diverged)."""
        if self._closed or (partition not in self.next_offset and not force):
            return
        if force:
            self._resets.append(changelog_pb2.SubscribeEvent.Reset(partition=partition, epoch=epoch, offset=offset))
        else:
            self._live.append([storage_pb2.LogEntry(partition=partition, epoch=epoch, base_offset=offset, truncate=True)])
        self._wakeup.set()

    def deliver_live(self, entries: list[storage_pb2.LogEntry]) -> None:
        if self._closed:
            return
        if len(self._live) >= self._max_queued:
            self.close(ResourceExhausted("subscriber fell behind; resubscribe from the offsets last received"))
            return
        self._live.append(entries)
        self._wakeup.set()

    def close(self, error: FeroError | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._wakeup.set()
        if self.on_close is not None:
            self.on_close(self)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> "list[types_pb2.Commit] | changelog_pb2.SubscribeEvent.Reset":
        """The next batch of commits (never empty), or a Reset when a partition's log was
        cut back; raises the error it was closed with."""
        while True:
            if self._resets:
                return self._resets.popleft()
            while self._history:
                batch = self._take(itertools.islice(self._history[0], HISTORY_BATCH))
                if batch:
                    return batch
                self._history.popleft()
            while self._live:
                entries = self._live.popleft()
                if entries and entries[0].truncate:
                    e = entries[0]
                    if self.next_offset.get(e.partition, 0) > e.base_offset:
                        self.next_offset[e.partition] = e.base_offset
                        return changelog_pb2.SubscribeEvent.Reset(partition=e.partition, epoch=e.epoch, offset=e.base_offset)
                    continue
                batch = self._take(self._commits_of(entries))
                if batch:
                    return batch
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()

    def _commits_of(self, entries: list[storage_pb2.LogEntry]) -> Iterator[types_pb2.Commit]:
        for entry in entries:
            p = entry.partition
            if p not in self.next_offset:
                continue
            for k, rec in enumerate(batches.records(entry)):
                yield types_pb2.Commit(partition=p, offset=entry.base_offset + k, epoch=entry.epoch, record=rec, owner=entry.owner)

    def _take(self, commits: Iterable[types_pb2.Commit]) -> list[types_pb2.Commit]:
        out = []
        cursor = self.next_offset
        for c in commits:
            want = cursor.get(c.partition)
            if want is None or c.offset < want:
                continue
            cursor[c.partition] = c.offset + 1
            if self.matches(c.record.key):
                out.append(c)
        return out
