"""The floor for the latency benchmark: a bare grpc.aio unary echo server, with a
generic handler and no protobuf, in its own process like a fero node.

    python -m benchmarks.grpc_echo      # prints "grpc-echo: serving on 127.0.0.1:PORT"

Method /bench.Echo/Echo returns the request bytes unchanged.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import grpc

METHOD = "/bench.Echo/Echo"


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}  # bytes in, bytes out
    )
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"grpc-echo: serving on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


if __name__ == "__main__":
    asyncio.run(serve(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    sys.exit(0)
