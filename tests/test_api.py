"""The public API against a real in-process gRPC server on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc
import pytest

import fero
from fero.errors import FailedPrecondition
from fero.v1 import changelog_pb2, changelog_pb2_grpc, counters_pb2, counters_pb2_grpc, types_pb2

from .conftest import running_node

TIMEOUT_S = 10.0

def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 45))


async def take(agen: AsyncIterator[fero.Change], n: int) -> list[fero.Change]:
    """The next n changes, or TimeoutError after TIMEOUT_S."""
    out: list[fero.Change] = []

    async def collect() -> None:
        async for ch in agen:
            out.append(ch)
            if len(out) == n:
                return

    await asyncio.wait_for(collect(), TIMEOUT_S)
    return out


def test_counters_of_every_kind(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_node(data_dir=tmp_path) as node, fero.connect(node.address) as c:
            await c.setup("cents", "int")
            await c.setup("eur", fero.Kind.DECIMAL)
            await c.setup("share", "rational")
            assert (await c.add("cents", 2**62)).value == 2**62
            r = await c.add("cents", 2**62)  # crosses 2^63: travels as text
            assert r.value == 2**63 and r.coherent and not r.duplicate
            for a in ["0.10", Decimal("0.20"), 3]:
                await c.add("eur", a)
            for a in [Fraction(1, 3), "1/6", 1]:
                await c.add("share", a)
            cents, eur, share = await c.get("cents"), await c.get("eur"), await c.get("share")
            assert (cents.value, cents.kind, cents.exists) == (2**63, fero.Kind.INT, True)
            assert (eur.value, eur.kind) == (Decimal("3.30"), fero.Kind.DECIMAL)
            assert str(eur.value) == "3.30"  # the exact digits, not 3.3 or 3.2999
            assert (share.value, share.kind) == (Fraction(3, 2), fero.Kind.RATIONAL)
            nothing = await c.get("never-added")
            assert (nothing.value, nothing.exists) == (0, False)
            # An add without setup makes an int counter.
            await c.add("implicit", -5)
            assert (await c.get("implicit")).kind is fero.Kind.INT
            with pytest.raises(fero.FeroError) as info:
                await c.setup("eur", "int")
            assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
            assert (await c.get("eur")).kind is fero.Kind.DECIMAL

    run(body)


def test_repeated_ticket_is_acknowledged_not_applied() -> None:
    async def body() -> None:
        async with running_node() as node, fero.connect(node.address) as c:
            first = await c.add("n", 5, ticket="order-1")
            await c.add("n", 10, ticket="order-2")
            again = await c.add("n", 5, ticket="order-1")
            assert again.duplicate and not first.duplicate
            assert (again.value, again.offset, again.partition) == (first.value, first.offset, first.partition) == (5, 0, first.partition)
            # Even with another amount, the ticket decides: nothing is applied.
            again2 = await c.add("n", 999, ticket="order-1")
            assert again2.duplicate and again2.value == 5
            assert (await c.get("n")).value == 15
            # Within one batch too.
            recs = [c.record(types_pb2.OP_COUNTER_ADD, "m", amount=1, ticket="same") for _ in range(3)]
            results = await c.commit(recs)
            assert [r.duplicate for r in results] == [False, True, True]
            assert {r.offset for r in results} == {results[0].offset}
            assert (await c.get("m")).value == 1
            # A keyed op with a repeated ticket is not applied twice either.
            await c.push("doc.l", 1, ticket="p1")
            await c.push("doc.l", 1, ticket="p1")
            assert await c.read("doc.l") == [1]

    run(body)


def test_keyed_ops() -> None:
    async def body() -> None:
        async with running_node() as node, fero.connect(node.address) as c:
            await c.update("user.42.name", "Ada")
            await c.update("user.42.tags", ["a"])
            await c.push("user.42.tags", "b")
            await c.push("user.42.log.events", {"e": 1})  # creates the intermediate objects
            assert await c.add_at("user.42.visits", 3) == 3
            assert await c.add_at("user.42.visits", 2**70) == 3 + 2**70
            await c.patch("user.42", {"name": None, "lang": "en"})
            assert await c.read("user.42") == {
                "tags": ["a", "b"], "log": {"events": [{"e": 1}]}, "visits": 3 + 2**70, "lang": "en",
            }
            await c.remove("user.42.tags")
            assert await c.read("user.42.tags") is None
            assert await c.read("user.42.lang") == "en"
            assert await c.read("nobody") is None
            # Bare-key UPDATE with bytes: stored as given, read back byte for byte.
            await c.update("blob", b'{ "spaced" : true }')
            assert await c.read_raw("blob") == b'{ "spaced" : true }'
            await c.remove("user")
            assert await c.read("user.42") is None

    run(body)


def test_update_to_json_null_reads_back_as_null() -> None:
    async def body() -> None:
        async with running_node() as node, fero.connect(node.address) as c:
            await c.update("cfg.x", 1)
            await c.update("cfg", None)
            assert await c.read_raw("cfg") == b"null"
            assert await c.read("cfg") is None

    run(body)


@pytest.mark.parametrize("asynchronous", [True, False])
def test_custom_action_reply_and_detached(asynchronous: bool) -> None:
    """A handler is a coroutine function, or a plain function."""
    seen: list[fero.Action] = []

    async def body() -> None:
        done = asyncio.Event()

        def plain(action: fero.Action) -> bytes:
            seen.append(action)
            if action.action == "later":
                done.set()
            return b"shipped:" + action.payload

        async def coroutine(action: fero.Action) -> bytes:
            await asyncio.sleep(0)
            return plain(action)

        handler = coroutine if asynchronous else plain

        async with running_node(handler=handler) as node, fero.connect(node.address) as c:
            reply = await c.action("order.7", "ship", b"box", acks="reply")
            assert reply == b"shipped:box"
            assert (seen[0].key, seen[0].action, seen[0].payload) == ("order.7", "ship", b"box")
            reply = await c.action("order.8", "ship", b"x", acks=fero.Acks.REPLY)
            assert reply == b"shipped:x"
            # With acks=leader the commit is acknowledged; the handler runs after.
            assert await c.action("order.9", "later", b"", acks="leader") == b""
            await asyncio.wait_for(done.wait(), TIMEOUT_S)
            assert [a.action for a in seen] == ["ship", "ship", "later"]
            # A repeated ticket with acks=reply does not run the handler again.
            await c.action("order.10", "ship", b"1", ticket="act-1")
            await c.action("order.10", "ship", b"1", ticket="act-1")
            assert len(seen) == 4

    run(body)


@pytest.mark.parametrize(
    "acks", ["none", "leader", "all", "reply", fero.Acks.NONE, fero.Acks.LEADER, fero.Acks.ALL, fero.Acks.REPLY, "LEADER"]
)
def test_acks_levels(acks: Any) -> None:
    async def body() -> None:
        async with running_node() as node, fero.connect(node.address) as c:
            for i in range(5):
                await c.add("n", 1, acks=acks)
            await c.update("k.x", 1, acks=acks)
            # After the last write of the session any level has applied everything.
            assert (await c.get("n")).value == 5
            assert await c.read("k.x") == 1

    run(body)


def test_pipeline_of_10000_adds(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_node(data_dir=tmp_path) as node, fero.connect(node.address) as c:
            await c.setup("eur", "decimal")
            batches: list[int] = []
            async with c.pipeline(acks="leader", batch_size=500, max_in_flight=4,
                                  on_batch=lambda recs, res: batches.append(len(res))) as p:
                for i in range(10_000):
                    await p.add("visits", 1 if i % 2 else 2)
                    if i % 1000 == 0:
                        await p.add("eur", "0.01")
            assert len(p.results) == 10_010
            assert not any(r.error_code for r in p.results)
            assert sum(batches) == 10_010
            assert (await c.get("visits")).value == 15_000
            assert (await c.get("eur")).value == Decimal("0.10")
            offsets = sorted(r.offset for r in p.results if r.partition == p.results[0].partition)
            assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))

    run(body)


def test_subscribe_prefix_history_then_live() -> None:
    async def body() -> None:
        async with running_node() as node, fero.connect(node.address) as c:
            for i in range(5):
                await c.update(f"user.{i}.name", f"u{i}")
                await c.add(f"other{i}", 1)
            sub = c.subscribe(prefix="user.", earliest=True)
            try:
                history = await take(sub, 5)
                assert [ch.key for ch in history] == [f"user.{i}.name" for i in range(5)]
                assert [ch.json() for ch in history] == [f"u{i}" for i in range(5)]
                for i in range(5, 10):
                    await c.add(f"unrelated{i}", 1)
                    await c.push(f"user.{i}.events", i)
                live = await take(sub, 5)
                assert [(ch.key, ch.op, ch.json()) for ch in live] == [(f"user.{i}.events", "push", i) for i in range(5, 10)]
                seen = history + live
                assert len({ch.ticket for ch in seen}) == 10
                assert [ch.offset for ch in seen] == sorted(ch.offset for ch in seen)
                assert len({ch.partition for ch in seen}) == 1
            finally:
                await sub.aclose()

    run(body)


def test_subscribe_partition_and_all_in_offset_order() -> None:
    async def body() -> None:
        async with running_node() as node, fero.connect(node.address) as c:
            first = await c.add("a", 1)
            p = first.partition
            names = ["a"] + [f"n{i}" for i in range(200)]
            for n in names[1:]:
                await c.add(n, 1)
            in_p = [n for n in names if node.engine.partition_for(n) == p]
            by_partition = c.subscribe(partition=p, earliest=True)
            everything = c.subscribe(prefix="", earliest=True)
            now_only = c.subscribe(prefix="")
            try:
                hist = await take(by_partition, len(in_p))
                assert [ch.key for ch in hist] == in_p
                assert [ch.offset for ch in hist] == list(range(len(in_p)))
                all_hist = await take(everything, len(names))
                assert sorted(ch.key for ch in all_hist) == sorted(names)
                last: dict[int, int] = {}
                for ch in all_hist:
                    assert ch.offset == last.get(ch.partition, -1) + 1  # no gap, no repeat
                    last[ch.partition] = ch.offset
                # Live: each stream sees the new commit exactly once.
                await c.add("a", 1)
                (live_p,) = await take(by_partition, 1)
                (live_all,) = await take(everything, 1)
                assert (live_p.key, live_p.offset) == (live_all.key, live_all.offset) == ("a", len(in_p))
                assert live_p.amount == 1 and live_p.op == "counter_add"
                # START_NOW: no history. The stream is registered some time after its
                # first iteration, so commit ticks until one arrives (bounded).
                first_now = asyncio.ensure_future(take(now_only, 1))
                deadline = asyncio.get_running_loop().time() + TIMEOUT_S
                tick = 0
                while not first_now.done():
                    assert asyncio.get_running_loop().time() < deadline, "START_NOW stream got nothing"
                    tick += 1
                    await c.add(f"tick{tick}", 1)
                    await asyncio.wait([first_now], timeout=0.05)
                (live_now,) = first_now.result()
                assert live_now.key.startswith("tick")
            finally:
                for s in (by_partition, everything, now_only):
                    await s.aclose()

    run(body)


def test_sync_facade_from_a_plain_thread() -> None:
    outcome: dict[str, Any] = {}

    def work(address: str) -> None:
        with fero.connect_sync(address) as c:
            outcome["add"] = c.add("sync", 2).value
            c.add("sync", "3")
            c.update("s.k", {"v": 1})
            outcome["get"] = c.get("sync").value
            outcome["read"] = c.read("s.k")
            outcome["thread"] = threading.current_thread().name
            try:
                c.setup("sync", "decimal")
            except fero.FeroError as exc:
                outcome["error"] = exc

    async def body() -> None:
        async with running_node() as node:
            await asyncio.to_thread(work, node.address)
            async with fero.connect(node.address) as c:  # what the thread wrote, seen from here
                assert (await c.get("sync")).value == 5

    run(body)
    assert outcome["add"] == 2 and outcome["get"] == 5 and outcome["read"] == {"v": 1}
    assert outcome["thread"] != threading.main_thread().name
    assert isinstance(outcome["error"], FailedPrecondition)


def test_setup_with_unspecified_kind_keeps_the_counters_kind() -> None:
    """types.proto: VALUE_KIND_UNSPECIFIED in requests means "int, unless the counter
    says otherwise", so a setup that only moves the expiry must work on a decimal counter."""

    async def body() -> None:
        async with running_node() as node, grpc.aio.insecure_channel(node.address) as ch:
            stub = counters_pb2_grpc.CountersStub(ch)
            await stub.Setup(counters_pb2.SetupRequest(name="eur", kind=types_pb2.VALUE_KIND_DECIMAL))
            await stub.Add(counters_pb2.AddRequest(name="eur", amount=types_pb2.Number(text="1.50")))
            reply = await stub.Setup(counters_pb2.SetupRequest(name="eur", expire_at_ms=4_000_000_000_000))
            assert reply.kind == types_pb2.VALUE_KIND_DECIMAL
            got = await stub.Get(counters_pb2.GetRequest(name="eur"))
            assert (got.kind, got.value.text, got.expire_at_ms) == (types_pb2.VALUE_KIND_DECIMAL, "1.50", 4_000_000_000_000)

    run(body)


def test_raw_stub_commit_and_read() -> None:
    async def body() -> None:
        async with running_node() as node, grpc.aio.insecure_channel(node.address) as ch:
            log = changelog_pb2_grpc.ChangelogStub(ch)
            recs = [types_pb2.Record(key="k", op=types_pb2.OP_UPDATE, value=b'{"a":1}'),
                    types_pb2.Record(key="k.a", op=types_pb2.OP_ADD, amount=types_pb2.Number(i64=2))]
            reply = await log.Commit(changelog_pb2.CommitRequest(records=recs, acks=types_pb2.ACKS_LEADER))
            assert reply.coherent
            assert [r.offset for r in reply.results] == [0, 1]
            assert reply.results[1].value.i64 == 3
            assert all(r.ticket.startswith("@") for r in reply.results)  # node-assigned
            read = await log.Read(changelog_pb2.ReadRequest(key="k"))
            assert (read.exists, read.value) == (True, b'{"a":3}')

    run(body)
