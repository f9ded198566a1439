"""fero.wire: finding a CommitStreamRequest's batches in its bytes, logging a batch as
the bytes it came in with its stamps appended, and the client's CommitStreamRequest
built around a serialised CommitRequest."""

from __future__ import annotations

import random

import pytest

from fero import wire
from fero.v1 import changelog_pb2, storage_pb2, types_pb2


def _batch(i: int, n: int) -> types_pb2.Batch:
    return types_pb2.Batch(
        partition=i, ticket=f"t{i}", op=types_pb2.OP_UPDATE,
        keys=[f"k{i}-{j}-é" for j in range(n)], values=[b'"' + bytes([j % 256]) * j + b'"' for j in range(n)],
    )


@pytest.mark.parametrize("seed", range(20))
def test_stream_batches_are_the_bytes_of_each_batch_in_order(seed: int) -> None:
    rng = random.Random(seed)
    batches = [_batch(i, rng.randint(1, 300)) for i in range(rng.randint(1, 6))]
    req = changelog_pb2.CommitStreamRequest(
        id=rng.randint(0, 1 << 62),
        commit=changelog_pb2.CommitRequest(batches=batches, acks=types_pb2.ACKS_LEADER,
                                           records=[types_pb2.Record(key="r", op=types_pb2.OP_UPDATE, value=b"1")]),
    )
    found = wire.stream_batches(req.SerializeToString())
    assert found is not None
    assert [types_pb2.Batch.FromString(b) for b in found] == batches


@pytest.mark.parametrize("id,records", [(0, 0), (1, 1), (127, 3), (128, 200), (1 << 62, 2000)])
def test_a_commit_stream_request_built_from_bytes_parses_as_the_message(id: int, records: int) -> None:
    # 200 and 2000 records take the length past one and two varint bytes.
    commit = changelog_pb2.CommitRequest(acks=types_pb2.ACKS_ALL, batches=[_batch(5, records)] if records else [])
    raw = wire.commit_stream_request(id, commit.SerializeToString())
    assert changelog_pb2.CommitStreamRequest.FromString(raw) == changelog_pb2.CommitStreamRequest(id=id, commit=commit)
    assert wire.stream_batches(raw) == ([_batch(5, records).SerializeToString()] if records else [])


def test_stream_batches_gives_up_on_what_it_cannot_split() -> None:
    req = changelog_pb2.CommitStreamRequest(id=1, commit=changelog_pb2.CommitRequest(batches=[_batch(0, 3)]))
    raw = req.SerializeToString()
    assert wire.stream_batches(raw[:-1]) is None  # cut short
    assert wire.stream_batches(b"\x0f" + raw) is None  # wire type 7 does not exist
    assert wire.stream_batches(changelog_pb2.CommitStreamRequest(id=1).SerializeToString()) is None  # no commit
    # The commit sent in two parts (a parser merges them): not split here.
    part = changelog_pb2.CommitStreamRequest(commit=changelog_pb2.CommitRequest(batches=[_batch(1, 2)])).SerializeToString()
    assert wire.stream_batches(raw + part) is None
    # Unknown fields of every wire type are stepped over.
    extra = bytes([15 << 3 | 0, 5, 16 << 3 | 1]) + b"\0" * 8 + bytes([17 << 3 | 5]) + b"\0" * 4
    found = wire.stream_batches(extra + raw)
    assert found is not None and [types_pb2.Batch.FromString(b) for b in found] == [_batch(0, 3)]


def test_a_stamped_entry_equals_the_batch_copied_and_stamped() -> None:
    b = _batch(7, 50)
    header = storage_pb2.LogEntry(partition=7, epoch=3, base_offset=1000, owner="n1")
    stamps = types_pb2.Batch(hlc=(1 << 60) + 5, origin="n1/boot", origin_seq=42)
    body, start = wire.stamped_batch_entry(header, b.SerializeToString(), stamps)
    expected = storage_pb2.LogEntry(partition=7, epoch=3, base_offset=1000, owner="n1", batch=b)
    expected.batch.hlc, expected.batch.origin, expected.batch.origin_seq = stamps.hlc, stamps.origin, stamps.origin_seq
    assert storage_pb2.LogEntry.FromString(body) == expected
    # What starts at `start` is the stamped batch alone (what the documents keep).
    assert types_pb2.Batch.FromString(body[start:]) == expected.batch


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16383, 16384, (1 << 63) + 1])
def test_varints_round_trip(n: int) -> None:
    enc = wire.encode_varint(n)
    assert wire._varint(enc, 0) == (n, len(enc))
    if n:  # as protobuf itself encodes it
        assert types_pb2.Batch(hlc=n).SerializeToString() == bytes([7 << 3]) + enc


@pytest.mark.parametrize("seed", range(10))
def test_a_stream_reply_from_its_parts_is_the_reply_built_as_a_message(seed: int) -> None:
    rng = random.Random(seed)
    results = [types_pb2.Result(offset=rng.randint(0, 1 << 40), value=types_pb2.Number(i64=rng.randint(-9, 9)))
               for _ in range(rng.randint(0, 5))]
    batch_results = [
        types_pb2.BatchResult(partition=i, ticket=f"t{i}", base_offset=rng.randint(0, 1 << 40),
                              replies=[bytes([j % 256]) * rng.randint(0, 300) for j in range(rng.randint(0, 200))],
                              errors=[types_pb2.RecordError(index=1, code=9, message="no")] if i % 2 else [])
        for i in range(rng.randint(0, 6))
    ]
    coherent = bool(seed % 2)
    head = changelog_pb2.CommitReply(results=results, coherent=coherent)
    id = rng.randint(0, 1 << 62)
    raw = wire.commit_stream_reply(id, head.SerializeToString(), batch_results)
    expected = changelog_pb2.CommitStreamReply(
        id=id, reply=changelog_pb2.CommitReply(results=results, coherent=coherent, batch_results=batch_results),
    )
    got = changelog_pb2.CommitStreamReply.FromString(raw)
    assert got == expected and got.HasField("reply")
