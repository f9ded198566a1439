"""The log's interface kept in memory: for tests and `fero serve --memory`.

Frames are durable as soon as they are appended (there is nothing to wait for) and
are lost with the process. A position is a frame's number (1, 2, ...). Frames go in
segments, as on disk, each closed at `segment_bytes`, so that retention can drop the
oldest whole (fero.engine applies it): a node in memory kept every frame it ever
wrote, and grew with every write for as long as it ran.
"""

from __future__ import annotations

import time
from pathlib import Path

from fero.log.wal import Location, WalStatistics


#: What keeping one frame costs in memory beyond its body, charged to its segment so
#: that `segment_bytes` and `retention_bytes` measure memory, not only bodies: the
#: bytes object's header (33), this log's dict entry and key (about 60), and the
#: engine's index entry for the frame, a named tuple with its ints (about 115), which
#: lives as long as the frame. Measured with tracemalloc on CPython 3.11, 64-bit
#: (tests/test_wal.py checks it): a single-record frame's body is 76 bytes, and it
#: cost 289 in all. Counting bodies only, a node in memory held about four times the
#: memory retention allowed.
FRAME_OVERHEAD = 210


class MemoryWal:
    fsync_policy = "never"

    def __init__(self, segment_bytes: int = 64 << 20) -> None:
        self.segment_bytes = segment_bytes
        self._frames: dict[int, bytes] = {}
        self._appended = 0
        #: Bytes of every frame kept, counted as they come and go: a metrics scrape
        #: asks (statistics), and a sum over the frames cost 26 ms at a million.
        self._bytes = 0
        #: Each segment by id, the number of its first frame, in order: [bytes, time
        #: of its last append (what a file's mtime is)].
        self._segments: dict[int, list[float]] = {}
        self._current = 0
        self.failed: BaseException | None = None
        self.directory = Path("memory")

    def recover(self, start_segment: int = 0, start_position: int = 0) -> list[tuple[int, int, bytes]]:
        return []

    def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    @property
    def end(self) -> tuple[int, int]:
        return self._current, self._appended

    def append(self, body: bytes) -> Location:
        self._appended += 1
        n = self._appended
        self._frames[n] = body
        size = len(body) + FRAME_OVERHEAD
        self._bytes += size
        seg = self._segments.get(self._current)
        if seg is None or seg[0] >= self.segment_bytes:
            self._current = n
            seg = self._segments[n] = [0, 0.0]
        seg[0] += size
        seg[1] = time.time()
        return Location(n, self._current, n)

    @property
    def appended(self) -> int:
        return self._appended

    @property
    def durable(self) -> int:
        return self._appended

    async def wait(self, seq: int) -> None:
        return None

    async def sync(self) -> None:
        return None

    def read(self, segment_id: int, position: int) -> bytes:
        return self._frames[position]

    def segments(self) -> list[int]:
        return list(self._segments)

    def segment_size(self, segment_id: int) -> int:
        seg = self._segments.get(segment_id)
        return 0 if seg is None else int(seg[0])

    def last_written(self, segment_id: int) -> float:
        """When a frame was last appended to the segment (time.time())."""
        seg = self._segments.get(segment_id)
        return 0.0 if seg is None else seg[1]

    def drop_segments_before(self, segment_id: int) -> list[int]:
        """Drops whole segments older than `segment_id` (never the one being written)."""
        dropped = []
        ids = list(self._segments)
        for sid, following in zip(ids, ids[1:] + [self._appended + 1]):
            if sid >= segment_id or sid >= self._current:
                break
            for n in range(sid, following):
                del self._frames[n]
            self._bytes -= int(self._segments.pop(sid)[0])
            dropped.append(sid)
        return dropped

    def statistics(self) -> WalStatistics:
        return WalStatistics(len(self._segments), self._bytes, self._appended, self._appended, 0, 0.0, "")
