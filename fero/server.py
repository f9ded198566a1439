"""Thin gRPC servicers: protobuf in, domain call, protobuf out, errors mapped once.

Each handler is wrapped by `edge`, the one place where a FeroError becomes its gRPC
status and any other exception becomes INTERNAL with its text (and a log line): a bad
request never kills a node.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

import grpc
import structlog

from fero import batch as batches
from fero import eager, values, wire
from fero.errors import FeroError, Internal, InvalidArgument, Unavailable, from_status, status_code
from fero.transport import HOP
from fero.subscriptions import Subscription
from fero.v1 import (
    changelog_pb2,
    changelog_pb2_grpc,
    cluster_pb2,
    cluster_pb2_grpc,
    counters_pb2,
    counters_pb2_grpc,
    peer_pb2,
    peer_pb2_grpc,
    types_pb2,
)
from fero.values import Kind

if TYPE_CHECKING:
    from fero.node import Node

log = structlog.get_logger("fero.server")

FORWARD_TIMEOUT_S = 10.0


def edge(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, exc, fn.__name__)

    return wrapper


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method: str) -> None:
    """Ends a call that failed: a FeroError with its own status and message, anything
    else as INTERNAL (logged). Stream handlers call it as `edge` does for unary ones."""
    if isinstance(exc, FeroError):
        await context.abort(exc.code, exc.message)
    log.exception("server.internal_error", method=method)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


def _forwarded(context: Any) -> bool:
    md = context.invocation_metadata() or ()
    return any(k == "fero-hop" for k, _ in md)


async def _forward(call: Any) -> Any:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        err = from_status(exc.code(), exc.details() or "")
        if not err.retriable and err.code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            raise Unavailable(f"forward to the owner failed: {err}") from exc
        raise err from exc


async def _read_where(node: "Node", key: str, stale_ok: bool, context: Any) -> str | None:
    """Where a read of `key` is answered: the owner's address to forward to, or None
    to answer here (this node owns it and has caught up, or it holds a copy and the
    caller accepts a stale one, or the call was already forwarded once)."""
    if not key:
        return None
    owner = node.owner_address(key)
    if stale_ok and node.holds(key):
        return None
    if owner is not None and not _forwarded(context):
        return owner
    await node.wait_serving(key)
    return None


def _raise_if_error(result: types_pb2.Result) -> None:
    if result.error_code:
        raise from_status(status_code(result.error_code), result.error_message)


class CountersServicer(counters_pb2_grpc.CountersServicer):
    def __init__(self, node: "Node") -> None:
        self.node = node

    @edge
    async def Add(self, request: counters_pb2.AddRequest, context: Any) -> counters_pb2.AddReply:
        if not request.HasField("amount"):
            raise InvalidArgument("amount is missing")
        rec = types_pb2.Record(key=request.name, op=types_pb2.OP_COUNTER_ADD, amount=request.amount, ticket=request.ticket)
        (r,) = await self.node.commit([rec], request.acks, _forwarded(context))
        _raise_if_error(r)
        return counters_pb2.AddReply(
            value=r.value, coherent=self.node.coherent(), duplicate=r.duplicate,
            partition=r.partition, offset=r.offset, ticket=r.ticket,
        )

    @edge
    async def Get(self, request: counters_pb2.GetRequest, context: Any) -> counters_pb2.GetReply:
        owner = await _read_where(self.node, request.name, request.stale_ok, context)
        if owner is not None:
            return await _forward(self.node.transport.counters(owner).Get(request, metadata=HOP, timeout=FORWARD_TIMEOUT_S))
        value, kind, exists, expire_at_ms = self.node.get_counter(request.name)
        return counters_pb2.GetReply(
            value=values.to_number(value), kind=int(kind), coherent=self.node.coherent(),
            expire_at_ms=expire_at_ms, exists=exists,
        )

    @edge
    async def Setup(self, request: counters_pb2.SetupRequest, context: Any) -> counters_pb2.SetupReply:
        if request.kind:
            Kind.parse(request.kind)
        if request.expire_at_ms < 0 or request.ttl_ms < 0:
            raise InvalidArgument("expire_at_ms and ttl_ms must not be negative")
        expire_at_ms = request.expire_at_ms or (self.node.clock.wall_ms() + request.ttl_ms if request.ttl_ms else 0)
        rec = types_pb2.Record(
            key=request.name, op=types_pb2.OP_COUNTER_SETUP, kind=request.kind,
            expire_at_ms=expire_at_ms, ticket=request.ticket,
        )
        (r,) = await self.node.commit([rec], request.acks, _forwarded(context))
        _raise_if_error(r)
        owner = self.node.owner_address(request.name)
        if owner is not None:
            got = await _forward(self.node.transport.counters(owner).Get(
                counters_pb2.GetRequest(name=request.name), metadata=HOP, timeout=FORWARD_TIMEOUT_S))
            return counters_pb2.SetupReply(coherent=self.node.coherent(), kind=got.kind, expire_at_ms=expire_at_ms)
        kind = self.node.counter_kind(request.name)
        return counters_pb2.SetupReply(coherent=self.node.coherent(), kind=int(kind), expire_at_ms=expire_at_ms)


    @edge
    async def List(self, request: counters_pb2.ListRequest, context: Any) -> counters_pb2.ListReply:
        limit = request.limit or 1000
        if limit > 100_000:
            raise InvalidArgument(f"limit {limit} is above 100000")
        if _forwarded(context):
            entries, truncated = self.node.list_counters(request.prefix, limit)
            return counters_pb2.ListReply(counters=entries, truncated=truncated, coherent=self.node.coherent())
        return await self.node.list_counters_cluster(request.prefix, limit)


def _stream_request(raw: bytes) -> tuple[changelog_pb2.CommitStreamRequest, bytes]:
    """CommitStream's request parser: the message and the bytes it came as (the owner
    logs a batch as those bytes: see fero.wire)."""
    return changelog_pb2.CommitStreamRequest.FromString(raw), raw


def add_changelog_servicer(servicer: "ChangelogServicer", server: Any) -> None:
    """As the generated add_ChangelogServicer_to_server, except that CommitStream's
    handler also gets each request's bytes, and writes its replies as bytes."""

    class Capture:
        def add_generic_rpc_handlers(self, handlers: Any) -> None:
            pass

        def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
            self.service, self.handlers = service, handlers

    capture = Capture()
    changelog_pb2_grpc.add_ChangelogServicer_to_server(servicer, capture)
    handlers = dict(capture.handlers)
    handlers["CommitStream"] = grpc.stream_stream_rpc_method_handler(
        servicer.CommitStream, request_deserializer=_stream_request, response_serializer=wire.as_sent,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(capture.service, handlers),))
    server.add_registered_method_handlers(capture.service, handlers)


class ChangelogServicer(changelog_pb2_grpc.ChangelogServicer):
    def __init__(self, node: "Node") -> None:
        self.node = node

    @edge
    async def Commit(self, request: changelog_pb2.CommitRequest, context: Any) -> changelog_pb2.CommitReply:
        reply, batch_results = await self._commit(request, _forwarded(context))
        reply.batch_results.extend(batch_results)
        return reply

    async def CommitStream(
        self, request_iterator: AsyncIterator[tuple[changelog_pb2.CommitStreamRequest, bytes]],
        context: grpc.aio.ServicerContext,
    ) -> None:
        # Each request runs in its own task (an acks=ALL call must not hold up the calls
        # behind it) and writes its own reply when done: no queue and no task between a
        # commit and its reply.
        forwarded = _forwarded(context)
        running: set[asyncio.Task[None]] = set()
        writing = asyncio.Lock()  # one write at a time on a stream

        async def one(req: changelog_pb2.CommitStreamRequest, raw: bytes) -> None:
            # Replies go out as bytes (see add_changelog_servicer).
            try:
                reply, batch_results = await self._commit(
                    req.commit, forwarded, wire.stream_batches(raw) if req.commit.batches else None
                )
                out = wire.commit_stream_reply(req.id, reply.SerializeToString(), batch_results)
            except Exception as exc:
                err = exc if isinstance(exc, FeroError) else None
                if err is None:
                    log.exception("server.internal_error", method="CommitStream")
                    err = Internal(f"internal error: {type(exc).__name__}: {exc}")
                out = changelog_pb2.CommitStreamReply(
                    id=req.id, error_code=err.code.value[0], error_message=err.message
                ).SerializeToString()
            try:
                async with writing:
                    await context.write(out)
            except Exception as exc:  # the client went away; gRPC ends the call
                log.debug("server.reply_not_sent", method="CommitStream", error=str(exc))

        try:
            async for req, raw in request_iterator:
                # Started at once: the commit runs before the stream is read again (see
                # fero.eager), and only what waits is left to the task.
                t = eager.start(one(req, raw))
                running.add(t)
                t.add_done_callback(running.discard)
            while running:
                await asyncio.gather(*list(running), return_exceptions=True)
        finally:
            for t in list(running):
                t.cancel()

    async def _commit(
        self, request: changelog_pb2.CommitRequest, forwarded: bool, raw: list[memoryview] | None = None,
    ) -> tuple[changelog_pb2.CommitReply, list[types_pb2.BatchResult]]:
        """The reply but its batch results, and the batch results: the caller puts them
        together (a CommitReply built here would copy every result, handler replies
        and all, and the stream would copy it once more). `raw`: the bytes of each of
        the request's batches, if known (fero.wire)."""
        if raw is not None and len(raw) != len(request.batches):
            raw = None
        if not request.batches:
            results = await self.node.commit(request.records, request.acks, forwarded)
            return changelog_pb2.CommitReply(results=results, coherent=self.node.coherent()), []
        if request.records:
            # Both checked before either commits: a malformed call commits nothing.
            self.node.engine.validate(request.records)
            columns = batches.validate(
                request.batches, len(self.node.engine.partitions), self.node.config.limits, len(request.records), raw,
            )
            results, batch_results = await asyncio.gather(
                self.node.commit(request.records, request.acks, forwarded, checked=True),
                self.node.commit_batches(request.batches, request.acks, forwarded, raw, columns),
            )
        else:
            results, batch_results = [], await self.node.commit_batches(request.batches, request.acks, forwarded, raw)
        return changelog_pb2.CommitReply(results=results, coherent=self.node.coherent()), batch_results

    @edge
    async def Read(self, request: changelog_pb2.ReadRequest, context: Any) -> changelog_pb2.ReadReply:
        owner = await _read_where(self.node, request.key, request.stale_ok, context)
        if owner is not None:
            return await _forward(self.node.transport.changelog(owner).Read(request, metadata=HOP, timeout=FORWARD_TIMEOUT_S))
        raw = self.node.read(request.key)
        return changelog_pb2.ReadReply(value=raw or b"", exists=raw is not None, coherent=self.node.coherent())

    async def Subscribe(
        self, request: changelog_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[changelog_pb2.SubscribeEvent]:
        scope = request.WhichOneof("scope")
        sub = Subscription(
            partition=request.partition if scope == "partition" else None,
            prefix=request.prefix if scope == "prefix" else "",
        )
        if request.partitions:
            sub.only = set(request.partitions)
        try:
            self.node.subscribe(
                sub, dict(request.from_offsets),
                earliest=request.default_from == changelog_pb2.SubscribeRequest.START_EARLIEST,
                resume={p: (pos.offset, pos.epoch, pos.owner) for p, pos in request.resume.items()},
            )
            yield changelog_pb2.SubscribeEvent(subscribed=True)
            async for item in sub:
                if isinstance(item, list):
                    yield changelog_pb2.SubscribeEvent(commits=item)
                else:
                    yield changelog_pb2.SubscribeEvent(reset=item)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, exc, "Subscribe")
        finally:
            sub.close(None)


class ClusterServicer(cluster_pb2_grpc.ClusterServicer):
    def __init__(self, node: "Node") -> None:
        self.node = node

    @edge
    async def Status(self, request: cluster_pb2.StatusRequest, context: Any) -> cluster_pb2.StatusReply:
        return self.node.status(include_partitions=request.include_partitions)


class PeerServicer(peer_pb2_grpc.PeerServicer):
    def __init__(self, node: "Node") -> None:
        self.node = node

    @edge
    async def Deliver(self, request: peer_pb2.PeerMessage, context: Any) -> peer_pb2.DeliverReply:
        self.node.deliver_peer_message(request)
        return peer_pb2.DeliverReply()

    @edge
    async def Append(self, request: peer_pb2.AppendRequest, context: Any) -> peer_pb2.AppendReply:
        return await self.node.append_replicated(request)

    async def AppendStream(
        self, request_iterator: AsyncIterator[peer_pb2.AppendRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[peer_pb2.AppendReply]:
        try:
            async for request in request_iterator:
                yield await self.node.append_replicated(request)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, exc, "AppendStream")

    @edge
    async def Digest(self, request: peer_pb2.DigestRequest, context: Any) -> peer_pb2.DigestReply:
        return self.node.digests(request.partitions, request.compact)

    @edge
    async def Fetch(self, request: peer_pb2.FetchRequest, context: Any) -> peer_pb2.FetchReply:
        return self.node.fetch(request)
