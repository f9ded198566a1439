"""A node in memory (`fero serve --memory`, and every test node) applies retention to
its log as a node on disk does: it used to keep every frame it wrote, for good. And a
subscriber reading history while retention (or a state transfer) changes the log
under it, on disk as in memory."""

from __future__ import annotations

import asyncio

import pytest

from fero.errors import OutOfRange
from fero.subscriptions import Subscription

from .batches import keys_in
from .test_batch_engine import LEADER, config, doc, opened, run, updates


@pytest.mark.parametrize("retention_bytes, retention_s, dropped", [(16_384, 3600, True), (0, 3600, False), (0, 0, True)])
def test_a_node_in_memory_drops_old_segments_as_retention_says_and_keeps_its_state_whole(
    retention_bytes: int, retention_s: int, dropped: bool,
) -> None:
    """Over the byte limit, or older than retention_s, closed segments go; under both,
    they stay. Either way every document reads as last written, and the log starts
    where the first frame kept does."""
    cfg = config(segment_bytes=4096, retention_bytes=retention_bytes, retention_s=retention_s)
    ks = keys_in(7, 20, "mem")

    async def main():
        e = await opened(None, cfg)
        try:
            for i in range(300):
                await e.commit_batches([updates(ks, [i] * len(ks), f"m{i}")], LEADER)
            before = e.wal.statistics().bytes
            await e.take_snapshot()
            state = e.partitions[7]
            start = state.log_start_offset
            if start:
                with pytest.raises(OutOfRange):
                    e.frames_from(7, 0, 10)
            frames = e.frames_from(7, start, 10**6)
            return before, e.wal.statistics(), start, state.next_offset, frames, [doc(e, k) for k in ks]
        finally:
            await e.close()

    before, after, start, end, frames, docs = run(main())
    assert before > 80_000 and docs == [299] * len(ks)
    # What is kept is a whole tail of the log: its frames run from log_start_offset to the end.
    assert frames[0].base_offset == start and sum(len(f.batch.keys) for f in frames) == end - start
    if dropped:
        assert start > 0 and after.bytes < before
        if retention_bytes:
            # Closed segments within the limit, and the open one.
            assert after.bytes <= retention_bytes + 2 * 4096
    else:
        assert start == 0 and after.bytes == before


async def _commits(e, p: int, n: int, prefix: str) -> None:
    ks = keys_in(p, 1, prefix)
    for i in range(n):
        await e.commit_batches([updates(ks, [i], f"{prefix}{i}")], LEADER)


def test_a_subscriber_reading_history_gets_every_kept_offset_when_retention_drops_frames_before_it() -> None:
    """Retention drops the oldest frames from the index in place while a subscriber is
    partway through its history: it must go on from where it was, not skip as many
    frames as were dropped (as it did when it kept a position in the list)."""

    async def main():
        e = await opened(None, config(segment_bytes=4096))
        try:
            await _commits(e, 7, 3000, "h")
            sub = Subscription(partition=7)
            e.subscribe(sub, {}, earliest=True)
            got = [c.offset for c in await asyncio.wait_for(sub.__anext__(), 10)]
            closed = e.wal.segments()[:-1]
            e.config = config(segment_bytes=4096, retention_bytes=sum(map(e.wal.segment_size, closed[3:])))
            await e.take_snapshot()  # drops the first 3 closed segments, all before what it read
            start = e.partitions[7].log_start_offset
            while got[-1] < 2999:
                got += [c.offset for c in await asyncio.wait_for(sub.__anext__(), 10)]
            return got, start
        finally:
            await e.close()

    got, start = run(main())
    assert 0 < start < 512 and got == list(range(3000))


@pytest.mark.parametrize("how", ["retention", "state transfer"])
def test_a_subscriber_whose_next_offset_left_the_log_is_told_so_not_skipped_ahead(how: str) -> None:
    async def main():
        e = await opened(None, config(segment_bytes=4096, retention_s=0))
        try:
            await _commits(e, 7, 3000, "g")
            sub = Subscription(partition=7)
            e.subscribe(sub, {}, earliest=True)
            first = await asyncio.wait_for(sub.__anext__(), 10)
            if how == "state transfer":
                snap = e.partitions[7].to_snapshot()
                snap.next_offset += 10
                e.install(snap)
            else:
                await e.take_snapshot()  # retention_s=0: every closed segment goes
            with pytest.raises(OutOfRange, match=f"offset {first[-1].offset + 1} left the log"):
                await asyncio.wait_for(sub.__anext__(), 10)
            return e.partitions[7].log_start_offset
        finally:
            await e.close()

    assert run(main()) > 512
