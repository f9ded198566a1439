"""Just enough of the protobuf wire format to find a message's fields in its bytes.

The owner logs a batch as the bytes the client sent, with its stamps appended (a
parser merges fields that come later: see `stamped_batch_entry`), rather than copying
the parsed message into a LogEntry and serialising that again: for a batch of a few
hundred small records that copy and encode cost more than everything else the owner
does with them but the dict insert. Only the top-level fields of a few messages are
walked, never the records, so this stays a handful of steps per batch.

The client likewise wraps a serialised CommitRequest in its CommitStreamRequest by
prefixing two fields (`commit_stream_request`): setting a message field copies the
whole message, which cost more than serialising it. The owner's replies on the stream
are put together the same way (`commit_stream_reply`).

Pure: no I/O.
"""

from __future__ import annotations

from typing import Sequence

from fero.v1 import storage_pb2, types_pb2

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
#: Field numbers (fero/v1/changelog.proto, storage.proto).
_STREAM_ID_TAG = bytes([1 << 3 | _VARINT])   # CommitStreamRequest.id, CommitStreamReply.id
_STREAM_COMMIT = 2      # CommitStreamRequest.commit
_STREAM_BODY_TAG = bytes([2 << 3 | _LEN])    # CommitStreamRequest.commit, CommitStreamReply.reply
_COMMIT_BATCHES = 3     # CommitRequest.batches
_ENTRY_BATCH_TAG = bytes([8 << 3 | _LEN])  # LogEntry.batch
_REPLY_BATCH_RESULTS = 3  # CommitReply.batch_results


class Malformed(ValueError):
    pass


def field_header(number: int, size: int) -> bytes:
    """The tag and length of a length-delimited field `number` of `size` bytes."""
    return encode_varint(number << 3 | _LEN) + encode_varint(size)


def field(number: int, data: bytes) -> bytes:
    """A length-delimited field: tag, length, bytes. A serialised message followed by
    such fields is the message with them set (repeated ones appended)."""
    return field_header(number, len(data)) + data


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise Malformed("varint runs past the end")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def encode_varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def len_fields(buf: bytes, start: int, end: int, number: int) -> list[tuple[int, int]]:
    """(start, end) of each length-delimited field `number` among the fields of the
    message in buf[start:end], in order. Malformed if the bytes do not parse."""
    out = []
    i = start
    while i < end:
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == _VARINT:
            _, i = _varint(buf, i)
        elif wire == _LEN:
            n, i = _varint(buf, i)
            if i + n > end:
                raise Malformed("field runs past the end")
            if key >> 3 == number:
                out.append((i, i + n))
            i += n
        elif wire == _I64:
            i += 8
        elif wire == _I32:
            i += 4
        else:
            raise Malformed(f"wire type {wire}")
    if i != end:
        raise Malformed("message runs past the end")
    return out


def stream_batches(raw: bytes) -> list[memoryview] | None:
    """The bytes of each Batch of a serialised CommitStreamRequest, in order, as views
    of `raw` (slices would copy a megabyte a request); None if they cannot be told
    apart (the caller then serialises the parsed batches)."""
    try:
        commits = len_fields(raw, 0, len(raw), _STREAM_COMMIT)
        if len(commits) != 1:  # absent, or split in parts a parser would merge
            return None
        start, end = commits[0]
        view = memoryview(raw)
        return [view[s:e] for s, e in len_fields(raw, start, end, _COMMIT_BATCHES)]
    except Malformed:
        return None


def as_sent(data: bytes) -> bytes:
    """A gRPC (de)serialiser for messages that are bytes already: the commit stream's
    requests (client) and replies (server), put together by the functions here."""
    return data


def _stream_message(id: int, parts: Sequence[bytes]) -> bytes:
    """A CommitStreamRequest or CommitStreamReply (same field numbers) of `id` whose
    message field (commit, reply) is the concatenation of `parts`."""
    size = sum(map(len, parts))
    return b"".join([_STREAM_ID_TAG, encode_varint(id), _STREAM_BODY_TAG, encode_varint(size), *parts])


def commit_stream_request(id: int, commit: bytes) -> bytes:
    """A serialised CommitStreamRequest of `id` and the serialised CommitRequest `commit`."""
    return _stream_message(id, (commit,))


def commit_stream_reply(id: int, head: bytes, batch_results: Sequence[types_pb2.BatchResult]) -> bytes:
    """A serialised CommitStreamReply of `id` whose reply is the serialised CommitReply
    `head` (its records' results and `coherent`) with `batch_results` added, each
    serialised once: a CommitReply built of them would copy every one, and a
    CommitStreamReply of that copy it again (with acks=REPLY a request's handler
    replies are a megabyte)."""
    parts = [head]
    for r in batch_results:
        body = r.SerializeToString()
        parts += (field_header(_REPLY_BATCH_RESULTS, len(body)), body)
    return _stream_message(id, parts)


def stamped_batch_entry(
    header: storage_pb2.LogEntry, batch: bytes | memoryview, stamps: types_pb2.Batch,
) -> tuple[bytes, int]:
    """A serialised LogEntry: `header`'s fields and, as its batch, the Batch in `batch`
    with the fields of `stamps` set (appended: a parser takes the last value of a
    field it meets twice); and where in it that stamped Batch starts (it runs to the
    end)."""
    tail = stamps.SerializeToString()
    size = len(batch) + len(tail)
    body = b"".join((header.SerializeToString(), _ENTRY_BATCH_TAG, encode_varint(size), batch, tail))
    return body, len(body) - size
