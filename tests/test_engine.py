"""The commit engine on real files: commits, tickets, restart, snapshots, retention,
compaction, subscriptions."""

import asyncio
import dataclasses
import threading
from decimal import Decimal

import pytest

from fero import values
from fero.clock import ManualClock
from fero.config import Config, StorageConfig
from fero.engine import Engine
from fero.errors import OutOfRange, ResourceExhausted
from fero.log import segment
from fero.subscriptions import Subscription
from fero.v1 import types_pb2

LEADER = types_pb2.ACKS_LEADER


def run(coro):
    return asyncio.run(coro)


def add(name, amount, ticket=""):
    return types_pb2.Record(key=name, op=types_pb2.OP_COUNTER_ADD, amount=values.number_of(amount), ticket=ticket)


def config(**storage):
    return Config(storage=dataclasses.replace(StorageConfig(), **storage)).validate()


async def opened(tmp_path, cfg=None, clock=None):
    e = Engine(cfg or config(), clock or ManualClock(), "n1", tmp_path)
    e.open()
    e.start()
    return e


def test_commit_assigns_consecutive_offsets_per_partition_and_returns_values(tmp_path):
    async def main():
        e = await opened(tmp_path)
        results = await e.commit([add("a", 1), add("a", 2), add("b", 5), add("a", 3)], LEADER)
        await e.close()
        return e, results

    e, results = run(main())
    assert [r.value.i64 for r in results] == [1, 3, 5, 6]
    by_partition = {}
    for r in results:
        by_partition.setdefault(r.partition, []).append(r.offset)
    assert all(offs == list(range(len(offs))) for offs in by_partition.values()), by_partition
    assert results[0].partition == e.partition_for("a") and results[2].partition == e.partition_for("b")


def test_repeated_ticket_is_acknowledged_with_the_first_result_and_not_applied(tmp_path):
    async def main():
        e = await opened(tmp_path)
        first = await e.commit([add("c", 10, "t1")], LEADER)
        again = await e.commit([add("c", 10, "t1")], LEADER)
        both_in_one = await e.commit([add("c", 1, "t2"), add("c", 1, "t2")], LEADER)
        value = e.get_counter("c")[0]
        await e.close()
        return first, again, both_in_one, value

    first, again, both, value = run(main())
    assert not first[0].duplicate and again[0].duplicate
    assert again[0].value.i64 == first[0].value.i64 == 10
    assert again[0].offset == first[0].offset
    assert [r.duplicate for r in both] == [False, True]
    assert value == 11


def test_restart_replays_the_log_and_remembers_tickets(tmp_path):
    async def before():
        e = await opened(tmp_path)
        for i in range(50):
            await e.commit([add(f"k{i % 7}", i, f"t{i}")], LEADER)
        await e.close()
        return {f"k{j}": e.get_counter(f"k{j}")[0] for j in range(7)}

    async def after():
        e = await opened(tmp_path)
        dup = await e.commit([add("k3", 1000, "t3")], LEADER)
        vals = {f"k{j}": e.get_counter(f"k{j}")[0] for j in range(7)}
        await e.close()
        return vals, dup

    expected = run(before())
    assert expected == {f"k{j}": sum(i for i in range(50) if i % 7 == j) for j in range(7)}
    got, dup = run(after())
    assert got == expected
    assert dup[0].duplicate


def test_snapshot_bounds_replay_and_keeps_state(tmp_path):
    cfg = config(segment_bytes=4096, retention_s=0, retention_bytes=0)

    async def before():
        e = await opened(tmp_path, cfg)
        await e.commit([add("x", 1, f"t{i}") for i in range(500)], LEADER)
        await e.commit([types_pb2.Record(key="doc.a", op=types_pb2.OP_UPDATE, value=b'{"v":1}')], LEADER)
        await e.take_snapshot()
        await e.commit([add("x", 1, "after")], LEADER)
        await e.close()

    async def after():
        e = await opened(tmp_path, cfg)
        stats = e.statistics()
        dup = await e.commit([add("x", 1, "t7")], LEADER)
        value, doc = e.get_counter("x")[0], e.read("doc")
        await e.close()
        return stats, dup, value, doc

    run(before())
    stats, dup, value, doc = run(after())
    assert value == 501
    assert doc == b'{"a":{"v":1}}'
    assert stats.replayed_records == 1, "only the record after the snapshot is replayed"
    assert dup[0].duplicate, "tickets survive through the snapshot"


def test_a_snapshot_builds_its_messages_off_the_event_loop_from_the_cut(tmp_path, monkeypatch):
    """The loop takes only the cut (copies); the partition messages, most of a large
    state's cost, are built in the writer's thread. Writes that land meanwhile are not
    in this snapshot: a restart replays them from the log, once."""
    from fero.partition import PartitionState, StateCut

    cut_on: list[int] = []
    built_on: list[int] = []
    written = threading.Event()
    cut, message = PartitionState.cut, StateCut.message

    def cutting(self):
        cut_on.append(threading.get_ident())
        return cut(self)

    def building(self):
        built_on.append(threading.get_ident())
        written.wait(10)  # built after the write below: only a cut leaves it out
        return message(self)

    monkeypatch.setattr(PartitionState, "cut", cutting)
    monkeypatch.setattr(StateCut, "message", building)

    async def before():
        e = await opened(tmp_path)
        await e.commit([add(f"c{i}", i + 1, f"t{i}") for i in range(300)], LEADER)
        await e.commit([types_pb2.Record(key="d", op=types_pb2.OP_COUNTER_SETUP, kind=types_pb2.VALUE_KIND_DECIMAL),
                        add("d", Decimal("0.5")),
                        types_pb2.Record(key="doc", op=types_pb2.OP_UPDATE, value=b'{"l":[1]}'),
                        types_pb2.Record(key="doc.l", op=types_pb2.OP_PUSH, value=b"2")], LEADER)
        snapshot = asyncio.create_task(e.take_snapshot())
        while not built_on:  # the writer's thread has started on the cut
            await asyncio.sleep(0.001)
        # A push changes the document's value in place: the cut must not see it.
        await e.commit([add("c0", 100, "during"), add("d", Decimal("0.25")),
                        types_pb2.Record(key="doc.l", op=types_pb2.OP_PUSH, value=b"3")], LEADER)
        written.set()
        await snapshot
        await e.close()
        return threading.get_ident()

    loop_thread = run(before())
    assert set(cut_on) == {loop_thread}, "the cut is taken on the loop, at the snapshot's log position"
    assert built_on and loop_thread not in built_on
    monkeypatch.undo()

    async def after():
        e = await opened(tmp_path)
        got = (e.get_counter("c0")[0], e.get_counter("c299")[0], e.get_counter("d")[0], e.read("doc"),
               e.statistics().replayed_records)
        await e.close()
        return got

    assert run(after()) == (101, 300, Decimal("0.75"), b'{"l":[1,2,3]}', 3)


def test_retention_drops_segments_a_snapshot_covers_and_moves_the_log_start(tmp_path):
    cfg = config(segment_bytes=4096, retention_s=0, retention_bytes=0)

    async def main():
        e = await opened(tmp_path, cfg)
        for i in range(60):
            await e.commit([add("r", 1, f"t{i}"), types_pb2.Record(key="r2", op=types_pb2.OP_UPDATE, value=b"x" * 200)], LEADER)
        before = segment.list_ids(tmp_path / "log")
        await e.take_snapshot()
        after = segment.list_ids(tmp_path / "log")
        p = e.partition_for("r")
        start = e.partitions[p].log_start_offset
        sub = Subscription(partition=p)
        with pytest.raises(OutOfRange, match="older than the log keeps"):
            e.subscribe(sub, {p: 0}, earliest=False)
        value = e.get_counter("r")[0]
        await e.close()
        return before, after, start, value

    before, after, start, value = run(main())
    assert len(before) > 2
    assert after == before[-1:]
    assert start > 0
    assert value == 60


@pytest.mark.parametrize("on_disk", [True, False])
def test_expired_counters_are_refused_then_compacted_and_the_name_freed(tmp_path, on_disk):
    """On disk and in memory (where the snapshot loop compacts and applies retention)."""
    clock = ManualClock()
    cfg = config(expired_grace_s=10)

    async def main():
        e = await opened(tmp_path if on_disk else None, cfg, clock)
        now = clock.wall_ms()
        await e.commit([types_pb2.Record(key="bill", op=types_pb2.OP_COUNTER_SETUP, kind=2, expire_at_ms=now + 1000)], LEADER)
        ok = await e.commit([add("bill", "1.25")], LEADER)
        clock.advance(1.0)
        refused = await e.commit([add("bill", "1.25")], LEADER)
        clock.advance(10.0)
        state = e.partitions[e.partition_for("bill")]
        held = "bill" in state.counters  # expired past its grace, but not yet compacted
        await e.take_snapshot()
        compacted = "bill" not in state.counters  # before a read, which drops it too
        gone = e.get_counter("bill")
        await e.close()
        return ok, refused, gone, held, compacted

    ok, refused, gone, held, compacted = run(main())
    assert values.parse_number(ok[0].value) == Decimal("1.25")
    assert refused[0].error_code == 9 and "expired" in refused[0].error_message
    assert gone[2] is False and held and compacted


def test_subscription_gets_history_then_live_each_commit_once_in_order(tmp_path):
    async def main():
        e = await opened(tmp_path)
        await e.commit([add("s", 1, f"a{i}") for i in range(30)], LEADER)
        p = e.partition_for("s")
        sub = Subscription(partition=p)
        e.subscribe(sub, {p: 5}, earliest=False)
        got = []

        async def read():
            async for batch in sub:
                got.extend(batch)
                if len(got) >= 45:
                    return

        reader = asyncio.create_task(read())
        await e.commit([add("s", 1, f"b{i}") for i in range(20)], LEADER)
        await asyncio.wait_for(reader, 10)
        await e.close()
        return got

    got = run(main())
    assert [c.offset for c in got] == list(range(5, 50))
    assert [c.record.ticket for c in got[:25]] == [f"a{i}" for i in range(5, 30)]


class Counting(Subscription):
    """A subscription that counts the commits handed to it live."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.handed = 0

    def deliver_live(self, entries):
        self.handed += 1
        super().deliver_live(entries)


async def take(sub, n):
    """The first n commits `sub` yields, within a deadline."""
    got = []

    async def read():
        async for batch in sub:
            got.extend(batch)
            if len(got) >= n:
                return

    await asyncio.wait_for(read(), 10)
    return got


def test_a_commit_goes_only_to_the_subscribers_of_its_partitions(tmp_path):
    """Each subscriber handed (and woken for) every commit cost a node ~3 µs per
    subscriber per frame, however few read that partition."""

    async def main():
        e = await opened(tmp_path)
        quiet, busy = e.partition_for("q"), e.partition_for("b")
        assert quiet != busy
        narrow, wide, every = Counting(partition=quiet), Counting(partition=busy), Counting(prefix="")
        for sub in (narrow, wide, every):
            e.subscribe(sub, {}, earliest=False)
        for i in range(20):
            await e.commit([add("b", 1, f"b{i}")], LEADER)
        narrow_before = narrow.handed
        await e.commit([add("b", 1, "both"), add("q", 1, "both")], LEADER)
        got = [await take(narrow, 1), await take(wide, 21), await take(every, 22)]
        await e.close()
        return quiet, busy, narrow_before, [s.handed for s in (narrow, wide, every)], got

    quiet, busy, narrow_before, handed, (narrow, wide, every) = run(main())
    assert narrow_before == 0, "a subscriber of another partition was handed the commits"
    assert handed == [1, 21, 21]
    assert [(c.partition, c.offset) for c in narrow] == [(quiet, 0)]
    assert [(c.offset, c.record.ticket) for c in wide] == [(i, f"b{i}") for i in range(20)] + [(20, "both")]
    assert [c.offset for c in every if c.partition == busy] == list(range(21))
    assert [c.offset for c in every if c.partition == quiet] == [0]


def test_a_busy_partition_does_not_push_a_subscriber_of_another_over_its_limit(tmp_path):
    """max_queued bounds the commits a subscriber is behind on, not the node's."""

    async def main():
        e = await opened(tmp_path)
        quiet = e.partition_for("q")
        assert quiet != e.partition_for("b")
        sub = Subscription(partition=quiet, max_queued=2)
        e.subscribe(sub, {}, earliest=False)
        for i in range(10):
            await e.commit([add("b", 1, f"b{i}")], LEADER)
        await e.commit([add("q", 1, "q0")], LEADER)
        first = await take(sub, 1)
        for i in range(1, 4):
            await e.commit([add("q", 1, f"q{i}")], LEADER)
        with pytest.raises(ResourceExhausted, match="fell behind"):  # its own commits still count
            await take(sub, 3)
        await e.close()
        return first

    assert [c.record.ticket for c in run(main())] == ["q0"]


def test_acks_none_returns_before_the_disk_and_still_commits(tmp_path):
    async def main():
        e = await opened(tmp_path)
        r = await e.commit([add("n", 4)], types_pb2.ACKS_NONE)
        appended_at_reply, durable_at_reply = e.wal.appended, e.wal.durable
        await e.close()
        return r, appended_at_reply, durable_at_reply

    r, appended, durable = run(main())
    assert r[0].value.i64 == 4
    assert durable < appended, "ACKS_NONE should not wait for the write"

    async def check():
        e = await opened(tmp_path)
        v = e.get_counter("n")[0]
        await e.close()
        return v

    assert run(check()) == 4


def test_a_log_cut_back_while_a_subscriber_reads_its_history_gives_a_reset(tmp_path):
    """History goes out HISTORY_BATCH commits at a time, with awaits between: the log
    may be cut back before the rest is read. The subscriber gets the reset, and the
    rest of its history stops where the log now ends."""
    from fero.subscriptions import HISTORY_BATCH
    from fero.v1 import changelog_pb2

    async def main():
        e = await opened(tmp_path)
        for i in range(HISTORY_BATCH + 100):  # a frame each
            await e.commit([add("h", 1, f"h{i}")], LEADER)
        p = e.partition_for("h")
        sub = Subscription(partition=p)
        e.subscribe(sub, {p: 0}, earliest=False)
        first = await asyncio.wait_for(sub.__anext__(), 5)
        e.truncate(p, 100)
        rest = []
        while not isinstance(rest[-1:] and rest[-1], changelog_pb2.SubscribeEvent.Reset):
            rest.append(await asyncio.wait_for(sub.__anext__(), 5))
        await e.close()
        return first, rest

    first, rest = run(main())
    assert [c.offset for c in first] == list(range(HISTORY_BATCH))
    # Nothing from the part of the log that is gone comes after the cut.
    assert rest[-1].offset == 100 and not [c for batch in rest[:-1] for c in batch if c.offset >= 100], rest


def test_a_subscriber_gets_an_explicit_reset_when_its_log_is_cut_back(tmp_path):
    """A replica whose log diverged cuts it back; its subscribers are told where."""
    from fero.v1 import changelog_pb2

    async def main():
        e = await opened(tmp_path)
        await e.commit([add("r", 1, f"t{i}") for i in range(10)], LEADER)
        p = e.partition_for("r")
        sub = Subscription(partition=p)
        e.subscribe(sub, {p: 0}, earliest=False)
        first = await asyncio.wait_for(sub.__anext__(), 5)
        e.truncate(p, 4)
        reset = await asyncio.wait_for(sub.__anext__(), 5)
        value = e.get_counter("r")[0]
        await e.close()
        return first, reset, value, e.partitions[p].next_offset

    first, reset, value, next_offset = run(main())
    assert [c.offset for c in first] == list(range(10))
    assert isinstance(reset, changelog_pb2.SubscribeEvent.Reset)
    assert (reset.partition, reset.offset) == (first[0].partition, 4)
    assert next_offset == 4
    assert value == 10, "cutting the log keeps the state: records are identified, not replayed"


def test_a_cut_below_where_the_log_starts_moves_its_start_down(tmp_path):
    """A replica whose log began at an install (no frame below it) is cut back further
    by its owner: the frames it takes from the cut on are readable, not "older than
    the log keeps"."""

    async def main():
        owner = await opened(tmp_path / "owner")
        await owner.commit([add("r", 1, f"t{i}") for i in range(10)], LEADER)
        p = owner.partition_for("r")
        replica = await opened(tmp_path / "replica")
        replica.install(owner.partitions[p].to_snapshot())
        assert replica.partitions[p].log_start_offset == 10
        replica.truncate(p, 4)
        state = replica.partitions[p]
        at_cut = (state.log_start_offset, state.next_offset)
        [r] = await replica.commit([add("r", 5, "after")], LEADER)
        frames = replica.frames_from(p, 4, 100)
        digest = replica.digest(p, False)
        await owner.close()
        await replica.close()
        return at_cut, r, frames, digest

    at_cut, r, frames, digest = run(main())
    assert at_cut == (4, 4)
    assert r.offset == 4 and r.value.i64 == 15
    assert [(f.base_offset, len(f.records) or len(f.batch.keys)) for f in frames] == [(4, 1)]
    assert digest.log_start_offset <= digest.next_offset == 5
