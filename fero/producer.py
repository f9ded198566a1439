"""The producer: the client's fast path, in columnar batches (after Kafka's producer).

    async with client.producer(acks="leader") as prod:
        for name, amount in increments:
            await prod.add(name, amount)       # returns at once unless too much is in flight
    # leaving the block sends the rest and waits for every batch

Records are buffered per partition into `fero.v1.Batch`es (a record of another op than
the open batch's seals it first, so a partition's records commit in the order given,
unless a batch has to be retried: later ones may then commit before it, as with
Kafka's producer with more than one request in flight): columns of keys and
values or amounts, one ticket per batch. A batch goes out when it holds `batch_size`
records, when its first record is `linger_ms` old and a request slot is free (until
then it keeps filling, as Kafka's producer drains a batch only when it can send it),
when the producer holds `max_buffered` records (the oldest batches, a request's
worth), or at flush(); each request to an owner carries up to
`request_records` records of ready batches, and no more than `request_bytes` of keys
and values unless a single batch is larger (after Kafka's max.request.size: the owner
applies a request in one step of its event loop, and a step of megabytes delays
everything else it serves, its membership probes too). Nothing is built per record but
the key's partition and two list appends: no Record message, no coroutine, no future,
no task. A batch's columns go into the request message as it is built, once: building
a Batch first and setting it in the request would copy it whole.

An application that has its records in lists hands them over in one call each:
`await prod.update_many(keys, values)` (and add_many, action_many) puts the records
into the batches that as many update() calls would (at max_buffered a batch may end a
few records elsewhere), but partitions the keys and appends them to their batches by
C-level maps, with no Python step a record. (py-spy of a client making a million
100-byte updates to one node, one call each: update() itself was a third of its time.)

A batch that fails retriably (its owner moved or is unreachable) is sent again whole,
with the same ticket, to the partition's owner as the refreshed ring says, until the
client's `retry_for_s`; the owner acknowledges a batch it already has as a duplicate
with the first result, so a retry never counts twice. `on_result(batch, result)` is
called once per batch with its fero.v1.BatchResult (values after each COUNTER_ADD,
per-record errors).
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

import grpc
import mmh3

from fero.batch import partitions_of
from fero.documents import encode, partition_key
from fero.errors import FeroError, InvalidArgument, from_status, status_code
from fero.ring import partition_of
from fero.v1 import changelog_pb2, types_pb2

if TYPE_CHECKING:
    from fero.client import Acks, Client

_hash_bytes = mmh3.hash_bytes
_append = list.append
_UPDATE = types_pb2.OP_UPDATE
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
OnResult = Callable[[types_pb2.Batch, types_pb2.BatchResult], None]
#: Round trips a producer keeps (Producer.request_seconds): 3.2 MB of floats. Every
#: one kept, a long-lived producer grew by 115 MB an hour at 1000 requests a second.
REQUEST_SECONDS_KEPT = 100_000


class _Buffer:
    """A partition's open batch; once sealed, a batch to send (again, on a retry)."""

    __slots__ = ("partition", "op", "action", "keys", "column", "since", "ticket", "first_sent", "size")

    def __init__(self, partition: int, op: int, action: str = "") -> None:
        self.partition = partition
        self.op = op
        self.action = action
        self.keys: list[str] = []
        self.column: list[Any] = []  # values or amounts
        self.since = time.monotonic()
        self.ticket = ""  # set when sealed
        #: Loop time of its first send (the retry_for_s clock).
        self.first_sent: float | None = None
        self.size = 0  # bytes of keys and values, set when sealed

    def seal(self, ticket: str) -> None:
        self.ticket = ticket
        # Per batch, not per record (C-level passes, ~20 ns a record); amounts count 8
        # bytes each, keys their characters.
        keys = len("".join(self.keys))
        if self.op == types_pb2.OP_COUNTER_ADD or self.op == types_pb2.OP_ADD:
            self.size = keys + 8 * len(self.column)
        else:
            self.size = keys + sum(map(len, self.column))

    def add_to(self, req: changelog_pb2.CommitRequest) -> types_pb2.Batch:
        if self.op == types_pb2.OP_COUNTER_ADD or self.op == types_pb2.OP_ADD:
            return req.batches.add(partition=self.partition, ticket=self.ticket, op=self.op,
                                   keys=self.keys, amounts=self.column, action=self.action)
        return req.batches.add(partition=self.partition, ticket=self.ticket, op=self.op,
                               keys=self.keys, values=self.column, action=self.action)


class Producer:
    def __init__(
        self, client: "Client", acks: "Acks", *, batch_size: int = 1000, linger_ms: float = 5.0,
        max_in_flight: int = 4, request_records: int = 4000, max_buffered: int = 100_000,
        on_result: OnResult | None = None, request_bytes: int = 1 << 20,
    ) -> None:
        if (batch_size < 1 or max_in_flight < 1 or request_records < 1 or max_buffered < 1 or request_bytes < 1
                or linger_ms < 0):
            raise InvalidArgument(
                "batch_size, max_in_flight, request_records, request_bytes and max_buffered must be at least 1, "
                "linger_ms at least 0"
            )
        self.client = client
        self.acks = acks
        self.batch_size = batch_size
        self.linger_s = linger_ms / 1000
        self.max_in_flight = max_in_flight
        self.request_records = request_records
        self.request_bytes = request_bytes
        self.max_buffered = max_buffered
        self.on_result = on_result
        #: Records acknowledged, records refused one by one (RecordError), batches sent.
        self.acked = 0
        self.failed = 0
        self.batches = 0
        self.first_error = ""
        #: Round trip of each request that was answered (seconds), the most recent
        #: REQUEST_SECONDS_KEPT (100,000) of them: far more than a benchmark's run
        #: makes (a million records go in 125 requests of 8000, or about 1000 of 1 MiB).
        self.request_seconds: collections.deque[float] = collections.deque(maxlen=REQUEST_SECONDS_KEPT)
        self._partitions = 0
        self._mask = -1  # P - 1 once started, if P is a power of two up to 256 (see _put)
        self._buffers: dict[int, _Buffer] = {}
        self._buffered = 0
        #: Sealed batches to send.
        self._ready: list[_Buffer] = []
        self._ready_records = 0
        self._ready_bytes = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._error: BaseException | None = None
        self._linger: asyncio.Task[None] | None = None
        #: What _put returns when the record was only buffered: a finished future
        #: (made by _start, in the event loop), so awaiting it returns at once.
        self._buffered_only: asyncio.Future[None]

    async def __aenter__(self) -> "Producer":
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            await self.close()
        else:
            self._stop()

    def _stop(self) -> None:
        for t in self._in_flight:
            t.cancel()
        if self._linger is not None:
            self._linger.cancel()

    # -- records --------------------------------------------------------------------

    # Each of these returns an awaitable, not a coroutine: await it before the next
    # call (that is what keeps a partition's records in order and bounds the buffer).
    # It has nothing to wait for unless the record made a send due (see _put). Bad
    # arguments, and a failure that ended the producer, raise at the call.

    def add(self, name: str, amount: int) -> Awaitable[None]:
        """Adds `amount` (an int that fits 64 bits; send others with Client.add) to counter `name`."""
        if amount.__class__ is not int or not _I64_MIN <= amount <= _I64_MAX:
            raise InvalidArgument(f"amount {amount!r}: a producer sends ints of 64 bits; use Client.add for others")
        return self._put(types_pb2.OP_COUNTER_ADD, name, amount)

    def update(self, key: str, value: Any) -> Awaitable[None]:
        """Sets the JSON value at key path `key` (bytes are stored as given)."""
        if value.__class__ is not bytes:
            value = encode(value)
        # _put's fast path, inlined: a bulk load is UPDATEs, and the call to _put was
        # 50 to 100 ns of the 600 a record cost the producer.
        mask = self._mask
        if mask >= 0 and key and "." not in key:
            buf = self._buffers.get(_hash_bytes(key)[0] & mask)
            if buf is not None and buf.op == _UPDATE and not buf.action:
                keys = buf.keys
                keys.append(key)
                buf.column.append(value)
                self._buffered += 1
                if len(keys) < self.batch_size and self._buffered + self._ready_records < self.max_buffered:
                    return self._buffered_only
                return self._due(buf)
        return self._put_any(_UPDATE, key, value, "")

    def remove(self, key: str) -> Awaitable[None]:
        return self._put(types_pb2.OP_REMOVE, key, None)

    def add_at(self, key: str, amount: int) -> Awaitable[None]:
        """Adds `amount` to the number at key path `key`."""
        if amount.__class__ is not int or not _I64_MIN <= amount <= _I64_MAX:
            raise InvalidArgument(f"amount {amount!r}: a producer sends ints of 64 bits")
        return self._put(types_pb2.OP_ADD, key, amount)

    def push(self, key: str, value: Any) -> Awaitable[None]:
        return self._put(types_pb2.OP_PUSH, key, value if value.__class__ is bytes else encode(value))

    def patch(self, key: str, value: Any) -> Awaitable[None]:
        return self._put(types_pb2.OP_PATCH, key, value if value.__class__ is bytes else encode(value))

    def action(self, key: str, action: str, payload: bytes = b"") -> Awaitable[None]:
        """A named custom action on `key`, run by the owner's handler; with acks "reply"
        each batch's result carries the handler's replies."""
        if not action:
            raise InvalidArgument("action name is empty")
        # bytes(payload) costs 70 ns even when payload is bytes already.
        return self._put(types_pb2.OP_ACTION, key, payload if payload.__class__ is bytes else bytes(payload), action)

    def _put(self, op: int, key: str, item: Any, action: str = "") -> Awaitable[None]:
        """Buffers one record. Returns a finished future when that is all, or the send
        that has to happen now (awaiting it waits while max_in_flight requests are out).
        A plain function, not a coroutine: it runs per record, and the two coroutines
        an `await add()` used to cost were about 100 of the 870 ns a record took.

        The common case first, in as few steps as will do: the producer is sending
        (started, not failed: `_mask` is -1 otherwise), P is a power of two up to 256,
        the key is bare, and its partition's open batch is of this op. Anything else
        goes the general way (_put_any)."""
        mask = self._mask
        if mask >= 0 and key and "." not in key:
            # fero.ring.partition_of(key), inlined: as in fero.batch.partitions_of, the
            # low bits of the digest's first byte.
            buf = self._buffers.get(_hash_bytes(key)[0] & mask)
            if buf is not None and buf.op == op and buf.action == action:
                keys = buf.keys
                keys.append(key)
                if item is not None:
                    buf.column.append(item)
                self._buffered += 1
                if len(keys) < self.batch_size and self._buffered + self._ready_records < self.max_buffered:
                    return self._buffered_only
                return self._due(buf)
        return self._put_any(op, key, item, action)

    # -- records in bulk ---------------------------------------------------------------

    async def update_many(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        """update(keys[k], values[k]) for every k, in that order, in one call: the keys
        are hashed and put into their partitions' batches by C-level maps, with no
        Python step a record. Waits while sends are due, as the single calls would."""
        values = list(values)
        if set(map(type, values)) != {bytes}:
            values = [v if v.__class__ is bytes else encode(v) for v in values]
        await self._put_many(_UPDATE, keys, values)

    async def add_many(self, names: Sequence[str], amounts: Sequence[int]) -> None:
        """add(names[k], amounts[k]) for every k, in that order, in one call (as update_many)."""
        amounts = list(amounts)
        if amounts and (set(map(type, amounts)) != {int} or min(amounts) < _I64_MIN or max(amounts) > _I64_MAX):
            k, bad = next((k, a) for k, a in enumerate(amounts)
                          if a.__class__ is not int or not _I64_MIN <= a <= _I64_MAX)
            raise InvalidArgument(f"amount {k} ({bad!r}): a producer sends ints of 64 bits; use Client.add for others")
        await self._put_many(types_pb2.OP_COUNTER_ADD, names, amounts)

    async def action_many(self, keys: Sequence[str], action: str, payloads: Sequence[bytes]) -> None:
        """action(keys[k], action, payloads[k]) for every k, in that order, in one call
        (as update_many)."""
        if not action:
            raise InvalidArgument("action name is empty")
        payloads = list(payloads)
        if set(map(type, payloads)) != {bytes}:
            payloads = [v if v.__class__ is bytes else bytes(v) for v in payloads]
        await self._put_many(types_pb2.OP_ACTION, keys, payloads, action)

    async def _put_many(self, op: int, keys: Sequence[str], column: list[Any], action: str = "") -> None:
        """Buffers records keys[k] with column[k], seals the batches that fill, and sends
        what is due, as single calls would: each partition gets its records in the
        order given, in the same batches, except that at max_buffered, which single
        calls reach at a record and this at the end of a part of the call, a batch may
        end elsewhere. A request may carry more batches than single calls would give
        it (they send as each batch fills)."""
        if isinstance(keys, (str, bytes)):
            raise InvalidArgument("keys is one string; pass a sequence of keys")
        keys = list(keys)
        if len(keys) != len(column):
            raise InvalidArgument(f"{len(keys)} keys and {len(column)} values or amounts; one each")
        if self._error is not None:
            raise self._error
        if not keys:
            return
        if set(map(type, keys)) != {str} and not all(isinstance(key, str) for key in keys):
            k, bad = next((k, key) for k, key in enumerate(keys) if not isinstance(key, str))
            raise InvalidArgument(f"key {k} ({bad!r}) is not a string")
        if "" in keys:
            raise InvalidArgument(f"key {keys.index('')} is empty")
        if not self._partitions:
            await self._start()
        parts = partitions_of(keys, self._partitions)
        # At most up to max_buffered at a time, as single calls reach it: there they
        # seal the oldest batches and send.
        start, n = 0, len(keys)
        while start < n:
            room = max(1, self.max_buffered - self._buffered - self._ready_records)
            if start == 0 and room >= n:
                end = n
                filled = self._buffer_many(op, keys, parts, column, action)
            else:
                end = min(n, start + room)
                filled = self._buffer_many(op, keys[start:end], parts[start:end], column[start:end], action)
            start = end
            # As _due: a batch that filled goes out if a request's worth is ready, or
            # nothing else (no linger task) would send it.
            if filled and (self._ready_records >= self.request_records or self._ready_bytes >= self.request_bytes
                           or self._linger is None):
                await self._send()
            while self._buffered + self._ready_records >= self.max_buffered:
                self._seal_oldest(self.request_records - self._ready_records, self.request_bytes)
                await self._send()

    def _buffer_many(self, op: int, keys: list[str], parts: list[int], column: list[Any], action: str) -> bool:
        """_put_many's buffering: appends each record to its partition's open batch and
        seals those that fill. Returns whether any did."""
        # Partitions in the order they first appear, as single calls would open their
        # batches: _buffers keeps that order, and _seal_oldest goes by it.
        touched = dict.fromkeys(parts)
        bufs = self._buffers
        for p in touched:
            buf = bufs.get(p)
            if buf is None or buf.op != op or buf.action != action:
                if buf is not None:
                    self._seal(buf)  # the partition's records go in the order given
                bufs[p] = _Buffer(p, op, action)
        # Each record onto the end of its partition's open batch: one C-level pass for
        # the keys and one for the column, each an append into the list the partition
        # maps to.
        collections.deque(map(_append, map({p: bufs[p].keys for p in touched}.__getitem__, parts), keys), 0)
        collections.deque(map(_append, map({p: bufs[p].column for p in touched}.__getitem__, parts), column), 0)
        self._buffered += len(keys)
        size = self.batch_size
        full = [p for p in touched if len(bufs[p].keys) >= size]
        for p in full:
            self._seal_full(bufs[p])
        return bool(full)

    def _seal_full(self, buf: _Buffer) -> None:
        """Seals the records of open batch `buf` as batches of batch_size, in order,
        while it has that many. The rest, if any, is the partition's new open batch,
        opened now (as the record after a full batch opens one)."""
        size = self.batch_size
        keys, column = buf.keys, buf.column
        n = len(keys)
        if n == size:
            self._seal(buf)
            return
        whole = n - n % size
        del self._buffers[buf.partition]
        for i in range(0, whole, size):
            chunk = _Buffer(buf.partition, buf.op, buf.action)
            chunk.keys, chunk.column = keys[i:i + size], column[i:i + size]
            self._make_ready(chunk)
        if whole < n:
            rest = self._buffers[buf.partition] = _Buffer(buf.partition, buf.op, buf.action)
            rest.keys, rest.column = keys[whole:], column[whole:]

    def _put_any(self, op: int, key: str, item: Any, action: str) -> Awaitable[None]:
        """_put, every case."""
        if self._error is not None:
            raise self._error
        if not key:
            raise InvalidArgument("key is empty")
        P = self._partitions
        if not P:
            return self._start_and_put(op, key, item, action)
        pk = key if "." not in key else partition_key(key)
        p = _hash_bytes(pk)[0] & self._mask if self._mask >= 0 else partition_of(pk, P)
        buf = self._buffers.get(p)
        if buf is None or buf.op != op or buf.action != action:
            # One open batch per partition: another op seals it first, so the records
            # of a partition go out (and commit) in the order they were given.
            if buf is not None:
                self._seal(buf)
            buf = self._buffers[p] = _Buffer(p, op, action)
        buf.keys.append(key)
        if item is not None:
            buf.column.append(item)
        self._buffered += 1
        return self._due(buf)

    def _due(self, buf: _Buffer) -> Awaitable[None]:
        """After a record went into `buf`: seals it if it is full, and returns the send
        that has to happen now, if one does."""
        if len(buf.keys) >= self.batch_size:
            self._seal(buf)
            # A full batch goes out now if there is a request's worth, or nothing else
            # (no linger task) would send it.
            if (self._ready_records >= self.request_records or self._ready_bytes >= self.request_bytes
                    or self._linger is None):
                return self._send()
        elif self._buffered + self._ready_records >= self.max_buffered:
            self._seal_oldest(self.request_records - self._ready_records, self.request_bytes)
            return self._send()
        return self._buffered_only

    async def _start_and_put(self, op: int, key: str, item: Any, action: str) -> None:
        await self._start()
        await self._put(op, key, item, action)

    async def _start(self) -> None:
        if not self.client._partitions:
            await self.client.refresh_ring()
        if not self.client._partitions:
            raise from_status(grpc.StatusCode.UNAVAILABLE, f"no node answered at {self.client.addresses}")
        self._buffered_only = asyncio.get_running_loop().create_future()
        self._buffered_only.set_result(None)
        self._partitions = P = self.client._partitions
        self._mask = P - 1 if P <= 256 and P & (P - 1) == 0 else -1
        if self._linger is None and self.linger_s > 0:
            self._linger = asyncio.get_running_loop().create_task(self._linger_loop())

    def _seal(self, buf: _Buffer) -> None:
        """Turns a partition's open batch into a ready one."""
        del self._buffers[buf.partition]
        self._make_ready(buf)

    def _make_ready(self, buf: _Buffer) -> None:
        # The client's ticket sequence: unique across every producer of this client.
        buf.seal(self.client.ticket())
        n = len(buf.keys)
        self._buffered -= n
        self._ready.append(buf)
        self._ready_records += n
        self._ready_bytes += buf.size

    def _seal_oldest(self, records: int, max_bytes: float, opened_before: float = math.inf) -> None:
        """Seals open batches, oldest first: about `records` records' worth, until the
        ready batches hold `max_bytes`, and only batches opened before `opened_before`.
        `_buffers` holds them in the order they opened, so this looks at the batches
        it seals and no others.

        At max_buffered, a request's worth, not all of them: a caller that never waits
        keeps the linger task from running, so this is what sends, and sealing
        everything at once made the producer go stop-and-go. It sent max_buffered
        records at once and waited for in-flight slots while the owner worked, then
        buffered the next max_buffered while the owner, its requests done, sat idle. A
        request's worth at a time keeps both busy. The oldest go first, so none waits
        for long, and they are the fullest too when keys spread evenly.
        """
        take = []
        for buf in self._buffers.values():
            if records <= 0 or buf.since > opened_before:
                break
            take.append(buf)
            records -= len(buf.keys)
        for buf in take:
            if self._ready_bytes >= max_bytes:
                break
            self._seal(buf)

    async def _linger_loop(self) -> None:
        while True:
            await asyncio.sleep(self.linger_s / 2)
            if self._error is not None:
                return
            # The batches that have waited linger_ms, as many as the free in-flight
            # slots can take. The others stay open and keep filling until a slot is
            # free (as Kafka's producer drains a lingered batch only when it can send
            # it): sealed, they could only wait in line, and the records that came
            # meanwhile would start new, smaller batches.
            room = (self.max_in_flight - len(self._in_flight)) * self.request_records - self._ready_records
            self._seal_oldest(room, math.inf, time.monotonic() - self.linger_s)
            if self._ready:
                try:
                    await self._send()
                except Exception:
                    return  # it is self._error, which the caller's next call raises

    # -- sending --------------------------------------------------------------------

    async def _send(self) -> None:
        """Sends every ready batch: one request per owner of up to request_records
        and request_bytes (at least one batch).

        One sender at a time (the caller or the linger task), and a batch leaves
        `_ready` only as its request starts, with no await between: a flush that finds
        `_ready` empty knows every batch is in flight, and a cancelled sender drops none.
        """
        async with self._send_lock:
            await self.client._ensure_ring()
            while self._ready:
                while len(self._in_flight) >= self.max_in_flight:
                    await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
                if self._error is not None:
                    raise self._error
                address = self.client.address_for_partition(self._ready[0].partition)
                group: list[_Buffer] = []
                keep: list[_Buffer] = []
                held: set[int] = set()  # partitions with a batch kept back: so are their later ones
                n = size = 0
                for buf in self._ready:
                    if (n < self.request_records and (not group or size + buf.size <= self.request_bytes)
                            and buf.partition not in held
                            and self.client.address_for_partition(buf.partition) == address):
                        group.append(buf)
                        n += len(buf.keys)
                        size += buf.size
                    else:
                        keep.append(buf)
                        held.add(buf.partition)
                self._ready = keep
                self._ready_records -= n
                self._ready_bytes -= size
                task = asyncio.get_running_loop().create_task(self._request(address, group))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                # Let the call start now: a caller that never waits would otherwise hold
                # it back until max_in_flight calls have queued up.
                await asyncio.sleep(0)

    async def _request(self, address: str, group: list[_Buffer]) -> None:
        now = asyncio.get_running_loop().time()
        req = changelog_pb2.CommitRequest(acks=self.acks)
        for buf in group:
            if buf.first_sent is None:
                buf.first_sent = now
            buf.add_to(req)
        try:
            try:
                t0 = time.perf_counter()
                reply = await self.client._conn(address).commit(req, self.client.timeout_s)
                self.request_seconds.append(time.perf_counter() - t0)
            except FeroError as err:
                if not err.retriable:
                    raise
                await self._retry(group, err)
                return
            retry = []
            failure: FeroError | None = None
            for buf, b, r in zip(group, req.batches, reply.batch_results):
                if r.error_code:
                    failure = from_status(status_code(r.error_code), r.error_message)
                    if not failure.retriable:
                        raise failure
                    retry.append(buf)
                    continue
                self._done(b, r)
            if retry:
                assert failure is not None
                await self._retry(retry, failure)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # Kept, not raised: put(), flush() and close() raise it to the caller (a task
            # nobody awaits would only log it).
            if self._error is None:
                self._error = exc
                self._mask = -1  # no fast path: the next put goes where it is raised

    def _done(self, b: types_pb2.Batch, r: types_pb2.BatchResult) -> None:
        self.batches += 1
        self.acked += len(b.keys) - len(r.errors)
        if r.errors or r.handler_errors:
            # A failed handler leaves its action committed but without a reply.
            self.failed += len(r.errors) + len(r.handler_errors)
            if not self.first_error:
                e = r.errors[0] if r.errors else r.handler_errors[0]
                self.first_error = f"{e.code}: {e.message}"
        if self.on_result is not None:
            self.on_result(b, r)

    async def _retry(self, group: list[_Buffer], err: FeroError) -> None:
        """Sends retriable batches again, same tickets, to their owners as a refreshed
        ring says, after a backoff; gives up (raises `err`) after retry_for_s."""
        loop = asyncio.get_running_loop()
        oldest = min(buf.first_sent for buf in group if buf.first_sent is not None)
        if loop.time() - oldest > self.client.retry_for_s:
            raise err
        await self.client._failed_over()
        await asyncio.sleep(self.client._rng.uniform(0, 0.1))
        by_owner: dict[str, list[_Buffer]] = {}
        for buf in group:
            by_owner.setdefault(self.client.address_for_partition(buf.partition), []).append(buf)
        for address, items in by_owner.items():
            await self._request(address, items)

    async def flush(self) -> None:
        """Sends everything buffered and waits until every batch is acknowledged;
        raises the first error that made a batch fail for good."""
        for b in list(self._buffers.values()):
            self._seal(b)
        await self._send()  # also waits for a send the linger task is making
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        if self._error is not None:
            raise self._error

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            self._stop()

