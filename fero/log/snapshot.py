"""Snapshots of the materialised state, so that restart replays only the log after them.

A snapshot file is one CRC'd frame holding a `fero.v1.Snapshot`, written to a temporary
name, fsynced, renamed into place and the directory fsynced: it is either all there or
not there. Loading takes the newest snapshot that checks out and falls back to an older
one if the newest is damaged; the log segments a kept snapshot needs are never deleted.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from fero.log import frame
from fero.v1 import storage_pb2

log = structlog.get_logger("fero.snapshot")

PREFIX, SUFFIX = "snapshot-", ".snap"
#: How many snapshots to keep: the newest, and one to fall back to if it is damaged.
KEEP = 2


def _name(segment_id: int, position: int) -> str:
    return f"{PREFIX}{segment_id:020d}-{position:012d}{SUFFIX}"


def _listed(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX))


def write(directory: Path, snap: storage_pb2.Snapshot) -> Path:
    """Writes `snap` atomically and prunes old snapshots; returns its path. Blocking:
    call it from a worker thread."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / _name(snap.segment, snap.position)
    tmp = final.with_suffix(".tmp")
    data = frame.encode(snap.SerializeToString())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_dir(directory)
    for old in _listed(directory)[:-KEEP]:
        old.unlink(missing_ok=True)
    return final


def load_latest(directory: Path) -> storage_pb2.Snapshot | None:
    """The newest intact snapshot, or None."""
    for p in reversed(_listed(directory)):
        try:
            body, _ = frame.decode_at(p.read_bytes(), 0)
            snap = storage_pb2.Snapshot()
            snap.ParseFromString(body)
            return snap
        except (frame.Corrupt, OSError, ValueError) as exc:
            log.warning("snapshot.damaged", path=str(p), error=str(exc))
    return None


def oldest_needed(directory: Path) -> tuple[int, int] | None:
    """(segment, position) of the oldest kept snapshot: log before it may be dropped."""
    kept = _listed(directory)
    if not kept:
        return None
    seg, pos = kept[0].name[len(PREFIX) : -len(SUFFIX)].split("-")
    return int(seg), int(pos)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
