"""fero.exchange: a message and its reply on a grpc.aio stream as one gRPC batch, on a
real stream (127.0.0.1, port 0), and replication links using it or, where grpc.aio's
internals are not known, writing and reading as before."""

import asyncio

import grpc
import pytest

import fero
from fero import exchange, grpc_runtime

from .test_replication_linger import owned_by, pair, replica_value

METHOD = "/test.Echo/Stream"


async def echo_server(handler):
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", {
        "Stream": grpc.stream_stream_rpc_method_handler(handler),
    }),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def test_available_on_the_grpcio_it_was_checked_on():
    # The names it reaches for exist in the installed grpcio: if an upgrade within
    # TESTED moved them, this fails rather than every link silently going the slow way.
    if grpc_runtime.tested(exchange.TESTED):
        assert exchange.available()
    else:
        assert not exchange.available()


def test_each_exchange_returns_the_reply_to_its_own_message():
    async def reply_each(requests, context):
        async for m in requests:
            yield b"re:" + m

    async def main():
        server, address = await echo_server(reply_each)
        try:
            async with grpc.aio.insecure_channel(address) as ch:
                call = ch.stream_stream(METHOD)()
                await call.write(b"first")
                assert await call.read() == b"re:first"
                got = [await exchange.exchange(call, f"m{i}".encode() * (i + 1)) for i in range(50)]
                assert got == [b"re:" + f"m{i}".encode() * (i + 1) for i in range(50)]
                # An empty reply is a reply, not the end of the stream.
                assert await exchange.exchange(call, b"") == b"re:"
                await call.done_writing()
                assert await call.read() == grpc.aio.EOF
        finally:
            await server.stop(None)

    asyncio.run(main())


@pytest.mark.parametrize("ending", ["abort", "return"])
def test_a_stream_that_ended_leaves_its_status_to_the_read(ending):
    async def one_then_end(requests, context):
        it = requests.__aiter__()
        yield b"re:" + await it.__anext__()
        await it.__anext__()
        if ending == "abort":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no more, thanks")

    async def main():
        server, address = await echo_server(one_then_end)
        try:
            async with grpc.aio.insecure_channel(address) as ch:
                call = ch.stream_stream(METHOD)()
                await call.write(b"first")
                assert await call.read() == b"re:first"
                assert await exchange.exchange(call, b"second") is None
                if ending == "abort":
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await call.read()
                    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                    assert err.value.details() == "no more, thanks"
                else:
                    assert await call.read() == grpc.aio.EOF
                    assert call.done() and (await call.code()) == grpc.StatusCode.OK
        finally:
            await server.stop(None)

    asyncio.run(main())


@pytest.mark.slow
@pytest.mark.parametrize("internals", ["known", "unknown"])
def test_a_link_replicates_with_one_batch_per_append_or_without(tmp_path, internals, monkeypatch):
    if internals == "unknown":
        monkeypatch.setattr(exchange, "_CYGRPC", None)
    else:
        assert exchange.available()
    real = exchange.exchange
    exchanges = 0

    async def counted(call, message):
        nonlocal exchanges
        exchanges += 1
        return await real(call, message)

    monkeypatch.setattr(exchange, "exchange", counted)

    async def main():
        async with pair(tmp_path, 2, "interval") as (a, b):
            link = a.replicator.links["b"]
            names = owned_by(a, 3, "exchange")
            n = 30
            async with fero.connect([a.address]) as c:
                calls = link.calls
                for i in range(n):
                    assert (await c.add(names[i % 3], 1, acks="all")).value == i // 3 + 1
                for name in names:
                    assert await replica_value(c, b, name) == n // 3
            appends = link.calls - calls
            assert appends >= n
            if internals == "known":
                # Every Append but the first on the stream (which opens it; b may have
                # caught up on an empty log by its digest alone) is one exchange.
                assert exchanges >= appends - 1, f"{exchanges} exchanges for {appends} Appends"
            else:
                assert exchanges == 0

    asyncio.run(main())
