"""Framing of log records: `u32 length | u32 crc32(body) | body`, big-endian.

A frame is the unit of atomicity on disk: a torn or corrupted frame is detected by its
length running past the end of the file or by its CRC, and is dropped whole. Each frame
holds one committed batch of one partition (a `fero.v1.LogEntry`), which is acknowledged
whole, so nothing acknowledged is ever half in a frame.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO, Iterator, Sequence

HEADER = struct.Struct(">II")
HEADER_SIZE = HEADER.size
#: Largest frame body accepted on read; anything larger is treated as corruption.
MAX_BODY_BYTES = 256 * 1024 * 1024


def header(body: bytes) -> bytes:
    """The header of `body`'s frame; write it and then `body`, with no copy of the two
    joined (snapshot partitions are tens of MB)."""
    return header_of((body,))


def header_of(parts: Sequence[bytes]) -> bytes:
    """The header of the frame whose body is `parts` one after the other, not joined."""
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return HEADER.pack(sum(map(len, parts)), crc)


def encode(body: bytes) -> bytes:
    return header(body) + body


class Corrupt(Exception):
    """A frame whose length or CRC does not check out, at byte `position`."""

    def __init__(self, position: int, why: str) -> None:
        super().__init__(f"corrupt frame at byte {position}: {why}")
        self.position = position
        self.why = why


def _header(buf: bytes | memoryview, offset: int, position: int) -> tuple[int, int]:
    """(length, crc) of the frame header at buf[offset:], the frame being at byte
    `position` of its file."""
    if offset + HEADER_SIZE > len(buf):
        raise Corrupt(position, "header cut short")
    length, crc = HEADER.unpack_from(buf, offset)
    if length > MAX_BODY_BYTES:
        raise Corrupt(position, f"length {length} is implausible")
    return length, crc


def _checked(body: bytes, length: int, crc: int, position: int) -> bytes:
    """`body` as read for a header of (length, crc), if it is whole and checks out."""
    if len(body) < length:
        raise Corrupt(position, f"body of {length} bytes cut short at {len(body)}")
    if zlib.crc32(body) != crc:
        raise Corrupt(position, "CRC mismatch")
    return body


def decode_at(buf: bytes | memoryview, position: int) -> tuple[bytes, int]:
    """The body of the frame at `position` and the position after it; Corrupt if the
    frame is torn (runs past the buffer) or its CRC does not match."""
    length, crc = _header(buf, position, position)
    start = position + HEADER_SIZE
    return _checked(bytes(buf[start : start + length]), length, crc, position), start + length


def scan(buf: bytes | memoryview, position: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yields (position, body) for each valid frame from `position`; stops at the end of
    the buffer and raises Corrupt at the first bad frame."""
    end = len(buf)
    while position < end:
        body, nxt = decode_at(buf, position)
        yield position, body
        position = nxt


def read(f: BinaryIO, position: int) -> bytes | None:
    """The body of the frame at the file's current offset, `position` (read one frame at
    a time, never the whole file); None at the end of the file. Corrupt as decode_at."""
    header = f.read(HEADER_SIZE)
    if not header:
        return None
    length, crc = _header(header, 0, position)
    return _checked(f.read(length), length, crc, position)
