"""One segment file of the log: an 8-byte magic, then frames, appended only.

`recover()` reads a segment back. A bad frame at the tail of the newest segment is a
write torn by a crash, and is truncated away: it was never acknowledged, because a
batch is acknowledged only after its frame is written whole. A bad frame anywhere else
is damage to acknowledged data, and recovery refuses to guess (SegmentDamaged).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from fero.log import frame

MAGIC = b"FEROLOG1"
SUFFIX = ".seg"


class SegmentDamaged(Exception):
    pass


def path_for(directory: Path, segment_id: int) -> Path:
    return directory / f"{segment_id:020d}{SUFFIX}"


def list_ids(directory: Path) -> list[int]:
    ids = []
    for p in directory.iterdir():
        if p.suffix == SUFFIX and p.stem.isdigit():
            ids.append(int(p.stem))
    return sorted(ids)


@dataclass(frozen=True)
class Recovered:
    segment_id: int
    size: int  # valid bytes; the file was truncated to this if it had a torn tail
    truncated_bytes: int


def create(directory: Path, segment_id: int) -> int:
    """Creates an empty segment and returns an fd open for appending."""
    p = path_for(directory, segment_id)
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    if os.fstat(fd).st_size == 0:
        os.write(fd, MAGIC)
    return fd


def read_all(directory: Path, segment_id: int) -> bytes:
    with open(path_for(directory, segment_id), "rb") as f:
        return f.read()


def recover(directory: Path, segment_id: int, newest: bool) -> tuple[Recovered, list[tuple[int, bytes]]]:
    """Validates a segment; returns what survived and its frames as (position, body).

    Truncates a torn tail if `newest`; raises SegmentDamaged otherwise.
    """
    p = path_for(directory, segment_id)
    data = read_all(directory, segment_id)
    if len(data) < len(MAGIC):
        if not newest:
            raise SegmentDamaged(f"{p}: shorter than its header")
        _truncate(p, 0)
        with open(p, "ab") as f:
            f.write(MAGIC)
        return Recovered(segment_id, len(MAGIC), len(data)), []
    if data[: len(MAGIC)] != MAGIC:
        raise SegmentDamaged(f"{p}: not a fero segment (bad magic)")
    frames: list[tuple[int, bytes]] = []
    position = len(MAGIC)
    try:
        for pos, body in frame.scan(data, position):
            frames.append((pos, body))
            position = pos + frame.HEADER_SIZE + len(body)
    except frame.Corrupt as exc:
        if not newest:
            raise SegmentDamaged(f"{p}: {exc}; this segment is not the newest, so this is not a torn write") from exc
        _truncate(p, exc.position)
        return Recovered(segment_id, exc.position, len(data) - exc.position), frames
    return Recovered(segment_id, position, 0), frames


def iter_frames(directory: Path, segment_id: int, start: int) -> Iterator[tuple[int, bytes]]:
    data = read_all(directory, segment_id)
    yield from frame.scan(data, max(start, len(MAGIC)))


def _truncate(p: Path, size: int) -> None:
    with open(p, "r+b") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())
