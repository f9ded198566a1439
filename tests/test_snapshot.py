"""Snapshot files (fero.log.snapshot): a frame per partition, so that a state larger
than a frame may be still loads; damage falls back to an older snapshot; files of the
first format (one frame) still load."""

from __future__ import annotations

import asyncio
import dataclasses
import errno

import pytest

from fero.clock import ManualClock
from fero.config import Config, StorageConfig
from fero.engine import Engine
from fero.log import frame, segment
from fero.log import snapshot as snapshots
from fero.v1 import storage_pb2, types_pb2


def _snap(segment_id: int, position: int, partitions: int = 8, docs: int = 3, value: bytes = b'"v"') -> storage_pb2.Snapshot:
    snap = storage_pb2.Snapshot(partitions=partitions, segment=segment_id, position=position, hlc=1000 + position)
    for p in range(partitions):
        ps = snap.partition_states.add(partition=p, epoch=2, next_offset=10 * p + docs)
        ps.key_columns.keys.extend(f"k{p}-{i}" for i in range(docs))
        ps.key_columns.values.extend([value] * docs)
        ps.key_columns.hlcs.extend(range(docs))
        ps.key_columns.origins.extend(["n1"] * docs)
    return snap


def _write(directory, snap: storage_pb2.Snapshot):
    head = storage_pb2.Snapshot(partitions=snap.partitions, segment=snap.segment, position=snap.position,
                                hlc=snap.hlc, partition_frames=len(snap.partition_states))
    return snapshots.write(directory, head, iter(snap.partition_states))


def _as_loaded(snap: storage_pb2.Snapshot) -> tuple[tuple[int, int, int, int], list[storage_pb2.PartitionSnapshot]]:
    return (snap.partitions, snap.segment, snap.position, snap.hlc), list(snap.partition_states)


def _loaded(directory) -> tuple[tuple[int, int, int, int], list[storage_pb2.PartitionSnapshot]] | None:
    got = snapshots.load_latest(directory)
    if got is None:
        return None
    head, states = got
    return (head.partitions, head.segment, head.position, head.hlc), list(states)


def _write_first_format(directory, snap: storage_pb2.Snapshot) -> None:
    """A snapshot as fero wrote them before partition frames: one frame, `.snap`."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"snapshot-{snap.segment:020d}-{snap.position:012d}.snap"
    (directory / name).write_bytes(frame.encode(snap.SerializeToString()))


def test_round_trip_of_header_and_every_partition_state(tmp_path):
    snap = _snap(3, 4096, partitions=5)
    path = _write(tmp_path, snap)
    assert path.name.endswith(".snap2")
    assert _loaded(tmp_path) == _as_loaded(snap)


def test_a_state_larger_than_a_frame_loads_when_each_partition_fits(tmp_path, monkeypatch):
    snap = _snap(1, 0, partitions=8, docs=50, value=b'"' + b"x" * 200 + b'"')
    assert snap.ByteSize() > 64 * 1024
    monkeypatch.setattr(frame, "MAX_BODY_BYTES", 64 * 1024)
    _write(tmp_path, snap)
    assert _loaded(tmp_path) == _as_loaded(snap)


def test_a_partition_larger_than_a_frame_is_refused_and_the_last_snapshot_kept(tmp_path, monkeypatch):
    good = _snap(1, 0)
    _write(tmp_path, good)
    big = _snap(2, 0, docs=400, value=b'"' + b"x" * 200 + b'"')
    monkeypatch.setattr(frame, "MAX_BODY_BYTES", 64 * 1024)
    with pytest.raises(OSError) as err:
        _write(tmp_path, big)
    assert err.value.errno == errno.EFBIG and "partition 0" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot-00000000000000000001-000000000000.snap2"]
    assert _loaded(tmp_path) == _as_loaded(good)


def test_a_head_that_miscounts_its_states_writes_nothing(tmp_path):
    snap = _snap(1, 0, partitions=3)
    head = storage_pb2.Snapshot(partitions=3, segment=1, position=0, partition_frames=4)
    with pytest.raises(ValueError, match="3 partition states for a head that says 4"):
        snapshots.write(tmp_path, head, snap.partition_states)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["last partition frame missing", "byte flipped in a partition frame", "empty file"])
def test_a_damaged_newest_snapshot_falls_back_to_the_one_before(tmp_path, damage):
    older, newer = _snap(1, 0), _snap(2, 0)
    _write(tmp_path, older)
    path = _write(tmp_path, newer)
    data = path.read_bytes()
    if damage == "last partition frame missing":
        # Cut at a frame boundary: every frame left checks out, only the count shows it.
        last = newer.partition_states[-1].ByteSize() + frame.HEADER_SIZE
        path.write_bytes(data[:-last])
    elif damage == "byte flipped in a partition frame":
        i = len(data) - 5
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1:])
    else:
        path.write_bytes(b"")
    assert _loaded(tmp_path) == _as_loaded(older)


def test_first_format_files_load_and_the_newest_of_either_format_wins(tmp_path):
    v1 = _snap(5, 100)
    _write_first_format(tmp_path, v1)
    assert _loaded(tmp_path) == _as_loaded(v1)
    older_v2 = _snap(4, 999_999)
    _write(tmp_path, older_v2)  # an older position, though a newer format
    assert _loaded(tmp_path) == _as_loaded(v1)
    newer_v2 = _snap(5, 200)
    _write(tmp_path, newer_v2)
    assert _loaded(tmp_path) == _as_loaded(newer_v2)
    # KEEP newest of either format stay; the oldest is what retention must keep log for.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "snapshot-00000000000000000005-000000000100.snap",
        "snapshot-00000000000000000005-000000000200.snap2",
    ]
    assert snapshots.oldest_needed(tmp_path) == (5, 100)


def test_a_restart_after_retention_has_every_document_of_a_state_larger_than_a_frame(tmp_path, monkeypatch):
    """Before partition frames, a snapshot over the frame limit was written but could not
    be read back: restart then replayed from the log's start, which retention had dropped,
    and came up without the documents."""
    monkeypatch.setattr(frame, "MAX_BODY_BYTES", 64 * 1024)
    cfg = Config(storage=dataclasses.replace(StorageConfig(), segment_bytes=16 * 1024, retention_s=0, retention_bytes=0)).validate()
    value = b'"' + b"y" * 300 + b'"'
    keys = [f"doc{i}" for i in range(600)]

    async def before() -> tuple[int, int]:
        e = Engine(cfg, ManualClock(), "n1", tmp_path)
        e.open()
        e.start()
        for i in range(0, len(keys), 20):
            recs = [types_pb2.Record(key=k, op=types_pb2.OP_UPDATE, value=value) for k in keys[i:i + 20]]
            assert not any(r.error_code for r in await e.commit(recs, types_pb2.ACKS_LEADER))
        await e.take_snapshot()
        first_segment = segment.list_ids(tmp_path / "log")[0]
        await e.close()
        return first_segment, sum(len(ps.documents) for ps in e.partitions)

    async def after() -> list[bytes | None]:
        e = Engine(cfg, ManualClock(), "n1", tmp_path)
        e.open()
        e.start()
        got = [e.read(k) for k in keys]
        await e.close()
        return got

    first_segment, held = asyncio.run(before())
    assert held == len(keys)
    assert first_segment > 0, "retention dropped the log's first segments"
    assert sum(p.stat().st_size for p in (tmp_path / "snapshots").iterdir()) > 64 * 1024
    assert asyncio.run(after()) == [value] * len(keys)
