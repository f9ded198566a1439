"""The floors of the latency benchmark: bare grpc.aio servers, with generic handlers and
no protobuf, each in its own process like a fero node.

    python -m benchmarks.grpc_echo [PORT]                        # an echo server
    python -m benchmarks.grpc_echo --relay HOST:PORT,HOST:PORT   # a fan-out server

Each prints "grpc-echo: serving on 127.0.0.1:PORT". An echo server returns every
message unchanged, on /bench.Echo/Echo (unary) and /bench.Echo/Stream (a bidirectional
stream, a reply per message).

A fan-out server (--relay) answers on the same two methods, but only once every relay
address has echoed the message: the floor of an acks=ALL write, which an owner answers
once its replicas have it. It keeps one bidirectional stream to each relay, opened at
start (as a fero owner keeps one Append stream per replica), writes the message to all
of them, then waits for all the echoes. Nothing else: no log, no state, no parsing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import sys
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc

METHOD = "/bench.Echo/Echo"
STREAM = "/bench.Echo/Stream"


class _Relay:
    """One stream to an echo server. Echoes come back in the order the messages went,
    so each is matched to the oldest message still waiting."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.call = channel.stream_stream(STREAM)()  # bytes in, bytes out
        self.waiting: collections.deque[asyncio.Future[bytes]] = collections.deque()
        self.writing = asyncio.Lock()  # one write at a time on a stream
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def send(self, message: bytes) -> asyncio.Future[bytes]:
        """Writes `message`; returns the future of its echo."""
        fut = asyncio.get_running_loop().create_future()
        async with self.writing:
            self.waiting.append(fut)
            await self.call.write(message)
        return fut

    async def _read(self) -> None:
        try:
            while True:
                echo = await self.call.read()
                if echo is grpc.aio.EOF:
                    raise ConnectionError("a relay closed its stream")
                self.waiting.popleft().set_result(echo)
        except BaseException as exc:  # the floor fails loudly rather than hang
            for fut in self.waiting:
                if not fut.done():
                    fut.set_exception(ConnectionError(f"relay stream failed: {exc!r}"))
            raise


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _echo_stream(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    async for m in requests:
        yield m


def _handlers(relays: list[_Relay]) -> dict[str, Any]:
    if not relays:  # the bare echo: nothing between a message and its reply
        return {"Echo": grpc.unary_unary_rpc_method_handler(_echo),
                "Stream": grpc.stream_stream_rpc_method_handler(_echo_stream)}

    async def answer(message: bytes) -> bytes:
        echoes = [await r.send(message) for r in relays]  # all written, then all awaited
        for echo in echoes:
            await echo
        return message

    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await answer(request)

    async def stream(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        async for m in requests:
            yield await answer(m)

    return {
        "Echo": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.stream_stream_rpc_method_handler(stream),
    }


def round_trip(channel: grpc.aio.Channel, payload: bytes, stream: bool) -> Callable[[], Awaitable[None]]:
    """One round trip to a server here: a unary call, or (`stream`) a message on one
    bidirectional stream, opened now and kept, and its reply."""
    if stream:
        call = channel.stream_stream(STREAM)()  # bytes in, bytes out

        async def on_stream() -> None:
            await call.write(payload)
            await call.read()

        return on_stream
    unary = channel.unary_unary(METHOD)

    async def once() -> None:
        await unary(payload)

    return once


async def serve_until_signalled(name: str, service: str, handlers: dict[str, Any], host: str, port: int) -> None:
    """Serves `handlers` (generic, bytes in and out) as `service`, prints
    "NAME: serving on HOST:PORT", and stops on SIGTERM or SIGINT."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"{name}: serving on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


async def serve(host: str = "127.0.0.1", port: int = 0, relay: list[str] | None = None) -> None:
    channels = [grpc.aio.insecure_channel(a) for a in relay or []]
    relays = [_Relay(ch) for ch in channels]
    await serve_until_signalled("grpc-echo", "bench.Echo", _handlers(relays), host, port)
    for r in relays:
        r.reader.cancel()
    for ch in channels:
        await ch.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m benchmarks.grpc_echo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", nargs="?", type=int, default=0)
    ap.add_argument("--relay", default="", help="HOST:PORT,... of echo servers: answer once each has echoed")
    args = ap.parse_args()
    asyncio.run(serve(port=args.port, relay=[a for a in args.relay.split(",") if a]))
    sys.exit(0)
