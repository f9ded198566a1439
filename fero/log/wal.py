"""The node's write-ahead log: segment files shared by all partitions, group commit.

Why one log for all partitions rather than a file set per partition (Kafka's layout):
a batch from a client touches many partitions (a billing client adds to thousands of
counters), and `fsync=always` must make all of it durable before acknowledging. With
one log that costs one write and one fsync per group commit; with 256 partition files
it would cost up to 256 fsyncs. Each frame still belongs to exactly one partition and
carries that partition's offsets, so every partition keeps its own ordered log; the
engine indexes frames by (partition, offset) to read them back.

Group commit: `append()` only queues a frame (no I/O, no await), so every concurrent
request appends in turn; the flusher task then writes everything queued with one
write() and, under `always`, one fsync in a worker thread, during which the next group
queues up. `wait(seq)` resolves when frame `seq` is durable per the policy:

    always    written and fsynced
    interval  written (the OS has it: survives a process crash); fsynced within
              fsync_interval_ms (bounds loss on power failure)
    never     written; the OS decides when it reaches the disk

A failed write or fsync is final (after a failed fsync the page cache can no longer be
trusted): the log fails, pending and later waits raise Internal, and the node stops
accepting writes rather than acknowledge what may be lost.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from fero.errors import Internal, ResourceExhausted
from fero.log import frame, segment

#: Buffers per writev: IOV_MAX (a writev of more fails with EINVAL; Linux: 1024).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 16

log = structlog.get_logger("fero.log")

FSYNC_POLICIES = ("always", "interval", "never")


@dataclass(frozen=True, slots=True)
class Location:
    seq: int       # appended frames so far, this one included (for wait())
    segment: int
    position: int  # byte offset of the frame in its segment


@dataclass(frozen=True, slots=True)
class WalStatistics:
    segments: int
    bytes: int
    appended_frames: int
    durable_frames: int
    fsyncs: int
    last_fsync_ms: float
    failed: str


class Wal:
    def __init__(
        self,
        directory: Path,
        fsync: str = "always",
        fsync_interval_ms: int = 100,
        segment_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {FSYNC_POLICIES}, not {fsync!r}")
        self.directory = directory
        self.fsync_policy = fsync
        self.fsync_interval_ms = fsync_interval_ms
        self.segment_bytes = segment_bytes
        self._sizes: dict[int, int] = {}
        self._segment = 0
        self._tail = len(segment.MAGIC)
        self._fd = -1
        self._written_segment = -1
        #: Frames to write: (segment, header, body); header and body go to writev as
        #: they are, never joined (a request's frames are a megabyte).
        self._buffer: list[tuple[int, bytes, bytes]] = []
        #: The flush loop holds a batch it has not finished writing (it may be rolling
        #: a segment): nothing else may write until it has.
        self._writing = False
        self._appended = 0
        self._durable = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        #: The callback that wakes the flush loop at the end of this round (see append).
        self._kick: asyncio.Handle | None = None
        self._fd_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = False
        self._read_fds: dict[int, int] = {}
        self.failed: BaseException | None = None
        self._fsyncs = 0
        self._last_fsync_ms = 0.0
        self._closed = False

    # -- opening and recovery -------------------------------------------------------

    def recover(self, start_segment: int = 0, start_position: int = 0) -> list[tuple[int, int, bytes]]:
        """Validates every segment, truncates a torn tail, and returns the frames from
        (start_segment, start_position) on as (segment, position, body). Raises
        segment.SegmentDamaged if a frame before the tail is bad."""
        self.directory.mkdir(parents=True, exist_ok=True)
        ids = segment.list_ids(self.directory)
        frames: list[tuple[int, int, bytes]] = []
        for i, sid in enumerate(ids):
            recovered, seg_frames = segment.recover(self.directory, sid, newest=i == len(ids) - 1)
            if recovered.truncated_bytes:
                log.warning("log.torn_tail_truncated", segment=sid, at=recovered.size, dropped_bytes=recovered.truncated_bytes)
            self._sizes[sid] = recovered.size
            if sid < start_segment:
                continue
            for pos, body in seg_frames:
                if sid > start_segment or pos >= start_position:
                    frames.append((sid, pos, body))
        if ids:
            self._segment = ids[-1]
            self._tail = self._sizes[ids[-1]]
        else:
            self._segment = max(start_segment, 0)
            self._tail = len(segment.MAGIC)
        return frames

    def start(self) -> None:
        """Opens the newest segment for appending and starts the flusher."""
        self._fd = segment.create(self.directory, self._segment)
        self._written_segment = self._segment
        self._sizes.setdefault(self._segment, len(segment.MAGIC))
        self._wakeup = asyncio.Event()
        self._kick = None
        self._fd_lock = asyncio.Lock()
        self._tasks.append(asyncio.get_running_loop().create_task(self._flush_loop(), name="wal-flush"))
        if self.fsync_policy == "interval":
            self._tasks.append(asyncio.get_running_loop().create_task(self._interval_loop(), name="wal-fsync"))

    async def close(self) -> None:
        """Flushes what is queued, fsyncs, and closes."""
        if self._closed:
            return
        if self.failed is None and self._appended > self._durable:
            try:
                await self.wait(self._appended)
            except Internal:
                pass
        self._closed = True
        if self._kick is not None:
            self._kick.cancel()
            self._kick = None
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        if self._fd >= 0:
            if self.failed is None:
                try:
                    os.fsync(self._fd)
                except OSError:
                    pass
            os.close(self._fd)
            self._fd = -1
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()

    # -- writing --------------------------------------------------------------------

    @property
    def end(self) -> tuple[int, int]:
        """(segment, position) just past the last appended frame."""
        return self._segment, self._tail

    def append(self, body: bytes) -> Location:
        """Queues a frame; no I/O. Raises Internal if the log has failed, and
        ResourceExhausted for a body larger than a frame may be (frame.MAX_BODY_BYTES):
        recovery would read it as a torn write and cut the log there."""
        if self.failed is not None:
            raise Internal(f"the log failed and takes no more writes: {self.failed}")
        if len(body) > frame.MAX_BODY_BYTES:
            raise ResourceExhausted(f"a log frame of {len(body)} bytes; at most {frame.MAX_BODY_BYTES}")
        header = frame.header(body)
        size = len(header) + len(body)
        if self._tail + size > self.segment_bytes and self._tail > len(segment.MAGIC):
            self._segment += 1
            self._tail = len(segment.MAGIC)
            self._sizes[self._segment] = self._tail
        loc = Location(self._appended + 1, self._segment, self._tail)
        self._buffer.append((self._segment, header, body))
        self._tail += size
        self._sizes[self._segment] = self._tail
        self._appended += 1
        assert self._wakeup is not None, "Wal.start() was not called"
        if self.fsync_policy == "always":
            self._wakeup.set()
        elif self._kick is None:
            # Without an fsync per write, whoever waits for a frame writes it in its own
            # step (wait → _write_now), nearly always the appender, at once. Waking the
            # flush loop for every frame cost a task step each commit (on the owner and
            # on every replica) that then found nothing to write; a callback at the end
            # of the round wakes it only for what nobody wrote.
            self._kick = asyncio.get_running_loop().call_soon(self._kick_flush)
        return loc

    def _kick_flush(self) -> None:
        self._kick = None
        if self._buffer and self._wakeup is not None:
            self._wakeup.set()

    @property
    def appended(self) -> int:
        return self._appended

    @property
    def durable(self) -> int:
        return self._durable

    async def wait(self, seq: int) -> None:
        """Returns once frame `seq` is durable per the fsync policy; Internal if the log
        failed first."""
        if self._durable >= seq or self._write_now():
            return
        if self.failed is not None:
            raise Internal(f"the log failed: {self.failed}")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, fut))
        await fut

    async def sync(self) -> None:
        """Waits for everything appended so far and fsyncs it, whatever the policy."""
        await self.wait(self._appended)
        if self.failed is None:
            await self._fsync_current()

    def _write_now(self) -> bool:
        """Without fsync per write, the caller writes what is queued itself, in its own
        step, rather than wait for the flush loop to be scheduled: one small write
        costs less than the two task switches it saves. Only when that needs no fsync
        and no new segment, and the loop is not mid-batch (order). True if `seq`s up
        to `appended` are now durable."""
        if (self.fsync_policy == "always" or self._writing or self.failed is not None or not self._buffer
                or self._fd < 0 or any(sid != self._written_segment for sid, _, _ in self._buffer)):
            return False
        batch, self._buffer = self._buffer, []
        upto = self._appended
        try:
            self._write_all([chunk for _, header, body in batch for chunk in (header, body)])
        except OSError as exc:
            self._fail(exc)
            return False
        self._dirty = True
        self._durable = upto
        self._release()
        return True

    async def _flush_loop(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._buffer and self.failed is None:
                batch, self._buffer = self._buffer, []
                upto = self._appended
                self._writing = True
                try:
                    await self._write(batch)
                    if self.fsync_policy == "always":
                        await self._fsync_current()
                    else:
                        self._dirty = True
                except OSError as exc:
                    self._fail(exc)
                    return
                finally:
                    self._writing = False
                self._durable = upto
                self._release()

    async def _write(self, batch: list[tuple[int, bytes, bytes]]) -> None:
        run: list[bytes] = []
        run_segment = batch[0][0]
        for sid, header, body in batch:
            if sid != run_segment:
                self._write_all(run)
                await self._roll(sid)
                run, run_segment = [], sid
            run.append(header)
            run.append(body)
        if run_segment != self._written_segment:
            await self._roll(run_segment)
        self._write_all(run)

    def _write_all(self, chunks: list[bytes]) -> None:
        pending: list[bytes | memoryview] = list(chunks)
        while pending:
            group = pending[:_IOV_MAX]
            n = wrote = os.writev(self._fd, group)
            # A write may take less than it is given (a signal, a full disk, Linux's
            # 2 GB a call): what it took is skipped, and the rest goes in the next one.
            k = 0
            while k < len(group) and n >= len(group[k]):
                n -= len(group[k])
                k += 1
            if not wrote and k < len(group):
                raise OSError(errno.EIO, "a write to the log made no progress")
            pending = pending[k:]
            if n:
                pending[0] = memoryview(pending[0])[n:]

    async def _roll(self, new_segment: int) -> None:
        # The finished segment is fsynced whatever the policy, so that only the newest
        # segment can ever have a torn tail; recovery relies on that.
        async with self._fd_lock:
            await self._fsync(self._fd)
            os.close(self._fd)
            self._fd = segment.create(self.directory, new_segment)
            self._written_segment = new_segment

    async def _fsync_current(self) -> None:
        """fsyncs the segment being written. Under the lock a roll takes: an fsync of a
        descriptor that a roll closes meanwhile fails (EBADF), and fails the log."""
        async with self._fd_lock:
            if self._fd >= 0:
                await self._fsync(self._fd)

    async def _fsync(self, fd: int) -> None:
        t0 = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, os.fsync, fd)
        self._fsyncs += 1
        self._last_fsync_ms = (time.perf_counter() - t0) * 1000

    async def _interval_loop(self) -> None:
        while True:
            await asyncio.sleep(self.fsync_interval_ms / 1000)
            if self._dirty and self.failed is None and self._fd >= 0:
                self._dirty = False
                try:
                    await self._fsync_current()
                except OSError as exc:
                    self._fail(exc)
                    return

    def _release(self) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= self._durable:
            _, fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self.failed = exc
        log.error("log.failed", error=str(exc), directory=str(self.directory))
        err = Internal(f"the log failed: {exc}")
        while self._waiters:
            _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(err)

    # -- reading and retention ------------------------------------------------------

    def read(self, segment_id: int, position: int) -> bytes:
        """The body of the durable frame at (segment_id, position)."""
        fd = self._read_fds.get(segment_id)
        if fd is None:
            fd = os.open(segment.path_for(self.directory, segment_id), os.O_RDONLY)
            self._read_fds[segment_id] = fd
        header = os.pread(fd, frame.HEADER_SIZE, position)
        length, _ = frame.HEADER.unpack(header)
        data = header + os.pread(fd, length, position + frame.HEADER_SIZE)
        body, _ = frame.decode_at(data, 0)
        return body

    def segments(self) -> list[int]:
        return sorted(self._sizes)

    def segment_size(self, segment_id: int) -> int:
        return self._sizes.get(segment_id, 0)

    def last_written(self, segment_id: int) -> float:
        """When the segment was last written (its file's mtime); 0 if it is gone."""
        try:
            return segment.path_for(self.directory, segment_id).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def drop_segments_before(self, segment_id: int) -> list[int]:
        """Deletes whole segments older than `segment_id` (never the one being written)."""
        dropped = []
        for sid in sorted(self._sizes):
            if sid >= segment_id or sid >= self._written_segment:
                break
            fd = self._read_fds.pop(sid, None)
            if fd is not None:
                os.close(fd)
            try:
                segment.path_for(self.directory, sid).unlink()
            except FileNotFoundError:
                pass
            del self._sizes[sid]
            dropped.append(sid)
        return dropped

    def statistics(self) -> WalStatistics:
        return WalStatistics(
            segments=len(self._sizes),
            bytes=sum(self._sizes.values()),
            appended_frames=self._appended,
            durable_frames=self._durable,
            fsyncs=self._fsyncs,
            last_fsync_ms=self._last_fsync_ms,
            failed=str(self.failed or ""),
        )
