"""Bad input never kills a node nor loses a committed record, and says what was wrong.

Every case: a real node on 127.0.0.1 port 0 with some committed state; a bad request
through raw generated stubs (so nothing hides the status); the exact status code and a
message that names the problem; then the node still serves and the state is intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc
import pytest

import fero
from fero.config import Config, LimitsConfig
from fero.errors import Expired, FailedPrecondition, InvalidArgument
from fero.v1 import changelog_pb2, changelog_pb2_grpc, counters_pb2, counters_pb2_grpc, types_pb2 as pb

CODE = grpc.StatusCode
LIMITS = LimitsConfig(max_key_bytes=64, max_ticket_bytes=32, max_batch_records=50,
                      max_message_bytes=64 * 1024, max_value_bytes=32 * 1024)
CONFIG = Config(limits=LIMITS)


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.counters = counters_pb2_grpc.CountersStub(channel)
        self.changelog = changelog_pb2_grpc.ChangelogStub(channel)


@contextlib.asynccontextmanager
async def serving(**kwargs: Any) -> AsyncIterator[tuple[fero.Node, Stubs]]:
    node = fero.Node(port=0, config=CONFIG, **kwargs)
    await node.start()
    try:
        async with grpc.aio.insecure_channel(node.address) as ch:
            stubs = Stubs(ch)
            await seed(stubs)
            yield node, stubs
            await assert_intact(stubs)
        # A fresh connection is served too.
        async with grpc.aio.insecure_channel(node.address) as ch:
            await assert_intact(Stubs(ch))
    finally:
        await node.stop(grace_s=1.0)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 30))


def num(text: str) -> pb.Number:
    return pb.Number(text=text)


async def seed(s: Stubs) -> None:
    await s.counters.Add(counters_pb2.AddRequest(name="base", amount=pb.Number(i64=42), ticket="seed-1"))
    await s.counters.Setup(counters_pb2.SetupRequest(name="money", kind=pb.VALUE_KIND_DECIMAL))
    await s.counters.Add(counters_pb2.AddRequest(name="money", amount=num("1.50")))
    await s.changelog.Commit(changelog_pb2.CommitRequest(records=[
        pb.Record(key="doc", op=pb.OP_UPDATE, value=b'{"n":5,"l":[1]}'),
    ]))


async def assert_intact(s: Stubs) -> None:
    """The seeded values are unchanged and a normal request still works."""
    base = await s.counters.Get(counters_pb2.GetRequest(name="base"), timeout=5)
    assert (base.value.i64, base.kind) == (42, pb.VALUE_KIND_INT)
    money = await s.counters.Get(counters_pb2.GetRequest(name="money"), timeout=5)
    assert (money.value.text, money.kind) == ("1.50", pb.VALUE_KIND_DECIMAL)
    doc = await s.changelog.Read(changelog_pb2.ReadRequest(key="doc"), timeout=5)
    assert json.loads(doc.value) == {"n": 5, "l": [1]}
    # The seeding ticket is still recognised: nothing was replayed or lost.
    again = await s.counters.Add(counters_pb2.AddRequest(name="base", amount=pb.Number(i64=42), ticket="seed-1"), timeout=5)
    assert again.duplicate and again.value.i64 == 42
    after = await s.counters.Add(counters_pb2.AddRequest(name="after", amount=pb.Number(i64=1)), timeout=5)
    assert after.value.i64 >= 1


async def refused(call: Awaitable[Any], code: grpc.StatusCode, *words: str | tuple[str, ...]) -> str:
    flat = [w for x in words for w in ((x,) if isinstance(x, str) else x)]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    details = info.value.details() or ""
    for w in flat:
        assert w in details, details
    return details


def add(s: Stubs, name: str = "base", amount: pb.Number | None = pb.Number(i64=1), ticket: str = "") -> Awaitable[Any]:
    req = counters_pb2.AddRequest(name=name, ticket=ticket)
    if amount is not None:
        req.amount.CopyFrom(amount)
    return s.counters.Add(req, timeout=5)


def commit(s: Stubs, *records: pb.Record) -> Awaitable[changelog_pb2.CommitReply]:
    return s.changelog.Commit(changelog_pb2.CommitRequest(records=records), timeout=5)


CASES: list[tuple[str, Callable[[Stubs], Awaitable[Any]], grpc.StatusCode, tuple[str, ...]]] = [
    ("empty name", lambda s: add(s, name=""), CODE.INVALID_ARGUMENT, ("name", "empty")),
    ("oversized name", lambda s: add(s, name="n" * 65), CODE.INVALID_ARGUMENT, ("65 bytes", "at most 64")),
    ("oversized multibyte name", lambda s: add(s, name="é" * 33), CODE.INVALID_ARGUMENT, ("66 bytes", "at most 64")),
    ("oversized ticket", lambda s: add(s, ticket="t" * 33), CODE.INVALID_ARGUMENT, ("ticket", "33 bytes", "at most 32")),
    ("reserved ticket", lambda s: add(s, ticket="@n1/x/1"), CODE.INVALID_ARGUMENT, ("ticket", "'@'", "reserved")),
    ("missing amount", lambda s: add(s, amount=None), CODE.INVALID_ARGUMENT, ("amount is missing",)),
    ("non-numeric amount", lambda s: add(s, amount=num("ten")), CODE.INVALID_ARGUMENT, ("'ten'", "not an int")),
    ("decimal to int counter", lambda s: add(s, amount=num("1.5")), CODE.INVALID_ARGUMENT, ("'1.5'", "not an int")),
    ("float-like text to int", lambda s: add(s, amount=num("1e3")), CODE.INVALID_ARGUMENT, ("not an int",)),
    ("huge decimal exponent", lambda s: add(s, "money", num("1E+999999999")), CODE.INVALID_ARGUMENT, ("exponent", "100")),
    ("NaN to decimal", lambda s: add(s, "money", num("NaN")), CODE.INVALID_ARGUMENT, ("'NaN'", "decimal")),
    ("overlong amount", lambda s: add(s, "money", num("9" * 300)), CODE.INVALID_ARGUMENT, ("300 characters", "256")),
    ("decimal sum needing rounding", lambda s: add(s, "money", num("9" * 250 + "E+100")), None, ()),
    ("setup changing kind", lambda s: s.counters.Setup(counters_pb2.SetupRequest(name="base", kind=pb.VALUE_KIND_DECIMAL), timeout=5),
     CODE.FAILED_PRECONDITION, ("'base'", "int", "decimal")),
    ("setup unknown kind", lambda s: s.counters.Setup(counters_pb2.SetupRequest(name="x", kind=9), timeout=5),
     CODE.INVALID_ARGUMENT, ("value kind", "9")),
    ("setup negative ttl", lambda s: s.counters.Setup(counters_pb2.SetupRequest(name="x", ttl_ms=-1), timeout=5),
     CODE.INVALID_ARGUMENT, ("negative",)),
    ("get empty name", lambda s: s.counters.Get(counters_pb2.GetRequest(name=""), timeout=5), CODE.INVALID_ARGUMENT, ("empty",)),
    ("read oversized key", lambda s: s.changelog.Read(changelog_pb2.ReadRequest(key="k" * 65), timeout=5),
     CODE.INVALID_ARGUMENT, ("65 bytes",)),
    ("batch over max_batch_records",
     lambda s: commit(s, *[pb.Record(key=f"b{i}", op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=1)) for i in range(51)]),
     CODE.INVALID_ARGUMENT, ("51 records", "at most 50")),
    ("bad record names its index",
     lambda s: commit(s, pb.Record(key="ok", op=pb.OP_UPDATE, value=b"1"), pb.Record(key="", op=pb.OP_UPDATE, value=b"1")),
     CODE.INVALID_ARGUMENT, ("record 1", "empty")),
    ("message over max_message_bytes",
     lambda s: commit(s, pb.Record(key="big", op=pb.OP_UPDATE, value=b"x" * (70 * 1024))),
     CODE.RESOURCE_EXHAUSTED, ("larger than max",)),
    ("value over max_value_bytes",
     lambda s: commit(s, pb.Record(key="big", op=pb.OP_UPDATE, value=b"x" * (33 * 1024))),
     CODE.INVALID_ARGUMENT, ("value", "at most 32768")),
    ("action without handler", lambda s: commit(s, pb.Record(key="k", op=pb.OP_ACTION, action="ship")),
     CODE.UNIMPLEMENTED, ("handler", "'ship'")),
    ("action without name", lambda s: commit(s, pb.Record(key="k", op=pb.OP_ACTION)), CODE.INVALID_ARGUMENT, ("action name",)),
    ("unknown op", lambda s: commit(s, pb.Record(key="k", op=99)), CODE.INVALID_ARGUMENT, ("op 99",)),
    ("unspecified op", lambda s: commit(s, pb.Record(key="k", op=0)), CODE.INVALID_ARGUMENT, ("op 0",)),
    ("push without value", lambda s: commit(s, pb.Record(key="doc.l", op=pb.OP_PUSH)), CODE.INVALID_ARGUMENT, ("value is missing",)),
    ("subscribe to a partition that does not exist",
     lambda s: _first_event(s, changelog_pb2.SubscribeRequest(partition=100_000)), CODE.INVALID_ARGUMENT, ("partition 100000",)),
]


async def _first_event(s: Stubs, req: changelog_pb2.SubscribeRequest) -> Any:
    call = s.changelog.Subscribe(req, timeout=5)
    async for event in call:
        return event
    return None


@pytest.mark.parametrize("name, call, code, words", CASES, ids=[c[0] for c in CASES])
def test_refused_with_status_and_reason(name: str, call: Callable, code: grpc.StatusCode | None, words: tuple[str, ...]) -> None:
    async def body() -> None:
        async with serving() as (node, s):
            if code is None:  # the decimal sum case: the first add fits, the second cannot
                await call(s)
                await refused(add(s, "money", num("1E-100")), CODE.FAILED_PRECONDITION, ("significant digits",))
                big = await s.counters.Get(counters_pb2.GetRequest(name="money"))
                assert Fraction(Decimal(big.value.text)) == Fraction(3, 2) + Fraction(int("9" * 250) * 10**100)
                # Take it back out so the seeded value reads as before.
                await add(s, "money", num("-" + "9" * 250 + "E+100"))
                return
            await refused(call(s), code, *words)

    run(body)


def test_per_record_errors_leave_the_rest_of_the_batch_committed() -> None:
    async def body() -> None:
        async with serving() as (node, s):
            reply = await commit(
                s,
                pb.Record(key="doc.m", op=pb.OP_UPDATE, value=b"7"),
                pb.Record(key="doc.n", op=pb.OP_PUSH, value=b"1"),  # doc.n is a number
                pb.Record(key="base", op=pb.OP_COUNTER_ADD, amount=num("1/2")),  # not an int
                pb.Record(key="doc.p", op=pb.OP_PATCH, value=b"{nope"),  # not JSON
                pb.Record(key="c2", op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=3)),
            )
            r = reply.results
            assert [x.error_code for x in r] == [0, CODE.FAILED_PRECONDITION.value[0], CODE.INVALID_ARGUMENT.value[0],
                                                 CODE.INVALID_ARGUMENT.value[0], 0]
            assert "not a list" in r[1].error_message
            assert "not an int" in r[2].error_message
            assert "not valid JSON" in r[3].error_message
            m = await s.changelog.Read(changelog_pb2.ReadRequest(key="doc.m"))
            assert m.value == b"7"
            assert (await s.counters.Get(counters_pb2.GetRequest(name="c2"))).value.i64 == 3
            # The failed records took no offsets: the two good ones of partition "doc" are adjacent.
            p = await s.changelog.Read(changelog_pb2.ReadRequest(key="doc.p"))
            assert not p.exists
            await s.changelog.Commit(changelog_pb2.CommitRequest(records=[pb.Record(key="doc.m", op=pb.OP_REMOVE)]))

    run(body)


def test_client_surfaces_errors_as_fero_errors() -> None:
    async def body() -> None:
        async with serving() as (node, s), fero.connect(node.address, retry_for_s=1.0) as c:
            with pytest.raises(FailedPrecondition) as info:
                await c.push("doc.n", 1)
            assert "not a list" in info.value.message
            with pytest.raises(InvalidArgument) as info2:
                await c.patch("doc", b"{")  # type: ignore[arg-type]
            assert "not valid JSON" in info2.value.message
            with pytest.raises(InvalidArgument) as info3:
                await c.add("base", 1.5)  # type: ignore[arg-type]
            assert "float" in info3.value.message
            with pytest.raises(FailedPrecondition) as info4:
                await c.setup("base", "rational")
            assert type(info4.value) is FailedPrecondition and "rational" in info4.value.message

    run(body)


def test_add_to_an_expired_counter() -> None:
    async def body() -> None:
        async with serving() as (node, s):
            expire_at = int(time.time() * 1000) + 300
            await s.counters.Setup(counters_pb2.SetupRequest(name="promo", expire_at_ms=expire_at))
            assert (await add(s, "promo")).value.i64 == 1
            # Wait until the node's own clock has passed the expiry (bounded, no guessing).
            deadline = time.monotonic() + 5
            while node.clock.wall_ms() < expire_at:
                assert time.monotonic() < deadline, "the clock did not reach the expiry"
                await asyncio.sleep(max(0.001, (expire_at - node.clock.wall_ms()) / 1000))
            details = await refused(add(s, "promo"), CODE.FAILED_PRECONDITION, ("'promo'", "expired", str(expire_at)))
            await refused(s.counters.Get(counters_pb2.GetRequest(name="promo")), CODE.FAILED_PRECONDITION, ("expired",))
            await refused(s.counters.Setup(counters_pb2.SetupRequest(name="promo", expire_at_ms=0)), CODE.FAILED_PRECONDITION, ("expired",))
            async with fero.connect(node.address) as c:
                with pytest.raises(Expired):
                    await c.add("promo", 1)
            assert "expired" in details
            # The value from before the expiry is still what the log says.
            sub = s.changelog.Subscribe(changelog_pb2.SubscribeRequest(prefix="promo", default_from=changelog_pb2.SubscribeRequest.START_EARLIEST), timeout=5)
            ops = []
            async for ev in sub:
                ops += [(c.record.op, c.record.amount.i64) for c in ev.commits]
                if len(ops) >= 2:
                    break
            sub.cancel()
            assert ops == [(pb.OP_COUNTER_SETUP, 0), (pb.OP_COUNTER_ADD, 1)]

    run(body)


GARBAGE = [
    ("random bytes", os.urandom(4096)),
    ("http/1.1 request", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"),
    ("truncated http/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM"),
    ("preface then garbage frame", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64),
    ("preface then huge frame header", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff\xff\xff\x00\x00\x00\x00\x00\x01"),
    ("nothing", b""),
]


@pytest.mark.parametrize("name, payload", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_on_the_port(name: str, payload: bytes) -> None:
    def send(port: int) -> None:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(2)
                with contextlib.suppress(OSError):
                    for _ in range(100):  # bounded: read until the server closes
                        if not sock.recv(65536):
                            break
        # And one left open, half-written, while the node keeps serving.

    async def body() -> None:
        async with serving() as (node, s):
            await asyncio.to_thread(send, node.port)
            half_open = socket.create_connection(("127.0.0.1", node.port), timeout=2)
            try:
                half_open.sendall(payload[:7])
                await assert_intact(s)
            finally:
                half_open.close()

    run(body)
