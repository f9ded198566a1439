"""The floor of speed's cells: the same records through gRPC and protobuf in Python,
with none of fero's work. What any Python service built on grpcio and protobuf pays to
take keyed records from one client on one stream; speed's `floor` row (--floor).

    python -m benchmarks.speed_floor            # the sink; prints "speed-floor: serving on ADDRESS"

The sink serves /bench.Floor/Commit, a bidirectional stream of fero's own
CommitStreamRequest messages. For each it parses the message, makes each batch's keys
Python strings (a store has to, to index them; the values it leaves in the message,
as fero's owner does), and answers with a CommitStreamReply of the message's id and
an empty BatchResult per batch. No partition check, no log, no state, no ticket.

The client (`run`, in speed's client process) makes its records as speed's bulk
client does: keys by a list comprehension, 2000 at a time, each with the same
M-byte value. It puts them, in the order made, into batches of --batch records and
requests of --request-records, with no partitioning, and sends them on one stream
with at most --in-flight requests unanswered.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any, AsyncIterator

# fero first: importing it applies fero's gRPC settings, which must come before grpc
# loads, as in every process of the benchmarks.
from fero import wire  # isort: skip
from fero.v1 import changelog_pb2, types_pb2  # isort: skip
import grpc  # isort: skip

from benchmarks.grpc_echo import serve_until_signalled  # isort: skip

SERVICE = "bench.Floor"
METHOD = f"/{SERVICE}/Commit"


async def _commit(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    Request, Reply, Result = changelog_pb2.CommitStreamRequest, changelog_pb2.CommitStreamReply, types_pb2.BatchResult
    async for raw in requests:
        msg = Request.FromString(raw)
        batches = msg.commit.batches
        keys = [list(b.keys) for b in batches]
        yield Reply(id=msg.id, reply=changelog_pb2.CommitReply(batch_results=[Result() for _ in keys])).SerializeToString()


async def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    handler = grpc.stream_stream_rpc_method_handler(_commit)  # bytes in, bytes out
    await serve_until_signalled("speed-floor", SERVICE, {"Commit": handler}, host, port)


async def run(spec: dict[str, Any], value: bytes, ready: Any, start: Any, progress: Any) -> dict[str, Any]:
    """The client: spec as speed's (count, batch, request_records, in_flight, budget,
    floor_address). Returns what speed's client returns."""
    count, batch, per_request = spec["count"], spec["batch"], spec["request_records"]
    async with grpc.aio.insecure_channel(spec["floor_address"]) as ch:
        call = ch.stream_stream(METHOD, request_serializer=wire.as_sent,
                                response_deserializer=changelog_pb2.CommitStreamReply.FromString)()
        slots = asyncio.Semaphore(spec["in_flight"])
        #: Each request in flight: its records, when it went, the future of its reply.
        waiting: dict[int, tuple[int, float, asyncio.Future[None]]] = {}
        acked = 0
        seconds: list[float] = []

        async def read() -> None:
            nonlocal acked
            try:
                while True:
                    reply = await call.read()
                    if reply is grpc.aio.EOF:
                        raise ConnectionError("the floor's sink closed the stream")
                    records, at, fut = waiting.pop(reply.id)
                    acked += records
                    seconds.append(time.perf_counter() - at)
                    slots.release()
                    fut.set_result(None)
            except BaseException as exc:  # fails the requests waiting rather than hang
                for _, _, fut in waiting.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError(f"the floor's stream failed: {exc!r}"))
                raise

        reader = asyncio.get_running_loop().create_task(read())
        ids = 0

        async def send(keys: list[str], values: list[bytes]) -> None:
            nonlocal ids
            await slots.acquire()
            ids += 1
            req = changelog_pb2.CommitRequest(acks=types_pb2.ACKS_LEADER)
            for i in range(0, len(keys), batch):
                req.batches.add(partition=0, ticket=f"f{ids}.{i}", op=types_pb2.OP_UPDATE,
                                keys=keys[i:i + batch], values=values[i:i + batch])
            waiting[ids] = (len(keys), time.perf_counter(), asyncio.get_running_loop().create_future())
            await call.write(wire.commit_stream_request(ids, req.SerializeToString()))

        async def all_answered() -> None:
            await asyncio.gather(*(fut for _, _, fut in list(waiting.values())))

        await send(["warm-up"], [value])  # the stream is up before the clock starts
        await all_answered()
        acked = 0
        seconds.clear()
        ready.put(spec["client"])
        start.wait()
        prefix = f"c{spec['client']}-{os.urandom(4).hex()}-"
        values = [value] * 2000
        keys_buf: list[str] = []
        values_buf: list[bytes] = []
        t0, cpu0 = time.perf_counter(), time.process_time()
        deadline = t0 + spec["budget"]
        n, budget_hit = 0, False
        for first in range(0, count, 2000):
            n = min(first + 2000, count)
            keys_buf += [f"{prefix}{i}" for i in range(first, n)]
            values_buf += values[:n - first]
            if len(keys_buf) >= per_request:
                await send(keys_buf, values_buf)
                keys_buf, values_buf = [], []
            progress.value = acked
            if time.perf_counter() > deadline:
                budget_hit = n < count
                break
        if keys_buf:
            await send(keys_buf, values_buf)
        t_sent = time.perf_counter()
        await all_answered()
        t_end, cpu_s = time.perf_counter(), time.process_time() - cpu0
        progress.value = acked
        reader.cancel()
        call.cancel()
    from benchmarks import common

    return {
        "client": spec["client"], "submitted": n, "acked": acked, "failed": 0, "first_error": "",
        "sent_s": t_sent - t0, "total_s": t_end - t0, "budget_hit": budget_hit, "cpu_s": cpu_s,
        "batch_ms": common.percentiles([s * 1000 for s in seconds]),
    }


if __name__ == "__main__":
    asyncio.run(serve(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    sys.exit(0)
