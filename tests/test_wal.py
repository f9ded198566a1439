"""The write-ahead log with real files: group commit, fsync policies, rolling,
recovery of torn tails, failure handling, retention."""

import asyncio
import os

import pytest

from fero.errors import Internal, ResourceExhausted
from fero.log import frame, segment
from fero.log.wal import Wal


def run(coro):
    return asyncio.run(coro)


async def _append_all(wal, bodies, wait=True):
    locs = [wal.append(b) for b in bodies]
    if wait and locs:
        await wal.wait(locs[-1].seq)
    return locs


def _recovered(directory, **kw):
    return [body for _, _, body in Wal(directory, **kw).recover()]


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_acknowledged_frames_survive_reopen(tmp_path, policy):
    bodies = [f"record {i}".encode() * (i % 7 + 1) for i in range(300)]

    async def main():
        wal = Wal(tmp_path, fsync=policy, segment_bytes=4096)
        wal.recover()
        wal.start()
        await _append_all(wal, bodies)
        assert wal.durable == len(bodies)
        await wal.close()

    run(main())
    assert _recovered(tmp_path) == bodies
    assert len(segment.list_ids(tmp_path)) > 1, "small segments should have rolled"


def test_group_commit_batches_concurrent_appends_into_few_fsyncs(tmp_path):
    async def main():
        wal = Wal(tmp_path, fsync="always")
        wal.recover()
        wal.start()

        async def writer(i):
            for j in range(20):
                loc = wal.append(f"{i}:{j}".encode())
                await wal.wait(loc.seq)

        await asyncio.gather(*(writer(i) for i in range(50)))
        stats = wal.statistics()
        await wal.close()
        return stats

    stats = run(main())
    assert stats.durable_frames == 1000
    # Each writer waits for its own fsync before the next append, so without group
    # commit there would be 1,000 fsyncs; with it, one fsync serves many writers.
    assert stats.fsyncs < 500, stats


def test_wait_returns_only_after_the_frame_is_written(tmp_path):
    async def main():
        wal = Wal(tmp_path, fsync="never")
        wal.recover()
        wal.start()
        loc = wal.append(b"x" * 100)
        size_before = os.path.getsize(segment.path_for(tmp_path, loc.segment))
        await wal.wait(loc.seq)
        size_after = os.path.getsize(segment.path_for(tmp_path, loc.segment))
        await wal.close()
        return size_before, size_after

    before, after = run(main())
    assert before == len(segment.MAGIC)  # append() itself does no I/O
    assert after == len(segment.MAGIC) + 8 + 100


def test_a_frame_larger_than_recovery_reads_is_refused_and_the_log_goes_on(tmp_path, monkeypatch):
    """Recovery takes a frame over frame.MAX_BODY_BYTES for a torn write and cuts the
    log there, dropping it and every frame after; so it is never written."""
    monkeypatch.setattr(frame, "MAX_BODY_BYTES", 1000)

    async def main():
        wal = Wal(tmp_path)
        wal.recover()
        wal.start()
        await _append_all(wal, [b"a" * 10])
        with pytest.raises(ResourceExhausted, match="1001 bytes; at most 1000"):
            wal.append(b"x" * 1001)
        await _append_all(wal, [b"b" * 1000])
        await wal.close()

    run(main())
    assert _recovered(tmp_path) == [b"a" * 10, b"b" * 1000]


def test_torn_tail_is_truncated_and_appends_continue_after_it(tmp_path):
    async def first():
        wal = Wal(tmp_path)
        wal.recover()
        wal.start()
        await _append_all(wal, [b"a" * 10, b"b" * 10])
        await wal.close()

    run(first())
    seg = segment.path_for(tmp_path, 0)
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x00\x20garbage")  # a frame header promising 32 bytes, then less

    async def second():
        wal = Wal(tmp_path)
        got = [b for _, _, b in wal.recover()]
        wal.start()
        await _append_all(wal, [b"c" * 10])
        await wal.close()
        return got

    assert run(second()) == [b"a" * 10, b"b" * 10]
    assert _recovered(tmp_path) == [b"a" * 10, b"b" * 10, b"c" * 10]


def test_damage_before_the_newest_segment_refuses_to_guess(tmp_path):
    async def fill():
        wal = Wal(tmp_path, segment_bytes=4096)
        wal.recover()
        wal.start()
        await _append_all(wal, [bytes([i % 256]) * 500 for i in range(40)])
        await wal.close()

    run(fill())
    ids = segment.list_ids(tmp_path)
    assert len(ids) >= 3
    p = segment.path_for(tmp_path, ids[0])
    data = bytearray(p.read_bytes())
    data[20] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(segment.SegmentDamaged, match="not the newest"):
        Wal(tmp_path).recover()


def test_read_back_by_location(tmp_path):
    async def main():
        wal = Wal(tmp_path, segment_bytes=4096)
        wal.recover()
        wal.start()
        bodies = [f"body-{i}".encode() * 20 for i in range(100)]
        locs = await _append_all(wal, bodies)
        got = [wal.read(loc.segment, loc.position) for loc in locs]
        await wal.close()
        return bodies, got

    bodies, got = run(main())
    assert got == bodies


def test_a_failed_write_fails_waiters_and_refuses_new_appends(tmp_path):
    async def main():
        wal = Wal(tmp_path, fsync="never")
        wal.recover()
        wal.start()
        await _append_all(wal, [b"ok"])
        os.close(wal._fd)  # the disk goes away under the log
        wal._fd = os.open(os.devnull, os.O_RDONLY)
        loc = wal.append(b"lost")
        with pytest.raises(Internal, match="log failed"):
            await wal.wait(loc.seq)
        with pytest.raises(Internal, match="takes no more writes"):
            wal.append(b"more")
        await wal.close()

    run(main())
    assert _recovered(tmp_path) == [b"ok"]


def test_drop_segments_before_keeps_the_newest(tmp_path):
    async def main():
        wal = Wal(tmp_path, segment_bytes=4096)
        wal.recover()
        wal.start()
        await _append_all(wal, [b"z" * 1000 for _ in range(20)])
        ids = wal.segments()
        dropped = wal.drop_segments_before(ids[-1] + 100)
        left = wal.segments()
        await wal.close()
        return ids, dropped, left

    ids, dropped, left = run(main())
    assert dropped == ids[:-1]
    assert left == ids[-1:]
    assert segment.list_ids(tmp_path) == ids[-1:]


@pytest.mark.parametrize("policy", ["interval", "always"])
def test_fsyncs_never_race_a_segment_roll(tmp_path, monkeypatch, policy):
    """The interval fsync and sync() (snapshots) run beside the flusher, which closes a
    segment when it rolls: an fsync of the closed descriptor used to fail the log
    (EBADF) under load. A slow fsync widens the window the race needs."""
    import time as _time

    real_fsync = os.fsync

    def slow_fsync(fd):
        _time.sleep(0.002)
        real_fsync(fd)

    real_close = os.close
    held: list[int] = []

    def close_and_lose_the_number(fd):
        # As in a server, where other threads open sockets and files all the time: the
        # number of a closed descriptor is taken at once, not reused for the next segment.
        real_close(fd)
        held.append(os.open(os.devnull, os.O_RDONLY))

    monkeypatch.setattr(os, "fsync", slow_fsync)
    monkeypatch.setattr(os, "close", close_and_lose_the_number)
    bodies = [bytes([i % 251]) * 300 for i in range(600)]

    async def main():
        wal = Wal(tmp_path, fsync=policy, fsync_interval_ms=1, segment_bytes=4096)
        wal.recover()
        wal.start()
        syncing = asyncio.get_running_loop().create_task(_keep_syncing(wal))
        try:
            for i in range(0, len(bodies), 10):
                await _append_all(wal, bodies[i:i + 10])
        finally:
            syncing.cancel()
        assert wal.failed is None, wal.failed
        await wal.close()

    async def _keep_syncing(wal):
        while True:
            await wal.sync()
            await asyncio.sleep(0)

    try:
        run(main())
    finally:
        monkeypatch.undo()
        for fd in held:
            os.close(fd)
    assert _recovered(tmp_path) == bodies
    assert len(segment.list_ids(tmp_path)) > 20


def test_without_fsync_per_write_a_wait_writes_in_the_callers_own_step(tmp_path):
    async def main():
        wal = Wal(tmp_path, fsync="interval")
        wal.recover()
        wal.start()
        await wal.wait(wal.append(b"first").seq)  # the loop opens the segment
        loc = wal.append(b"y" * 50)
        path = segment.path_for(tmp_path, loc.segment)
        before = os.path.getsize(path)
        coro = wal.wait(loc.seq)
        # It finishes without suspending: no task switch to the flush loop.
        with pytest.raises(StopIteration):
            coro.send(None)
        after = os.path.getsize(path)
        await wal.close()
        return before, after

    before, after = run(main())
    assert after == before + 8 + 50


class _CountingEvent(asyncio.Event):
    """The flush loop's wake-up, counting the loop's turns (each turn waits once)."""

    def __init__(self):
        super().__init__()
        self.waits = 0

    async def wait(self):
        self.waits += 1
        return await super().wait()


async def _started_with_a_frame(tmp_path, policy, wakeup=None):
    """A started log (with `wakeup` as its flush loop's, before the loop's first turn)
    that has written b"first", a round ago."""
    wal = Wal(tmp_path, fsync=policy)
    wal.recover()
    wal.start()
    if wakeup is not None:
        wal._wakeup = wakeup
    await wal.wait(wal.append(b"first").seq)
    await asyncio.sleep(0)
    return wal


@pytest.mark.parametrize("policy", ["interval", "never"])
def test_frames_their_appender_writes_do_not_wake_the_flush_loop(tmp_path, policy):
    # The appender writes its own frames in its own step (wait → _write_now); the
    # flush loop is woken only for what nobody wrote, not for a turn that finds
    # nothing: a task step each commit, on the owner and on every replica.
    async def main():
        woken = _CountingEvent()
        wal = await _started_with_a_frame(tmp_path, policy, woken)
        turns = woken.waits
        for i in range(20):
            await wal.wait(wal.append(b"x%d" % i).seq)
            await asyncio.sleep(0)  # a round in which a woken loop would turn
            await asyncio.sleep(0)
        durable = wal.durable
        await wal.close()
        return turns, woken.waits, durable, _recovered(tmp_path)

    turns, after, durable, bodies = run(main())
    assert after == turns
    assert durable == 21 and bodies == [b"first"] + [b"x%d" % i for i in range(20)]


@pytest.mark.parametrize("policy", ["interval", "never"])
def test_a_frame_nobody_waits_for_is_written_by_the_flush_loop(tmp_path, policy):
    async def main():
        # A round after b"first": the callback it left is gone, and this needs its own.
        wal = await _started_with_a_frame(tmp_path, policy)
        loc = wal.append(b"unawaited")  # as an acks=NONE commit leaves it
        deadline = asyncio.get_running_loop().time() + 5
        while wal.durable < loc.seq and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
        durable = wal.durable
        with open(segment.path_for(tmp_path, loc.segment), "rb") as f:
            f.seek(loc.position + frame.HEADER_SIZE)
            body = f.read(9)
        await asyncio.wait_for(wal.close(), 5)  # close() too waits for the frame
        return loc.seq, durable, body

    seq, durable, body = run(main())
    assert durable == seq and body == b"unawaited"


def test_a_frame_that_starts_a_segment_is_left_to_the_flush_loop(tmp_path):
    # Rolling fsyncs the finished segment first, which must not block the caller.
    async def main():
        wal = Wal(tmp_path, fsync="interval", segment_bytes=4096)
        wal.recover()
        wal.start()
        await wal.wait(wal.append(b"a" * 3000).seq)
        loc = wal.append(b"b" * 3000)  # does not fit: a new segment
        coro = wal.wait(loc.seq)
        coro.send(None)  # it suspends (had it written the frame, this raised StopIteration)
        coro.close()
        await wal.wait(loc.seq)
        body = wal.read(loc.segment, loc.position)
        await wal.close()
        return loc.segment, body

    seg, body = run(main())
    assert seg == 1 and body == b"b" * 3000


@pytest.mark.parametrize("policy", ["always", "interval"])
def test_short_writes_and_more_frames_than_one_writev_takes_lose_nothing(tmp_path, monkeypatch, policy):
    """Frames go to the file by writev, header and body as separate buffers, at most
    IOV_MAX of them a call. A writev may write less than asked (a signal, a full disk):
    the rest follows. Here every writev writes only part of what it is given."""
    import fero.log.wal as wal_module

    calls: list[int] = []

    def short_writev(fd, buffers):
        calls.append(len(buffers))
        data = b"".join(buffers)
        return os.write(fd, data[: max(1, len(data) // 3)])

    monkeypatch.setattr(wal_module.os, "writev", short_writev)
    bodies = [f"frame {i} ".encode() * (i % 5 + 1) for i in range(1500)]

    async def main():
        wal = Wal(tmp_path, fsync=policy)
        wal.recover()
        wal.start()
        locs = await _append_all(wal, bodies)
        got = [wal.read(loc.segment, loc.position) for loc in locs]
        await wal.close()
        return got

    assert run(main()) == bodies
    assert _recovered(tmp_path) == bodies
    assert max(calls) <= wal_module._IOV_MAX and calls


def test_a_write_that_makes_no_progress_fails_the_log_instead_of_spinning(tmp_path, monkeypatch):
    import fero.log.wal as wal_module

    async def main():
        wal = Wal(tmp_path, fsync="never")
        wal.recover()
        wal.start()
        await _append_all(wal, [b"ok"])
        monkeypatch.setattr(wal_module.os, "writev", lambda fd, buffers: 0)
        loc = wal.append(b"stuck")
        with pytest.raises(Internal, match="no progress"):
            await wal.wait(loc.seq)
        await wal.close()

    run(main())
    assert _recovered(tmp_path) == [b"ok"]


def test_the_memory_log_counts_its_bytes_as_frames_come():
    """`fero serve --memory` keeps every frame; its statistics (each metrics scrape)
    give what they cost without a pass over them: each body and the overhead of
    keeping it."""
    from fero.log.memory import FRAME_OVERHEAD, MemoryWal

    wal = MemoryWal()
    bodies = [bytes(range(n % 256)) * (1 + n % 3) for n in range(500)]
    locations = [wal.append(b) for b in bodies]
    stats = wal.statistics()
    assert stats.bytes == sum(len(wal.read(loc.segment, loc.position)) + FRAME_OVERHEAD for loc in locations)
    assert stats.bytes == sum(map(len, bodies)) + 500 * FRAME_OVERHEAD
    assert (stats.appended_frames, sum(map(wal.segment_size, wal.segments()))) == (500, stats.bytes)


def test_the_memory_log_charges_a_frame_about_what_keeping_it_costs_in_memory():
    """retention_bytes in memory bounds memory: the bytes the log counts for a run of
    small frames, committed through an engine, are within a third of what the heap grew
    by (a body-only count was a quarter of it)."""
    import gc
    import tracemalloc

    from fero.clock import ManualClock
    from fero.config import Config
    from fero.engine import Engine
    from fero.v1 import types_pb2

    async def main():
        e = Engine(Config(), ManualClock(), "n1", None)
        e.open()
        e.start()
        try:
            add = types_pb2.Record(key="k", op=types_pb2.OP_COUNTER_ADD, amount=types_pb2.Number(i64=1))
            for _ in range(500):  # the containers' first growth is not the frames'
                await e.commit([add], types_pb2.ACKS_LEADER)
            gc.collect()
            tracemalloc.start()
            try:
                heap0, counted0 = tracemalloc.get_traced_memory()[0], e.wal.statistics().bytes
                for _ in range(5000):
                    await e.commit([add], types_pb2.ACKS_LEADER)
                gc.collect()
                return tracemalloc.get_traced_memory()[0] - heap0, e.wal.statistics().bytes - counted0
            finally:
                tracemalloc.stop()
        finally:
            await e.close()

    grew, counted = asyncio.run(main())
    assert 0.67 * grew <= counted <= 1.5 * grew, (grew, counted)


def test_the_memory_log_rolls_segments_and_drops_whole_ones_but_never_the_open_one():
    """`fero serve --memory` kept every frame for good; its log is in segments now, as
    on disk, and retention drops the oldest whole, with their bytes."""
    from fero.log.memory import FRAME_OVERHEAD, MemoryWal

    wal = MemoryWal(segment_bytes=1000)
    bodies = [bytes([n % 256]) * (50 + n % 100) for n in range(300)]
    locations = [wal.append(b) for b in bodies]
    segs = wal.segments()
    assert len(segs) > 10 and segs == sorted(segs) and segs[0] == locations[0].segment
    # Every segment but the open one reached segment_bytes, and a frame is in the
    # segment its location names.
    assert all(wal.segment_size(s) >= 1000 for s in segs[:-1])
    assert all(loc.segment <= loc.position and wal.read(loc.segment, loc.position) == b
               for loc, b in zip(locations, bodies))
    keep = segs[4]
    assert wal.drop_segments_before(keep) == segs[:4]
    kept = [(loc, b) for loc, b in zip(locations, bodies) if loc.segment >= keep]
    assert wal.statistics().bytes == sum(len(b) + FRAME_OVERHEAD for _, b in kept) == sum(map(wal.segment_size, wal.segments()))
    assert all(wal.read(loc.segment, loc.position) == b for loc, b in kept)
    with pytest.raises(KeyError):
        wal.read(locations[0].segment, locations[0].position)
    # Never the segment being written, whatever it is asked.
    assert wal.drop_segments_before(10**9) == segs[4:-1]
    assert wal.segments() == [segs[-1]] and wal.statistics().bytes == wal.segment_size(segs[-1])
    assert wal.last_written(segs[-1]) > 0 and wal.last_written(segs[0]) == 0.0
