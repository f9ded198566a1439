"""The log's interface kept in memory: for tests and `fero serve --memory`.

Frames are durable as soon as they are appended (there is nothing to wait for) and
are lost with the process. Positions are frame numbers within a single segment 0.
"""

from __future__ import annotations

from pathlib import Path

from fero.log.wal import Location, WalStatistics


class MemoryWal:
    fsync_policy = "never"

    def __init__(self) -> None:
        self._frames: dict[int, bytes] = {}
        self._appended = 0
        #: Bytes of every frame, kept as they come: a metrics scrape asks
        #: (statistics), and a sum over the frames cost 26 ms at a million.
        self._bytes = 0
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
        return 0, self._appended

    def append(self, body: bytes) -> Location:
        self._appended += 1
        self._frames[self._appended] = body
        self._bytes += len(body)
        return Location(self._appended, 0, self._appended)

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
        return [0]

    def segment_size(self, segment_id: int) -> int:
        return self._bytes

    def drop_segments_before(self, segment_id: int) -> list[int]:
        return []

    def statistics(self) -> WalStatistics:
        return WalStatistics(1, self.segment_size(0), self._appended, self._appended, 0, 0.0, "")
