"""A node in memory (`fero serve --memory`, and every test node) applies retention to
its log as a node on disk does: it used to keep every frame it wrote, for good."""

from __future__ import annotations

import pytest

from fero.errors import OutOfRange

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
