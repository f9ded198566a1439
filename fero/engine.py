"""The commit engine: the partitions this node holds, their log, and their subscribers.

    commit(records, acks)
      validate → group by partition → per record: known ticket? → assign hlc and offset
      → apply to state → one LogEntry frame per partition → wal.append (no I/O)
      → await durability per acks → results
    durable commits → subscribers, in per-partition offset order

Everything up to the append is synchronous, so the records of one call commit
atomically with respect to other calls and the group commit in the log batches every
call that arrived while the previous fsync ran. There is no per-record future or task:
one wait per call.

A repeated ticket returns the first commit's result marked `duplicate`, after waiting
for the log to be durable up to now: the first commit may still be in flight, and a
retry must not be acknowledged before the original is.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import operator
import os
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Iterator, NamedTuple, Sequence

import structlog

from fero import batch as batches
from fero import values, wire
from fero.clock import Clock
from fero.config import Config
from fero.documents import columns_of, fill_columns, partition_key
from fero.errors import FeroError, InvalidArgument, OutOfRange, ResourceExhausted, Unimplemented
from fero.hlc import HybridClock
from fero.log import snapshot as snapshots
from fero.log.memory import MemoryWal
from fero.log.wal import Wal
from fero.partition import PartitionState, StateCut
from fero.ring import partition_of
from fero.subscriptions import Subscription
from fero.lineage import lineage_at
from fero.v1 import peer_pb2, storage_pb2, types_pb2
from fero.values import Kind, Value

log = structlog.get_logger("fero.engine")

#: Node-assigned tickets start with this; client tickets may not.
GENERATED_PREFIX = "@"
#: A snapshot waits for this many records per entry (counter, document, ticket) that
#: the last one held: writing an entry costs about as much as committing 2-4 records.
SNAPSHOT_STATE_FACTOR = 4
#: Frames per partition kept in memory for replication (older ones are read from disk).
RECENT_FRAMES = 64

_VALID_OPS = frozenset(types_pb2.Op.values()) - {types_pb2.OP_UNSPECIFIED}
_JSON_OPS = frozenset((types_pb2.OP_PUSH, types_pb2.OP_PATCH))
_AMOUNT_OPS = frozenset((types_pb2.OP_COUNTER_ADD, types_pb2.OP_ADD))


class Action(NamedTuple):
    """A committed custom action, as the handler sees it. (A named tuple: one is made
    per action, and it costs a third of a frozen dataclass.)"""

    partition: int
    offset: int
    key: str
    action: str
    payload: bytes
    ticket: str


#: Action(*fields) without the named tuple's own __new__, a Python function: this one is
#: C-level, so map() makes a batch's Actions without a Python call per action.
_new_action = functools.partial(tuple.__new__, Action)

#: A committed ACTION batch for the handler: its partition and first offset, the batch
#: as sent, its result (the replies go in), and its keys as validated.
_Acted = tuple[int, int, types_pb2.Batch, types_pb2.BatchResult, list[str]]


class Appended:
    """A frame appended to the log, as the publisher needs it: its partition and
    offsets, and the LogEntry, parsed from the bytes logged only if the node has
    subscribers when the frame is published. With none, the owner of a bulk write
    never reads back a frame it built from the client's bytes (parsing it was a tenth
    of the owner's time a record)."""

    __slots__ = ("partition", "base_offset", "count", "_body", "_entry")

    def __init__(
        self, partition: int, base_offset: int, count: int,
        body: bytes | None = None, entry: storage_pb2.LogEntry | None = None,
    ) -> None:
        self.partition = partition
        self.base_offset = base_offset
        self.count = count
        self._body = body
        self._entry = entry

    @classmethod
    def of(cls, entry: storage_pb2.LogEntry) -> "Appended":
        return cls(entry.partition, entry.base_offset, batches.count(entry), None, entry)

    def entry(self) -> storage_pb2.LogEntry:
        e = self._entry
        if e is None:
            e = self._entry = storage_pb2.LogEntry.FromString(self._body)  # type: ignore[arg-type]
            self._body = None
        return e

#: A custom-action handler: runs on the owner after the action is committed; its return
#: value is the reply a client gets with acks=REPLY. A coroutine function, or a plain
#: function when it has nothing to wait for: a coroutine made and awaited per action
#: was about a third of what the owner's handler loop cost an action.
Handler = Callable[[Action], Awaitable[bytes | None] | bytes | None]


_Coroutine = types.CoroutineType


async def _reply(got: Any) -> bytes | None:
    """What a handler gave, other than bytes or None, as a reply: awaited if it is
    awaitable (a coroutine function's), then bytes-like made bytes. TypeError for
    anything else, in the handler's try: a handler failure, the action committed."""
    if hasattr(got, "__await__"):
        got = await got
    if got is None or isinstance(got, bytes):
        return got
    if isinstance(got, (bytearray, memoryview)):
        return bytes(got)
    raise TypeError(f"the handler returned {type(got).__name__}; a reply is bytes or None")


@dataclass(frozen=True)
class EngineStatistics:
    partitions_held: int
    records: int
    counters: int
    keys: int
    commits: int
    duplicates: int
    subscribers: int
    snapshots: int
    last_snapshot_ms: float
    recovery_ms: float
    replayed_records: int


class _Frame(NamedTuple):
    """Where a frame of a partition's log is: one per frame, in memory for the whole
    log, made for every frame appended. A named tuple is made in 320 ns and holds 185
    bytes with its ints; it was a frozen dataclass: 710 ns and 209 bytes."""

    base_offset: int
    count: int
    segment: int
    position: int


#: A frame's base offset, as bisect's key: C-level, no Python call per probe.
_base_offset = operator.attrgetter("base_offset")
#: A frame's segment, likewise (retention's cut).
_segment = operator.attrgetter("segment")


def _frame_at(frames: Sequence[_Frame], offset: int) -> int:
    """Where a reader from `offset` starts in `frames` (a partition's index, in offset
    order): the last frame that starts at or before `offset`, 0 if none does. A
    replica that keeps up asks for the newest frame, so that one is tried first, the
    others by bisection. A scan from the start, or an islice over the list (which
    steps through every element it skips), made each replication step cost time in
    proportion to the partition's log: 2.4 ms a step at a million frames."""
    last = len(frames) - 1
    if last <= 0 or frames[last].base_offset <= offset:
        return max(0, last)
    return max(0, bisect.bisect_right(frames, offset, key=_base_offset) - 1)


def _own(entry: storage_pb2.LogEntry) -> tuple[storage_pb2.LogEntry, bytes | None]:
    """A frame that came inside a larger message (an Append, a Fetch reply) as a message
    of its own, and its bytes, if it is a bulk UPDATE: the documents it sets keep the
    message their values are in (Documents.update_many), and as part of the larger
    one they would keep all of it, other partitions' frames too, for as long as they
    live. (entry, None) for any other frame."""
    if entry.HasField("batch") and entry.batch.op == types_pb2.OP_UPDATE:
        body = entry.SerializeToString()
        return storage_pb2.LogEntry.FromString(body), body
    return entry, None


_RUNS = storage_pb2.PartitionSnapshot.DESCRIPTOR.fields_by_name["runs"].number


def _filled(
    parts: list[tuple[StateCut, dict[str, Any]]],
) -> Iterator[tuple[storage_pb2.PartitionSnapshot, list[bytes]]]:
    """Each partition's state as a message with its documents put in, and its runs as
    serialised `runs` fields to append to it (a run copied into the message would be
    parsed again); lets go of each once given."""
    for i, (cut, docs) in enumerate(parts):
        parts[i] = None  # type: ignore[call-overload]
        ps = cut.message()
        columns = columns_of(docs, runs=True)
        fill_columns(ps.key_columns, columns)
        tail: list[bytes] = []
        for run in columns[4]:
            # A run the owner stored as logged is its bytes already (Documents.update_many).
            body = run.SerializeToString() if run.__class__ is types_pb2.Batch else run
            tail += (wire.field_header(_RUNS, len(body)), body)
        yield ps, tail


class Engine:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        node_id: str,
        data_dir: Path | None,
        handler: Handler | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.node_id = node_id
        self.handler = handler
        self.data_dir = data_dir
        s = config.storage
        self.wal: Wal | MemoryWal
        if data_dir is None:
            self.wal = MemoryWal(s.segment_bytes)
        else:
            self.wal = Wal(data_dir / "log", s.fsync, s.fsync_interval_ms, s.segment_bytes)
        self.snapshot_dir = data_dir / "snapshots" if data_dir is not None else None
        P = config.dht.partitions
        self.partitions = [
            PartitionState(p, s.ticket_window_s * 1000, s.ticket_window_max, s.expired_grace_s * 1000)
            for p in range(P)
        ]
        self.index: list[list[_Frame]] = [[] for _ in range(P)]
        #: Per partition: recent frames (base offset, count, body, wal seq) for replicas.
        #: (base offset -> (records, body, wal seq)), oldest first: a dict, as replication
        #: looks frames up by offset on every step.
        self._recent: list[dict[int, tuple[int, bytes, int]]] = [{} for _ in range(P)]
        #: Per partition: offsets below this are durable and have been published.
        self.published = [0] * P
        self.hlc = HybridClock(clock)
        self.subscriptions: set[Subscription] = set()
        #: Per partition: the subscriptions that read it. A frame goes only to these: a
        #: subscriber handed every frame was woken (~3 µs) for each one it then dropped.
        self._readers: list[set[Subscription]] = [set() for _ in range(P)]
        #: Called after a commit appended frames (the replicator sends them on).
        #: Called with the partitions of new frames, and whether a caller waits for the
        #: replicas (acks=ALL): the replicator sends urgent ones at once.
        self.on_append: Callable[[list[int], bool], None] | None = None
        self._boot = os.urandom(6).hex()
        #: This incarnation's identity as the origin of the records it commits.
        self.origin = f"{node_id}/{self._boot}"
        self._generated = 0
        self._unpublished: list[tuple[int, list[Appended]]] = []
        self._publish_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._detached: set[asyncio.Task[None]] = set()
        self._records_since_snapshot = 0
        self._last_snapshot_at = clock.now()
        self._snapshot_entries = 0
        self._snapshot_lock = asyncio.Lock()
        self._commits = 0
        self._duplicates = 0
        self._snapshots = 0
        self._last_snapshot_ms = 0.0
        self._recovery_ms = 0.0
        self._replayed = 0
        self._pending_records = 0
        #: Records not applied because they would skip part of their origin's run.
        self.gaps = 0

    # -- life cycle -----------------------------------------------------------------

    def open(self) -> None:
        """Loads the newest snapshot and replays the log after it. Blocking."""
        t0 = time.perf_counter()
        start = (0, 0)
        loaded = snapshots.load_latest(self.snapshot_dir) if self.snapshot_dir else None
        if loaded is not None:
            snap, states = loaded
            if snap.partitions != len(self.partitions):
                raise ValueError(
                    f"the data directory was created with {snap.partitions} partitions, "
                    f"not {len(self.partitions)} (dht.partitions is fixed per cluster)"
                )
            self.hlc.observe(snap.hlc)
            for ps in states:
                self.partitions[ps.partition].load_snapshot(ps)
            start = (snap.segment, snap.position)
        frames = self.wal.recover(0, 0)
        for seg, pos, body in frames:
            entry = storage_pb2.LogEntry.FromString(body)
            p = entry.partition
            if p >= len(self.partitions):
                raise ValueError(f"log frame at segment {seg} byte {pos} names partition {p} of {len(self.partitions)}")
            if entry.HasField("install"):
                self.index[p] = []
            elif entry.truncate:
                self._truncate_index(p, entry.base_offset)
            else:
                self.index[p].append(_Frame(entry.base_offset, batches.count(entry), seg, pos))
            if (seg, pos) < start:
                continue
            self._replay(entry)
        for p, frames_p in enumerate(self.index):
            state = self.partitions[p]
            state.log_start_offset = frames_p[0].base_offset if frames_p else state.next_offset
            self.published[p] = state.next_offset
        self._recovery_ms = (time.perf_counter() - t0) * 1000
        log.info(
            "engine.recovered",
            snapshot=loaded is not None,
            replayed_records=self._replayed,
            ms=round(self._recovery_ms, 1),
        )

    def _replay(self, entry: storage_pb2.LogEntry) -> None:
        state = self.partitions[entry.partition]
        if entry.HasField("install"):
            state.load_snapshot(entry.install)
            state.log_start_offset = state.next_offset
            return
        if entry.truncate:
            state.truncate_log(entry.base_offset)
            return
        self.apply_entry(state, entry)
        self._replayed += batches.count(entry)

    def apply_entry(self, state: PartitionState, entry: storage_pb2.LogEntry) -> None:
        """Applies a frame written elsewhere (a replica's copy, or the log at replay):
        records already held are skipped, the rest applied at the frame's offsets."""
        offset = entry.base_offset
        state.note_epoch(entry.epoch, entry.owner, offset)
        if entry.HasField("batch"):
            self._apply_batch_frame(state, entry)
            return
        for rec in entry.records:
            self.hlc.observe(rec.hlc)
            if state.gap(rec):
                self.gaps += 1
                state.logged_unapplied(offset + 1)
                log.warning("engine.gap", partition=entry.partition, offset=offset, origin=rec.origin,
                            seq=rec.origin_seq, have=state.origins.get(rec.origin, 0))
            elif not state.has(rec):
                try:
                    state.apply(rec, offset, remember=not rec.ticket.startswith(GENERATED_PREFIX))
                except FeroError as exc:  # it applied where it was committed: a bug, not bad input
                    state.logged_unapplied(offset + 1)
                    log.error("engine.apply_failed", partition=entry.partition, offset=offset, error=str(exc))
            offset += 1
        state.next_offset = offset
        state.epoch = max(state.epoch, entry.epoch)

    def _apply_batch_frame(self, state: PartitionState, entry: storage_pb2.LogEntry) -> None:
        b = entry.batch
        n = len(b.keys)
        offset = entry.base_offset
        self.hlc.observe(b.hlc + n - 1)
        held = state.origins.get(b.origin, 0)
        if held < b.origin_seq - 1:
            self.gaps += 1
            state.logged_unapplied(offset + n)
            log.warning("engine.gap", partition=entry.partition, offset=offset, origin=b.origin,
                        seq=b.origin_seq, have=held)
        elif held >= b.origin_seq:
            # Part of the batch is held already (it met some of its records one by one,
            # in a merge): the rest one by one too.
            for k, rec in enumerate(batches.records(entry)):
                if not state.has(rec):
                    try:
                        state.apply(rec, offset + k, remember=False)
                    except FeroError as exc:
                        state.logged_unapplied(offset + k + 1)
                        log.error("engine.apply_failed", partition=entry.partition, offset=offset + k, error=str(exc))
        else:
            _, failed, _ = state.apply_batch(b, offset)
            if failed:  # it applied where it was committed: a bug, not bad input
                state.logged_unapplied(offset + n)
                log.error("engine.apply_failed", partition=entry.partition, offset=offset, errors=failed[:3])
        state.next_offset = offset + n
        state.epoch = max(state.epoch, entry.epoch)

    def _truncate_index(self, p: int, offset: int) -> None:
        frames = self.index[p]
        while frames and frames[-1].base_offset >= offset:
            frames.pop()
        if frames and frames[-1].base_offset + frames[-1].count > offset:
            last = frames[-1]
            frames[-1] = _Frame(last.base_offset, offset - last.base_offset, last.segment, last.position)

    def start(self) -> None:
        self.wal.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._publish_loop(), name="engine-publish"))
        # In memory too: there the "snapshot" is the state itself, and the loop only
        # applies retention to the log (take_snapshot).
        self._tasks.append(loop.create_task(self._snapshot_loop(), name="engine-snapshot"))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        await self.wal.close()
        for sub in list(self.subscriptions):
            sub.close(None)

    # -- writes ---------------------------------------------------------------------

    def partition_for(self, key: str) -> int:
        return partition_of(partition_key(key), len(self.partitions))

    def validate(self, records: Sequence[types_pb2.Record]) -> None:
        """Raises InvalidArgument / Unimplemented naming the first bad record."""
        limits = self.config.limits
        if len(records) > limits.max_batch_records:
            raise InvalidArgument(f"{len(records)} records in one call; at most {limits.max_batch_records}")
        for i, rec in enumerate(records):
            where = f"record {i}" if len(records) > 1 else "record"
            key = rec.key
            if not key:
                raise InvalidArgument(f"{where}: name (key) is empty")
            if len(key) * 4 > limits.max_key_bytes and len(key.encode()) > limits.max_key_bytes:
                raise InvalidArgument(f"{where}: name (key) is {len(key.encode())} bytes; at most {limits.max_key_bytes}")
            ticket = rec.ticket
            if ticket:
                if len(ticket.encode()) > limits.max_ticket_bytes:
                    raise InvalidArgument(f"{where}: ticket is {len(ticket.encode())} bytes; at most {limits.max_ticket_bytes}")
                if ticket.startswith(GENERATED_PREFIX):
                    raise InvalidArgument(f"{where}: tickets starting with {GENERATED_PREFIX!r} are reserved for the node")
            op = rec.op
            if op not in _VALID_OPS:
                raise InvalidArgument(f"{where}: op {op} is not a known op")
            if len(rec.value) > limits.max_value_bytes:
                raise InvalidArgument(f"{where}: value is {len(rec.value)} bytes; at most {limits.max_value_bytes}")
            if op in _AMOUNT_OPS and not rec.HasField("amount"):
                raise InvalidArgument(f"{where}: amount is missing")
            if op in _JSON_OPS and not rec.value:
                raise InvalidArgument(f"{where}: value is missing")
            if op == types_pb2.OP_COUNTER_SETUP:
                if rec.kind:
                    Kind.parse(rec.kind)
                if rec.expire_at_ms < 0:
                    raise InvalidArgument(f"{where}: expire_at_ms is negative")
            if op == types_pb2.OP_ACTION:
                if not rec.action:
                    raise InvalidArgument(f"{where}: action name is empty")
                if self.handler is None:
                    raise Unimplemented(f"{where}: this node has no handler for custom actions (action {rec.action!r})")

    async def commit(
        self, records: Sequence[types_pb2.Record], acks: int, checked: bool = False,
    ) -> list[types_pb2.Result]:
        """Commits `records`; one Result each, in order. See the module docstring.
        `checked`: the caller ran validate() on them already (Node.commit does)."""
        if not checked:
            self.validate(records)
        if self._pending_records + len(records) > self.config.limits.max_pending_records:
            raise ResourceExhausted(
                f"{self._pending_records} records are waiting for the disk; retry with backoff"
            )
        results, entries, any_duplicate = self._commit_now(records)
        await self._settle(list(map(Appended.of, entries)), any_duplicate, acks)
        if acks == types_pb2.ACKS_NONE:
            if self.handler is not None:
                self._spawn_handlers(entries, None)
            return results
        if self.handler is not None:
            if acks == types_pb2.ACKS_REPLY:
                await self._run_handlers(entries, results, records)
            else:
                self._spawn_handlers(entries, None)
        return results

    async def _settle(self, entries: list[Appended], any_duplicate: bool, acks: int) -> None:
        """Hands appended frames on (subscribers, replicas) and waits for durability as
        `acks` asks. A duplicate waits too: its first commit may still be in flight."""
        seq = self.wal.appended
        waits = acks != types_pb2.ACKS_NONE and bool(entries or any_duplicate)
        if entries:
            self._unpublished.append((seq, entries))
            if not waits:
                self._publish_event.set()
            if self.on_append is not None:
                self.on_append([e.partition for e in entries], acks == types_pb2.ACKS_ALL)
        if not waits:
            return
        n = sum(e.count for e in entries)
        self._pending_records += n
        try:
            await self.wal.wait(seq)
        finally:
            self._pending_records -= n
            if entries:
                self._publish_after_wait(seq)

    async def commit_batches(
        self, batch_list: Sequence[types_pb2.Batch], acks: int, columns: batches.Checked | None = None,
        raw: Sequence[bytes | memoryview] | None = None,
    ) -> list[types_pb2.BatchResult]:
        """Commits columnar batches (see fero.batch); one BatchResult each, in order.
        `columns`: what fero.batch.validate returned for them, if the caller checked
        them already (checking hashes every key). `raw`: each batch as the client
        serialised it, if the caller has those bytes (see fero.wire)."""
        if columns is None:
            columns = batches.validate(batch_list, len(self.partitions), self.config.limits, raw=raw)
        if self.handler is None:
            for i, b in enumerate(batch_list):
                if b.op == types_pb2.OP_ACTION:
                    raise Unimplemented(f"batch {i}: this node has no handler for custom actions (action {b.action!r})")
        if self._pending_records + sum(len(b.keys) for b in batch_list) > self.config.limits.max_pending_records:
            raise ResourceExhausted(
                f"{self._pending_records} records are waiting for the disk; retry with backoff"
            )
        results, entries, any_duplicate, acted = self._commit_batches_now(batch_list, columns, raw)
        await self._settle(entries, any_duplicate, acks)
        if self.handler is not None:
            if acted:
                if acks == types_pb2.ACKS_REPLY:
                    await self._run_batch_handlers(acted)
                else:
                    # Each batch copied out of the request, which it is part of: handlers
                    # nobody waits for would otherwise keep all of it alive (every
                    # partition's batches) until they are done.
                    Batch = types_pb2.Batch
                    self._detach(self._run_batch_handlers(
                        [(p, base, Batch.FromString(b.SerializeToString()), r, keys) for p, base, b, r, keys in acted]))
        return results

    async def _run_batch_handlers(self, acted: list[_Acted]) -> None:
        """Runs the handler on each action of committed ACTION batches, in order; the
        replies (and handler failures: the action stays committed) go into the results."""
        assert self.handler is not None
        handler = self.handler
        for p, base, b, r, keys in acted:
            action, n = b.action, len(keys)
            actions = map(_new_action, zip(
                itertools.repeat(p), range(base, base + n), keys, itertools.repeat(action), b.values,
                batches.derived_tickets(b.ticket, n),
            ))
            replies: list[bytes] = []
            # An action's index is len(replies), looked up only when its handler fails:
            # enumerate's tuple was about 25 of the 330 ns the loop cost an action.
            for a in actions:
                try:
                    reply = handler(a)
                    if reply.__class__ is _Coroutine:  # a coroutine function's: no second coroutine
                        reply = await reply
                    if reply.__class__ is not bytes and reply is not None:
                        reply = await _reply(reply)
                except FeroError as exc:
                    r.handler_errors.add(index=len(replies), code=exc.code.value[0], message=exc.message)
                    reply = None
                except Exception as exc:  # the user's handler failed; the action stays committed
                    log.exception("engine.handler_failed", action=action, key=a.key)
                    r.handler_errors.add(index=len(replies), code=13,
                                         message=f"handler failed: {type(exc).__name__}: {exc}")
                    reply = None
                replies.append(reply or b"")
            r.replies.extend(replies)

    def _commit_batches_now(
        self, batch_list: Sequence[types_pb2.Batch], columns: batches.Checked,
        raw: Sequence[bytes | memoryview] | None = None,
    ) -> tuple[list[types_pb2.BatchResult], list[Appended], bool, list[_Acted]]:
        """(a result per batch, the frames appended, whether any was a duplicate, the
        committed ACTION batches with their results, for the handler)."""
        results: list[types_pb2.BatchResult] = []
        entries: list[Appended] = []
        acted: list[_Acted] = []
        any_duplicate = False
        LogEntry, Batch = storage_pb2.LogEntry, types_pb2.Batch
        for i, (b, (keys, column)) in enumerate(zip(batch_list, columns)):
            p = b.partition
            state = self.partitions[p]
            seen = state.tickets.get(b.ticket)
            if seen is not None:
                results.append(batches.result(p, b.ticket, seen.offset, seen.values, seen.errors, duplicate=True))
                any_duplicate = True
                self._duplicates += 1
                continue
            base = state.next_offset
            header = LogEntry(partition=p, epoch=state.epoch, base_offset=base, owner=self.node_id)
            stamps = Batch(hlc=self.hlc.reserve(len(keys)), origin=self.origin, origin_seq=state.next_origin_seq(self.origin))
            if raw is not None:
                # The frame is the batch's bytes as sent with the stamps appended. It is
                # applied from the batch as sent and those bytes, not parsed again.
                body, start = wire.stamped_batch_entry(header, raw[i], stamps)
                vals, failed, _ = state.apply_batch(b, base, keys, column, stamps, memoryview(body)[start:])
                entry = None
                if failed:
                    entry = LogEntry.FromString(body)
            else:
                # The frame gets its own copy of the batch, stamped; the caller's is left as sent.
                entry = header
                entry.batch.CopyFrom(b)
                entry.batch.MergeFrom(stamps)
                vals, failed, _ = state.apply_batch(entry.batch, base, keys, column)
            if failed:
                batches.drop(entry.batch, failed)  # type: ignore[union-attr]
            result = batches.result(p, b.ticket, base, vals, failed)
            results.append(result)
            n = len(keys) - len(failed)
            if not n:
                continue
            state.next_offset = base + n
            state.note_epoch(state.epoch, self.node_id, base)
            if entry is not None:
                body = entry.SerializeToString()
            self._append_records(p, base, n, body)
            entries.append(Appended(p, base, n, body, entry))
            if b.op == types_pb2.OP_ACTION:
                acted.append((p, base, b, result, keys))  # keys as validated: not read again
            self._commits += n
        return results, entries, any_duplicate, acted

    def _commit_now(
        self, records: Sequence[types_pb2.Record]
    ) -> tuple[list[types_pb2.Result], list[storage_pb2.LogEntry], bool]:
        n = len(records)
        results: list[types_pb2.Result] = [None] * n  # type: ignore[list-item]
        groups: dict[int, list[int]] = {}
        P = len(self.partitions)
        for i, rec in enumerate(records):
            groups.setdefault(partition_of(partition_key(rec.key), P), []).append(i)
        entries: list[storage_pb2.LogEntry] = []
        any_duplicate = False
        Result = types_pb2.Result
        for p, idxs in groups.items():
            state = self.partitions[p]
            entry = storage_pb2.LogEntry(partition=p, epoch=state.epoch, base_offset=state.next_offset, owner=self.node_id)
            for i in idxs:
                rec = records[i]
                ticket = rec.ticket
                if ticket:
                    seen = state.tickets.get(ticket)
                    if seen is not None:
                        r = Result(partition=p, offset=seen.offset, duplicate=True, ticket=ticket)
                        if seen.value is not None:
                            values.to_number(seen.value, r.value)
                        results[i] = r
                        any_duplicate = True
                        self._duplicates += 1
                        continue
                    remember = True
                else:
                    self._generated += 1
                    ticket = f"{GENERATED_PREFIX}{self.node_id}/{self._boot}/{self._generated}"
                    remember = False
                stored = entry.records.add()
                stored.CopyFrom(rec)
                stored.ticket = ticket
                stored.hlc = self.hlc.now()
                stored.origin = self.origin
                stored.origin_seq = state.next_origin_seq(self.origin)
                offset = state.next_offset
                try:
                    value = state.apply(stored, offset, remember)
                except FeroError as exc:
                    del entry.records[-1]
                    results[i] = Result(partition=p, ticket=ticket, error_code=exc.code.value[0], error_message=exc.message)
                    continue
                state.next_offset = offset + 1
                r = Result(partition=p, offset=offset, ticket=ticket)
                if value is not None:
                    values.to_number(value, r.value)
                results[i] = r
            if entry.records:
                state.note_epoch(entry.epoch, entry.owner, entry.base_offset)
                self._append_frame(entry)
                entries.append(entry)
                self._commits += len(entry.records)
        return results, entries, any_duplicate

    def _append_frame(self, entry: storage_pb2.LogEntry, body: bytes | None = None, n: int | None = None) -> int:
        """Queues a frame in the WAL, indexes it, keeps it for replication; its seq.
        `n`: its records, if the caller counted them."""
        body = body if body is not None else entry.SerializeToString()
        p = entry.partition
        if entry.HasField("install"):
            loc = self.wal.append(body)
            self.index[p] = []
            self._recent[p] = {}
        elif entry.truncate:
            loc = self.wal.append(body)
            self._truncate_index(p, entry.base_offset)
            self._recent[p] = {b: f for b, f in self._recent[p].items() if b < entry.base_offset}
        else:
            return self._append_records(p, entry.base_offset, batches.count(entry) if n is None else n, body)
        return loc.seq

    def _append_records(self, p: int, base_offset: int, n: int, body: bytes) -> int:
        """_append_frame of a frame of `n` records, given as its fields and bytes."""
        loc = self.wal.append(body)
        self.index[p].append(_Frame(base_offset, n, loc.segment, loc.position))
        recent = self._recent[p]
        recent[base_offset] = (n, body, loc.seq)
        # Keep recent frames for replication until they are durable and old enough.
        while len(recent) > RECENT_FRAMES:
            oldest = next(iter(recent))
            if recent[oldest][2] > self.wal.durable:
                break
            del recent[oldest]
        self._records_since_snapshot += n
        return loc.seq

    # -- replication: what owners and replicas ask of the engine --------------------

    def digest(self, p: int, compact: bool = False) -> peer_pb2.PartitionDigest:
        """What this node holds of partition p. `compact`: for a caller that compares
        origin vectors only: no lineages, and the origin vector as its few latest
        changed entries plus the fingerprint of the rest (fero.origins)."""
        state = self.partitions[p]
        d = peer_pb2.PartitionDigest(
            partition=p, epoch=state.epoch, next_offset=state.next_offset, log_start_offset=state.log_start_offset
        )
        if compact:
            d.compact = True
            d.rest_fingerprint, entries = state.origins.compact()
            for origin, seq in entries:
                d.origins.add(origin=origin, seq=seq)
            return d
        for epoch, owner, start in state.epochs:
            d.epochs.add(epoch=epoch, owner=owner, start_offset=start)
        for origin, seq in state.origins.items():
            d.origins.add(origin=origin, seq=seq)
        return d

    def frames_from(self, p: int, offset: int, max_records: int) -> list[storage_pb2.LogEntry]:
        """Frames of partition `p` covering offsets from `offset` on, at most about
        `max_records` records; a frame that starts before `offset` is cut to start there.
        OutOfRange if the log no longer reaches back to `offset`."""
        return [storage_pb2.LogEntry.FromString(body) for _, _, body in self.frame_bodies_from(p, offset, max_records)]

    def frame_bodies_from(
        self, p: int, offset: int, max_records: int, max_bytes: int = 1 << 62
    ) -> list[tuple[int, int, bytes]]:
        """As frames_from, as (base offset, records, serialized LogEntry): the bytes as
        logged, unless the frame had to be cut (replication sends them as they are).
        Stops once `max_records` or `max_bytes` is reached; the first frame always comes."""
        out: list[tuple[int, int, bytes]] = []
        n = size = 0
        for base, count, body in self._frame_bodies(p, offset):
            out.append((base, count, body))
            n += count
            size += len(body)
            if n >= max_records or size >= max_bytes:
                break
        return out

    def _frame_bodies(self, p: int, offset: int) -> Iterator[tuple[int, int, bytes]]:
        """frame_bodies_from without its limits, each frame read as it is reached. The
        caller takes them without awaiting in between (the index could change)."""
        state = self.partitions[p]
        if offset < state.log_start_offset:
            raise OutOfRange(f"partition {p}: offset {offset} is older than the log keeps ({state.log_start_offset})")
        frames = self.index[p]
        for i in range(_frame_at(frames, offset), len(frames)):
            fr = frames[i]
            if fr.base_offset + fr.count <= offset:
                continue
            start = max(0, offset - fr.base_offset)
            yield fr.base_offset + start, fr.count - start, self._frame_body(p, fr, start)

    def _frame_body(self, p: int, fr: _Frame, start: int = 0) -> bytes:
        """The bytes of frame `fr` of partition `p`, from its record `start` on."""
        count, body, _ = self._recent[p].get(fr.base_offset, (-1, b"", 0))
        if start or count != fr.count:
            # Read back from disk (its record count is known only once parsed: a
            # truncation may have cut its end), or to be cut to begin at record `start`.
            if count < 0:
                body = self.wal.read(fr.segment, fr.position)
            entry = storage_pb2.LogEntry.FromString(body)
            if start or batches.count(entry) != fr.count:
                batches.cut(entry, start, fr.count)
                body = entry.SerializeToString()
        return body

    def records_beyond(self, p: int, have: dict[str, int], max_records: int) -> tuple[list[types_pb2.Record], bool]:
        """Records of `p` whose origin_seq is above `have` (what the caller lacks), each
        origin's in order, the origins in the order of their first such record in the
        log; and whether there are more than `max_records`."""
        state = self.partitions[p]
        if all(seq <= have.get(o, 0) for o, seq in state.origins.items()):
            return [], False
        # Only whole runs: for each origin, the records from have+1 on without a hole
        # (this log may miss part of a run its state holds, after a truncation).
        if state.gap_end > state.log_start_offset:
            found = self._beyond_from_the_start(p, have)
        else:
            found = self._beyond_from_the_end(p, have)
        out: list[types_pb2.Record] = []
        for origin, by_seq in found.items():
            seq = have.get(origin, 0) + 1
            while seq in by_seq:
                if len(out) >= max_records:
                    return out, True
                out.append(by_seq[seq])
                seq += 1
        return out, False

    def _beyond_from_the_start(self, p: int, have: dict[str, int]) -> dict[str, dict[int, types_pb2.Record]]:
        """Every record of the log above `have`, by origin and seq, origins in the order
        of their first such record. The log is read a frame at a time (all of it at once
        held the partition's whole log in memory), and a batch frame's records are made
        only if the caller lacks some of them."""
        found: dict[str, dict[int, types_pb2.Record]] = {}
        for _, _, body in self._frame_bodies(p, self.partitions[p].log_start_offset):
            entry = storage_pb2.LogEntry.FromString(body)
            if entry.HasField("batch"):
                b = entry.batch
                if not b.origin or b.origin_seq + len(b.keys) - 1 <= have.get(b.origin, 0):
                    continue
            for rec in batches.records(entry):
                if rec.origin and rec.origin_seq > have.get(rec.origin, 0):
                    found.setdefault(rec.origin, {})[rec.origin_seq] = rec
        return found

    def _beyond_from_the_end(self, p: int, have: dict[str, int]) -> dict[str, dict[int, types_pb2.Record]]:
        """As _beyond_from_the_start, reading the newest frame first, and only as far back
        as the oldest record wanted, for a log whose every record was applied (gap_end):
        in such a log each origin's sequence numbers rise (its owner stamps them in
        order, a replica copies the owner's frames, a merge re-commits only the next
        one), every record is at most the state's vector, and an origin's record at or
        below have+1 means nothing older of it is wanted. A pull after a failover lacks
        the newest records; a scan from the start read the whole partition log (0.8 s
        at 100,000 frames), for every page of them, on the event loop."""
        state = self.partitions[p]
        lacking = {o for o, seq in state.origins.items() if seq > have.get(o, 0)}
        found: dict[str, dict[int, types_pb2.Record]] = {}
        first: dict[str, tuple[int, int]] = {}  # origin -> (frame, record) of its oldest record found
        frames = self.index[p]
        for i in range(len(frames) - 1, -1, -1):
            entry = storage_pb2.LogEntry.FromString(self._frame_body(p, frames[i]))
            if entry.HasField("batch"):
                b = entry.batch
                if b.origin not in lacking:
                    continue
                if b.origin_seq + len(b.keys) - 1 <= have.get(b.origin, 0):
                    lacking.discard(b.origin)  # held whole, and all of it before lower still
                    if not lacking:
                        break
                    continue
            reached = []
            for k, rec in enumerate(batches.records(entry)):
                o = rec.origin
                if o in lacking:
                    floor = have.get(o, 0)
                    if rec.origin_seq > floor:
                        found.setdefault(o, {})[rec.origin_seq] = rec
                        if (i, k) < first.get(o, (i + 1, 0)):
                            first[o] = (i, k)
                    if rec.origin_seq <= floor + 1:
                        reached.append(o)
            lacking.difference_update(reached)
            if not lacking:
                break
        return {o: found[o] for o in sorted(found, key=first.__getitem__)}

    def append_replicated(self, frames: Sequence[peer_pb2.AppendFrame]) -> tuple[list[peer_pb2.AppendResult], int]:
        """Appends an owner's frames at the same offsets; one result per partition.

        A frame is refused (with this node's digest) if it is from an older epoch than
        this partition has seen (fencing), or does not continue this log: another offset,
        or another lineage just before it. Returns the results and the WAL seq to wait
        for before acknowledging."""
        # A partition's result, once refused; None while its frames go on: its result
        # (ok, the next offset after its last frame) is made once, at the end, not
        # once a frame. This runs for every frame every replica gets.
        results: dict[int, peer_pb2.AppendResult | None] = {}
        P = len(self.partitions)
        for f in frames:
            entry = f.entry
            install = f.HasField("install")
            p = f.install.partition if install else entry.partition
            if p >= P:
                raise InvalidArgument(f"partition {p} does not exist")
            if results.get(p) is not None:
                continue  # refused: the rest of its frames cannot continue this log
            state = self.partitions[p]
            if f.owner_epoch < state.epoch:
                results[p] = self._refused(p, f"fenced: epoch {f.owner_epoch} is older than {state.epoch}")
                continue
            state.epoch = f.owner_epoch
            if install:
                if self.lacks_beyond(p, f.install.origins):
                    results[p] = self._refused(p, "holds records the owner lacks")
                else:
                    self.install(f.install)
                    results[p] = None
                continue
            base = entry.base_offset
            if f.truncate and base < state.next_offset:
                if self.lacks_beyond(p, f.owner_origins):
                    # This copy committed more since the owner last pulled from it (it
                    # still thought it owned the partition): cutting now could drop
                    # records that exist nowhere else. The owner pulls, then cuts.
                    results[p] = self._refused(p, "holds records the owner lacks")
                    continue
                self.truncate(p, base)
            if base != state.next_offset or (
                f.has_prev and (lineage_at(state.epochs, base - 1) if base else None) != (f.prev_epoch, f.prev_owner)
            ):
                results[p] = self._refused(p, "does not continue this log")
                continue
            n = batches.count(entry)
            if n:
                entry, body = _own(entry)
                self.apply_entry(state, entry)
                self._append_frame(entry, body, n)
                self._unpublished.append((self.wal.appended, [Appended(p, base, n, None, entry)]))
            results[p] = None
        AppendResult = peer_pb2.AppendResult
        return [AppendResult(partition=p, ok=True, next_offset=self.partitions[p].next_offset) if r is None else r
                for p, r in results.items()], self.wal.appended

    def _refused(self, p: int, why: str) -> peer_pb2.AppendResult:
        """A partition's answer to frames it cannot take: where its log ends and its
        digest, for the owner to find where the two logs part."""
        return peer_pb2.AppendResult(
            partition=p, ok=False, next_offset=self.partitions[p].next_offset, digest=self.digest(p), error=why,
        )

    async def durable(self, seq: int) -> None:
        """Waits until WAL frame `seq` is durable and publishes what is (as a commit
        does, see _settle); Internal if the log failed."""
        try:
            await self.wal.wait(seq)
        finally:
            self._publish_after_wait(seq)

    def adopt(self, entries: Sequence[storage_pb2.LogEntry]) -> int:
        """A new owner takes frames of a longer log it continues (log shipping), at the
        same offsets; returns the WAL seq to wait for."""
        for entry in entries:
            state = self.partitions[entry.partition]
            if entry.base_offset != state.next_offset or not batches.count(entry):
                continue
            entry, body = _own(entry)
            self.apply_entry(state, entry)
            self._append_frame(entry, body)
            self._unpublished.append((self.wal.appended, [Appended.of(entry)]))
        self._publish_event.set()
        return self.wal.appended

    def recommit(self, p: int, records: Sequence[types_pb2.Record], epoch: int) -> int:
        """As owner, appends records committed elsewhere that this partition lacks (a
        merge), keeping their identity, ticket and hlc; returns the WAL seq."""
        state = self.partitions[p]
        entry = storage_pb2.LogEntry(partition=p, epoch=epoch, base_offset=state.next_offset, owner=self.node_id)
        expect: dict[str, int] = {}
        for rec in records:
            nxt = expect.get(rec.origin, state.origins.get(rec.origin, 0) + 1)
            if rec.origin and rec.origin_seq != nxt:
                continue  # held already, or a hole before it: see PartitionState.gap
            expect[rec.origin] = nxt + 1
            entry.records.append(rec)
        if not entry.records:
            return self.wal.appended
        state.epoch = max(state.epoch, epoch)
        self.apply_entry(state, entry)
        self._append_frame(entry)
        self._unpublished.append((self.wal.appended, [Appended.of(entry)]))
        self._publish_event.set()
        return self.wal.appended

    def repair(self, p: int, records: Sequence[types_pb2.Record]) -> int:
        """A replica applies records its state lacks though its log holds them (it met
        them before the rest of their run, see PartitionState.gap): state only, since
        the log already matches the owner's. Returns how many were applied."""
        state = self.partitions[p]
        n = 0
        for rec in records:
            if state.has(rec) or state.gap(rec):
                continue
            self.hlc.observe(rec.hlc)
            try:
                state.apply(rec, state.next_offset, remember=not rec.ticket.startswith(GENERATED_PREFIX))
                n += 1
            except FeroError as exc:
                log.error("engine.apply_failed", partition=p, error=str(exc))
        return n

    def install(self, ps: storage_pb2.PartitionSnapshot) -> int:
        """Replaces partition `ps.partition` with a state transferred from its owner and
        starts its log at ps.next_offset; returns the WAL seq to wait for."""
        p = ps.partition
        state = self.partitions[p]
        state.load_snapshot(ps)
        state.log_start_offset = state.next_offset
        entry = storage_pb2.LogEntry(partition=p, epoch=ps.epoch, base_offset=ps.next_offset, owner=self.node_id, install=ps)
        self._append_frame(entry)
        self.published[p] = state.next_offset
        for sub in list(self._readers[p]):
            sub.deliver_reset(p, state.epoch, state.next_offset)
        log.info("engine.installed", node=self.node_id, partition=p, next_offset=state.next_offset)
        return self.wal.appended

    def fetch_beyond(self, p: int, max_records: int = 10_000) -> peer_pb2.FetchRequest:
        """A Fetch for the records of partition `p` beyond what this copy holds: its
        origin vector (set even when empty, which asks for every record)."""
        req = peer_pb2.FetchRequest(partition=p, max_records=max_records)
        req.beyond.SetInParent()
        for o, s in self.partitions[p].origins.items():
            req.beyond.origins.add(origin=o, seq=s)
        return req

    def lacks_beyond(self, p: int, origins: Iterable[Any]) -> bool:
        """Whether partition `p` here holds records beyond the vector `origins`."""
        theirs = {o.origin: o.seq for o in origins}
        return any(seq > theirs.get(o, 0) for o, seq in self.partitions[p].origins.items())

    def truncate(self, p: int, offset: int) -> None:
        """Cuts partition `p`'s log back to `offset` (a control frame; state is kept)."""
        state = self.partitions[p]
        if offset >= state.next_offset:
            return
        entry = storage_pb2.LogEntry(partition=p, epoch=state.epoch, base_offset=offset, owner=self.node_id, truncate=True)
        self._append_frame(entry)
        state.truncate_log(offset)
        if self.published[p] > offset:
            self.published[p] = offset
        for sub in list(self._readers[p]):
            sub.deliver_reset(p, state.epoch, offset)
        log.info("engine.truncated", partition=p, offset=offset)

    # -- custom actions -------------------------------------------------------------

    def _actions(self, entries: Iterable[storage_pb2.LogEntry]) -> Iterable[tuple[Action, str]]:
        for entry in entries:
            for k, rec in enumerate(entry.records):
                if rec.op == types_pb2.OP_ACTION:
                    yield Action(entry.partition, entry.base_offset + k, rec.key, rec.action, rec.value, rec.ticket), rec.ticket

    async def _run_handlers(self, entries, results, records) -> None:
        assert self.handler is not None
        by_ticket = {r.ticket: r for r in results if not r.error_code}
        for action, ticket in self._actions(entries):
            r = by_ticket[ticket]
            try:
                reply = self.handler(action)
                if reply.__class__ is not bytes and reply is not None:
                    reply = await _reply(reply)
            except FeroError as exc:
                r.error_code, r.error_message = exc.code.value[0], exc.message
                continue
            except Exception as exc:  # the user's handler failed; the record stays committed
                log.exception("engine.handler_failed", action=action.action, key=action.key)
                r.error_code = Unimplemented.code.value[0] if isinstance(exc, NotImplementedError) else 13
                r.error_message = f"handler failed: {type(exc).__name__}: {exc}"
                continue
            if reply:
                r.reply = reply

    def _spawn_handlers(self, entries, _results) -> None:
        actions = [a for a, _ in self._actions(entries)]
        if actions:
            self._detach(self._run_detached(actions))

    def _detach(self, coro: Awaitable[None]) -> None:
        """Runs handlers nobody waits for; holds the task so it is not collected."""
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)

    async def _run_detached(self, actions: list[Action]) -> None:
        assert self.handler is not None
        for a in actions:
            try:
                reply = self.handler(a)
                if reply.__class__ is not bytes and reply is not None:
                    await _reply(reply)
            except Exception:
                log.exception("engine.handler_failed", action=a.action, key=a.key)

    # -- reads ----------------------------------------------------------------------

    def get_counter(self, name: str) -> tuple[Value, Kind, bool, int]:
        """(value, kind, exists, expire_at_ms); Expired if the counter is closed."""
        if not name:
            raise InvalidArgument("name is empty")
        if len(name.encode()) > self.config.limits.max_key_bytes:
            raise InvalidArgument(f"name is {len(name.encode())} bytes; at most {self.config.limits.max_key_bytes}")
        state = self.partitions[self.partition_for(name)]
        c = state.counter(name, self.clock.wall_ms())
        if c is None:
            return 0, Kind.INT, False, 0
        return c.value, c.kind, True, c.expire_at_ms

    def read(self, key: str) -> bytes | None:
        if not key:
            raise InvalidArgument("key is empty")
        if len(key.encode()) > self.config.limits.max_key_bytes:
            raise InvalidArgument(f"key is {len(key.encode())} bytes; at most {self.config.limits.max_key_bytes}")
        return self.partitions[self.partition_for(key)].documents.read(key)

    # -- subscriptions --------------------------------------------------------------

    def subscribe(
        self, sub: Subscription, from_offsets: dict[int, int], earliest: bool,
        resume: dict[int, tuple[int, int, str]] | None = None,
    ) -> None:
        """Registers `sub` and queues the history it asked for; OutOfRange if an offset
        is older than the log keeps. Live commits follow without gaps or repeats.

        `resume` maps a partition to the last commit the subscriber saw, (offset, epoch,
        owner): it continues after it if this log holds that commit, else it first gets
        a Reset to where this log's lineage differs, and continues from there."""
        P = len(self.partitions)
        from_offsets = dict(from_offsets)
        for p, (off, epoch, owner) in (resume or {}).items():
            if not 0 <= p < P:
                raise InvalidArgument(f"partition {p} does not exist (there are {P})")
            state = self.partitions[p]
            start, reset = resume_point(state.epochs, state.next_offset, off, (epoch, owner))
            from_offsets[p] = max(start, state.log_start_offset) if reset else start
            if reset:
                sub.deliver_reset(p, state.epoch, from_offsets[p], force=True)
        if sub.partition is not None and not 0 <= sub.partition < P:
            raise InvalidArgument(f"partition {sub.partition} does not exist (there are {P})")
        for p, off in from_offsets.items():
            if p >= P:
                raise InvalidArgument(f"partition {p} does not exist (there are {P})")
            start = self.partitions[p].log_start_offset
            if off < start:
                raise OutOfRange(f"partition {p}: offset {off} is older than the log keeps (starts at {start})")
        for p in sub.partitions(P):
            if p in from_offsets:
                sub.next_offset[p] = from_offsets[p]
            elif earliest:
                sub.next_offset[p] = self.partitions[p].log_start_offset
            else:
                sub.next_offset[p] = self.published[p]
        self.subscriptions.add(sub)
        for p in sub.next_offset:
            self._readers[p].add(sub)
        sub.on_close = self._unsubscribe
        for p, off in sub.next_offset.items():
            if off < self.published[p]:
                sub.deliver_history(self._history(p, off, self.published[p]))

    def _unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)
        for p in sub.next_offset:
            self._readers[p].discard(sub)

    def _history(self, p: int, start: int, end: int) -> Iterable[types_pb2.Commit]:
        """Commits of `p` from `start` to `end`, read as the subscriber takes them,
        across awaits. Meanwhile the log may be cut back, retention may drop its oldest
        frames (from the index, in place) and a state transfer may replace the index:
        so each frame is found anew, by the next offset to send, in the index as it is
        then. (A position kept in the list skipped as many frames as retention dropped
        before it, silently.) OutOfRange if that offset is no longer in the log."""
        off = start
        state = self.partitions[p]
        i, last = -1, None
        while off < end:
            frames = self.index[p]
            # The next frame in the list, if it is the one that starts at `off` (the
            # list is the same and nothing was dropped before it); else bisection.
            i += 1
            if frames is not last or i >= len(frames) or frames[i].base_offset != off:
                i = _frame_at(frames, off)
            last = frames
            if off < state.log_start_offset or (i < len(frames) and frames[i].base_offset > off):
                raise OutOfRange(
                    f"partition {p}: offset {off} left the log (retention, or a state transfer) before this "
                    f"subscriber read it; subscribe again from {state.log_start_offset} or later"
                )
            if i >= len(frames):
                return
            fr = frames[i]
            if fr.base_offset + fr.count <= off:
                return  # the log was cut back before `off`: a reset follows, live
            entry = storage_pb2.LogEntry.FromString(self.wal.read(fr.segment, fr.position))
            for k, rec in enumerate(batches.records(entry)[: fr.count]):  # a truncation may have cut the frame
                o = entry.base_offset + k
                if off <= o < end:
                    yield types_pb2.Commit(partition=p, offset=o, epoch=entry.epoch, record=rec, owner=entry.owner)
            off = max(off, fr.base_offset + fr.count)

    async def _publish_loop(self) -> None:
        while True:
            await self._publish_event.wait()
            self._publish_event.clear()
            while self._unpublished:
                seq, _ = self._unpublished[-1]
                try:
                    await self.wal.wait(seq)
                except FeroError:
                    return
                self._publish_durable()

    def _publish_after_wait(self, seq: int) -> None:
        """After a wait for frame `seq`: publishes here, once durable, rather than by
        waking the publish loop for every commit; the loop takes over if the wait did
        not finish (failed or cancelled)."""
        if self.wal.durable >= seq:
            self._publish_durable()
        else:
            self._publish_event.set()

    def _publish_durable(self) -> None:
        """Publishes, in log order, the frames that are durable: their offsets become
        readable and subscribers get them. A frame appended while the publisher waited
        is not durable yet and stays for later."""
        unpublished, durable = self._unpublished, self.wal.durable
        k = 0
        while k < len(unpublished) and unpublished[k][0] <= durable:
            k += 1
        if not k:
            return
        batch = unpublished[:k]
        del unpublished[:k]
        for _, appended in batch:
            for a in appended:
                self.published[a.partition] = a.base_offset + a.count
            if self.subscriptions:
                self._deliver(appended)

    def _deliver(self, appended: list[Appended]) -> None:
        """Hands one commit's frames to the subscriptions that read their partitions, once
        each: only these wake, and only their queues grow (max_queued is a subscriber's
        lag, not the node's). A frame no one reads is never parsed."""
        readers = self._readers
        entries = [a.entry() for a in appended if readers[a.partition]]
        for sub in set().union(*(readers[e.partition] for e in entries)):
            sub.deliver_live(entries)

    # -- snapshots, compaction, retention -------------------------------------------

    async def _snapshot_loop(self) -> None:
        s = self.config.storage
        while True:
            await asyncio.sleep(min(1.0, s.snapshot_every_s / 4))
            # Also at least SNAPSHOT_STATE_FACTOR records per entry of the last snapshot:
            # taking one costs in proportion to the state, so this bounds its cost per
            # record however large the state grows (replay stays within that many
            # records per entry of state).
            due_records = self._records_since_snapshot >= max(
                s.snapshot_every_records, SNAPSHOT_STATE_FACTOR * self._snapshot_entries
            )
            due_time = self._records_since_snapshot > 0 and self.clock.now() - self._last_snapshot_at >= s.snapshot_every_s
            if due_records or due_time:
                try:
                    await self.take_snapshot()
                except FeroError as exc:
                    log.error("engine.snapshot_failed", error=str(exc))
                    return
                except OSError as exc:
                    log.error("engine.snapshot_failed", error=str(exc))
                except Exception as exc:
                    # Not this loop's end: without snapshots retention stops and the log
                    # grows for good. The next one is due after as many records again.
                    log.exception("engine.snapshot_failed", error=f"{type(exc).__name__}: {exc}")

    async def take_snapshot(self) -> None:
        """Compacts, writes a snapshot of every partition, then applies retention. In
        memory, compacts and applies retention only: the state is whole in memory, so
        no frame is needed to rebuild it, and what retention keeps is for replicas and
        subscribers catching up (a replica behind the first frame kept gets the state
        instead)."""
        async with self._snapshot_lock:
            t0 = time.perf_counter()
            dropped = sum(state.compact(self.clock.wall_ms()) for state in self.partitions)
            self._records_since_snapshot = 0
            self._last_snapshot_at = self.clock.now()
            if self.snapshot_dir is None:
                self._apply_retention()
                if dropped:
                    log.info("engine.compacted", expired_counters_dropped=dropped)
                return
            seg, pos = self.wal.end
            head, parts = self._build_snapshot(seg, pos)
            self._snapshot_entries = sum(len(st.counters) + len(st.documents) + st.tickets.weight for st in self.partitions)
            await self.wal.sync()
            await asyncio.to_thread(snapshots.write, self.snapshot_dir, head, _filled(parts))
            self._snapshots += 1
            self._last_snapshot_ms = (time.perf_counter() - t0) * 1000
            self._apply_retention()
            log.info("engine.snapshot", segment=seg, position=pos, ms=round(self._last_snapshot_ms, 1), expired_counters_dropped=dropped)

    def _build_snapshot(
        self, seg: int, pos: int
    ) -> tuple[storage_pb2.Snapshot, list[tuple[StateCut, dict[str, Any]]]]:
        """The snapshot's head, and each partition's state and documents as cuts: the
        consistent cut is taken here, on the event loop, and the messages are built
        in the writer's thread (StateCut, Documents.cut)."""
        head = storage_pb2.Snapshot(partitions=len(self.partitions), segment=seg, position=pos, hlc=self.hlc.last)
        parts = []
        for state in self.partitions:
            if state.next_offset or state.origins or state.counters or state.documents.docs:
                parts.append((state.cut(), state.documents.cut()))
        head.partition_frames = len(parts)
        return head, parts

    def _apply_retention(self) -> None:
        """Drops closed segments that no kept snapshot needs (in memory: none does) and
        that retention allows."""
        if self.snapshot_dir is not None:
            needed = snapshots.oldest_needed(self.snapshot_dir)
            if needed is None:
                return
            first_needed = needed[0]
        else:
            first_needed = self.wal.end[0]
        s = self.config.storage
        segs = self.wal.segments()
        closed = [sid for sid in segs[:-1] if sid < first_needed]
        now = time.time()
        keep_bytes = sum(self.wal.segment_size(sid) for sid in closed)
        cut = None
        for sid in closed:
            age = now - self.wal.last_written(sid)
            too_old = age >= s.retention_s
            too_big = s.retention_bytes and keep_bytes > s.retention_bytes
            if not (too_old or too_big):
                break
            keep_bytes -= self.wal.segment_size(sid)
            cut = sid + 1
        if cut is None:
            return
        dropped = self.wal.drop_segments_before(cut)
        if not dropped:
            return
        first_kept = min(self.wal.segments())
        for p, frames in enumerate(self.index):
            # An index is in log order, so its segments never decrease: the frames to
            # drop are found by bisection. A scan read each of them, on the event loop:
            # dropping a million frames took 174 ms, 50 ms now (freeing them).
            i = bisect.bisect_left(frames, first_kept, key=_segment)
            if i:
                del frames[:i]
            state = self.partitions[p]
            state.log_start_offset = frames[0].base_offset if frames else state.next_offset
        log.info("engine.retention", dropped_segments=dropped)

    def statistics(self) -> EngineStatistics:
        return EngineStatistics(
            partitions_held=sum(1 for s in self.partitions if s.next_offset),
            records=sum(s.next_offset - s.log_start_offset for s in self.partitions),
            counters=sum(len(s.counters) for s in self.partitions),
            keys=sum(len(s.documents) for s in self.partitions),
            commits=self._commits,
            duplicates=self._duplicates,
            subscribers=len(self.subscriptions),
            snapshots=self._snapshots,
            last_snapshot_ms=self._last_snapshot_ms,
            recovery_ms=self._recovery_ms,
            replayed_records=self._replayed,
        )




def resume_point(epochs: list[tuple[int, str, int]], end: int, offset: int, lineage: tuple[int, str]) -> tuple[int, bool]:
    """Where a subscriber whose last commit was `offset`, written by `lineage`, goes on
    in a log with these lineages: (offset + 1, False) if the log holds that commit, else
    (an earlier offset where the two may first differ, True: it must reset there)."""
    if offset < end and lineage_at(epochs, offset) == lineage:
        return offset + 1, False
    starts = [s for e, o, s in epochs if (e, o) == lineage]
    if starts:
        later = [s for _, _, s in epochs if s > starts[0]]
        return min(min(later) if later else end, offset + 1), True
    covering = [s for _, _, s in epochs if s <= offset]
    return (covering[-1] if covering else 0), True
