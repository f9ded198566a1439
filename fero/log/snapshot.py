"""Snapshots of the materialised state, so that restart replays only the log after them.

A snapshot file is a CRC'd frame holding a `fero.v1.Snapshot` without its partition
states, then one frame per `PartitionSnapshot`, as many as the first frame says. It is
written to a temporary name, fsynced, renamed into place and the directory fsynced: it
is either all there or not there (what a crash leaves under the temporary name goes
with the next snapshot). Loading takes the newest snapshot that checks out and
falls back to an older one if the newest is damaged; the log segments a kept snapshot
needs are never deleted.

A frame per partition, not one for the whole state, because:
- a frame is at most frame.MAX_BODY_BYTES (256 MB), so one frame could not hold a
  state of a few million documents, and a snapshot that cannot be read lets retention
  drop log that no readable snapshot covers;
- serialising a large message holds the GIL throughout (about 0.3 s per million
  documents here), stalling the event loop; a partition at a time yields between them;
- no buffer of the whole state is built, then copied again to frame it.

Files of the first format (`.snap`: one frame of the whole Snapshot) still load, and
so do `.snap2` files (written before PartitionSnapshot.runs); new ones are `.snap3`.
An older fero does not list the newer suffixes (a `.snap2` reader, which ignores
`runs`, would lose those documents). Not listing them, it would replay the log from
its start, which retention may have dropped, and come up without that state,
silently. So beside the first new-format snapshot go DOWNGRADE_MARKERS: a snapshot of
a state of 0 partitions in each older format, named newest, which an older fero loads
first and refuses to start with ("the data directory was created with 0 partitions").
(A `.snap2` reader passes over the first-format marker, so it needs its own.)
"""

from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Sequence

import structlog
from google.protobuf.message import DecodeError, EncodeError

from fero.log import frame
from fero.v1 import storage_pb2

log = structlog.get_logger("fero.snapshot")

PREFIX = "snapshot-"
SUFFIX, SUFFIX_V1 = ".snap3", ".snap"
DOWNGRADE_MARKER = f"{PREFIX}{'9' * 20}-{'9' * 12}{SUFFIX_V1}"
DOWNGRADE_MARKERS = (DOWNGRADE_MARKER, f"{PREFIX}{'9' * 20}-{'9' * 12}.snap2")
#: How many snapshots to keep: the newest, and one to fall back to if it is damaged.
KEEP = 2

Loaded = tuple[storage_pb2.Snapshot, Sequence[storage_pb2.PartitionSnapshot]]


def _name(segment_id: int, position: int) -> str:
    return f"{PREFIX}{segment_id:020d}-{position:012d}{SUFFIX}"


_NAME = re.compile(r"snapshot-([0-9]{20})-([0-9]{12})\.snap[23]?")
#: What a write that did not finish (a crash) leaves: _atomically's temporary names.
_LEFTOVER = re.compile(r"snapshot-[0-9]{20}-[0-9]{12}\.tmp")


def _position(p: Path) -> tuple[int, int] | None:
    """(segment, position) a snapshot file's name says; None for other files (and for
    the marker older fero versions stop at)."""
    m = _NAME.fullmatch(p.name)
    if m is None or p.name in DOWNGRADE_MARKERS:
        return None
    return int(m[1]), int(m[2])


def _listed(directory: Path) -> list[Path]:
    """Snapshot files of any format, oldest first."""
    if not directory.exists():
        return []
    found = [(at, p) for p in directory.iterdir() if (at := _position(p)) is not None]
    return [p for _, p in sorted(found)]


State = storage_pb2.PartitionSnapshot | tuple[storage_pb2.PartitionSnapshot, Sequence[bytes]]


def write(directory: Path, head: storage_pb2.Snapshot, states: Iterable[State]) -> Path:
    """Writes a snapshot atomically and prunes old snapshots; returns its path. `head`
    has no partition states and says how many `states` gives (each is serialised as it
    comes, so a caller may build them as they are taken); a state may come with
    serialised fields to append to it (PartitionSnapshot.runs). Blocking: call it from
    a worker thread. OSError (EFBIG) if a partition's state is larger than a frame may
    be: nothing is written then, and the snapshots there are kept."""
    if len(head.partition_states):
        raise ValueError("the partition states go in `states`, not in `head`")
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / _name(head.segment, head.position)
    written = 0
    with _atomically(final) as f:
        f.write(frame.encode(head.SerializeToString()))
        for state in states:
            ps, tail = state if isinstance(state, tuple) else (state, ())
            # Serialised once and measured after: upb's ByteSize() serialises the whole
            # message too, which made a snapshot cost twice what it has to.
            try:
                parts = [ps.SerializeToString(), *tail]  # written one after the other, not joined
            except EncodeError:  # past 2 GB, where protobuf messages end (or out of memory)
                parts = None
            size = sum(map(len, parts)) if parts is not None else 0
            if parts is None or size > frame.MAX_BODY_BYTES:
                why = "could not be serialised (over 2 GB?)" if parts is None else f"is {size} bytes"
                raise OSError(errno.EFBIG, f"partition {ps.partition}'s state {why}, "
                              f"more than a snapshot frame holds ({frame.MAX_BODY_BYTES})")
            f.write(frame.header_of(parts))
            for part in parts:
                f.write(part)
            written += 1
        if written != head.partition_frames:
            raise ValueError(f"{written} partition states for a head that says {head.partition_frames}")
        _mark(directory)  # before the first new-format snapshot is in place
    for old in _listed(directory)[:-KEEP]:
        old.unlink(missing_ok=True)
    # One writer at a time (the engine's snapshot lock, the data directory's lock), so
    # any temporary file here now is from a write a crash cut: as large as a snapshot.
    for p in directory.iterdir():
        if _LEFTOVER.fullmatch(p.name):
            p.unlink(missing_ok=True)
    return final


@contextmanager
def _atomically(path: Path) -> Iterator[BinaryIO]:
    """A file to write `path` with: written under a temporary name, fsynced, renamed
    into place and the directory fsynced; removed instead if the writer raises."""
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _mark(directory: Path) -> None:
    """Puts DOWNGRADE_MARKERS in place (durably) unless they are there: in either older
    format, a snapshot of 0 partitions (the second format's has no partition frames)."""
    empty = frame.encode(storage_pb2.Snapshot(partitions=0, partition_frames=0).SerializeToString())
    for name in DOWNGRADE_MARKERS:
        marker = directory / name
        if not marker.exists():
            with _atomically(marker) as f:
                f.write(empty)


def _load(p: Path) -> Loaded:
    """The snapshot in file `p`: its Snapshot (without partition states, but for the
    first format) and its partition states. frame.Corrupt or DecodeError if damaged."""
    with open(p, "rb") as f:
        body = frame.read(f, 0)
        if body is None:
            raise frame.Corrupt(0, "empty file")
        snap = storage_pb2.Snapshot.FromString(body)
        if p.name.endswith(SUFFIX_V1):
            parts: Sequence[storage_pb2.PartitionSnapshot] = snap.partition_states
        else:
            parts = []
            while (body := frame.read(f, f.tell())) is not None:
                parts.append(storage_pb2.PartitionSnapshot.FromString(body))
            if len(parts) != snap.partition_frames:
                # Frames are whole (CRC'd), so a file cut at a frame boundary shows only here.
                raise frame.Corrupt(f.tell(), f"{len(parts)} partition frames of {snap.partition_frames}")
    return snap, parts


def load_latest(directory: Path) -> Loaded | None:
    """The newest intact snapshot, or None."""
    for p in reversed(_listed(directory)):
        try:
            return _load(p)
        except (frame.Corrupt, OSError, DecodeError) as exc:
            log.warning("snapshot.damaged", path=str(p), error=str(exc))
    return None


def oldest_needed(directory: Path) -> tuple[int, int] | None:
    """(segment, position) of the oldest kept snapshot: log before it may be dropped."""
    kept = _listed(directory)
    return _position(kept[0]) if kept else None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
