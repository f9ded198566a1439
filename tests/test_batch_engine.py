"""The columnar batch fast path at the engine: `Engine.commit_batches` on real files.

Covered: consecutive offsets and per-record counter values, keyed ops, batch tickets
(duplicates return the first result, also after a restart, a snapshot and retention),
per-record errors (expired counters), malformed batches (InvalidArgument naming the
batch, nothing commits), subscribers seeing batch records as ordinary commits, and a
property test against a plain Python model across reopen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
import structlog.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fero import batch as batches
from fero import values
from fero.clock import ManualClock
from fero.config import Config, StorageConfig
from fero.documents import partition_key
from fero.engine import Action, Appended, Engine, Handler
from fero.errors import FailedPrecondition, InvalidArgument
from fero.log import segment
from fero.ring import partition_of
from fero.subscriptions import Subscription
from fero.v1 import storage_pb2
from fero.v1 import types_pb2 as pb

from .batches import P, keys_in, malformed, part
from .reads import CountingList

LEADER = pb.ACKS_LEADER


# -- helpers ----------------------------------------------------------------------------


def batch(op: int, keys: list[str], *, ticket: str, amounts: list[int] | None = None,
          vals: list[bytes] | None = None, partition: int | None = None) -> pb.Batch:
    b = pb.Batch(partition=part(keys[0]) if partition is None else partition, ticket=ticket, op=op, keys=keys)
    if amounts is not None:
        b.amounts.extend(amounts)
    if vals is not None:
        b.values.extend(vals)
    return b


def adds(keys: list[str], amounts: list[int], ticket: str) -> pb.Batch:
    return batch(pb.OP_COUNTER_ADD, keys, amounts=amounts, ticket=ticket)


def updates(keys: list[str], vals: list[object], ticket: str) -> pb.Batch:
    return batch(pb.OP_UPDATE, keys, vals=[json.dumps(v).encode() for v in vals], ticket=ticket)


def config(**storage: object) -> Config:
    return Config(storage=dataclasses.replace(StorageConfig(), **storage)).validate()


async def opened(
    path: Path | None, cfg: Config | None = None, clock: ManualClock | None = None, handler: Handler | None = None,
) -> Engine:
    e = Engine(cfg or config(), clock or ManualClock(), "n1", path, handler=handler)
    e.open()
    e.start()
    return e


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def counter(e: Engine, name: str):
    return e.get_counter(name)[0]


def doc(e: Engine, key: str):
    raw = e.read(key)
    return None if raw is None else json.loads(raw)


def total_offsets(e: Engine) -> int:
    return sum(s.next_offset for s in e.partitions)


def same_result(a: pb.BatchResult, b: pb.BatchResult) -> None:
    """b is a's acknowledgement again: the same place, values and errors."""
    assert (b.partition, b.ticket, b.base_offset) == (a.partition, a.ticket, a.base_offset)
    assert list(b.values) == list(a.values)
    assert list(b.exact_values) == list(a.exact_values)
    assert [(x.index, x.code) for x in b.errors] == [(x.index, x.code) for x in a.errors]
    assert not b.error_code


# -- commits, offsets, values -------------------------------------------------------------


def test_counter_add_batch_returns_running_values_at_consecutive_offsets(tmp_path):
    (c,) = keys_in(7, 1, "cnt")
    a, b = keys_in(7, 2, "other")

    async def main():
        e = await opened(tmp_path)
        r1, r2 = await e.commit_batches([adds([c, c, c], [1, 2, 3], "t1"), adds([a, b, a, c], [5, 7, 1, -6], "t2")], LEADER)
        state = (counter(e, c), counter(e, a), counter(e, b), e.partitions[7].next_offset)
        await e.close()
        return r1, r2, state

    r1, r2, (vc, va, vb, next_offset) = run(main())
    assert (r1.partition, r1.ticket, r1.base_offset, r1.duplicate) == (7, "t1", 0, False)
    assert list(r1.values) == [1, 3, 6]
    assert not r1.errors and not r1.error_code and not r1.exact_values
    assert (r2.partition, r2.base_offset, r2.duplicate) == (7, 3, False), "the second batch follows the first"
    assert list(r2.values) == [5, 7, 6, 0]
    assert (vc, va, vb) == (0, 6, 7)
    assert next_offset == 7


def test_batches_and_records_share_one_offset_sequence_per_partition(tmp_path):
    ka, kb = keys_in(3, 2, "mix")
    (other,) = keys_in(4, 1, "z")

    async def main():
        e = await opened(tmp_path)
        first = await e.commit([pb.Record(key=ka, op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=10), ticket="r1")], LEADER)
        (b1, b2) = await e.commit_batches([adds([ka, kb], [1, 1], "b1"), adds([other], [4], "b2")], LEADER)
        last = await e.commit([pb.Record(key=kb, op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=1), ticket="r2")], LEADER)
        await e.close()
        return first[0], b1, b2, last[0]

    first, b1, b2, last = run(main())
    assert first.offset == 0
    assert (b1.partition, b1.base_offset, list(b1.values)) == (3, 1, [11, 1])
    assert (b2.partition, b2.base_offset, list(b2.values)) == (4, 0, [4]), "each partition has its own offsets"
    assert (last.offset, last.value.i64) == (3, 2)


def test_values_that_do_not_fit_64_bits_come_as_exact_values(tmp_path):
    (big,) = keys_in(9, 1, "big")

    async def main():
        e = await opened(tmp_path)
        (r,) = await e.commit_batches([adds([big, big, big], [2**62, 2**62, -(2**62)], "t")], LEADER)
        v = counter(e, big)
        await e.close()
        return r, v

    r, v = run(main())
    assert not r.values, "one value does not fit in 64 bits: all go as exact_values"
    assert [values.parse_number(n) for n in r.exact_values] == [2**62, 2**63, 2**62]
    assert v == 2**62


def test_amounts_of_a_batch_add_to_a_decimal_counter_exactly(tmp_path):
    (money,) = keys_in(11, 1, "eur")

    async def main():
        e = await opened(tmp_path)
        await e.commit([pb.Record(key=money, op=pb.OP_COUNTER_SETUP, kind=pb.VALUE_KIND_DECIMAL),
                        pb.Record(key=money, op=pb.OP_COUNTER_ADD, amount=pb.Number(text="0.25"))], LEADER)
        (r,) = await e.commit_batches([adds([money, money], [1, 2], "t")], LEADER)
        v = counter(e, money)
        await e.close()
        return r, v

    r, v = run(main())
    assert not r.errors
    assert [Decimal(str(values.parse_number(n))) for n in r.exact_values] == [Decimal("1.25"), Decimal("3.25")]
    assert v == Decimal("3.25")


def test_update_batch_last_value_per_key_wins_and_paths_build_documents(tmp_path):
    d1, d2 = keys_in(5, 2, "doc")

    async def main():
        e = await opened(tmp_path)
        (r,) = await e.commit_batches([updates([d1, d2, d1, d1], [1, {"z": 0}, {"a": 2}, {"a": 3, "b": [1]}], "u1")], LEADER)
        (r2,) = await e.commit_batches([updates([f"{d2}.name", f"{d2}.age", f"{d2}.name"], ["Ada", 36, "Grace"], "u2")],
                                       LEADER)
        got = doc(e, d1), doc(e, d2), doc(e, f"{d2}.name")
        await e.close()
        return r, r2, got

    r, r2, (v1, v2, name) = run(main())
    assert (r.partition, r.base_offset, r.duplicate) == (5, 0, False)
    assert not r.values and not r.exact_values and not r.errors
    assert r2.base_offset == 4
    assert v1 == {"a": 3, "b": [1]}
    assert v2 == {"z": 0, "name": "Grace", "age": 36}
    assert name == "Grace"


def test_keyed_add_push_patch_remove_batches(tmp_path):
    (d,) = keys_in(13, 1, "user")

    async def main():
        e = await opened(tmp_path)
        out = await e.commit_batches([
            updates([d], [{"n": 1, "l": [], "o": {"k": 1}, "gone": True}], "init"),
            batch(pb.OP_ADD, [f"{d}.n", f"{d}.n", f"{d}.m"], amounts=[2, 3, 7], ticket="add"),
            batch(pb.OP_PUSH, [f"{d}.l", f"{d}.l"], vals=[b"1", b'{"x":2}'], ticket="push"),
            batch(pb.OP_PATCH, [f"{d}.o"], vals=[b'{"k":null,"j":2}'], ticket="patch"),
            batch(pb.OP_REMOVE, [f"{d}.gone"], ticket="rm"),
        ], LEADER)
        got = doc(e, d)
        await e.close()
        return out, got

    out, got = run(main())
    assert [r.base_offset for r in out] == [0, 1, 4, 6, 7]
    assert list(out[1].values) == [3, 6, 7], "ADD returns the number after each record"
    assert not any(r.errors or r.error_code for r in out)
    assert got == {"n": 6, "m": 7, "l": [1, {"x": 2}], "o": {"j": 2}}


def test_acks_none_batch_is_committed_and_survives_reopen(tmp_path):
    (c,) = keys_in(17, 1, "n")

    async def first():
        e = await opened(tmp_path)
        (r,) = await e.commit_batches([adds([c] * 4, [1, 1, 1, 1], "t")], pb.ACKS_NONE)
        await e.close()
        return r

    async def second():
        e = await opened(tmp_path)
        v = counter(e, c)
        (dup,) = await e.commit_batches([adds([c] * 4, [1, 1, 1, 1], "t")], LEADER)
        await e.close()
        return v, dup

    r = run(first())
    assert list(r.values) == [1, 2, 3, 4]
    v, dup = run(second())
    assert v == 4 and dup.duplicate


# -- idempotency ----------------------------------------------------------------------


def test_repeated_batch_ticket_returns_the_first_result_and_applies_nothing(tmp_path):
    c, d = keys_in(21, 2, "k")

    async def main():
        e = await opened(tmp_path)
        (first,) = await e.commit_batches([adds([c, c, d], [1, 2, 3], "once")], LEADER)
        await e.commit_batches([adds([c], [100], "between")], LEADER)
        before = counter(e, c), counter(e, d), e.partitions[21].next_offset
        (again,) = await e.commit_batches([adds([c, c, d], [1, 2, 3], "once")], LEADER)
        # The ticket decides, not the contents: other amounts are not applied either.
        (other,) = await e.commit_batches([adds([c], [999], "once")], LEADER)
        after = counter(e, c), counter(e, d), e.partitions[21].next_offset
        await e.close()
        return first, again, other, before, after

    first, again, other, before, after = run(main())
    assert not first.duplicate and again.duplicate and other.duplicate
    same_result(first, again)
    same_result(first, other)
    assert list(again.values) == [1, 3, 3]
    assert before == after == (103, 3, 4)


def test_resending_the_very_same_batch_objects_is_recognised_as_a_duplicate(tmp_path):
    """A caller that retries with the Batch objects it sent (e.g. after a timeout) must
    get the duplicate acknowledgement, not an error: the engine must not stamp hlc /
    origin into the caller's messages nor drop their failed records."""
    clock = ManualClock()
    c, closed = keys_in(22, 2, "same")

    async def main():
        e = await opened(tmp_path, clock=clock)
        await e.commit([pb.Record(key=closed, op=pb.OP_COUNTER_SETUP, expire_at_ms=clock.wall_ms() - 1)], LEADER)
        sent = [adds([c, closed, c], [1, 2, 3], "retry-me")]
        as_sent = [fresh(b) for b in sent]
        (first,) = await e.commit_batches(sent, LEADER)
        unchanged = [fresh(b) for b in sent] == as_sent
        try:
            (again,) = await e.commit_batches(sent, LEADER)
        except InvalidArgument as exc:
            again = exc
        v = counter(e, c)
        await e.close()
        return first, unchanged, again, v

    first, unchanged, again, v = run(main())
    assert [x.index for x in first.errors] == [1]
    assert not isinstance(again, InvalidArgument), f"the retry was refused: {again}"
    assert again.duplicate
    same_result(first, again)
    assert v == 4
    assert unchanged, "commit_batches modified the caller's Batch messages"


def test_same_ticket_in_another_partition_is_another_batch(tmp_path):
    (a,) = keys_in(30, 1, "a")
    (b,) = keys_in(31, 1, "b")

    async def main():
        e = await opened(tmp_path)
        (ra,) = await e.commit_batches([adds([a], [1], "shared")], LEADER)
        (rb,) = await e.commit_batches([adds([b], [1], "shared")], LEADER)
        v = counter(e, a), counter(e, b)
        await e.close()
        return ra, rb, v

    ra, rb, v = run(main())
    assert not ra.duplicate and not rb.duplicate
    assert v == (1, 1)


def test_a_batch_repeated_within_one_call_is_applied_once(tmp_path):
    (c,) = keys_in(33, 1, "w")

    async def main():
        e = await opened(tmp_path)
        out = await e.commit_batches([adds([c, c], [5, 5], "dup"), adds([c, c], [5, 5], "dup")], LEADER)
        v = counter(e, c), e.partitions[33].next_offset
        await e.close()
        return out, v

    (r1, r2), v = run(main())
    assert not r1.duplicate and r2.duplicate
    same_result(r1, r2)
    assert v == (10, 2)


def test_batch_tickets_and_results_survive_restart(tmp_path):
    c, d = keys_in(40, 2, "r")
    (u,) = keys_in(41, 1, "doc")

    async def before():
        e = await opened(tmp_path)
        out = await e.commit_batches([adds([c, d, c], [3, 4, 5], "b-1"), updates([u, u], [1, 2], "b-2")], LEADER)
        out += await e.commit_batches([adds([d], [10], "b-3")], LEADER)
        state = counter(e, c), counter(e, d), doc(e, u), e.partitions[40].next_offset, e.partitions[41].next_offset
        await e.close()
        return out, state

    async def after():
        e = await opened(tmp_path)
        state = counter(e, c), counter(e, d), doc(e, u), e.partitions[40].next_offset, e.partitions[41].next_offset
        again = await e.commit_batches([adds([c, d, c], [3, 4, 5], "b-1"), updates([u, u], [1, 2], "b-2"),
                                        adds([d], [10], "b-3")], LEADER)
        (fresh,) = await e.commit_batches([adds([c], [1], "b-4")], LEADER)
        final = counter(e, c), counter(e, d), doc(e, u)
        await e.close()
        return state, again, fresh, final

    out, state0 = run(before())
    assert state0 == (8, 14, 2, 4, 2)
    state1, again, fresh, final = run(after())
    assert state1 == state0, "replay rebuilds the state"
    assert [r.duplicate for r in again] == [True, True, True]
    for a, b in zip(out, again):
        same_result(a, b)
    assert not fresh.duplicate and fresh.base_offset == 4 and list(fresh.values) == [9]
    assert final == (9, 14, 2)


def test_batch_tickets_survive_a_snapshot_after_retention_dropped_their_log(tmp_path):
    cfg = config(segment_bytes=4096, retention_s=0, retention_bytes=0)
    (c,) = keys_in(50, 1, "s")
    (pad,) = keys_in(51, 1, "pad")

    async def before():
        e = await opened(tmp_path, cfg)
        (first,) = await e.commit_batches([adds([c] * 5, [1, 2, 3, 4, 5], "snap-1")], LEADER)
        for i in range(30):  # fill several segments so the first one can be dropped
            await e.commit_batches([updates([pad] * 4, ["x" * 100] * 4, f"pad-{i}")], LEADER)
        segments_before = segment.list_ids(tmp_path / "log")
        await e.take_snapshot()
        segments_after = segment.list_ids(tmp_path / "log")
        (dup_live,) = await e.commit_batches([adds([c] * 5, [1, 2, 3, 4, 5], "snap-1")], LEADER)
        (late,) = await e.commit_batches([adds([c], [100], "snap-2")], LEADER)
        await e.close()
        return first, segments_before, segments_after, dup_live, late

    async def after():
        e = await opened(tmp_path, cfg)
        v0 = counter(e, c)
        stats = e.statistics()
        again = await e.commit_batches([adds([c] * 5, [1, 2, 3, 4, 5], "snap-1"), adds([c], [100], "snap-2")], LEADER)
        v1 = counter(e, c)
        await e.close()
        return v0, stats, again, v1

    first, seg_before, seg_after, dup_live, late = run(before())
    assert len(seg_before) > 2 and seg_before[0] not in seg_after, "the batch's segment was dropped"
    assert dup_live.duplicate
    same_result(first, dup_live)
    v0, stats, (again1, again2), v1 = run(after())
    assert v0 == 115
    assert stats.replayed_records == 1, "only the batch after the snapshot is replayed"
    assert again1.duplicate and again2.duplicate
    same_result(first, again1)
    same_result(late, again2)
    assert v1 == 115


# -- per-record errors ------------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [False, True], ids=["message", "bytes"])
def test_an_expired_counter_fails_its_record_and_the_others_commit(tmp_path, as_bytes):
    # as_bytes: the batch also comes as the bytes the client sent (the CommitStream
    # path, fero.wire); a failed record must not reach the log from those bytes.
    clock = ManualClock()
    live, closing, gone = keys_in(60, 3, "bill")

    async def main():
        e = await opened(tmp_path, clock=clock)
        now = clock.wall_ms()
        await e.commit([
            pb.Record(key=closing, op=pb.OP_COUNTER_SETUP, expire_at_ms=now + 1000),
            pb.Record(key=closing, op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=7)),
            pb.Record(key=gone, op=pb.OP_COUNTER_SETUP, expire_at_ms=now - 1),
        ], LEADER)
        clock.advance(1.0)
        base = e.partitions[60].next_offset
        b = adds([live, closing, live, gone, live], [1, 5, 2, 9, 3], "mixed")
        raw = [b.SerializeToString()] if as_bytes else None
        (r,) = await e.commit_batches([b], LEADER, raw=raw)
        state = counter(e, live), e.partitions[60].next_offset
        closing_state = e.partitions[60].peek(closing).value
        (frame,) = e.frames_from(60, base, 100)
        assert list(frame.batch.keys) == [live, live, live] and list(frame.batch.amounts) == [1, 2, 3]
        (dup,) = await e.commit_batches([b], LEADER, raw=raw)
        await e.close()
        return base, r, state, closing_state, dup

    base, r, (v_live, next_offset), v_closing, dup = run(main())
    assert r.base_offset == base and not r.error_code and not r.duplicate
    assert [(x.index, x.code) for x in r.errors] == [(1, 9), (3, 9)]
    assert all("expired" in x.message for x in r.errors), [x.message for x in r.errors]
    assert list(r.values) == [1, 3, 6], "one value per committed record"
    assert next_offset == base + 3, "the failed records take no offset"
    assert v_live == 6 and v_closing == 7
    assert dup.duplicate
    same_result(r, dup)

    async def reopened():
        e = await opened(tmp_path, clock=clock)
        v = counter(e, live), e.partitions[60].peek(closing).value, e.partitions[60].next_offset
        await e.close()
        return v

    assert run(reopened()) == (6, 7, base + 3)


def test_a_batch_whose_every_record_failed_gets_the_same_answer_after_restart(tmp_path):
    """Nothing of such a batch commits and its ticket is not remembered (as with a record
    that fails): a retry is judged afresh, the same before and after a restart."""
    clock = ManualClock()
    closed, other = keys_in(62, 2, "allfail")

    async def before():
        e = await opened(tmp_path, clock=clock)
        await e.commit([pb.Record(key=closed, op=pb.OP_COUNTER_SETUP, expire_at_ms=clock.wall_ms() - 1)], LEADER)
        (first,) = await e.commit_batches([adds([closed, closed], [1, 2], "af")], LEADER)
        (retry,) = await e.commit_batches([adds([closed, closed], [1, 2], "af")], LEADER)
        await e.commit_batches([adds([other], [1], "next")], LEADER)
        await e.close()
        return first, retry

    async def after():
        e = await opened(tmp_path, clock=clock)
        (retry,) = await e.commit_batches([adds([closed, closed], [1, 2], "af")], LEADER)
        await e.close()
        return retry

    first, retry_before = run(before())
    assert [x.index for x in first.errors] == [0, 1] and not first.values
    retry_after = run(after())
    assert not retry_before.duplicate and not retry_after.duplicate
    assert [(x.index, x.code) for x in retry_before.errors] == [(0, 9), (1, 9)]
    assert [(x.index, x.code) for x in retry_after.errors] == [(0, 9), (1, 9)]


def _raw(bs: list[pb.Batch], as_bytes: bool) -> dict:
    """commit_batches' `raw` argument: each batch's bytes, as the commit stream passes
    them (the owner then logs those bytes and never parses the frame), or nothing."""
    return {"raw": [b.SerializeToString() for b in bs]} if as_bytes else {}


@pytest.mark.parametrize("as_bytes", [False, True], ids=["message", "bytes"])
def test_subscribers_skip_failed_records_and_see_consecutive_offsets(tmp_path, as_bytes):
    clock = ManualClock()
    live, closed = keys_in(61, 2, "sub")

    async def main():
        e = await opened(tmp_path, clock=clock)
        await e.commit([pb.Record(key=closed, op=pb.OP_COUNTER_SETUP, expire_at_ms=clock.wall_ms() - 1)], LEADER)
        bs = [adds([closed, live, closed, live], [1, 2, 3, 4], "x")]
        (r,) = await e.commit_batches(bs, LEADER, **_raw(bs, as_bytes))
        sub = Subscription(partition=61)
        e.subscribe(sub, {61: r.base_offset}, earliest=False)
        got = []

        async def read():
            async for item in sub:
                got.extend(item)
                if len(got) >= 2:
                    return

        await asyncio.wait_for(read(), 10)
        await e.close()
        return r, got

    r, got = run(main())
    assert [x.index for x in r.errors] == [0, 2]
    assert [(c.offset, c.record.key, c.record.amount.i64) for c in got] == [
        (r.base_offset, live, 2), (r.base_offset + 1, live, 4)]


def test_a_frame_is_parsed_only_if_a_subscriber_reads_its_partition(tmp_path, monkeypatch):
    """The owner logs a bulk write's bytes as sent; it reads them back into a message to
    hand them to a subscriber of their partition, not because the node has one."""
    parsed: list[int] = []
    entry = Appended.entry

    def counted(self: Appended) -> storage_pb2.LogEntry:
        parsed.append(self.partition)
        return entry(self)

    monkeypatch.setattr(Appended, "entry", counted)
    (read,), (unread,) = keys_in(62, 1, "read"), keys_in(63, 1, "unread")

    async def main():
        e = await opened(tmp_path)
        sub = Subscription(partition=62)
        e.subscribe(sub, {}, earliest=False)
        bs = [adds([unread], [1], "U1"), adds([read], [2], "R1"), adds([unread], [3], "U2")]
        await e.commit_batches(bs, LEADER, **_raw(bs, True))
        got = await asyncio.wait_for(sub.__anext__(), 10)
        await e.close()
        return got

    got = run(main())
    assert parsed == [62]
    assert [(c.record.key, c.record.amount.i64) for c in got] == [(read, 2)]


# -- malformed batches ----------------------------------------------------------------


PB = 70  # the partition of the malformed-batch cases
BAD = malformed(PB)

_NAMES_BATCH_1 = re.compile(r"batch(es)?\W{0,3}1\b", re.IGNORECASE)


@pytest.mark.parametrize("name,bad,words", BAD, ids=[c[0] for c in BAD])
def test_a_malformed_batch_fails_the_whole_call_and_nothing_commits(tmp_path, name, bad, words):
    (good_key,) = keys_in(71, 1, "good")

    async def main():
        e = await opened(tmp_path)
        (seed,) = await e.commit_batches([adds([good_key], [42], "seed")], LEADER)
        offsets = total_offsets(e)
        with pytest.raises(InvalidArgument) as info:
            await e.commit_batches([adds([good_key], [1], "would-commit"), bad], LEADER)
        unchanged = total_offsets(e) == offsets and counter(e, good_key) == 42
        # The engine still works, and the first batch of the failed call was not remembered.
        (ok,) = await e.commit_batches([adds([good_key], [1], "would-commit")], LEADER)
        (dup,) = await e.commit_batches([adds([good_key], [42], "seed")], LEADER)
        v = counter(e, good_key)
        await e.close()
        return seed, info.value, unchanged, ok, dup, v

    seed, err, unchanged, ok, dup, v = run(main())
    message = err.message
    assert _NAMES_BATCH_1.search(message), f"the message should name batch 1: {message!r}"
    for w in words:
        assert w.lower() in message.lower(), f"{w!r} not in {message!r}"
    assert unchanged, "nothing of the failed call committed"
    assert not ok.duplicate and ok.base_offset == 1
    assert dup.duplicate and dup.base_offset == seed.base_offset
    assert v == 43


def test_a_malformed_batch_alone_names_its_index_zero(tmp_path):
    async def main():
        e = await opened(tmp_path)
        with pytest.raises(InvalidArgument) as info:
            await e.commit_batches([next(b for name, b, _ in BAD if name == "empty ticket")], LEADER)
        n = total_offsets(e)
        await e.close()
        return info.value.message, n

    message, n = run(main())
    assert re.search(r"batch(es)?\W{0,3}0\b", message, re.IGNORECASE), message
    assert n == 0


# -- subscribers ----------------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [False, True], ids=["message", "bytes"])
def test_subscribers_see_batch_records_as_ordinary_commits_live_and_after_reopen(tmp_path, as_bytes):
    c1, c2 = keys_in(80, 2, "live")
    (d,) = keys_in(80, 1, "ldoc")

    async def collect(e: Engine, p: int, start: int, n: int) -> list[pb.Commit]:
        sub = Subscription(partition=p)
        e.subscribe(sub, {p: start}, earliest=False)
        got: list[pb.Commit] = []

        async def read():
            async for item in sub:
                assert isinstance(item, list), item
                got.extend(item)
                if len(got) >= n:
                    return

        await asyncio.wait_for(read(), 10)
        return got

    async def live():
        e = await opened(tmp_path)
        await e.commit([pb.Record(key=c1, op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=1), ticket="pre")], LEADER)
        sub = Subscription(partition=80)
        e.subscribe(sub, {80: 1}, earliest=False)  # from the offset the batches will take
        got: list[pb.Commit] = []

        async def read():
            async for item in sub:
                got.extend(item)
                if len(got) >= 5:
                    return

        reader = asyncio.create_task(read())
        bs = [adds([c1, c2, c1], [2, 3, 4], "B1"), updates([d, d], [{"a": 1}, [2]], "B2")]
        out = await e.commit_batches(bs, LEADER, **_raw(bs, as_bytes))
        await asyncio.wait_for(reader, 10)
        origin = e.origin
        await e.close()
        return out, got, origin

    async def history():
        e = await opened(tmp_path)
        got = await collect(e, 80, 0, 6)
        await e.close()
        return got

    (b1, b2), got, origin = run(live())
    assert (b1.base_offset, b2.base_offset) == (1, 4)
    assert [c.offset for c in got] == [1, 2, 3, 4, 5]
    assert all(c.partition == 80 for c in got)
    assert [(c.record.key, c.record.op) for c in got] == [
        (c1, pb.OP_COUNTER_ADD), (c2, pb.OP_COUNTER_ADD), (c1, pb.OP_COUNTER_ADD), (d, pb.OP_UPDATE), (d, pb.OP_UPDATE)]
    assert [values.parse_number(c.record.amount) for c in got[:3]] == [2, 3, 4]
    assert [json.loads(c.record.value) for c in got[3:]] == [{"a": 1}, [2]]
    assert all(c.record.ticket for c in got), "every record has a ticket"
    assert all(c.record.origin == origin for c in got)
    assert [c.record.origin_seq for c in got[:3]] == [got[0].record.origin_seq + k for k in range(3)]
    hlcs = [c.record.hlc for c in got]
    assert all(h > 0 for h in hlcs) and hlcs == sorted(hlcs) and len(set(hlcs)) == len(hlcs)

    replayed = run(history())
    assert [c.offset for c in replayed] == [0, 1, 2, 3, 4, 5]
    assert [(c.record.key, c.record.op, c.record.value, c.record.amount, c.record.ticket, c.record.hlc)
            for c in replayed[1:]] == [
        (c.record.key, c.record.op, c.record.value, c.record.amount, c.record.ticket, c.record.hlc) for c in got], \
        "history read from the log equals what was delivered live"


# -- property: random batches against a model, across reopen -------------------------------

PA, PB2 = 90, 91
MODEL_COUNTERS = {PA: keys_in(PA, 3, "mc"), PB2: keys_in(PB2, 3, "mc")}
MODEL_DOCS = {PA: keys_in(PA, 3, "md"), PB2: keys_in(PB2, 3, "md")}

_record = st.tuples(st.integers(0, 2), st.integers(-50, 50))
_step = st.one_of(
    st.tuples(st.just("new"), st.sampled_from([PA, PB2]), st.sampled_from(["add", "update"]),
              st.lists(_record, min_size=1, max_size=6)),
    st.tuples(st.just("resend"), st.integers(0, 10_000), st.booleans()),  # an earlier ticket: same or other contents
    st.tuples(st.just("reopen")),
    st.tuples(st.just("snapshot")),
)


def fresh(b: pb.Batch) -> pb.Batch:
    """A copy to send, as a client would serialise it (the engine may stamp what it gets)."""
    return pb.Batch.FromString(b.SerializeToString())


def _make(p: int, kind: str, records: list[tuple[int, int]], ticket: str) -> pb.Batch:
    if kind == "add":
        return adds([MODEL_COUNTERS[p][k] for k, _ in records], [a for _, a in records], ticket)
    return updates([MODEL_DOCS[p][k] for k, _ in records], [{"v": a} for _, a in records], ticket)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_step, min_size=1, max_size=14))
def test_random_batches_match_a_model_across_reopen(steps):
    path = Path(tempfile.mkdtemp(prefix="fero-batch-prop-"))
    try:
        asyncio.run(asyncio.wait_for(_property(path, steps), 60))
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def _property(path: Path, steps: list[tuple]) -> None:
    clock = ManualClock()
    counters: dict[str, int] = {}
    docs: dict[str, object] = {}
    next_offset = {PA: 0, PB2: 0}
    sent: list[tuple[pb.Batch, pb.BatchResult]] = []

    def check_state(e: Engine) -> None:
        for p in (PA, PB2):
            assert e.partitions[p].next_offset == next_offset[p]
            for name in MODEL_COUNTERS[p]:
                assert counter(e, name) == counters.get(name, 0), name
            for key in MODEL_DOCS[p]:
                assert doc(e, key) == docs.get(key), key

    e = await opened(path, clock=clock)
    is_open = True
    try:
        for i, step in enumerate(steps):
            if step[0] == "new":
                _, p, kind, records = step
                b = _make(p, kind, records, f"t{i}")
                (r,) = await e.commit_batches([fresh(b)], LEADER)
                assert not r.duplicate and not r.errors and not r.error_code
                assert (r.partition, r.ticket, r.base_offset) == (p, f"t{i}", next_offset[p])
                expect_values = []
                for key, amount in zip(b.keys, b.amounts):
                    counters[key] = counters.get(key, 0) + amount
                    expect_values.append(counters[key])
                for key, value in zip(b.keys, b.values):
                    docs[key] = json.loads(value)
                assert list(r.values) == expect_values
                next_offset[p] += len(b.keys)
                sent.append((b, r))
            elif step[0] == "resend" and sent:
                _, which, same = step
                b, first = sent[which % len(sent)]
                if not same:  # the same ticket with other contents: still the first result
                    b2 = pb.Batch()
                    b2.CopyFrom(b)
                    if b2.amounts:
                        b2.amounts[0] += 1000
                    else:
                        b2.values[0] = b'"changed"'
                    b = b2
                (r,) = await e.commit_batches([fresh(b)], LEADER)
                assert r.duplicate
                same_result(first, r)
            elif step[0] == "reopen":
                is_open = False
                await e.close()
                e = await opened(path, clock=clock)
                is_open = True
            elif step[0] == "snapshot":
                await e.take_snapshot()
            check_state(e)
        is_open = False
        await e.close()
        e = await opened(path, clock=clock)
        is_open = True
        check_state(e)
        # Every ticket is still known after the final reopen; nothing applies twice.
        if sent:
            again = await e.commit_batches([fresh(b) for b, _ in sent], LEADER)
            for (_, first), r in zip(sent, again):
                assert r.duplicate
                same_result(first, r)
        check_state(e)
    finally:
        if is_open:
            await e.close()


# -- custom actions in batches ------------------------------------------------------------


def either(asynchronous: bool, plain):
    """`plain` as the handler, or a coroutine function doing what it does: a handler may
    be either."""
    if not asynchronous:
        return plain

    async def handler(action):
        await asyncio.sleep(0)
        return plain(action)

    return handler


@pytest.mark.parametrize("asynchronous", [True, False])
def test_an_action_batch_runs_the_handler_on_each_record_and_returns_the_replies(tmp_path, asynchronous):
    seen: list = []

    def plain(action):
        seen.append(action)
        if action.payload == b"boom":
            raise RuntimeError("the handler broke")
        if action.payload == b"no":
            raise FailedPrecondition("the handler refused")
        if action.payload == b"z":
            return None  # no reply
        return action.key.encode() + b":" + action.payload

    handler = either(asynchronous, plain)

    async def main():
        e = await opened(tmp_path, handler=handler)
        try:
            ks = keys_in(12, 4, "act")
            b = batch(pb.OP_ACTION, ks, ticket="a1", vals=[b"x", b"boom", b"z", b"no"])
            b.action = "echo"
            (r,) = await e.commit_batches([b], pb.ACKS_REPLY)
            again = pb.Batch()
            again.CopyFrom(b)
            (dup,) = await e.commit_batches([again], pb.ACKS_REPLY)
            return ks, r, dup
        finally:
            await e.close()

    ks, r, dup = run(main())
    # Every action committed (the failed handler too), at consecutive offsets, in order.
    assert not r.errors and [a.offset for a in seen] == [r.base_offset + k for k in range(4)]
    assert [(a.key, a.action, a.payload) for a in seen] == [
        (ks[0], "echo", b"x"), (ks[1], "echo", b"boom"), (ks[2], "echo", b"z"), (ks[3], "echo", b"no")]
    # The ticket each record has in the log (fero.batch.records), the handler's Action.
    assert [a.ticket for a in seen] == ["@@a1#0", "@@a1#1", "@@a1#2", "@@a1#3"]
    assert all(type(a) is Action and a.partition == 12 for a in seen)
    assert list(r.replies) == [ks[0].encode() + b":x", b"", b"", b""]
    # Each failure at its action's index: an unexpected exception is INTERNAL, a
    # FeroError keeps its own code.
    assert [(x.index, x.code) for x in r.handler_errors] == [(1, 13), (3, 9)]
    assert "the handler broke" in r.handler_errors[0].message and r.handler_errors[1].message == "the handler refused"
    # A retry is a duplicate: the handler does not run again.
    assert dup.duplicate and len(seen) == 4


@pytest.mark.parametrize("asynchronous", [True, False])
def test_a_reply_is_bytes_a_bytes_like_one_is_made_bytes_and_anything_else_is_a_handler_failure(
    tmp_path, asynchronous,
):
    """Whatever the handler returns, the commit succeeds and the actions stay
    committed: a str is the action's handler failure, named, not the call's."""

    class Reply(bytes):
        pass

    returns = {b"ba": bytearray(b"ba!"), b"sub": Reply(b"sub!"), b"str": "str!", b"mv": memoryview(b"mv!"),
               b"int": 7, b"none": None}
    handler = either(asynchronous, lambda action: returns[action.payload])

    async def main():
        e = await opened(tmp_path, handler=handler)
        try:
            b = batch(pb.OP_ACTION, keys_in(12, 6, "rk"), ticket="r1", vals=list(returns))
            b.action = "kinds"
            (r,) = await e.commit_batches([b], pb.ACKS_REPLY)
            return r
        finally:
            await e.close()

    r = run(main())
    assert not r.errors and list(r.replies) == [b"ba!", b"sub!", b"", b"mv!", b"", b""]
    assert [(x.index, x.code) for x in r.handler_errors] == [(2, 13), (4, 13)]
    assert "returned str; a reply is bytes or None" in r.handler_errors[0].message
    assert "returned int" in r.handler_errors[1].message


@pytest.mark.parametrize("sizes", [[0, 1, 3], [5, 2, 9], [12, 4, 30]])
def test_derived_tickets_match_derived_ticket_within_and_beyond_the_kept_positions(monkeypatch, sizes):
    """derived_tickets makes a batch's tickets from positions formatted once and kept
    (up to _POSITIONS_KEPT), and formats the rest each time: either way, the same
    tickets as derived_ticket, whatever order batch sizes come in."""
    monkeypatch.setattr(batches, "_positions", [])
    monkeypatch.setattr(batches, "_POSITIONS_KEPT", 8)
    for n in sizes:
        assert batches.derived_tickets("t#1", n) == [batches.derived_ticket("t#1", k) for k in range(n)]
    assert len(batches._positions) == min(max(sizes), 8)


@pytest.mark.parametrize("asynchronous", [True, False])
def test_handlers_nobody_waits_for_act_on_the_batch_as_committed_not_on_the_request(tmp_path, asynchronous):
    """With acks other than REPLY the handlers run after commit_batches returns; they
    get each ACTION batch copied out of the request (which they would otherwise keep
    alive whole), so a request changed or reused after its commit changes nothing."""
    seen: list = []
    done = asyncio.Event()

    def plain(action):
        seen.append((action.key, action.action, action.payload))
        if len(seen) == 3:
            done.set()
        return b"ignored"

    handler = either(asynchronous, plain)

    async def main():
        e = await opened(tmp_path, handler=handler)
        try:
            ks = keys_in(12, 3, "det")
            b = batch(pb.OP_ACTION, ks, ticket="d1", vals=[b"x", b"y", b"z"])
            b.action = "echo"
            (r,) = await e.commit_batches([b], LEADER, raw=[b.SerializeToString()])
            b.action, b.values[0], b.keys[1] = "other", b"changed", "changed"
            await asyncio.wait_for(done.wait(), 10)
            return ks, r
        finally:
            await e.close()

    with structlog.testing.capture_logs() as logged:
        ks, r = run(main())
    assert not r.errors
    assert seen == [(ks[0], "echo", b"x"), (ks[1], "echo", b"y"), (ks[2], "echo", b"z")]
    assert not [e for e in logged if e["event"] == "engine.handler_failed"]


def test_an_action_batch_on_a_node_without_a_handler_is_unimplemented(tmp_path):
    from fero.errors import Unimplemented

    async def main():
        e = await opened(tmp_path)
        try:
            b = batch(pb.OP_ACTION, keys_in(12, 1, "act"), ticket="a1", vals=[b"x"])
            b.action = "echo"
            with pytest.raises(Unimplemented, match="no handler"):
                await e.commit_batches([b], pb.ACKS_REPLY)
        finally:
            await e.close()

    run(main())


def test_a_batch_logged_from_its_bytes_is_the_batch_as_sent_with_its_stamps(tmp_path):
    keys = keys_in(9, 40, "raw")
    b = updates(keys, [{"v": i} for i in range(40)], "from-bytes")

    async def main():
        e = await opened(tmp_path)
        (r,) = await e.commit_batches([b], LEADER, raw=[b.SerializeToString()])
        (frame,) = e.frames_from(9, 0, 100)
        await e.close()
        e = await opened(tmp_path)
        docs = [doc(e, k) for k in keys]
        (replayed,) = e.frames_from(9, 0, 100)
        await e.close()
        return r, frame, docs, replayed

    r, frame, docs, replayed = run(main())
    assert r.base_offset == 0 and not r.errors
    assert frame.batch.hlc and frame.batch.origin and frame.batch.origin_seq == 1
    expected = storage_pb2.LogEntry(partition=9, epoch=frame.epoch, base_offset=0, owner="n1", batch=b)
    for f in ("hlc", "origin", "origin_seq"):
        setattr(expected.batch, f, getattr(frame.batch, f))
    assert frame == expected and replayed == expected
    assert docs == [{"v": i} for i in range(40)]


def test_values_sent_as_bytes_are_stored_unread_and_survive_overwrite_snapshot_and_reopen(tmp_path):
    """The owner keeps a bulk UPDATE's values in the bytes it logged (no message, no
    bytes object per value, until one is read). Nothing is read before a third of them
    are written over, so the snapshot takes the rest out of the run itself; every one
    reads back after it, and after a reopen."""
    keys = keys_in(21, 60, "lazy")
    b = updates(keys, [{"v": i, "pad": "x" * (i % 7)} for i in range(60)], "lazy-values")

    async def main():
        e = await opened(tmp_path)
        (r,) = await e.commit_batches([b], LEADER, raw=[b.SerializeToString()])
        docs = e.partitions[21].documents.docs
        # Before any read: the run holds the batch as logged, not parsed (no message, no
        # values read out of it).
        run_ = docs[keys[-1]]
        kept_as_sent = run_.__class__.__name__ == "_Run" and isinstance(run_.batch, memoryview)
        await e.commit_batches([updates(keys[:20], [{"new": i} for i in range(20)], "over")], LEADER)
        still_in_run = all(docs[k] is run_ for k in keys[20:])
        await e.take_snapshot()
        after = [doc(e, k) for k in keys]
        await e.close()
        e = await opened(tmp_path)
        reopened = [doc(e, k) for k in keys]
        await e.close()
        return r, kept_as_sent, still_in_run, after, reopened

    r, kept_as_sent, still_in_run, after, reopened = run(main())
    assert not r.errors and kept_as_sent and still_in_run
    expected = [{"new": i} for i in range(20)] + [{"v": i, "pad": "x" * (i % 7)} for i in range(20, 60)]
    assert after == expected and reopened == expected


def test_a_snapshot_writes_whole_runs_as_their_batches_and_reopens_them_as_runs(tmp_path):
    """A bulk UPDATE none of whose documents changed since goes into the snapshot as its
    batch (PartitionSnapshot.runs), not document by document; one whose documents
    changed goes into the columns. Both come back the same after a reopen from that
    snapshot, the untouched one as a run again."""
    from fero.log import snapshot as snapshots

    p = 33
    untouched = keys_in(p, 50, "whole")
    changed = keys_in(p, 20, "part")
    a = updates(untouched, [{"w": i} for i in range(50)], "whole-batch")
    b = updates(changed, [{"p": i} for i in range(20)], "part-batch")

    async def main():
        e = await opened(tmp_path, config(snapshot_every_s=86400.0))
        await e.commit_batches([a, b], LEADER, raw=[a.SerializeToString(), b.SerializeToString()])
        await e.commit_batches([updates(changed[:3], [{"new": i} for i in range(3)], "over")], LEADER)
        await e.take_snapshot()
        await e.close()
        e = await opened(tmp_path)
        stored = e.partitions[p].documents.docs[untouched[0]]  # (before a read makes it a Doc)
        # A run keeps its bytes (not the snapshot frame's message) until a value is read.
        stored = (stored.__class__.__name__, type(getattr(stored, "batch", None)))
        docs = {k: doc(e, k) for k in untouched + changed}
        await e.close()
        return docs, stored

    docs, stored = run(main())
    (path,) = [f for f in tmp_path.joinpath("snapshots").iterdir() if f.name.endswith(".snap3")]
    _, parts = snapshots.load_latest(path.parent)
    (ps,) = [x for x in parts if x.partition == p]
    assert [list(r.keys) for r in ps.runs] == [untouched]
    assert sorted(ps.key_columns.keys) == sorted(changed)
    assert docs == {**{k: {"w": i} for i, k in enumerate(untouched)},
                    **{k: ({"new": i} if i < 3 else {"p": i}) for i, k in enumerate(changed)}}
    assert stored == ("_Run", bytes)


def test_a_replicas_documents_keep_their_own_frame_not_the_whole_append(tmp_path):
    """A replica's bulk UPDATE keeps the message its values are in; a frame that came
    in an Append is copied out of it first, so the documents share nothing with the
    request (which holds other partitions' frames too). Changing the request after
    the append changes nothing the replica holds."""
    from fero.v1 import peer_pb2

    p, q = 40, 41
    keys = keys_in(p, 30, "rep")
    (name,) = keys_in(q, 1, "cnt")
    stamps = dict(hlc=1 << 40, origin="n0/1", origin_seq=1)
    update = pb.Batch(partition=p, ticket="u", op=pb.OP_UPDATE, keys=keys,
                      values=[json.dumps({"v": i}).encode() for i in range(30)], **stamps)
    add = pb.Batch(partition=q, ticket="c", op=pb.OP_COUNTER_ADD, keys=[name], amounts=[7], **stamps)
    req = peer_pb2.AppendRequest(owner="n0", frames=[
        peer_pb2.AppendFrame(owner_epoch=1, entry=storage_pb2.LogEntry(partition=x.partition, epoch=1, owner="n0", batch=x))
        for x in (update, add)
    ])

    async def main():
        e = await opened(tmp_path)
        results, _ = e.append_replicated(req.frames)
        req.frames[0].entry.batch.values[0] = b'"changed"'
        del req.frames[0].entry.batch.keys[:]
        got = [doc(e, k) for k in keys], counter(e, name), [r.ok for r in results]
        (frame,) = e.frames_from(p, 0, 100)
        await e.close()
        return got, frame

    (docs, total, oks), frame = run(main())
    assert oks == [True, True] and total == 7
    assert docs == [{"v": i} for i in range(30)]
    assert list(frame.batch.keys) == keys and frame.batch.values[0] == b'{"v": 0}'


def _limits(max_value_bytes: int) -> Config:
    return dataclasses.replace(config(), limits=dataclasses.replace(config().limits, max_value_bytes=max_value_bytes))


@pytest.mark.parametrize("op", [pb.OP_UPDATE, pb.OP_ACTION])
def test_values_left_unread_only_when_the_batch_is_too_small_to_hold_a_long_one(op):
    """validate skips reading UPDATE and ACTION values only when the batch's own size
    bounds them; a batch larger than the limit has its values checked one by one."""
    limits = _limits(64).limits
    action = "echo" if op == pb.OP_ACTION else ""
    small = pb.Batch(partition=part("s"), ticket="t", op=op, keys=["s"], values=[b'"short"'], action=action)
    long = pb.Batch(partition=part("s"), ticket="t", op=op, keys=["s"], values=[b'"' + b"x" * 98 + b'"'], action=action)
    ((keys, column),) = batches.validate([small], P, limits, raw=[small.SerializeToString()])
    assert keys == ["s"] and column is None
    ((_, column),) = batches.validate([small], P, limits)  # size unknown: read and checked
    assert column == [b'"short"']
    size = len(small.SerializeToString())  # at the limit exactly, and one byte past it
    ((_, column),) = batches.validate([small], P, _limits(size).limits, raw=[small.SerializeToString()])
    assert column is None
    ((_, column),) = batches.validate([small], P, _limits(size - 1).limits, raw=[small.SerializeToString()])
    assert column == [b'"short"']
    with pytest.raises(InvalidArgument) as info:
        batches.validate([long], P, limits, raw=[long.SerializeToString()])
    assert "value 0 is 100 bytes; at most 64" in info.value.message


def test_a_push_batch_has_its_values_checked_even_when_small():
    b = pb.Batch(partition=part("p"), ticket="t", op=pb.OP_PUSH, keys=["p", "p"], values=[b"1", b""])
    with pytest.raises(InvalidArgument) as info:
        batches.validate([b], P, config().limits, raw=[b.SerializeToString()])
    assert "value 1 is missing" in info.value.message


def test_frame_bodies_stop_at_the_byte_budget_but_always_give_the_first_frame(tmp_path):
    """Replication sends what frame_bodies_from gives in one Append: bounded in bytes
    (a replica applies an Append in one step of its event loop), never empty."""
    keys = keys_in(30, 20, "fb")
    value = b'"' + b"v" * 1000 + b'"'

    async def main():
        e = await opened(tmp_path)
        for i in range(5):  # five frames of 4 records, about 4 KB each
            await e.commit_batches([batch(pb.OP_UPDATE, keys[4 * i:4 * i + 4], vals=[value] * 4, ticket=f"t{i}")],
                                   LEADER)
        out = (e.frame_bodies_from(30, 0, 1000),
               e.frame_bodies_from(30, 0, 1000, max_bytes=9000),
               e.frame_bodies_from(30, 2, 1000, max_bytes=1),
               e.frame_bodies_from(30, 0, 6, max_bytes=1 << 30))
        await e.close()
        return out

    everything, budgeted, tiny, by_records = run(main())
    sizes = [len(body) for _, _, body in everything]
    assert len(everything) == 5 and all(4000 < s < 5000 for s in sizes), sizes
    # Up to the frame that reaches the budget: 3 frames of about 4.1 KB for 9000 bytes.
    assert [(base, n) for base, n, _ in budgeted] == [(0, 4), (4, 4), (8, 4)]
    # A budget smaller than a frame still gives one (cut to start at the offset asked).
    assert [(base, n) for base, n, _ in tiny] == [(2, 2)]
    assert [(base, n) for base, n, _ in by_records] == [(0, 4), (4, 4)]


def test_frame_bodies_from_any_offset_cover_the_log_from_there_to_its_end(tmp_path):
    """frame_bodies_from finds the frame holding the offset asked (the newest first, as a
    replica that keeps up asks; else by bisection): from every offset, the frames come
    in order and cover the rest of the log exactly, the first cut to start there."""
    sizes = [3, 1, 4, 1, 5, 2]  # frames of these many records, at offsets 0, 3, 4, 8, 9, 14
    keys = keys_in(31, sum(sizes), "fo")

    async def main():
        e = await opened(tmp_path)
        empty = e.frame_bodies_from(31, 0, 1000)
        at = 0
        for i, n in enumerate(sizes):
            await e.commit_batches([batch(pb.OP_UPDATE, keys[at:at + n], vals=[b"1"] * n, ticket=f"f{i}")], LEADER)
            at += n
        out = {o: e.frame_bodies_from(31, o, 1000) for o in range(at + 1)}
        await e.close()
        return empty, at, out

    empty, end, out = run(main())
    assert empty == []
    for offset, frames in out.items():
        spans = [(base, n) for base, n, _ in frames]
        covered = [o for base, n in spans for o in range(base, base + n)]
        assert covered == list(range(offset, end)), (offset, spans)
        for base, n, body in frames:
            assert batches.count(storage_pb2.LogEntry.FromString(body)) == n, (offset, base, n)


def test_reading_from_an_offset_reads_a_few_frames_however_long_the_log(tmp_path):
    """Each replication step (frame_bodies_from) and each subscriber's catch-up (_history)
    starts at the frame holding its offset: it reads about log2(frames) frames to find
    it, not every frame before it (an islice over the index, or a scan, made a step
    of a hot partition cost time in proportion to its log)."""
    frames = 3000
    key = keys_in(32, 1, "hot")[0]

    async def main():
        e = await opened(tmp_path)
        for i in range(frames):
            await e.commit_batches([adds([key], [1], f"h{i}")], LEADER)
        counting = e.index[32] = CountingList(e.index[32])
        reads = {}
        for offset in (frames - 1, frames // 2, 5):
            counting.reads = 0
            (base, n, _), *_ = e.frame_bodies_from(32, offset, 1)
            assert (base, n) == (offset, 1)
            reads[f"replicate from {offset}"] = counting.reads
            counting.reads = 0
            end = min(offset + 2, frames)
            history = list(e._history(32, offset, end))
            assert [c.offset for c in history] == list(range(offset, end))
            reads[f"history from {offset}"] = counting.reads
        await e.close()
        return reads

    reads = run(main())
    # Bisection over 3,000 frames is 12 reads, then the frames given and the one after.
    assert all(r <= 20 for r in reads.values()), reads


def test_retention_finds_the_frames_it_drops_in_a_few_reads_however_many(tmp_path):
    """Retention cuts each partition's index at the first frame of the oldest segment
    kept: it reads about log2(frames) frames to find it, not each frame it drops (a
    scan, on the event loop), and keeps exactly the frames of the segments kept, the
    log starting at the first of them."""
    frames = 2000
    cfg = config(segment_bytes=4096, retention_s=0, retention_bytes=0)
    key = keys_in(32, 1, "hot")[0]

    async def main():
        e = await opened(tmp_path, cfg)
        for i in range(frames):
            await e.commit_batches([adds([key], [1], f"h{i}")], LEADER)
        index = list(e.index[32])
        counting = e.index[32] = CountingList(index)
        await e.take_snapshot()
        reads = counting.reads
        first_kept = min(e.wal.segments())
        kept = list(list.__iter__(e.index[32]))
        state = e.partitions[32]
        (base, _, _), *_ = e.frame_bodies_from(32, state.log_start_offset, 1)
        await e.close()
        return index, first_kept, kept, reads, state.log_start_offset, state.next_offset, base

    index, first_kept, kept, reads, log_start, next_offset, base = run(main())
    assert index[0].segment < first_kept, "retention dropped segments"
    dropped = [f for f in index if f.segment < first_kept]
    assert len(dropped) > frames // 2
    assert kept == [f for f in index if f.segment >= first_kept] and kept
    assert log_start == kept[0].base_offset == dropped[-1].base_offset + 1 == base
    assert kept[-1].base_offset + kept[-1].count == next_offset == frames
    # Bisection over 2,000 frames is 11 reads, then the first frame kept.
    assert reads <= 20, reads


def _records_beyond_reference(e: Engine, p: int, have: dict[str, int], max_records: int):
    """records_beyond as it was first written: every record of the log, then the runs."""
    state = e.partitions[p]
    found: dict[str, dict[int, pb.Record]] = {}
    for entry in e.frames_from(p, state.log_start_offset, 1 << 62):
        for rec in batches.records(entry):
            if rec.origin and rec.origin_seq > have.get(rec.origin, 0):
                found.setdefault(rec.origin, {})[rec.origin_seq] = rec
    out = []
    for origin, by_seq in found.items():
        seq = have.get(origin, 0) + 1
        while seq in by_seq:
            if len(out) >= max_records:
                return out, True
            out.append(by_seq[seq])
            seq += 1
    return out, False


def test_records_beyond_builds_only_the_batches_the_caller_lacks(tmp_path, monkeypatch):
    """A pull (anti-entropy, a healed split) asks for the records beyond the origin
    vector it has. The answer is what reading every record of the log gives; a batch
    frame the caller holds whole is passed over without making its records."""
    keys = keys_in(33, 120, "rb")

    async def main():
        e = await opened(tmp_path)
        for i in range(40):  # batch frames of 3 records, and a record frame every 4th
            await e.commit_batches([adds(keys[3 * i:3 * i + 3], [1, 2, 3], f"rb{i}")], LEADER)
            if i % 4 == 3:
                await e.commit([pb.Record(key=keys[i], op=pb.OP_COUNTER_ADD, amount=values.number_of(5))], LEADER)
        (origin, last), = e.partitions[33].origins.items()
        made = []
        records = batches.records

        def counting(entry):
            if entry.HasField("batch"):
                made.append(entry.base_offset)
            return records(entry)

        got = {}
        for have, limit in ((0, 1000), (1, 1000), (last - 7, 1000), (last - 7, 4), (last, 1000), (last - 100, 50)):
            monkeypatch.setattr(batches, "records", counting)
            made.clear()
            answer = e.records_beyond(33, {origin: have}, limit)
            monkeypatch.setattr(batches, "records", records)
            got[(have, limit)] = (answer, list(made))
            assert answer == _records_beyond_reference(e, 33, {origin: have}, limit), (have, limit)
        await e.close()
        return last, got

    last, got = run(main())
    seqs = [[r.origin_seq for r in answer[0]] for answer, _ in got.values()]
    assert seqs[2] == list(range(last - 6, last + 1)) and got[(last - 7, 4)][0][1] is True
    assert got[(last, 1000)][0] == ([], False)
    # The caller lacks the last 7 records: two batch frames and a record frame hold them.
    assert len(got[(last - 7, 1000)][1]) == 2


def _replicated_gap(e: Engine, p: int, origin: str, seq: int, key: str) -> None:
    """Appends, as a replica does, a frame of another owner holding `origin`'s record
    `seq`, which the partition cannot apply yet when it lacks the ones before it."""
    from fero.v1 import peer_pb2

    state = e.partitions[p]
    rec = pb.Record(key=key, op=pb.OP_COUNTER_ADD, amount=values.number_of(4), ticket=f"gap-{origin}-{seq}",
                    hlc=5000 + seq, origin=origin, origin_seq=seq)
    entry = storage_pb2.LogEntry(partition=p, epoch=state.epoch, base_offset=state.next_offset, owner="other",
                                 records=[rec])
    (result,), _ = e.append_replicated([peer_pb2.AppendFrame(owner_epoch=state.epoch, entry=entry)])
    assert result.ok, result


@pytest.mark.parametrize("seed", range(8))
def test_records_beyond_answers_as_reading_the_whole_log(tmp_path, seed):
    """records_beyond reads a log whose every record was applied newest first, and
    stops at the oldest record it wants; a log holding records it could not apply (a
    replica met them before the rest of their run) is read whole. Logs made the ways a
    log grows: this node's own commits (batch and record frames), merges of other
    origins' records (several origins in one frame, holes refused), and, for odd
    seeds, frames replicated with records beyond a hole, whose run a merge completes
    later. On disk, so that old frames are read back. Every answer, for any vector the
    caller has and any page size, is what reading every record gives."""
    import random

    rng = random.Random(seed)
    keys = keys_in(33, 60, "rbm")

    async def main():
        e = await opened(tmp_path)
        merged = {"o2": 0, "o3": 0}
        for i in range(160):
            kind = rng.random()
            if kind < 0.35:
                ks = rng.sample(keys, rng.randint(1, 4))
                await e.commit_batches([adds(ks, [1] * len(ks), f"b{seed}-{i}")], LEADER)
            elif kind < 0.6:
                await e.commit([pb.Record(key=rng.choice(keys), op=pb.OP_COUNTER_ADD, amount=values.number_of(2))], LEADER)
            elif seed % 2 and kind < 0.7:
                o = rng.choice(sorted(merged))
                _replicated_gap(e, 33, o, e.partitions[33].origins.get(o, 0) + rng.randint(2, 3), rng.choice(keys))
            else:
                recs = []
                for _ in range(rng.randint(1, 5)):
                    o = rng.choice(sorted(merged))
                    # Now and then a record after a hole: a merge refuses it and the rest of its origin's.
                    merged[o] += 2 if rng.random() < 0.05 else 1
                    recs.append(pb.Record(key=rng.choice(keys), op=pb.OP_COUNTER_ADD, amount=values.number_of(3),
                                          ticket=f"m{seed}-{o}-{merged[o]}", hlc=1000 + i, origin=o, origin_seq=merged[o]))
                e.recommit(33, recs, e.partitions[33].epoch)
                merged = {o: e.partitions[33].origins.get(o, 0) for o in merged}
        state = e.partitions[33]
        held, gap_end, log_start = dict(state.origins), state.gap_end, state.log_start_offset
        answers = []
        for _ in range(40):
            have = {o: rng.choice([0, rng.randint(0, seq + 2), seq, seq - 1]) for o, seq in held.items() if rng.random() < 0.8}
            if rng.random() < 0.2:
                have["elsewhere"] = 7
            limit = rng.choice([1, 3, 10, 10_000])
            answers.append((have, limit, e.records_beyond(33, have, limit), _records_beyond_reference(e, 33, have, limit)))
        await e.close()
        return held, gap_end > log_start, answers

    held, gaps_logged, answers = run(main())
    assert len(held) == 3  # this node's origin and both merged ones
    assert gaps_logged == bool(seed % 2)
    assert any(got[0] for _, _, got, _ in answers) and any(got[1] for _, _, got, _ in answers)
    for have, limit, got, want in answers:
        assert got == want, (have, limit)


def test_records_beyond_gives_a_record_the_log_holds_ahead_of_the_rest_of_its_run(tmp_path):
    """A replica logged O:2 before it had O:1 (it could not apply it), and as owner
    merged O:1 later: its log holds O:2 before O:1. A caller that lacks both gets
    both, in order; read from the newest frame back, O:1 seemed to end the run."""

    async def main():
        e = await opened(tmp_path)
        (key,) = keys_in(33, 1, "gap")
        await e.commit([pb.Record(key=key, op=pb.OP_COUNTER_ADD, amount=values.number_of(1))], LEADER)
        _replicated_gap(e, 33, "O", 2, key)
        e.recommit(33, [pb.Record(key=key, op=pb.OP_COUNTER_ADD, amount=values.number_of(5), ticket="o1", hlc=900,
                                  origin="O", origin_seq=1)], e.partitions[33].epoch)
        got = e.records_beyond(33, {}, 100)
        await e.close()
        return got, e.partitions[33].gap_end

    (records, more), gap_end = run(main())
    assert [(r.origin, r.origin_seq) for r in records if r.origin == "O"] == [("O", 1), ("O", 2)] and not more
    assert gap_end == 2  # the frame at offset 1


def test_where_a_log_may_hold_unapplied_records_survives_a_snapshot_and_a_restart(tmp_path):
    """gap_end goes into snapshots; a snapshot written before it was kept says nothing,
    so all of the log before it counts as such."""
    from fero.partition import PartitionState

    async def main():
        e = await opened(tmp_path)
        (key,) = keys_in(33, 1, "gap")
        await e.commit([pb.Record(key=key, op=pb.OP_COUNTER_ADD, amount=values.number_of(1))], LEADER)
        _replicated_gap(e, 33, "O", 2, key)
        await e.commit([pb.Record(key=key, op=pb.OP_COUNTER_ADD, amount=values.number_of(1))], LEADER)
        await e.take_snapshot()
        await e.close()
        e = await opened(tmp_path)
        after = e.partitions[33].gap_end, e.partitions[33].next_offset
        await e.close()
        return after

    (gap_end, next_offset) = run(main())
    assert (gap_end, next_offset) == (2, 3)
    older = PartitionState(33)
    ps = storage_pb2.PartitionSnapshot(partition=33, next_offset=40)
    older.load_snapshot(ps)
    assert older.gap_end == 40
    ps.gap_end = 0
    older.load_snapshot(ps)
    assert older.gap_end == 0


def test_records_beyond_reads_back_only_to_the_oldest_record_the_caller_lacks(tmp_path, monkeypatch):
    """A pull after a failover lacks the newest records of a long log: it reads those
    frames, not the whole partition log."""

    async def main():
        e = await opened(tmp_path)
        key = keys_in(33, 1, "tail")[0]
        for _ in range(1500):
            await e.commit([pb.Record(key=key, op=pb.OP_COUNTER_ADD, amount=values.number_of(1))], LEADER)
        (origin, last), = e.partitions[33].origins.items()
        read = []
        body = e._frame_body
        monkeypatch.setattr(e, "_frame_body", lambda p, fr, start=0: read.append(fr.base_offset) or body(p, fr, start))
        got, more = e.records_beyond(33, {origin: last - 3}, 10_000)
        await e.close()
        return last, got, more, read

    last, got, more, read = run(main())
    assert [r.origin_seq for r in got] == [last - 2, last - 1, last] and not more
    assert read == [1499, 1498, 1497]


@pytest.mark.parametrize("partitions", [256, 128, 2, 1, 100, 1024, 65536])
def test_partitions_of_is_the_rings_partition_of_every_key(partitions: int) -> None:
    """batches.partitions_of takes shortcuts (the digest's low byte up to 256, C-level
    maps); it must give what fero.ring.partition_of gives, for bare keys and paths."""
    keys = [f"k{i}" for i in range(5000)] + [f"doc{i}.a.b" for i in range(1000)] + ["ü-ñ-中", "x" * 300]
    want = [partition_of(partition_key(k), partitions) for k in keys]
    assert batches.partitions_of(keys, partitions) == want
