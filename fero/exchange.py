"""A message and its reply on a grpc.aio stream, sent and received as one gRPC batch.

grpc.aio writes a stream message in one gRPC batch and reads the reply in another. The
write usually completes at once, in the calling thread, yet its completion still goes
through gRPC's poller thread and back to the event loop: two thread wake-ups (an eventfd
kick and a socket write, as strace shows) for news the caller already has. A
replication link always waits for the reply to what it sent, so it sends and receives
in one batch, and only the reply wakes it: on a bidirectional-stream echo this takes
the caller's CPU per round trip from about 150 to 100 µs.

This reaches into grpc.aio's internals (cygrpc.execute_batch, its operation classes,
and a call's `_cython_call`), so it is used only on the grpcio versions it was checked
on (`TESTED`); elsewhere `available()` is False and callers write and read as usual.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fero import grpc_runtime

#: grpcio versions (major, minor) whose internals this was checked against.
TESTED = ((1, 85), (1, 85))


def _load() -> tuple[Any, Any, Any, Any] | None:
    if not grpc_runtime.tested(TESTED):
        return None
    try:
        from grpc._cython import cygrpc

        return cygrpc.execute_batch, cygrpc.SendMessageOperation, cygrpc.ReceiveMessageOperation, cygrpc.ExecuteBatchError
    except (ImportError, AttributeError):
        return None


_CYGRPC = _load()


def available() -> bool:
    return _CYGRPC is not None


async def exchange(call: Any, message: bytes) -> bytes | None:
    """Sends `message` on the grpc.aio stream `call` and returns the next message it
    receives (bytes, not deserialized). The call must have sent a message before (by
    `write`), so that its metadata is out. None if the batch failed or the stream
    ended: the caller then reads from `call`, which raises the call's status or
    returns EOF, as a read of its own would have."""
    assert _CYGRPC is not None, "exchange() without available()"
    execute, send, receive, batch_error = _CYGRPC
    reply = receive(0)
    try:
        await execute(call._cython_call, (send(message, 0), reply), asyncio.get_running_loop())
    except batch_error:
        return None
    return reply.message()
