"""Snapshot files (fero.log.snapshot): a frame per partition, so that a state larger
than a frame may be still loads; damage falls back to an older snapshot; files of the
first format (one frame) still load."""

from __future__ import annotations

import asyncio
import dataclasses
import errno

import pytest
from google.protobuf.message import EncodeError

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
    assert path.name.endswith(".snap3")
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot-00000000000000000001-000000000000.snap3", *snapshots.DOWNGRADE_MARKERS]
    assert _loaded(tmp_path) == _as_loaded(good)


def test_a_partition_past_protobufs_2_gb_is_refused_as_too_large(tmp_path):
    """Serialising a message over 2 GB raises protobuf's EncodeError: a snapshot says
    EFBIG, as for any state larger than a frame, and keeps the snapshots there."""
    good = _snap(1, 0)
    _write(tmp_path, good)

    class Huge:  # what a PartitionSnapshot of more than 2 GB does when serialised
        partition = 3

        def SerializeToString(self) -> bytes:
            raise EncodeError("Failed to serialize proto")

    head = storage_pb2.Snapshot(partitions=8, segment=2, position=0, partition_frames=1)
    with pytest.raises(OSError) as err:
        snapshots.write(tmp_path, head, [Huge()])  # type: ignore[list-item]
    assert err.value.errno == errno.EFBIG and "partition 3's state could not be serialised" in str(err.value)
    assert _loaded(tmp_path) == _as_loaded(good)


def test_a_head_that_miscounts_its_states_writes_nothing(tmp_path):
    snap = _snap(1, 0, partitions=3)
    head = storage_pb2.Snapshot(partitions=3, segment=1, position=0, partition_frames=4)
    with pytest.raises(ValueError, match="3 partition states for a head that says 4"):
        snapshots.write(tmp_path, head, snap.partition_states)
    assert list(tmp_path.iterdir()) == []


def test_what_a_crash_left_mid_write_goes_with_the_next_snapshot(tmp_path):
    """A crash while a snapshot is written leaves it under its temporary name, as large
    as a snapshot; nothing else would ever remove it. Other files stay."""
    tmp_path.mkdir(exist_ok=True)
    cut = tmp_path / "snapshot-00000000000000000001-000000004096.tmp"
    cut.write_bytes(b"\0" * 1000)
    marker_cut = tmp_path / snapshots.DOWNGRADE_MARKER.replace(".snap", ".tmp")
    marker_cut.write_bytes(b"")
    other = tmp_path / "notes.tmp"
    other.write_bytes(b"mine")
    snap = _snap(2, 0)
    _write(tmp_path, snap)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["notes.tmp", "snapshot-00000000000000000002-000000000000.snap3", *snapshots.DOWNGRADE_MARKERS])
    assert _loaded(tmp_path) == _as_loaded(snap)


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
        "snapshot-00000000000000000005-000000000200.snap3",
        *snapshots.DOWNGRADE_MARKERS,
    ]
    assert snapshots.oldest_needed(tmp_path) == (5, 100)


def test_second_format_files_load_and_the_newest_by_position_wins(tmp_path):
    """`.snap2` files (what fero wrote before PartitionSnapshot.runs: the same frames)
    still load, and an older `.snap2` loses to a newer `.snap3` and the other way round."""
    older, newer = _snap(2, 0), _snap(3, 0)
    written = _write(tmp_path, older)
    written.rename(written.with_suffix(".snap2"))
    assert _loaded(tmp_path) == _as_loaded(older)
    _write(tmp_path, newer)
    assert _loaded(tmp_path) == _as_loaded(newer)
    assert snapshots.oldest_needed(tmp_path) == (2, 0)
    newest = _snap(4, 0)
    written = _write(tmp_path, newest)
    written.rename(written.with_suffix(".snap2"))
    assert _loaded(tmp_path) == _as_loaded(newest)


def test_an_older_fero_finds_a_marker_it_refuses_and_this_one_passes_over_it(tmp_path):
    """An older fero lists only `.snap` files, loads the newest by name, and stops at a
    snapshot of another partition count; without the marker it would not list the
    `.snap2`/`.snap3` files at all and replay a log that retention may have cut."""
    v1 = _snap(1, 0)
    _write_first_format(tmp_path, v1)
    snap = _snap(2, 50)
    _write(tmp_path, snap)
    first_format = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".snap"))
    assert first_format[-1] == snapshots.DOWNGRADE_MARKER  # what an older fero loads
    body, _ = frame.decode_at((tmp_path / snapshots.DOWNGRADE_MARKER).read_bytes(), 0)
    assert storage_pb2.Snapshot.FromString(body).partitions == 0 != snap.partitions
    (tmp_path / "snapshot-²-1.snap2").write_bytes(b"not a snapshot")  # digits, but not ASCII ones
    assert _loaded(tmp_path) == _as_loaded(snap)
    assert snapshots.oldest_needed(tmp_path) == (1, 0)
    _write(tmp_path, _snap(3, 0))  # prunes snapshots, never the marker
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "snapshot-00000000000000000002-000000000050.snap3",
        "snapshot-00000000000000000003-000000000000.snap3",
        *snapshots.DOWNGRADE_MARKERS,
        "snapshot-²-1.snap2",
    ]


def test_a_second_format_fero_finds_its_own_marker_and_refuses_it(tmp_path):
    """A fero that writes `.snap2` files lists `.snap` and `.snap2` names but the
    first-format marker, and loads the newest by position: without a marker of its own
    it would find no snapshot (the `.snap3` ones it cannot read unseen) and replay a
    log that retention may have cut. Its rules, as that version has them:"""
    import re

    listed = re.compile(r"snapshot-([0-9]{20})-([0-9]{12})\.snap2?")
    _write(tmp_path, _snap(2, 50))
    _write(tmp_path, _snap(3, 0))
    _write(tmp_path, _snap(4, 0))  # the .snap2 files there were are pruned by now
    seen = sorted(
        ((int(m[1]), int(m[2])), p) for p in tmp_path.iterdir()
        if (m := listed.fullmatch(p.name)) is not None and p.name != snapshots.DOWNGRADE_MARKER
    )
    newest = seen[-1][1]
    assert newest.name == snapshots.DOWNGRADE_MARKERS[1]
    with open(newest, "rb") as f:
        head = storage_pb2.Snapshot.FromString(frame.read(f, 0))
        assert frame.read(f, f.tell()) is None  # as it reads a second-format file: no partition frames
    assert head.partitions == 0 and head.partition_frames == 0  # it refuses: "created with 0 partitions"
    assert _loaded(tmp_path) == _as_loaded(_snap(4, 0))  # and this version passes over it


def test_the_snapshot_loop_outlives_a_failed_snapshot(tmp_path, monkeypatch):
    """Any error (here a ValueError) is logged and the next snapshot is taken when due:
    a loop that ended would stop retention, and the log would grow for good."""
    clock = ManualClock()
    cfg = Config(storage=dataclasses.replace(StorageConfig(), snapshot_every_s=0.01)).validate()
    real_write, calls = snapshots.write, []

    def write(*args):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("injected")
        return real_write(*args)

    monkeypatch.setattr(snapshots, "write", write)

    async def main() -> int:
        e = Engine(cfg, clock, "n1", tmp_path)
        e.open()
        e.start()
        try:
            for i in range(2):
                await e.commit([types_pb2.Record(key=f"k{i}", op=types_pb2.OP_UPDATE, value=b"1")], types_pb2.ACKS_LEADER)
                clock.advance(1.0)
                deadline = asyncio.get_running_loop().time() + 10
                while len(calls) <= i and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.01)
            # The second write has started (calls counts it), in its thread: wait for it to
            # finish before counting snapshots, or the count races the write.
            deadline = asyncio.get_running_loop().time() + 10
            while e.statistics().snapshots < 1 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            return e.statistics().snapshots
        finally:
            await e.close()

    assert asyncio.run(main()) == 1 and len(calls) == 2
    assert _loaded(tmp_path / "snapshots") is not None


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
