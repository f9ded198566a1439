"""The columnar batch fast path through the public API: `Changelog.Commit` with
`CommitRequest.batches` against real gRPC servers on 127.0.0.1 (port 0), in-process
nodes, real `fero serve` processes (SIGKILL and restart on the same data), and a
three-node cluster (forwarding, acks=ALL, the one-hop rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

import fero
from fero import values
from fero.log import segment
from fero.testing.cluster import local_cluster
from fero.v1 import changelog_pb2, changelog_pb2_grpc, counters_pb2, counters_pb2_grpc
from fero.v1 import types_pb2 as pb

from .batches import P, keys_in, malformed, part
from .conftest import eventually

CODE = grpc.StatusCode
HOP = (("fero-hop", "1"),)


# -- helpers ----------------------------------------------------------------------------


def adds(keys: list[str], amounts: list[int], ticket: str) -> pb.Batch:
    return pb.Batch(partition=part(keys[0]), ticket=ticket, op=pb.OP_COUNTER_ADD, keys=keys, amounts=amounts)


def updates(keys: list[str], vals: list[object], ticket: str) -> pb.Batch:
    return pb.Batch(partition=part(keys[0]), ticket=ticket, op=pb.OP_UPDATE, keys=keys,
                    values=[json.dumps(v).encode() for v in vals])


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.counters = counters_pb2_grpc.CountersStub(channel)
        self.changelog = changelog_pb2_grpc.ChangelogStub(channel)

    async def commit(self, *batches: pb.Batch, records: tuple[pb.Record, ...] = (), acks: int = pb.ACKS_LEADER,
                     metadata: Any = None) -> changelog_pb2.CommitReply:
        req = changelog_pb2.CommitRequest(batches=batches, records=records, acks=acks)
        return await self.changelog.Commit(req, timeout=10, metadata=metadata)

    async def get(self, name: str, stale_ok: bool = False) -> Any:
        r = await self.counters.Get(counters_pb2.GetRequest(name=name, stale_ok=stale_ok), timeout=10)
        return values.parse_number(r.value)

    async def read(self, key: str, stale_ok: bool = False) -> Any:
        r = await self.changelog.Read(changelog_pb2.ReadRequest(key=key, stale_ok=stale_ok), timeout=10)
        return json.loads(r.value) if r.exists else None


@contextlib.asynccontextmanager
async def running(**kwargs: Any) -> AsyncIterator[tuple[fero.Node, Stubs]]:
    node = fero.Node(port=0, **kwargs)
    await node.start()
    try:
        async with grpc.aio.insecure_channel(node.address) as ch:
            yield node, Stubs(ch)
    finally:
        await node.stop(grace_s=1.0)


@contextlib.asynccontextmanager
async def stubs_at(address: str) -> AsyncIterator[Stubs]:
    async with grpc.aio.insecure_channel(address) as ch:
        yield Stubs(ch)


def run(body: Callable[[], Awaitable[None]], timeout_s: float = 45) -> None:
    asyncio.run(asyncio.wait_for(body(), timeout_s))


def same_result(a: pb.BatchResult, b: pb.BatchResult) -> None:
    assert (b.partition, b.ticket, b.base_offset) == (a.partition, a.ticket, a.base_offset)
    assert list(b.values) == list(a.values) and list(b.exact_values) == list(a.exact_values)
    assert [(x.index, x.code) for x in b.errors] == [(x.index, x.code) for x in a.errors]
    assert not b.error_code


def committed(node: fero.Node) -> int:
    return sum(s.next_offset for s in node.engine.partitions)


# -- one node -----------------------------------------------------------------------------


def test_commit_batches_returns_values_offsets_and_state_reads_back(tmp_path: Path) -> None:
    (c,) = keys_in(12, 1, "cnt")
    a, b = keys_in(12, 2, "oth")
    d1, d2 = keys_in(13, 2, "doc")

    async def body() -> None:
        async with running(data_dir=tmp_path) as (node, s):
            reply = await s.commit(adds([c, c, c], [1, 2, 3], "t1"), adds([a, b, a], [10, -4, 5], "t2"),
                                   updates([d1, d2, d1, f"{d2}.x"], [{"v": 1}, {"w": 2}, "last", [3]], "t3"))
            assert reply.coherent and not reply.results
            r1, r2, r3 = reply.batch_results
            assert (r1.partition, r1.ticket, r1.base_offset, r1.duplicate, list(r1.values)) == (12, "t1", 0, False, [1, 3, 6])
            assert (r2.partition, r2.base_offset, list(r2.values)) == (12, 3, [10, -4, 15])
            assert (r3.partition, r3.base_offset, list(r3.values)) == (13, 0, [])
            assert not any(r.errors or r.error_code for r in reply.batch_results)
            assert (await s.get(c), await s.get(a), await s.get(b)) == (6, 15, -4)
            assert await s.read(d1) == "last"
            assert await s.read(d2) == {"w": 2, "x": [3]}
            # The Python client reads the same.
            async with fero.connect(node.address) as client:
                assert (await client.get(c)).value == 6
                assert await client.read(d1) == "last"
            assert node.engine.partitions[12].next_offset == 6 and node.engine.partitions[13].next_offset == 4

    run(body)


def test_node_commit_batches_in_process() -> None:
    (c,) = keys_in(14, 1, "inproc")

    async def body() -> None:
        async with running() as (node, s):
            (r,) = await node.commit_batches([adds([c, c], [20, 22], "np-1")], pb.ACKS_LEADER)
            assert (r.partition, r.base_offset, list(r.values), r.duplicate) == (14, 0, [20, 42], False)
            (again,) = await node.commit_batches([adds([c, c], [20, 22], "np-1")], pb.ACKS_LEADER)
            assert again.duplicate
            same_result(r, again)
            assert await s.get(c) == 42

    run(body)


def test_a_repeated_batch_is_acknowledged_with_the_first_result_and_not_applied() -> None:
    c, d = keys_in(20, 2, "idem")

    async def body() -> None:
        async with running() as (node, s):
            first = (await s.commit(adds([c, d, c], [5, 6, 7], "order-1"))).batch_results[0]
            await s.commit(adds([c], [100], "order-2"))
            offsets = node.engine.partitions[20].next_offset
            again = (await s.commit(adds([c, d, c], [5, 6, 7], "order-1"))).batch_results[0]
            other = (await s.commit(adds([c], [999], "order-1"))).batch_results[0]
            assert not first.duplicate and again.duplicate and other.duplicate
            same_result(first, again)
            same_result(first, other)
            assert list(again.values) == [5, 6, 12]
            assert (await s.get(c), await s.get(d)) == (112, 6)
            assert node.engine.partitions[20].next_offset == offsets == 4

    run(body)


def test_an_expired_counter_gets_a_record_error_and_the_others_commit() -> None:
    live, past, soon = keys_in(30, 3, "bill")

    async def body() -> None:
        async with running() as (node, s), fero.connect(node.address) as client:
            # One counter expired from the start (a raw setup), one that expires soon.
            setup = await s.commit(records=(pb.Record(key=past, op=pb.OP_COUNTER_SETUP,
                                                      expire_at_ms=int(time.time() * 1000) - 60_000),))
            assert not setup.results[0].error_code, setup.results[0].error_message
            await client.setup(soon, "int", ttl_s=0.3)
            assert (await client.add(soon, 7)).value == 7

            async def soon_expired() -> bool:
                try:
                    await client.get(soon)
                except fero.FeroError as exc:
                    return exc.code is CODE.FAILED_PRECONDITION
                return False

            await eventually(soon_expired, 10, f"counter {soon} to expire")
            base = node.engine.partitions[30].next_offset
            (r,) = (await s.commit(adds([live, past, live, soon, live], [1, 2, 3, 4, 5], "bill-1"))).batch_results
            assert not r.error_code and not r.duplicate
            assert [(e.index, e.code) for e in r.errors] == [(1, 9), (3, 9)]
            assert all(e.message and "expired" in e.message for e in r.errors), [e.message for e in r.errors]
            assert r.base_offset == base
            assert list(r.values) == [1, 4, 9]
            assert node.engine.partitions[30].next_offset == base + 3, "the failed records take no offset"
            assert await s.get(live) == 9
            assert node.engine.partitions[30].peek(soon).value == 7
            assert node.engine.partitions[30].peek(past).value == 0
            # Subscribers see the three committed records at consecutive offsets.
            sub = client.subscribe(partition=30, from_offsets={30: base})
            got = []

            async def take() -> None:
                async for ch in sub:
                    got.append(ch)
                    if len(got) == 3:
                        return

            try:
                await asyncio.wait_for(take(), 10)
            finally:
                await sub.aclose()
            assert [(ch.offset, ch.key, ch.amount) for ch in got] == [(base, live, 1), (base + 1, live, 3), (base + 2, live, 5)]
            again = (await s.commit(adds([live, past, live, soon, live], [1, 2, 3, 4, 5], "bill-1"))).batch_results[0]
            assert again.duplicate
            same_result(r, again)
            assert await s.get(live) == 9

    run(body)


def test_records_and_batches_in_one_request_both_commit() -> None:
    c1, c2 = keys_in(40, 2, "mixed")
    d, d2 = keys_in(41, 2, "mdoc")

    async def body() -> None:
        async with running() as (node, s):
            reply = await s.commit(
                adds([c1, c2, c1], [1, 2, 3], "mb-1"), updates([d], [{"a": 1}], "mb-2"),
                records=(pb.Record(key=c1, op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=100), ticket="mr-1"),
                         pb.Record(key=f"{d2}.b", op=pb.OP_UPDATE, value=b"2", ticket="mr-2")),
            )
            assert len(reply.results) == 2 and len(reply.batch_results) == 2
            assert not any(r.error_code for r in reply.results)
            assert not any(r.error_code or r.errors for r in reply.batch_results)
            b1 = reply.batch_results[0]
            rec = reply.results[0]
            # The record and the batch share partition 40's offsets, in some order.
            offs = sorted([b1.base_offset + k for k in range(3)] + [rec.offset])
            assert offs == [0, 1, 2, 3], offs
            assert await s.get(c1) == 104 and await s.get(c2) == 2
            assert await s.read(d) == {"a": 1} and await s.read(d2) == {"b": 2}
            assert node.engine.partitions[40].next_offset == 4 and node.engine.partitions[41].next_offset == 2
            # Both kinds of tickets are remembered.
            again = await s.commit(adds([c1, c2, c1], [1, 2, 3], "mb-1"),
                                   records=(pb.Record(key=c1, op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=100), ticket="mr-1"),))
            assert again.results[0].duplicate and again.batch_results[0].duplicate
            assert await s.get(c1) == 104

    run(body)


# -- malformed calls ----------------------------------------------------------------------

BAD = malformed(50)
_NAMES_BATCH_1 = re.compile(r"batch(es)?\W{0,3}1\b", re.IGNORECASE)


@pytest.mark.parametrize("name,bad,words", BAD, ids=[c[0] for c in BAD])
def test_a_malformed_batch_is_invalid_argument_and_nothing_commits(name: str, bad: pb.Batch, words: tuple[str, ...]) -> None:
    (good,) = keys_in(51, 1, "good")
    (doc,) = keys_in(52, 1, "gdoc")

    async def body() -> None:
        async with running() as (node, s):
            seed = (await s.commit(adds([good], [42], "seed"), updates([doc], [{"n": 5}], "seed-doc"))).batch_results
            before = committed(node)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await s.commit(adds([good], [1], "not-yet"), bad,
                               records=(pb.Record(key=good, op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=1), ticket="rec"),))
            assert info.value.code() == CODE.INVALID_ARGUMENT, info.value.details()
            details = info.value.details() or ""
            assert _NAMES_BATCH_1.search(details), f"should name batch 1: {details!r}"
            for w in words:
                assert w.lower() in details.lower(), f"{w!r} not in {details!r}"
            # Nothing of the call committed; the node serves and its state is intact.
            assert committed(node) == before
            assert await s.get(good) == 42 and await s.read(doc) == {"n": 5}
            again = (await s.commit(adds([good], [42], "seed"))).batch_results[0]
            assert again.duplicate and again.base_offset == seed[0].base_offset
            ok = await s.commit(adds([good], [1], "not-yet"),
                                records=(pb.Record(key=good, op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=1), ticket="rec"),))
            assert not ok.batch_results[0].duplicate and not ok.results[0].duplicate
            assert await s.get(good) == 44

    run(body)


def test_a_malformed_record_beside_good_batches_commits_nothing() -> None:
    (good,) = keys_in(53, 1, "g")

    async def body() -> None:
        async with running() as (node, s):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await s.commit(adds([good], [1], "b-ok"), records=(pb.Record(key="", op=pb.OP_COUNTER_ADD,
                                                                             amount=pb.Number(i64=1)),))
            assert info.value.code() == CODE.INVALID_ARGUMENT
            assert committed(node) == 0
            assert not (await s.commit(adds([good], [1], "b-ok"))).batch_results[0].duplicate

    run(body)


# -- subscribers ------------------------------------------------------------------------


def test_subscribers_see_batch_records_as_ordinary_commits() -> None:
    c1, c2 = keys_in(60, 2, "subc")
    (d,) = keys_in(61, 1, "subd")

    async def body() -> None:
        async with running() as (node, s), fero.connect(node.address, route=False) as client:
            await s.commit(adds([c1], [1], "pre"))  # offset 0: before what the subscription asks for
            counters_sub = await client.subscribe(prefix="subc", from_offsets={60: 1})
            docs_sub = await client.subscribe(prefix=f"{d}.")
            reply = await s.commit(adds([c1, c2, c1], [2, 3, 4], "sb-1"), updates([f"{d}.x", f"{d}.y"], [1, {"z": 2}], "sb-2"))
            b1, b2 = reply.batch_results

            async def take(sub: Any, n: int) -> list[fero.Change]:
                out: list[fero.Change] = []
                async for ch in sub:
                    out.append(ch)
                    if len(out) == n:
                        return out
                return out

            got_c = await asyncio.wait_for(take(counters_sub, 3), 10)
            got_d = await asyncio.wait_for(take(docs_sub, 2), 10)
            assert [(ch.partition, ch.offset, ch.key, ch.op, ch.amount) for ch in got_c] == [
                (60, b1.base_offset, c1, "counter_add", 2), (60, b1.base_offset + 1, c2, "counter_add", 3),
                (60, b1.base_offset + 2, c1, "counter_add", 4)]
            assert b1.base_offset == 1
            assert [(ch.partition, ch.offset, ch.key, ch.op, ch.json()) for ch in got_d] == [
                (61, b2.base_offset, f"{d}.x", "update", 1), (61, b2.base_offset + 1, f"{d}.y", "update", {"z": 2})]
            assert all(ch.ticket for ch in got_c + got_d), [ch.ticket for ch in got_c + got_d]
            assert len({ch.ticket for ch in got_c}) == 3, "each record of a batch has its own ticket"
            assert all(ch.hlc for ch in got_c + got_d)
            # The history replays the same commits.
            hist = client.subscribe(partition=60, from_offsets={60: 0})
            replayed = await asyncio.wait_for(take(hist, 4), 10)
            assert [(ch.offset, ch.key, ch.amount, ch.ticket) for ch in replayed[1:]] == [
                (ch.offset, ch.key, ch.amount, ch.ticket) for ch in got_c]

    run(body)


# -- restart of a real process ------------------------------------------------------------


def test_batch_tickets_survive_sigkill_and_restart(serve, tmp_path: Path) -> None:
    c, d = keys_in(70, 2, "crash")
    (u,) = keys_in(71, 1, "cdoc")
    node = serve(tmp_path / "data")
    sent = [adds([c, d, c], [7, 8, 9], "k-1"), updates([u, u], [{"a": 1}, {"a": 2}], "k-2")]
    first: list[pb.BatchResult] = []

    async def before() -> None:
        async with stubs_at(node.address) as s:
            first.extend((await s.commit(*sent)).batch_results)
            assert list(first[0].values) == [7, 8, 16]
            assert await s.get(c) == 16

    asyncio.run(asyncio.wait_for(before(), 30))
    node.kill()  # SIGKILL
    node.start()

    async def after() -> None:
        async with stubs_at(node.address) as s:
            assert (await s.get(c), await s.get(d), await s.read(u)) == (16, 8, {"a": 2})
            again = (await s.commit(*sent)).batch_results
            assert [r.duplicate for r in again] == [True, True]
            for a, b in zip(first, again):
                same_result(a, b)
            assert (await s.get(c), await s.get(d)) == (16, 8)
            (fresh,) = (await s.commit(adds([c], [1], "k-3"))).batch_results
            assert not fresh.duplicate and fresh.base_offset == 3 and list(fresh.values) == [17]

    asyncio.run(asyncio.wait_for(after(), 30))


def test_batch_tickets_survive_a_snapshot_retention_and_sigkill(serve, tmp_path: Path) -> None:
    (c,) = keys_in(72, 1, "snap")
    (pad,) = keys_in(73, 1, "pad")
    data = tmp_path / "data"
    node = serve(data, extra_args=[
        "--constants.storage.snapshot_every_records", "20", "--constants.storage.segment_bytes", "4096",
        "--constants.storage.retention_s", "0", "--constants.storage.retention_bytes", "0"])
    sent = adds([c] * 4, [1, 2, 3, 4], "snap-1")
    first: list[pb.BatchResult] = []

    async def before() -> None:
        async with stubs_at(node.address) as s:
            first.extend((await s.commit(sent)).batch_results)
            for i in range(40):
                await s.commit(updates([pad] * 4, ["y" * 100] * 4, f"pad-{i}"))
            first_segment = segment.list_ids(data / "log")[0]

            def covered() -> bool:
                snaps = list((data / "snapshots").glob("snapshot-*.snap*")) if (data / "snapshots").exists() else []
                return bool(snaps) and first_segment not in segment.list_ids(data / "log")

            await eventually(covered, 15, "a snapshot, and retention to drop the batch's segment")

    asyncio.run(asyncio.wait_for(before(), 40))
    node.kill()
    node.start()

    async def after() -> None:
        async with stubs_at(node.address) as s:
            assert await s.get(c) == 10
            (again,) = (await s.commit(sent)).batch_results
            assert again.duplicate
            same_result(first[0], again)
            assert await s.get(c) == 10

    asyncio.run(asyncio.wait_for(after(), 30))


# -- a cluster of three -----------------------------------------------------------------


def _not_owned_by(node: fero.Node, n: int, prefix: str) -> list[str]:
    """n keys of one partition that `node` does not own."""
    p = next(p for p in range(P) if node.ring.owner(p) != node.node_id)
    return keys_in(p, n, prefix)


def test_cluster_forwards_batches_to_owners_and_acks_all_reaches_every_replica() -> None:
    async def body() -> None:
        async with local_cluster(3) as nodes:
            entry = nodes[0]
            keys = _not_owned_by(entry, 3, "fw")
            p = part(keys[0])
            owner = next(n for n in nodes if n.node_id == entry.ring.owner(p))
            # A second partition owned by the entry node itself, and a third by the other node.
            mine = keys_in(next(q for q in range(P) if entry.ring.owner(q) == entry.node_id), 1, "mine")[0]
            third_id = next(n.node_id for n in nodes if n not in (entry, owner))
            theirs = keys_in(next(q for q in range(P) if entry.ring.owner(q) == third_id), 1, "theirs")[0]

            # Every replica of p in sync, so that acks=ALL means all three.
            others = {n.node_id for n in nodes} - {owner.node_id}
            await eventually(lambda: set(owner.replicator.in_sync(p)) == others, 15, "both replicas of p in sync")

            forwards = entry.forwards
            async with stubs_at(entry.address) as s:
                reply = await s.commit(adds(keys, [1, 2, 3], "c-1"), adds([mine], [5], "c-2"), adds([theirs], [6], "c-3"),
                                       acks=pb.ACKS_ALL)
                r1, r2, r3 = reply.batch_results
                assert not any(r.error_code or r.errors for r in reply.batch_results), reply
                assert list(r1.values) == [1, 2, 3] and list(r2.values) == [5] and list(r3.values) == [6]
                assert entry.forwards > forwards, "the batch went to its owner"
                # acks=ALL: every node holds the records the moment the reply is in.
                for n in nodes:
                    state = n.engine.partitions[p]
                    assert state.next_offset >= r1.base_offset + 3, n.node_id
                    assert [state.peek(k).value for k in keys] == [1, 2, 3], n.node_id
                assert owner.engine.partitions[p].next_offset == r1.base_offset + 3
            for n in nodes:  # and each answers from its own copy
                async with stubs_at(n.address) as s:
                    assert [await s.get(k, stale_ok=True) for k in keys] == [1, 2, 3], n.node_id
                    assert await s.get(mine) == 5 and await s.get(theirs) == 6
            # A retry through another node is recognised by the owner.
            async with stubs_at(nodes[2].address) as s:
                (again,) = (await s.commit(adds(keys, [1, 2, 3], "c-1"), acks=pb.ACKS_ALL)).batch_results
                assert again.duplicate
                same_result(r1, again)
            for n in nodes:
                assert [n.engine.partitions[p].peek(k).value for k in keys] == [1, 2, 3]

    run(body, 60)


def test_cluster_replicas_converge_on_batches_with_acks_leader() -> None:
    async def body() -> None:
        async with local_cluster(3) as nodes:
            async with stubs_at(nodes[1].address) as s:
                sent = []
                for i in range(12):  # partitions across all three owners
                    ks = keys_in(100 + i * 11, 2, f"lv{i}-")
                    sent.append(adds(ks, [i, 1], f"lv-{i}"))
                reply = await s.commit(*sent)
                assert not any(r.error_code or r.errors for r in reply.batch_results), reply

            def every_copy() -> bool:
                return all(n.engine.partitions[b.partition].next_offset >= 2 for n in nodes for b in sent)

            await eventually(every_copy, 15, "every node to hold every batch")
            owners = {nodes[0].ring.owner(b.partition) for b in sent}
            assert len(owners) >= 2, "the batches went to several owners"
            for n in nodes:
                for i, b in enumerate(sent):
                    st = n.engine.partitions[b.partition]
                    assert (st.peek(b.keys[0]).value, st.peek(b.keys[1]).value) == (i, 1)

    run(body, 60)


def test_a_forwarded_batch_at_a_non_owner_is_refused_not_forwarded_again() -> None:
    async def body() -> None:
        async with local_cluster(3) as nodes:
            entry = nodes[0]
            keys = _not_owned_by(entry, 2, "hop")
            p = part(keys[0])
            before = [n.engine.partitions[p].next_offset for n in nodes]
            forwards = entry.forwards
            async with stubs_at(entry.address) as s:
                reply = await s.commit(adds(keys, [1, 1], "hop-1"), metadata=HOP)
                (r,) = reply.batch_results
                assert r.error_code == CODE.UNAVAILABLE.value[0], r
                assert "not owner" in r.error_message, r.error_message
                assert (r.partition, r.ticket) == (p, "hop-1")
                assert entry.forwards == forwards
                assert [n.engine.partitions[p].next_offset for n in nodes] == before, "nothing committed"
                # Without the hop marker it is forwarded and commits, once.
                (ok,) = (await s.commit(adds(keys, [1, 1], "hop-1"))).batch_results
                assert not ok.error_code and not ok.duplicate and list(ok.values) == [1, 1]
            # Node.commit_batches with forwarded=True says the same.
            (again,) = await entry.commit_batches([adds(keys, [1, 1], "hop-2")], pb.ACKS_LEADER, forwarded=True)
            assert again.error_code == 14 and "not owner" in again.error_message

    run(body, 60)


def test_a_batch_retried_after_its_owner_left_is_a_duplicate_at_the_new_owner() -> None:
    """The replicas keep a batch's ticket and result: a retry after failover is answered
    with the first result and not applied again."""

    async def body() -> None:
        async with local_cluster(3) as nodes:
            leaver = nodes[2]
            p = next(q for q in range(P) if leaver.ring.owner(q) == leaver.node_id)
            keys = keys_in(p, 3, "fo")
            others = {n.node_id for n in nodes[:2]}
            await eventually(lambda: set(leaver.replicator.in_sync(p)) == others, 15, "both replicas of p in sync")
            async with stubs_at(nodes[0].address) as s:
                (first,) = (await s.commit(adds(keys, [3, 4, 5], "fo-1"), acks=pb.ACKS_ALL)).batch_results
                assert not first.error_code and list(first.values) == [3, 4, 5]
                await leaver.stop()
                await eventually(lambda: all(len(n.ring) == 2 for n in nodes[:2]), 30, "the ring to drop the leaver")
                retried: list[pb.BatchResult] = []

                async def retry() -> bool:
                    (r,) = (await s.commit(adds(keys, [3, 4, 5], "fo-1"), acks=pb.ACKS_ALL)).batch_results
                    if r.error_code == CODE.UNAVAILABLE.value[0]:  # the partition is still moving
                        return False
                    retried.append(r)
                    return True

                await eventually(retry, 30, "the new owner to answer")
                (again,) = retried
                assert again.duplicate, again
                same_result(first, again)
                for n in nodes[:2]:
                    assert [n.engine.partitions[p].peek(k).value for k in keys] == [3, 4, 5], n.node_id

    run(body, 90)


def test_values_sent_through_the_commit_stream_stay_unread_on_owner_and_replicas() -> None:
    """The Python client's producer sends batches on the commit stream, whose bytes the
    server hands on: the owner stores a bulk UPDATE's values as its logged batch holds
    them, and so does every replica (each with a frame of its own), and all of them
    read back right."""
    async def body() -> None:
        async with local_cluster(3) as nodes:
            p = 77
            owner = next(n for n in nodes if n.node_id == nodes[0].ring.owner(p))
            others = {n.node_id for n in nodes} - {owner.node_id}
            await eventually(lambda: set(owner.replicator.in_sync(p)) == others, 15, "both replicas of p in sync")
            keys = keys_in(p, 40, "lazy")
            async with fero.connect(owner.address) as c:
                async with c.producer("all") as prod:
                    for i, k in enumerate(keys):
                        await prod.update(k, {"i": i})
                assert prod.acked == 40
                kept = {}
                for n in nodes:
                    runs = {id(d): d for k in keys if (d := n.engine.partitions[p].documents.docs[k]).__class__.__name__ == "_Run"}
                    # (_raws, not raws: the property would parse the run it looks at.)
                    kept[n.node_id] = [(not isinstance(r._raws, list), r.batch is not None) for r in runs.values()]
                    if n is owner:  # it keeps the bytes it logged, unparsed until read
                        kept["owner logged bytes"] = [isinstance(r.batch, memoryview) for r in runs.values()]
            for n in nodes:  # (after the look above: a read makes a document a Doc of its own)
                async with stubs_at(n.address) as s:
                    assert [await s.read(k, stale_ok=True) for k in keys] == [{"i": i} for i in range(40)], n.node_id
            assert all(kept.pop("owner logged bytes")), kept
            assert all(v and all(a and b for a, b in v) for v in kept.values()), kept

    run(body, 60)
