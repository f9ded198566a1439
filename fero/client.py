"""The Python client.

    async with fero.connect("127.0.0.1:4000") as c:
        r = await c.add("visits", 1)                  # r.value, r.coherent
        await c.update("user.42.name", "Ada")
        async with c.pipeline(acks="leader") as p:    # many records per gRPC message
            for i in range(100_000):
                await p.add("visits", 1)
        async for change in c.subscribe(prefix="user."):
            ...

    c = fero.connect_sync("127.0.0.1:4000")          # the same API, blocking, for scripts

Every write carries a ticket (the caller's, or one the client makes from a random
session id and a sequence number), so a retry after a timeout or a lost connection is
recognised by the node and never applied twice; that is what makes it safe for the
client to retry UNAVAILABLE and DEADLINE_EXCEEDED with backoff and jitter.
gRPC errors become fero errors (fero.errors) that keep the status code.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import os
import random
import threading
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import grpc
import structlog

from fero import values, wire
from fero.errors import (
    DeadlineExceeded, FailedPrecondition, FeroError, InvalidArgument, Unavailable, Unimplemented, from_status, status_code,
)
from fero.v1 import (
    changelog_pb2,
    changelog_pb2_grpc,
    cluster_pb2,
    cluster_pb2_grpc,
    counters_pb2,
    counters_pb2_grpc,
    types_pb2,
)
from fero.documents import partition_key
from fero.ring import Ring, partition_of
from fero.security import open_channel
from fero.subscriber import ClusterSubscription
from fero.producer import OnResult, Producer
from fero.values import Kind, Value

T = TypeVar("T")
log = structlog.get_logger("fero.client")

_OP_NAMES = {v: k[3:].lower() for k, v in types_pb2.Op.items()}


class Acks(enum.IntEnum):
    """When a write is acknowledged; also accepts "none", "leader", "all", "reply"."""

    NONE = types_pb2.ACKS_NONE
    LEADER = types_pb2.ACKS_LEADER
    ALL = types_pb2.ACKS_ALL
    REPLY = types_pb2.ACKS_REPLY

    @classmethod
    def parse(cls, acks: "Acks | str | int | None") -> "Acks":
        if acks is None:
            return cls.LEADER
        if isinstance(acks, str):
            try:
                return cls[acks.strip().upper()]
            except KeyError:
                raise InvalidArgument(f"acks {acks!r} is not one of none, leader, all, reply") from None
        try:
            return cls(int(acks))
        except ValueError:
            raise InvalidArgument(f"acks {acks!r} is not one of none, leader, all, reply") from None


@dataclass(frozen=True)
class AddResult:
    value: Value
    coherent: bool
    duplicate: bool
    partition: int
    offset: int
    ticket: str


@dataclass(frozen=True)
class CounterValue:
    value: Value
    kind: Kind
    exists: bool
    expire_at_ms: int
    coherent: bool


@dataclass(frozen=True)
class Change:
    """A committed record, as a subscriber receives it."""

    partition: int
    offset: int
    epoch: int
    key: str
    op: str  # "counter_add", "update", "remove", "add", "push", "patch", "action", ...
    value: bytes
    amount: Value | None
    action: str
    ticket: str
    hlc: int

    def json(self) -> Any:
        return json.loads(self.value) if self.value else None

    @classmethod
    def from_commit(cls, c: types_pb2.Commit) -> "Change":
        r = c.record
        return cls(
            partition=c.partition, offset=c.offset, epoch=c.epoch, key=r.key, op=_OP_NAMES.get(r.op, str(r.op)),
            value=r.value, amount=values.parse_number(r.amount) if r.HasField("amount") else None,
            action=r.action, ticket=r.ticket, hlc=r.hlc,
        )


_NO_VALUE: Any = object()

#: How often a routing client re-reads the membership from a node, in seconds.
RING_REFRESH_S = 5.0


def _json_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return json.dumps(value, separators=(",", ":")).encode()


class _Conn:
    """One channel to one node and the stubs on it."""

    def __init__(self, address: str, max_message_bytes: int, credentials: grpc.ChannelCredentials | None = None,
                 metadata: tuple[tuple[str, str], ...] = ()) -> None:
        opts = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # A restarted node must be reachable again quickly, not after gRPC's
            # default reconnect backoff of up to two minutes.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        self.address = address
        self.channel = open_channel(address, opts, credentials, metadata)
        self.counters = counters_pb2_grpc.CountersStub(self.channel)
        self.changelog = changelog_pb2_grpc.ChangelogStub(self.channel)
        self.cluster = cluster_pb2_grpc.ClusterStub(self.channel)
        self._session: _CommitSession | None = None
        self._unary = False  # the node has no CommitStream

    async def commit(self, request: changelog_pb2.CommitRequest, timeout: float) -> changelog_pb2.CommitReply:
        """A Commit on this connection's CommitStream (opened on first use and again
        after it broke), or a unary call to a node without it. Raises FeroError."""
        if self._unary:
            return await self._unary_commit(request, timeout)
        if self._session is None or self._session.broken is not None:
            self._session = _CommitSession(self.channel)
        try:
            return await self._session.commit(request, timeout)
        except Unimplemented:
            self._unary = True
            return await self._unary_commit(request, timeout)

    async def _unary_commit(self, request: changelog_pb2.CommitRequest, timeout: float) -> changelog_pb2.CommitReply:
        try:
            return await self.changelog.Commit(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_status(exc.code(), exc.details() or "") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.aclose()
        await self.channel.close()


def _stream_error(exc: BaseException) -> FeroError:
    """What a broken commit stream means for the calls on it: the node's refusal if it
    refused the stream, else Unavailable (retriable: their tickets make a retry safe,
    whether or not the node got them)."""
    if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (
        grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED,
    ):
        return from_status(exc.code(), exc.details() or "")
    if isinstance(exc, grpc.aio.AioRpcError):
        return Unavailable(f"the commit stream broke: {exc.code().name}: {exc.details()}")
    return Unavailable(f"the commit stream closed: {exc}")


class _CommitSession:
    """One CommitStream: calls in flight by id, and one task reading the replies.

    One call in flight is the common case, and every µs of the client's CPU is on its
    round trip; so there is neither an asyncio.timeout (a Timeout and a TimerHandle
    made and cancelled per call) nor an asyncio.Lock per call. The deadlines are kept
    by one timer for the whole stream, set for the earliest of them and moved on when
    it fires (_expire), which, with one call after another and the same timeout,
    happens about once per timeout rather than once per call. Writes take turns
    through `_writer` and `_turns`: a call that finds no write in progress writes at
    once."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        # Requests go out as bytes (fero.wire.commit_stream_request), not as a
        # CommitStreamRequest that would copy the whole CommitRequest into itself.
        self.call = channel.stream_stream(
            "/fero.v1.Changelog/CommitStream", request_serializer=wire.as_sent,
            response_deserializer=changelog_pb2.CommitStreamReply.FromString,
        )()
        self.pending: dict[int, asyncio.Future[changelog_pb2.CommitStreamReply]] = {}
        self.broken: FeroError | None = None
        self._ids = 0
        self._loop = asyncio.get_running_loop()
        # Every call in commit(), from its start to its end: id -> (deadline, timeout).
        self._deadlines: dict[int, tuple[float, float | None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._writer = 0   # the call whose turn it is to write (0: nobody's)
        self._sending = 0  # the call whose write is in progress in gRPC (0: none)
        self._turns: dict[int, asyncio.Future[None]] = {}  # calls waiting to write, first come first
        self._reader = self._loop.create_task(self._read())

    async def commit(self, request: changelog_pb2.CommitRequest, timeout: float | None) -> changelog_pb2.CommitReply:
        if self.broken is not None:
            raise self.broken
        loop = self._loop
        self._ids += 1
        id = self._ids
        # Made before the call is registered: a request that protobuf cannot serialise (over
        # 2 GB) must leave nothing behind for _expire to fail.
        data = wire.commit_stream_request(id, request.SerializeToString())
        fut: asyncio.Future[changelog_pb2.CommitStreamReply] = loop.create_future()
        self.pending[id] = fut  # before the write: the reply may be read before it returns
        deadline = loop.time() + timeout if timeout is not None else float("inf")  # (None: as asyncio.timeout(None))
        self._deadlines[id] = (deadline, timeout)
        if deadline < self._timer_at:
            self._set_timer(deadline)
        try:
            if self._writer:
                turn: asyncio.Future[None] = loop.create_future()
                self._turns[id] = turn
                await turn  # handed over by the write before (_next_turn), or failed by _expire
                if fut.done():  # the stream broke meanwhile, or the deadline passed
                    return self._reply(fut.result())
            else:
                self._writer = id
            try:
                self._sending = id
                await self.call.write(data)
            except (Exception, asyncio.CancelledError) as exc:
                # gRPC raises CancelledError from a write to a call cancelled here (by
                # _expire), not only when this task is cancelled.
                if isinstance(exc, asyncio.CancelledError) and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
                if id in self._deadlines:
                    # Not sent (a write to a stream whose node just died fails, often as
                    # INTERNAL "Internal error from Core", or as a cygrpc
                    # ExecuteBatchError): safe to retry elsewhere.
                    self.pending.pop(id, None)
                    fut.cancel()
                    raise self._broke(_stream_error(exc)) from exc
            finally:
                self._sending = 0
                self._next_turn(id)
            if id not in self._deadlines:
                # _expire cancelled the stream under this write, which did not finish in
                # time (a stalled node stops reading), as gRPC does when a write is
                # cancelled: the call times out, the calls beside it are Unavailable.
                raise DeadlineExceeded(f"no reply within {timeout} s")
            return self._reply(await fut)
        finally:
            self.pending.pop(id, None)
            self._deadlines.pop(id, None)
            self._turns.pop(id, None)
            self._next_turn(id)  # a call cancelled after its turn came, before it wrote
            if fut.done() and not fut.cancelled():
                # A reply failed by _broke while this call left by another way (its
                # deadline, its cancellation): asyncio would log it as never retrieved.
                fut.exception()

    @staticmethod
    def _reply(msg: changelog_pb2.CommitStreamReply) -> changelog_pb2.CommitReply:
        if msg.error_code:
            raise from_status(status_code(msg.error_code), msg.error_message)
        return msg.reply

    def _next_turn(self, id: int) -> None:
        """Passes the turn to write from call `id` (if it has it) to the first call
        waiting for it that is still there."""
        if self._writer != id:
            return
        self._writer = 0
        while self._turns:
            next_id = next(iter(self._turns))
            turn = self._turns.pop(next_id)
            if not turn.done():
                self._writer = next_id
                turn.set_result(None)
                return

    def _set_timer(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(at, self._expire)
        self._timer_at = at

    def _expire(self) -> None:
        """Fails every call past its deadline with DeadlineExceeded, whatever it waits
        for: its reply, its turn to write, or its write (then by cancelling the stream,
        the only way to stop a write to a node that does not read), and sets the timer
        for the earliest deadline left."""
        self._timer, self._timer_at = None, float("inf")
        now = self._loop.time()
        first = float("inf")
        for id, (deadline, timeout) in list(self._deadlines.items()):
            if deadline > now:
                first = min(first, deadline)
                continue
            del self._deadlines[id]
            err = DeadlineExceeded(f"no reply within {timeout} s")
            turn = self._turns.pop(id, None)
            fut = self.pending.pop(id, None)
            if turn is not None:
                if not turn.done():  # (done: cancelled, its caller not yet gone)
                    turn.set_exception(err)
            elif self._sending == id:
                self.call.cancel()  # the write fails, or returns to find its deadline gone
            elif fut is not None and not fut.done():
                fut.set_exception(err)
        if first < float("inf"):
            self._set_timer(first)

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.call.read()
                if msg is grpc.aio.EOF:
                    self._broke(Unavailable("the node closed the commit stream"))
                    return
                fut = self.pending.pop(msg.id, None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        except asyncio.CancelledError:
            self._broke(Unavailable("the commit stream was closed"))
            raise
        except Exception as exc:  # AioRpcError, or cygrpc's own errors on a dead stream
            self._broke(_stream_error(exc))

    def _broke(self, err: FeroError) -> FeroError:
        if self.broken is None:
            self.broken = err
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(err)
        self.pending.clear()
        return err

    async def aclose(self) -> None:
        """Ends the stream and waits for its reader, so that nothing of it is left to
        run once the caller's event loop is gone."""
        if not self.call.done() and self.broken is None:
            try:
                await self.call.done_writing()
            except Exception:  # the node is gone (AioRpcError, cygrpc ExecuteBatchError, ...)
                pass
        self.call.cancel()
        if self._timer is not None:
            self._timer.cancel()
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass


class Client:
    """An asyncio client. Use `async with connect(...)`, or call `close()`.

    Routing: the client asks a node for the membership and computes the same ring the
    nodes compute (fero.ring), so each record goes straight to its partition's owner.
    Any node also forwards, so a stale ring costs a hop, not an error; a "not owner"
    answer or an unreachable node makes the client refresh its ring and retry.
    """

    def __init__(
        self,
        address: str | Sequence[str],
        *,
        timeout_s: float = 10.0,
        retry_for_s: float = 30.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        route: bool = True,
        token: str | None = None,
        tls_ca: bytes | None = None,
        tls_cert: bytes | None = None,
        tls_key: bytes | None = None,
    ) -> None:
        """`token`: a bearer token for nodes that require one. `tls_ca` (PEM bytes)
        turns on TLS, trusting that CA; `tls_cert`/`tls_key` add a client certificate
        for nodes that require mutual TLS."""
        self.addresses = [address] if isinstance(address, str) else list(address)
        if not self.addresses:
            raise InvalidArgument("connect() needs at least one address")
        self.timeout_s = timeout_s
        self.retry_for_s = retry_for_s
        self.route = route
        self._max_message_bytes = max_message_bytes
        self._session = os.urandom(8).hex()
        self._seq = 0
        self._conns: dict[str, _Conn] = {}
        self._current = 0
        self._rng = random.Random()
        self._ring: Ring | None = None
        self._members: dict[str, str] = {}  # node id -> address
        self._partitions = 0
        self._ring_checked_at = -1e9
        self._ring_refresh: asyncio.Task[None] | None = None  # one in the background, see _ensure_ring
        self._credentials = (
            grpc.ssl_channel_credentials(root_certificates=tls_ca, private_key=tls_key, certificate_chain=tls_cert)
            if tls_ca is not None else None
        )
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()

    # -- connection and routing -----------------------------------------------------

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._stop_refresh()
        conns, self._conns = self._conns, {}
        for c in conns.values():
            await c.close()

    def _conn(self, address: str | None = None) -> _Conn:
        address = address or self.addresses[self._current]
        c = self._conns.get(address)
        if c is None:
            c = self._conns[address] = _Conn(address, self._max_message_bytes, self._credentials, self._metadata)
        return c

    def _route(self, key: str | None) -> _Conn:
        """The owner of `key`'s partition if the ring knows it, else the current seed."""
        if key and self._partitions:
            return self._conn(self.address_for_partition(partition_of(partition_key(key), self._partitions)))
        return self._conn()

    async def refresh_ring(self) -> None:
        """Learns membership from any node that answers; keeps the old ring if none does."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._ring_checked_at < 0.05:
            return
        self._ring_checked_at = loop.time()
        candidates = list(dict.fromkeys([self.addresses[self._current], *self.addresses, *self._members.values()]))
        for address in candidates:
            try:
                st = await self._conn(address).cluster.Status(cluster_pb2.StatusRequest(), timeout=min(self.timeout_s, 2.0))
            except grpc.aio.AioRpcError:
                continue
            members = {m.id: m.address for m in st.members if m.status in ("alive", "suspect")}
            vnodes = st.vnodes or 200
            # The same members make the same ring: kept, with the owners it has looked up.
            if not self.route:
                self._ring = None
            elif self._ring is None or self._ring.vnodes != vnodes or set(self._ring.nodes) != members.keys():
                self._ring = Ring(members, vnodes=vnodes)
            self._members = members
            self._partitions = st.partitions
            return

    async def _ensure_ring(self) -> None:
        """Learns the ring on first use and refreshes it every RING_REFRESH_S, so that a
        moved partition costs at most that long of forwarding through a second node.

        Once there is a ring, the refresh runs in the background and calls go on with
        the ring they have: a refresh is a Status call and, if membership changed, a
        new ring, and the call that happened to come after RING_REFRESH_S used to wait
        for both (about 2.5 ms every 5 s: the worst of a client's round trips, with one
        call in flight). A node that answers "not owner" still makes the caller
        refresh and wait (see _call)."""
        if not self.route:
            return
        loop = asyncio.get_running_loop()
        if self._ring is None:
            if self._ring_checked_at < 0 or loop.time() - self._ring_checked_at > RING_REFRESH_S:
                await self.refresh_ring()
        elif loop.time() - self._ring_checked_at > RING_REFRESH_S and (
                self._ring_refresh is None or self._ring_refresh.done()):
            self._ring_refresh = loop.create_task(self._refresh_in_background())

    async def _refresh_in_background(self) -> None:
        try:
            await self.refresh_ring()
        except Exception as exc:  # e.g. a channel that broke: the next stale call tries again
            log.debug("client.ring_refresh_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            if self._ring_refresh is asyncio.current_task():
                self._ring_refresh = None

    async def _stop_refresh(self) -> bool:
        """Cancels a background refresh still running and waits for it; True if there
        was one."""
        refresh, self._ring_refresh = self._ring_refresh, None
        if refresh is None or refresh.done():
            return False
        refresh.cancel()
        await asyncio.wait([refresh])  # (raises nothing of the task's; a cancel of the caller still raises)
        return True

    async def _failed_over(self) -> None:
        self._current = (self._current + 1) % len(self.addresses)
        if await self._stop_refresh():
            # It may have been asking the node that just failed, and it started before
            # this failure: the refresh below replaces it, now, and is not held off by
            # the rate limit it set (no await between the reset and refresh_ring's start).
            self._ring_checked_at = -1e9
        await self.refresh_ring()

    def address_for_partition(self, p: int) -> str:
        """The owner of partition `p` if the ring knows it, else the current seed."""
        if self._ring is not None:
            address = self._members.get(self._ring.owner(p) or "")
            if address:
                return address
        return self.addresses[self._current]

    def ticket(self) -> str:
        """A fresh ticket, unique to this client session."""
        self._seq += 1
        return f"{self._session}-{self._seq}"

    async def _call(self, method: Callable[[_Conn], Awaitable[T]], key: str | None = None, retry: bool = True) -> T:
        """Runs one RPC at `key`'s owner (or any node), retrying retriable errors with
        backoff and full jitter; translates gRPC errors into fero errors."""
        await self._ensure_ring()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for_s
        delay = 0.02
        while True:
            conn = self._route(key)
            try:
                return await method(conn)
            except grpc.aio.AioRpcError as exc:
                err = from_status(exc.code(), exc.details() or "")
                cause: BaseException = exc
            except FeroError as exc:  # from a commit stream, or a record's own error
                err = cause = exc
            if not (retry and err.retriable) or loop.time() + delay > deadline:
                if err is cause:
                    raise err
                raise err from cause
            if err.refresh_ring or err.code == grpc.StatusCode.UNAVAILABLE:
                await self._failed_over()
            # Full jitter (AWS architecture blog, "Exponential Backoff and Jitter").
            await asyncio.sleep(self._rng.uniform(0, delay))
            delay = min(delay * 2, 1.0)

    # -- counters -------------------------------------------------------------------

    async def add(self, name: str, amount: Value | str, *, ticket: str | None = None, acks: Acks | str = "leader") -> AddResult:
        """Adds `amount` to counter `name`; the new value and whether the cluster is whole."""
        # The record is made in place: CommitRequest(records=[rec]) would copy it.
        req = changelog_pb2.CommitRequest(acks=Acks.parse(acks))
        rec = req.records.add(key=name, op=types_pb2.OP_COUNTER_ADD, ticket=ticket or self.ticket())
        if type(amount) is int:
            values.to_number(amount, rec.amount)
        else:
            rec.amount.CopyFrom(values.number_of(amount))

        async def call(c: _Conn) -> tuple[types_pb2.Result, bool]:
            reply = await c.commit(req, self.timeout_s)
            (r,) = reply.results
            if r.error_code:
                raise from_status(status_code(r.error_code), r.error_message)
            return r, reply.coherent

        r, coherent = await self._call(call, name)
        return AddResult(values.parse_number(r.value), coherent, r.duplicate, r.partition, r.offset, r.ticket)

    async def get(self, name: str, *, stale_ok: bool = False, address: str | None = None) -> CounterValue:
        """The counter's value from its owner; with `stale_ok`, from the node asked (at
        `address`, or the owner) if it holds a copy, which may lag the owner."""
        req = counters_pb2.GetRequest(name=name, stale_ok=stale_ok)
        if address is not None:
            try:
                r = await self._conn(address).counters.Get(req, timeout=self.timeout_s)
            except grpc.aio.AioRpcError as exc:
                raise from_status(exc.code(), exc.details() or "") from exc
        else:
            r = await self._call(lambda c: c.counters.Get(req, timeout=self.timeout_s), name)
        return CounterValue(values.parse_number(r.value), Kind.parse(r.kind), r.exists, r.expire_at_ms, r.coherent)

    async def setup(
        self, name: str, kind: Kind | str = "int", *, expire_at_ms: int = 0, ttl_s: float | None = None,
        acks: Acks | str = "leader",
    ) -> counters_pb2.SetupReply:
        """Fixes a counter's value kind ("int", "decimal", "rational") and expiry."""
        req = counters_pb2.SetupRequest(
            name=name, kind=int(Kind.parse(kind)), expire_at_ms=expire_at_ms,
            ttl_ms=int(ttl_s * 1000) if ttl_s else 0, ticket=self.ticket(), acks=Acks.parse(acks),
        )
        return await self._call(lambda c: c.counters.Setup(req, timeout=self.timeout_s), name)

    async def list(self, prefix: str = "", limit: int = 1000) -> dict[str, Value]:
        """{name: value} of the counters whose names start with `prefix`, in name order,
        from every owner (at most `limit`)."""
        req = counters_pb2.ListRequest(prefix=prefix, limit=limit)
        r = await self._call(lambda c: c.counters.List(req, timeout=self.timeout_s))
        return {e.name: values.parse_number(e.value) for e in r.counters}

    # -- keyed changes --------------------------------------------------------------

    def record(
        self, op: int, key: str, *, value: Any = _NO_VALUE, amount: Value | str | None = None, action: str = "",
        ticket: str | None = None, raw: bool = False,
    ) -> types_pb2.Record:
        """Builds a record for `commit()` or a pipeline; `value` is JSON-encoded (None is
        JSON null) unless it is bytes."""
        rec = types_pb2.Record(key=key, op=op, ticket=ticket or self.ticket(), action=action)
        if value is not _NO_VALUE:
            rec.value = _json_bytes(value) if not raw else bytes(value)
        if amount is not None:
            rec.amount.CopyFrom(values.number_of(amount))
        return rec

    async def commit(self, records: Sequence[types_pb2.Record], acks: Acks | str = "leader") -> list[types_pb2.Result]:
        """Commits a batch; one Result per record, in order (check `error_code`).

        Records are sent to their owners, one call per owner, concurrently. Records
        that come back retriable (owner moving or unreachable) are sent again, with
        the same tickets, until `retry_for_s`; what still fails is returned as errors.
        A malformed batch raises InvalidArgument.
        """
        ack = Acks.parse(acks)
        await self._ensure_ring()
        n = len(records)
        results: list[types_pb2.Result] = [None] * n  # type: ignore[list-item]
        pending = list(range(n))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for_s
        delay = 0.02
        while True:
            groups: dict[str, list[int]] = {}
            for i in pending:
                groups.setdefault(self._route(records[i].key).address, []).append(i)
            retry: list[int] = []

            async def send(address: str, idxs: list[int]) -> None:
                req = changelog_pb2.CommitRequest(records=[records[i] for i in idxs], acks=ack)
                try:
                    reply = await self._conn(address).commit(req, self.timeout_s)
                except FeroError as err:
                    if not err.retriable:
                        raise
                    for i in idxs:
                        results[i] = types_pb2.Result(ticket=records[i].ticket, error_code=err.code.value[0], error_message=err.message)
                    retry.extend(idxs)
                    return
                for i, r in zip(idxs, reply.results):
                    results[i] = r
                    if r.error_code and from_status(status_code(r.error_code), r.error_message).retriable:
                        retry.append(i)

            await asyncio.gather(*(send(a, idxs) for a, idxs in groups.items()))
            if not retry or loop.time() + delay > deadline:
                return results
            pending = sorted(retry)
            await self._failed_over()
            await asyncio.sleep(self._rng.uniform(0, delay))
            delay = min(delay * 2, 1.0)

    async def _one(self, rec: types_pb2.Record, acks: Acks | str) -> types_pb2.Result:
        (r,) = await self.commit([rec], acks)
        if r.error_code:
            raise from_status(status_code(r.error_code), r.error_message)
        return r

    async def update(self, key: str, value: Any, *, ticket: str | None = None, acks: Acks | str = "leader") -> types_pb2.Result:
        """Sets the value at key path `key` (JSON; bytes are stored as given)."""
        return await self._one(self.record(types_pb2.OP_UPDATE, key, value=value, ticket=ticket), acks)

    async def remove(self, key: str, *, ticket: str | None = None, acks: Acks | str = "leader") -> types_pb2.Result:
        return await self._one(self.record(types_pb2.OP_REMOVE, key, ticket=ticket), acks)

    async def add_at(self, key: str, amount: int, *, ticket: str | None = None, acks: Acks | str = "leader") -> int:
        """Adds an integer to the number at key path `key`; the new number."""
        r = await self._one(self.record(types_pb2.OP_ADD, key, amount=amount, ticket=ticket), acks)
        return values.parse_number(r.value)  # type: ignore[return-value]

    async def push(self, key: str, value: Any, *, ticket: str | None = None, acks: Acks | str = "leader") -> types_pb2.Result:
        return await self._one(self.record(types_pb2.OP_PUSH, key, value=value, ticket=ticket), acks)

    async def patch(self, key: str, value: dict[str, Any], *, ticket: str | None = None, acks: Acks | str = "leader") -> types_pb2.Result:
        """JSON merge patch (RFC 7386) at key path `key`."""
        return await self._one(self.record(types_pb2.OP_PATCH, key, value=value, ticket=ticket), acks)

    async def action(
        self, key: str, action: str, payload: bytes = b"", *, ticket: str | None = None, acks: Acks | str = "reply"
    ) -> bytes:
        """Commits a custom action for the owner's handler; with acks="reply", its reply."""
        rec = self.record(types_pb2.OP_ACTION, key, value=payload, action=action, ticket=ticket, raw=True)
        r = await self._one(rec, acks)
        return r.reply

    async def read(self, key: str) -> Any:
        """The JSON value at key path `key`, or None if there is none."""
        raw = await self.read_raw(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise FailedPrecondition(f"the value at {key!r} is not JSON; use read_raw()") from None

    async def read_raw(self, key: str) -> bytes | None:
        req = changelog_pb2.ReadRequest(key=key)
        r = await self._call(lambda c: c.changelog.Read(req, timeout=self.timeout_s), key)
        return r.value if r.exists else None

    # -- pipelining, subscriptions, status ------------------------------------------

    def pipeline(self, acks: Acks | str = "leader", batch_size: int = 1000, max_in_flight: int = 4,
                 on_batch: Callable[[list[types_pb2.Record], list[types_pb2.Result]], None] | None = None) -> "Pipeline":
        return Pipeline(self, Acks.parse(acks), batch_size, max_in_flight, on_batch)

    def producer(
        self, acks: Acks | str = "leader", *, batch_size: int = 1000, linger_ms: float = 5.0,
        max_in_flight: int = 4, request_records: int = 4000, max_buffered: int = 100_000,
        on_result: "OnResult | None" = None, request_bytes: int = 1 << 20,
    ) -> "Producer":
        """The fast path for many small writes: columnar batches per partition, one
        ticket each (see fero.producer)."""
        return Producer(
            self, Acks.parse(acks), batch_size=batch_size, linger_ms=linger_ms, max_in_flight=max_in_flight,
            request_records=request_records, max_buffered=max_buffered, on_result=on_result,
            request_bytes=request_bytes,
        )

    def subscribe(
        self, *, prefix: str | None = None, partition: int | None = None,
        from_offsets: dict[int, int] | None = None, earliest: bool = False,
    ) -> "Subscription | ClusterSubscription":
        """Commits under a key prefix (or of one partition), each once, in per-partition
        order: history from `from_offsets` (or everything, with `earliest`), then live.

        `async for change in c.subscribe(...)` starts it; `sub = await c.subscribe(...)`
        returns once the node has registered it, so every commit made after that is seen.
        """
        req = changelog_pb2.SubscribeRequest(
            from_offsets=from_offsets or {},
            default_from=changelog_pb2.SubscribeRequest.START_EARLIEST if earliest else changelog_pb2.SubscribeRequest.START_NOW,
        )
        if partition is not None:
            req.partition = partition
        else:
            req.prefix = prefix or ""
        if not self.route:
            return Subscription(self._conn().changelog, req)
        return _LazyClusterSubscription(self, req, partition, prefix or "")

    async def status(self, include_partitions: bool = False) -> cluster_pb2.StatusReply:
        req = cluster_pb2.StatusRequest(include_partitions=include_partitions)
        return await self._call(lambda c: c.cluster.Status(req, timeout=self.timeout_s))


class Subscription:
    """A running subscription: awaitable (returns once the node has registered it) and
    an async iterator of Change; iterating again continues where the last loop stopped.
    `aclose()` (or `close()`) ends it."""

    def __init__(self, stub: changelog_pb2_grpc.ChangelogStub, request: changelog_pb2.SubscribeRequest) -> None:
        self._stub = stub
        self._request = request
        self._call: Any = None
        self._buffer: collections.deque[Change] = collections.deque()

    async def _open(self) -> "Subscription":
        if self._call is None:
            self._call = self._stub.Subscribe(self._request)
            first = await self._read()
            if first is grpc.aio.EOF or not first.subscribed:
                raise Unavailable("the node closed the subscription before registering it")
        return self

    async def _read(self) -> Any:
        try:
            return await self._call.read()
        except grpc.aio.AioRpcError as exc:
            raise from_status(exc.code(), exc.details() or "") from exc

    def __await__(self) -> Any:
        return self._open().__await__()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Change:
        await self._open()
        while not self._buffer:
            event = await self._read()
            if event is grpc.aio.EOF:
                raise StopAsyncIteration
            self._buffer.extend(Change.from_commit(c) for c in event.commits)
        return self._buffer.popleft()

    def close(self) -> None:
        if self._call is not None:
            self._call.cancel()

    async def aclose(self) -> None:
        self.close()


class _LazyClusterSubscription:
    """Learns the ring on first use, then runs a ClusterSubscription over the
    partitions of the scope (see fero/subscriber.py)."""

    def __init__(self, client: Client, request: changelog_pb2.SubscribeRequest, partition: int | None, prefix: str) -> None:
        self._client, self._request, self._partition, self._prefix = client, request, partition, prefix
        self._inner: ClusterSubscription | None = None

    async def _open(self) -> "_LazyClusterSubscription":
        if self._inner is None:
            await self._client._ensure_ring()
            P = self._client._partitions or 1
            if self._partition is not None:
                parts = [self._partition]
            elif "." in self._prefix:
                parts = [partition_of(partition_key(self._prefix), P)]
            else:
                parts = list(range(P))
            self._inner = ClusterSubscription(self._client, self._request, parts)
            await self._inner._open()
        return self

    def __await__(self) -> Any:
        return self._open().__await__()

    def __aiter__(self) -> "_LazyClusterSubscription":
        return self

    async def __anext__(self) -> Change:
        await self._open()
        assert self._inner is not None
        return await self._inner.__anext__()

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


class Pipeline:
    """Buffers records into batches and keeps up to `max_in_flight` batches in flight.

    `await p.add(...)` returns at once unless `max_in_flight` batches are already out,
    which is the backpressure. Leaving `async with` (or `await p.flush()`) sends the
    rest and waits for every batch. `results` holds one Result per record in the order
    submitted; `on_batch(records, results)` is called as each batch is acknowledged.
    A batch that fails for good raises from flush() (its tickets make a re-send safe).
    """

    def __init__(self, client: Client, acks: Acks, batch_size: int, max_in_flight: int,
                 on_batch: Callable[[list[types_pb2.Record], list[types_pb2.Result]], None] | None) -> None:
        if batch_size < 1 or max_in_flight < 1:
            raise InvalidArgument("batch_size and max_in_flight must be at least 1")
        self.client = client
        self.acks = acks
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.on_batch = on_batch
        self.results: list[types_pb2.Result] = []
        self._batch: list[types_pb2.Record] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slots: list[list[types_pb2.Result] | None] = []
        self._error: BaseException | None = None

    async def __aenter__(self) -> "Pipeline":
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            await self.flush()
        else:
            for t in self._in_flight:
                t.cancel()

    async def add(self, name: str, amount: Value | str, *, ticket: str | None = None) -> None:
        rec = types_pb2.Record(key=name, op=types_pb2.OP_COUNTER_ADD, ticket=ticket or self.client.ticket())
        rec.amount.CopyFrom(values.number_of(amount))
        await self.submit(rec)

    async def update(self, key: str, value: Any, *, ticket: str | None = None) -> None:
        await self.submit(self.client.record(types_pb2.OP_UPDATE, key, value=value, ticket=ticket))

    async def submit(self, record: types_pb2.Record) -> None:
        if self._error is not None:
            raise self._error
        if not record.ticket:
            record.ticket = self.client.ticket()
        self._batch.append(record)
        if len(self._batch) >= self.batch_size:
            await self._send()

    async def _send(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        while len(self._in_flight) >= self.max_in_flight:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
            if self._error is not None:
                raise self._error
        slot = len(self._slots)
        self._slots.append(None)
        task = asyncio.get_running_loop().create_task(self._run(slot, batch))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _run(self, slot: int, batch: list[types_pb2.Record]) -> None:
        try:
            results = await self.client.commit(batch, self.acks)
            for r in results:
                if r.error_code:
                    err = from_status(status_code(r.error_code), r.error_message)
                    if err.retriable:  # still unavailable after retrying: not acknowledged
                        raise err
        except BaseException as exc:
            self._error = exc
            raise
        self._slots[slot] = results
        if self.on_batch is not None:
            self.on_batch(batch, results)

    async def flush(self) -> list[types_pb2.Result]:
        await self._send()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._error is not None:
            raise self._error
        self.results = [r for rs in self._slots if rs is not None for r in rs]
        return self.results


def connect(address: str | Sequence[str], **kwargs: Any) -> Client:
    """An asyncio client: `async with fero.connect("127.0.0.1:4000") as c: ...`."""
    return Client(address, **kwargs)


class SyncClient:
    """The client's API, blocking: runs an event loop in a background thread."""

    def __init__(self, address: str | Sequence[str], **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fero-client", daemon=True)
        self._thread.start()
        self._client = Client(address, **kwargs)

    def _run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name in ("subscribe", "pipeline") or not callable(attr):
            raise AttributeError(f"SyncClient has no {name!r}; use the async client for streams and pipelines")
        if not asyncio.iscoroutinefunction(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(attr(*args, **kwargs))

        return call

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_sync(address: str | Sequence[str], **kwargs: Any) -> SyncClient:
    return SyncClient(address, **kwargs)
