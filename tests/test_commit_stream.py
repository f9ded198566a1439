"""`Changelog.CommitStream`: many commits over one long-lived stream, each request's id
repeated in its reply. Real gRPC servers on 127.0.0.1 (port 0): an in-process node, and
a real `fero serve` process SIGKILLed and restarted on the same data and port.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

import fero
import fero.client
from fero import values
from fero.errors import DeadlineExceeded, FeroError, InvalidArgument, Unavailable
from fero.v1 import changelog_pb2, changelog_pb2_grpc
from fero.v1 import types_pb2 as pb

from .conftest import eventually, running_node

CODE = grpc.StatusCode

def run(body: Callable[[], Awaitable[None]], timeout_s: float = 30) -> None:
    asyncio.run(asyncio.wait_for(body(), timeout_s))


class _Counted(fero.client._CommitSession):
    """The client's CommitStream session, counted (the behaviour is unchanged)."""

    made: list["_Counted"] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _Counted.made.append(self)


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[_Counted]:
    _Counted.made = []
    monkeypatch.setattr(fero.client, "_CommitSession", _Counted)
    return _Counted.made


def add_req(id: int, *records: pb.Record, acks: int = pb.ACKS_LEADER) -> changelog_pb2.CommitStreamRequest:
    return changelog_pb2.CommitStreamRequest(id=id, commit=changelog_pb2.CommitRequest(records=records, acks=acks))


def counter_add(key: str, amount: int, ticket: str) -> pb.Record:
    return pb.Record(key=key, op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=amount), ticket=ticket)


# -- the client over one stream -----------------------------------------------------------


def test_concurrent_adds_share_one_stream_and_each_reply_matches_its_request(sessions: list[_Counted]) -> None:
    n = 200
    amounts = list(range(1, n + 1))
    random.Random(7).shuffle(amounts)
    tickets = [f"conc-{i}" for i in range(n)]

    async def body() -> None:
        async with running_node() as node, fero.connect(node.address) as client:
            results = await asyncio.gather(*(client.add("hits", a, ticket=t) for a, t in zip(amounts, tickets)))
            conn = client._conn(node.address)
            assert conn._unary is False, "the node has CommitStream: no unary fallback"
            assert conn._session is not None and conn._session.broken is None
            assert sessions == [conn._session], f"{len(sessions)} streams opened for {n} concurrent adds"
            assert conn._session._ids == n, "every add went over that one stream"
            assert not conn._session.pending

            # Each reply is its own request's: its ticket, and a value that is the value
            # before it plus its own amount.
            assert [r.ticket for r in results] == tickets
            assert not any(r.duplicate for r in results)
            vals = [r.value for r in results]
            assert len(set(vals)) == n
            assert sorted(vals) == sorted(set(vals))
            order = sorted(range(n), key=lambda i: vals[i])
            previous = 0
            for i in order:
                assert vals[i] - amounts[i] == previous, (i, amounts[i], vals[i], previous)
                previous = vals[i]
            assert previous == sum(amounts)
            # The replies' offsets are the log's, each once.
            assert sorted(r.offset for r in results) == list(range(n))
            assert len({r.partition for r in results}) == 1
            assert (await client.get("hits")).value == sum(amounts) == n * (n + 1) // 2
            assert sessions == [conn._session], "the read opened no stream of its own"

    run(body)


def test_cancelled_callers_leave_the_stream_to_the_others(sessions: list[_Counted]) -> None:
    """Callers cancelled while they wait for their turn to write, while they write, or
    while they wait for their reply: the others' commits go on (a write cancelled in
    gRPC cancels its stream: the calls beside it go again over a new one), and a
    session keeps nothing of the cancelled ones."""

    async def body() -> None:
        async with running_node() as node, fero.connect(node.address) as client:
            await client.add("warm", 1)
            for round in range(5):
                tasks = [asyncio.create_task(client.add("c", 1, ticket=f"cancel-{round}-{i}")) for i in range(40)]
                for _ in range(round):  # cancelled at different points of their calls
                    await asyncio.sleep(0)
                for t in tasks[::2]:
                    t.cancel()
                done = await asyncio.gather(*tasks, return_exceptions=True)
                assert all(isinstance(r, (fero.client.AddResult, asyncio.CancelledError)) for r in done), done
                assert all(isinstance(r, fero.client.AddResult) for r in done[1::2]), done
            session = client._conn(node.address)._session
            assert session is not None and session.broken is None and session is sessions[-1]
            # (A caller cancelled after its write may still have committed.)
            assert (await client.add("c", 1)).value == (await client.get("c")).value >= 1 + 5 * 20
            assert not session.pending and not session._deadlines and not session._turns
            assert session._writer == 0 and session._sending == 0

    run(body)


class _StalledNode:
    """A gRPC server whose CommitStream never reads a request nor replies: what a
    client sees of a node that stopped (SIGSTOP, a stuck event loop)."""

    async def __aenter__(self) -> str:
        self._stop = asyncio.Event()

        async def commit_stream(requests: Any, context: Any) -> Any:
            await self._stop.wait()
            return
            yield  # (a generator: a streaming handler)

        self._server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("fero.v1.Changelog", {
            "CommitStream": grpc.stream_stream_rpc_method_handler(
                commit_stream, request_deserializer=lambda b: b, response_serializer=lambda b: b),
        }),))
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return f"127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await self._server.stop(None)


def test_a_stalled_node_fails_each_call_with_deadline_exceeded_after_its_timeout() -> None:
    """Whatever a call waits for on a node that stopped, its reply, its write (a request
    larger than the stream's flow-control window never finishes going out) or its
    turn to write behind that write, it ends with DeadlineExceeded once its own
    timeout has passed: not before, and not much after."""

    async def body() -> None:
        loop = asyncio.get_running_loop()

        async def timed(call: Awaitable[Any]) -> tuple[type[BaseException] | None, float]:
            t0 = loop.time()
            try:
                await call
            except FeroError as err:
                return type(err), loop.time() - t0
            return None, loop.time() - t0

        async with _StalledNode() as address, fero.connect(address, route=False, timeout_s=0.5, retry_for_s=0) as client:
            conn = client._conn(address)
            # Written, never answered.
            err, took = await timed(client.add("k", 1))
            assert err is DeadlineExceeded and 0.5 <= took < 1.5, (err, took)
            err, took = await timed(client.add("k", 1))
            assert err is DeadlineExceeded and 0.5 <= took < 1.5, (err, took)
            assert conn._session is not None and conn._session.broken is None, "a late reply leaves the stream open"

            # A write that cannot finish (gRPC takes a message whatever its size, but
            # then waits for a window the node never opens), and calls waiting for
            # their turn behind it.
            big = changelog_pb2.CommitRequest(records=[client.record(pb.OP_UPDATE, "big", value=b"x" * (4 << 20), raw=True)])
            small = changelog_pb2.CommitRequest(records=[client.record(pb.OP_COUNTER_ADD, "k", amount=1)])
            (err, took), *behind = await asyncio.gather(
                timed(conn.commit(big, 0.5)), timed(conn.commit(big, 0.6)),
                timed(conn.commit(small, 0.9)), timed(client.add("k", 2)))
            assert err is DeadlineExceeded and 0.5 <= took < 1.5, (err, took)
            # Behind it: their own deadline, or the stream that was cancelled under a
            # write that timed out (Unavailable, retriable), whichever comes first;
            # never a wait past the deadline.
            for (err, took), timeout in zip(behind, (0.6, 0.9, 0.5)):
                assert err in (DeadlineExceeded, Unavailable) and took < timeout + 1.0, (err, took, timeout)
                if err is DeadlineExceeded:
                    assert took >= timeout, (took, timeout)
            assert not conn._session.pending and not conn._session._deadlines and not conn._session._turns

    run(body)


# -- a raw stream -------------------------------------------------------------------------


def test_raw_stream_echoes_ids_and_a_failed_request_fails_alone() -> None:
    async def body() -> None:
        async with running_node() as node, grpc.aio.insecure_channel(node.address) as ch:
            stub = changelog_pb2_grpc.ChangelogStub(ch)
            call = stub.CommitStream()

            async def read_n(k: int) -> dict[int, changelog_pb2.CommitStreamReply]:
                got: dict[int, changelog_pb2.CommitStreamReply] = {}
                for _ in range(k):
                    msg = await asyncio.wait_for(call.read(), 10)
                    assert msg is not grpc.aio.EOF, f"the stream ended after {len(got)} of {k} replies"
                    assert msg.id not in got, f"two replies for id {msg.id}"
                    got[msg.id] = msg
                return got

            bad_alone, bad_mixed = 77, 2**40 + 5
            sent = {
                10: add_req(10, counter_add("raw", 1, "r-10")),
                3: add_req(3, counter_add("raw", 2, "r-3"), counter_add("raw2", 5, "r-3b")),
                bad_alone: add_req(bad_alone, pb.Record(key="", op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=1), ticket="r-77")),
                # A malformed record fails its whole request: the good one beside it does not commit.
                bad_mixed: add_req(bad_mixed, counter_add("raw", 1000, "r-big"),
                                   pb.Record(key="", op=pb.OP_COUNTER_ADD, amount=pb.Number(i64=1), ticket="r-big-b")),
                12345: add_req(12345, counter_add("raw", 4, "r-12345")),
            }
            for req in sent.values():
                await call.write(req)
            got = await read_n(len(sent))
            assert set(got) == set(sent)

            for bad in (bad_alone, bad_mixed):
                msg = got[bad]
                assert msg.error_code == CODE.INVALID_ARGUMENT.value[0] == 3, msg
                assert msg.error_message and "key" in msg.error_message.lower(), msg.error_message
                assert not msg.HasField("reply")
            for id in (10, 3, 12345):
                msg = got[id]
                assert msg.error_code == 0 and not msg.error_message, msg
                assert [r.ticket for r in msg.reply.results] == [r.ticket for r in sent[id].commit.records]
                assert not any(r.error_code for r in msg.reply.results)
            assert {values.parse_number(got[3].reply.results[1].value)} == {5}  # raw2 only ever gets 5
            raw_values = sorted(values.parse_number(got[i].reply.results[0].value) for i in (10, 3, 12345))
            assert raw_values[-1] == 7, raw_values  # 1 + 2 + 4: the 1000 of the failed request never applied

            # Later requests on the same stream still succeed, a retried ticket included.
            await call.write(add_req(500, counter_add("raw", 8, "r-500")))
            await call.write(add_req(501, counter_add("raw", 1, "r-10")))
            later = await read_n(2)
            assert set(later) == {500, 501}
            assert later[500].error_code == 0 and values.parse_number(later[500].reply.results[0].value) == 15
            assert later[501].error_code == 0 and later[501].reply.results[0].duplicate
            assert values.parse_number(later[501].reply.results[0].value) == values.parse_number(got[10].reply.results[0].value)

            await call.done_writing()
            assert await asyncio.wait_for(call.read(), 10) is grpc.aio.EOF
            assert await call.code() == CODE.OK
            async with fero.connect(node.address) as client:
                assert (await client.get("raw")).value == 15
                assert (await client.get("raw2")).value == 5

    run(body)


def test_an_invalid_call_raises_and_the_next_add_reuses_the_same_stream(sessions: list[_Counted]) -> None:
    async def body() -> None:
        async with running_node() as node, fero.connect(node.address) as client:
            assert (await client.add("ok", 3)).value == 3
            conn = client._conn(node.address)
            first = conn._session
            assert first is not None and sessions == [first]
            with pytest.raises(InvalidArgument) as info:
                await client.add("", 1)  # malformed on its face: refused by the node, in its reply
            assert "empty" in info.value.message, info.value.message
            with pytest.raises(InvalidArgument):
                await client.commit([client.record(pb.OP_COUNTER_ADD, "ok", amount=1), pb.Record(key="", op=pb.OP_UPDATE, ticket="x")])
            assert conn._session is first and first.broken is None, "an error in a reply leaves the stream open"
            assert (await client.add("ok", 4)).value == 7, "nothing of the refused batch applied"
            assert conn._session is first and sessions == [first] and conn._unary is False
            assert first._ids == 4

    run(body)


# -- a real process, SIGKILLed and restarted -------------------------------------------------


def test_the_client_opens_a_new_stream_after_sigkill_and_restart_and_tickets_survive(serve, tmp_path: Path,
                                                                                    sessions: list[_Counted]) -> None:
    proc = serve(tmp_path / "data")
    address = proc.address

    async def body() -> None:
        async with fero.connect(address, retry_for_s=20, timeout_s=5) as client:
            first = await client.add("visits", 5, ticket="before-kill")
            assert (first.value, first.duplicate) == (5, False)
            assert (await client.add("visits", 2)).value == 7
            conn = client._conn(address)
            old = conn._session
            assert old is not None and sessions == [old]

            await asyncio.to_thread(proc.kill)  # SIGKILL
            await eventually(lambda: old.broken is not None, 10, "the client to see the stream break")
            # An add sent while the node is down waits (retrying) for it to come back.
            pending = asyncio.create_task(client.add("visits", 10, ticket="during-outage"))
            await asyncio.to_thread(proc.start)
            assert proc.address == address, "restarted on the same port"
            during = await asyncio.wait_for(pending, 25)
            assert (during.value, during.duplicate) == (17, False)

            new = conn._session
            assert new is not None and new is not old and new.broken is None
            assert conn._unary is False
            again = await client.add("visits", 5, ticket="before-kill")
            assert again.duplicate, again
            assert (again.value, again.partition, again.offset) == (first.value, first.partition, first.offset)
            assert (await client.add("visits", 1)).value == 18
            assert (await client.get("visits")).value == 18
            assert conn._session is new, "the new stream stays in use"

    run(body, 60)


def test_an_add_written_to_the_stream_of_a_node_just_killed_is_retried_not_failed(serve, tmp_path: Path) -> None:
    """The client writes on its stream before its reader has seen the node die (the
    kill is not awaited, so the loop does not run in between): the add never reached
    the node, is retriable, and must succeed once the node is back."""
    proc = serve(tmp_path / "data")
    address = proc.address

    async def body() -> None:
        async with fero.connect(address, retry_for_s=20, timeout_s=5) as client:
            assert (await client.add("jk", 1)).value == 1
            old = client._conn(address)._session
            assert old is not None
            proc.kill()  # SIGKILL, waited for in this thread: the client has not noticed yet
            assert old.broken is None
            pending = asyncio.create_task(client.add("jk", 2, ticket="right-after-kill"))
            await asyncio.to_thread(proc.start)
            assert proc.address == address
            r = await asyncio.wait_for(pending, 25)
            assert (r.value, r.duplicate) == (3, False)
            again = await client.add("jk", 2, ticket="right-after-kill")
            assert again.duplicate and again.value == 3
            assert (await client.get("jk")).value == 3

    run(body, 60)


def test_a_node_without_commit_stream_is_sent_unary_commits(sessions: list[_Counted]) -> None:
    """A node of a version before CommitStream answers it UNIMPLEMENTED: the client
    falls back to unary Commit on that connection, for records and for batches."""

    async def body() -> None:
        async with running_node() as node:
            upstream = grpc.aio.insecure_channel(node.address)
            forward = changelog_pb2_grpc.ChangelogStub(upstream)
            unary_calls: list[int] = []

            async def commit(request: changelog_pb2.CommitRequest, context: Any) -> changelog_pb2.CommitReply:
                unary_calls.append(len(request.records) + sum(len(b.keys) for b in request.batches))
                return await forward.Commit(request)

            old = grpc.aio.server()
            old.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("fero.v1.Changelog", {
                "Commit": grpc.unary_unary_rpc_method_handler(
                    commit, request_deserializer=changelog_pb2.CommitRequest.FromString,
                    response_serializer=changelog_pb2.CommitReply.SerializeToString),
            }),))
            port = old.add_insecure_port("127.0.0.1:0")
            await old.start()
            try:
                address = f"127.0.0.1:{port}"
                async with fero.connect(address, route=False) as client:
                    first = await client.add("visits", 3)
                    conn = client._conn(address)
                    assert conn._unary is True
                    batch = pb.Batch(partition=fero.ring.partition_of("visits", 256), ticket="b1",
                                     op=pb.OP_COUNTER_ADD, keys=["visits"] * 4, amounts=[1, 2, 3, 4])
                    reply = await conn.commit(changelog_pb2.CommitRequest(batches=[batch], acks=pb.ACKS_LEADER), 10)
                    assert list(reply.batch_results[0].values) == [4, 6, 9, 13]
                    assert first.value == 3
                assert len(sessions) == 1 and sessions[0].broken is not None, "one stream tried, refused"
                assert unary_calls == [1, 4]
                async with fero.connect(node.address) as direct:
                    assert (await direct.get("visits")).value == 13
            finally:
                await old.stop(None)
                await upstream.close()

    run(body)
