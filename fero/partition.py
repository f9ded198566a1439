"""One partition's materialised state and the rules for applying a record to it.

Pure: no I/O, no clock reads. `apply()` is used when the owner commits a record, when a
replica appends what the owner sent, when a log is replayed at restart, and when the
two sides of a healed split exchange what they lack; it gives the same answer each
time because every time-dependent rule (counter expiry, ticket window) reads the
record's own hybrid timestamp. A record that cannot apply raises a FeroError and
changes nothing.

The state is a function of the *set* of records applied, not of their order, for the
ops that matter under a split (counter adds, whole-document UPDATE/REMOVE): a record
is identified by (origin, origin_seq) and applied at most once (`origins` is the
per-origin prefix this partition holds, its digest); a client retry that reached the
other side of a split under another identity is caught by its ticket; counter adds
commute; whole-document writes are last-writer-wins by (hlc, origin).
"""

from __future__ import annotations

from dataclasses import dataclass

from array import array
from itertools import compress, repeat
from typing import Any, Iterator, Sequence

from fero import batch as batches
from fero import hlc as hlcs
from fero import values
from fero.counters import Counter
from fero.documents import Doc, Documents
from fero.errors import FeroError, InvalidArgument
from fero.origins import OriginVector
from fero.tickets import Committed, TicketTable
from fero.v1 import storage_pb2, types_pb2
from fero.values import Kind, Value

OP = types_pb2


@dataclass(frozen=True, slots=True)
class PartitionStatistics:
    partition: int
    epoch: int
    next_offset: int
    log_start_offset: int
    counters: int
    keys: int
    tickets: int


@dataclass(frozen=True, slots=True)
class StateCut:
    """A partition's state but its documents, at one instant (PartitionState.cut), made
    into a message later and elsewhere: a node snapshot takes the cut of every
    partition on the event loop, which costs C-level copies of dicts (about 20 ms a
    million entries), and a pass over the counters if it may hold Counter objects, and
    builds the messages in its writer's thread. Built on the loop, the messages of a
    million counters or tickets held it for 1.4-1.5 s, long past the time peers wait
    for an answer."""

    partition: int
    epoch: int
    next_offset: int
    log_start_offset: int
    counters: dict[str, int | Counter]
    tombstones: dict[str, tuple[int, str]]
    origins: dict[str, int]
    epochs: list[tuple[int, str, int]]
    tickets: dict[str, Committed]
    gap_end: int = 0

    def message(self) -> storage_pb2.PartitionSnapshot:
        """As a PartitionSnapshot without documents."""
        ps = storage_pb2.PartitionSnapshot()
        ps.partition, ps.epoch, ps.next_offset = self.partition, self.epoch, self.next_offset
        ps.log_start_offset = self.log_start_offset
        ps.gap_end = self.gap_end
        for name, c in self.counters.items():
            if c.__class__ is int:
                values.to_number(c, ps.counters.add(name=name, kind=int(Kind.INT)).value)
            else:
                cs = ps.counters.add(name=name, kind=int(c.kind), expire_at_ms=c.expire_at_ms)
                values.to_number(c.value, cs.value)
        for key, (hlc, origin) in self.tombstones.items():
            ps.keys.add(key=key, hlc=hlc, origin=origin, removed=True)
        for origin, seq in self.origins.items():
            ps.origins.add(origin=origin, seq=seq)
        for epoch, owner, start in self.epochs:
            ps.epochs.add(epoch=epoch, owner=owner, start_offset=start)
        for ticket, committed in self.tickets.items():
            ts = ps.tickets.add(ticket=ticket, offset=committed.offset, committed_ms=committed.committed_ms)
            if committed.value is not None:
                ts.has_value = True
                values.to_number(committed.value, ts.value)
            if committed.origin:
                ts.origin, ts.first_seq, ts.weight = committed.origin, committed.first_seq, committed.weight
                if committed.values is not None or committed.errors:
                    ts.batch.CopyFrom(batches.result(self.partition, ticket, committed.offset, committed.values, committed.errors))
        return ps


def _compact(vals: list[Value] | None) -> Sequence[Value] | None:
    """Values kept for a retry's answer, as 8 bytes each when they fit (a window holds
    up to max_entries of them per partition)."""
    if not vals:
        return vals
    try:
        return array("q", vals)
    except (TypeError, OverflowError):
        return vals


class PartitionState:
    def __init__(
        self,
        partition: int,
        ticket_window_ms: int = 3_600_000,
        ticket_window_max: int = 100_000,
        expired_grace_ms: int = 86_400_000,
    ) -> None:
        self.partition = partition
        # A counter expired for longer than this is gone: its name is free again. The
        # rule is applied by record time in apply(), so compaction (which drops such
        # counters physically) never changes what a replay computes.
        self.expired_grace_ms = expired_grace_ms
        self.epoch = 0
        self.next_offset = 0
        self.log_start_offset = 0
        #: name -> counter. An int counter without expiry (nearly all of them) is held as
        #: its plain int value, not as a Counter: the garbage collector never walks an
        #: int, and a full collection over 256 partitions holding a million counters
        #: took 58-60 ms as Counters, 0.3 ms as ints. Read them through peek(),
        #: all_counters() or counters_named().
        self.counters: dict[str, int | Counter] = {}
        #: False only if no counter is held as a Counter object (_keep puts them in).
        self._objects = False
        self.documents = Documents()
        self.tickets = TicketTable(ticket_window_ms, ticket_window_max)
        #: origin -> highest origin_seq applied; every seq below it is applied too.
        self.origins = OriginVector()
        #: (epoch, owner, start offset) of each lineage in this partition's log, oldest first.
        self.epochs: list[tuple[int, str, int]] = []
        #: The log may hold records it did not apply (see gap) below this offset, and
        #: an origin's records may then stand out of order in it; from here on (and
        #: once retention has dropped what is below) they rise along the log.
        self.gap_end = 0

    def has(self, record: types_pb2.Record) -> bool:
        """Whether this partition already holds `record` (by its origin identity)."""
        return bool(record.origin) and record.origin_seq <= self.origins.get(record.origin, 0)

    def gap(self, record: types_pb2.Record) -> bool:
        """Whether `record` would skip records of its origin that this partition lacks.
        Such a record must not be applied: the vector would then claim the skipped
        ones, and they would never be applied (a lost write). It is left for a later
        pull that brings the whole run."""
        return bool(record.origin) and record.origin_seq > self.origins.get(record.origin, 0) + 1

    def next_origin_seq(self, origin: str) -> int:
        return self.origins.get(origin, 0) + 1

    def apply(self, record: types_pb2.Record, offset: int, remember: bool = True) -> Value | None:
        """Applies `record` (whose hlc and origin are set) as the commit at `offset`.

        Returns the value after the change for COUNTER_ADD and ADD, else None; the
        ticket is remembered (for retries) if `remember`. A record this partition
        already holds (same origin identity) must not be passed (see `has`); one whose
        ticket is already committed under another identity (a client retry that
        reached the other side of a split) is counted in the digest but not applied
        again. Raises InvalidArgument / FailedPrecondition (Expired) without changing
        anything.
        """
        if remember and record.ticket and self.tickets.get(record.ticket) is not None:
            self._count_origin(record)
            return None
        derived = batches.parse_derived(record.ticket) if record.ticket.startswith(batches.DERIVED_PREFIX) else None
        if derived is not None:
            # One record of a batch, met on its own (a merge): deduped by the batch's
            # ticket, unless that ticket stands for this very batch.
            ticket, k = derived
            first = record.origin_seq - k
            seen = self.tickets.get(ticket)
            if seen is not None and (seen.origin, seen.first_seq) != (record.origin, first):
                self._count_origin(record)
                return None
            remember = False
        op = record.op
        at_ms = hlcs.wall_ms(record.hlc)
        result: Value | None = None
        if op == OP.OP_COUNTER_ADD:
            counter = self._live_counter(record.key, at_ms)
            if counter is None or counter.__class__ is int:
                amount = values.from_number(record.amount, Kind.INT)
                result = self.counters[record.key] = values.add(counter or 0, amount, Kind.INT)
            else:
                amount = values.from_number(record.amount, counter.kind)
                result = counter.add(amount, at_ms)
        elif op == OP.OP_COUNTER_SETUP:
            counter = self._live_counter(record.key, at_ms)
            if counter is None:
                self._keep(Counter.new(record.key, Kind.parse(record.kind), record.expire_at_ms))
            else:
                counter = _as_counter(record.key, counter)
                # UNSPECIFIED (0) keeps the counter's kind: a setup that only moves expiry.
                kind = Kind.parse(record.kind) if record.kind else counter.kind
                counter.setup(kind, record.expire_at_ms, at_ms)
                self._keep(counter)
        elif op == OP.OP_UPDATE:
            self.documents.update(record.key, record.value, record.hlc, record.origin)
        elif op == OP.OP_REMOVE:
            self.documents.remove(record.key, record.hlc, record.origin)
        elif op == OP.OP_ADD:
            amount = values.from_number(record.amount, Kind.INT)
            result = self.documents.add(record.key, amount, record.hlc, record.origin)  # type: ignore[assignment]
        elif op == OP.OP_PUSH:
            self.documents.push(record.key, record.value, record.hlc, record.origin)
        elif op == OP.OP_PATCH:
            self.documents.patch(record.key, record.value, record.hlc, record.origin)
        elif op == OP.OP_ACTION:
            pass  # committed for replicas and subscribers; the owner's handler acts on it
        else:
            raise InvalidArgument(f"unknown op {op}")
        if remember:
            self.tickets.put(record.ticket, Committed(offset, result, at_ms))
        elif derived is not None and seen is None:
            self.tickets.put(ticket, Committed(offset - k, None, at_ms, record.origin, first))
        self._count_origin(record)
        return result

    def apply_batch(
        self, b: types_pb2.Batch, offset: int, keys: list[str] | None = None,
        column: Sequence[Any] | None = None, stamps: types_pb2.Batch | None = None,
        logged: bytes | memoryview | None = None,
    ) -> tuple[list[Value] | None, list[tuple[int, int, str]], bool]:
        """Applies a columnar batch (hlc and origin set, or given in `stamps`) whose
        first record is the commit at `offset`: (values after each applied COUNTER_ADD
        / ADD, the records that could not apply as (index, code, message), whether it
        was a duplicate).

        A record that cannot apply changes nothing and takes no position: the records
        after it take its hlc and origin_seq (the owner then drops it from the batch it
        logs, so every copy applies the same records at the same stamps). A batch whose
        ticket is committed here under another identity (a retry on the other side of
        a split) is counted in the digest but not applied again.

        `stamps` and `logged`, together, on the owner: `b` is then the batch as the
        client sent it, `stamps` a Batch with the hlc, origin and origin_seq this node
        gave it, and `logged` the stamped batch as the log holds it. The documents of a
        bulk UPDATE keep those bytes (values read out of `b` would keep the client's
        whole request alive), and records applied one by one are read from them.
        """
        assert (stamps is None) == (logged is None), "stamps and logged come together"
        s = b if stamps is None else stamps
        hlc, origin, origin_seq = s.hlc, s.origin, s.origin_seq
        op = b.op
        if keys is None:  # (the owner passes the lists it checked: see fero.batch.validate)
            keys = list(b.keys)
        # Values left in the message: a bulk UPDATE keeps them as it holds them, and
        # the message (or the bytes logged) itself, which a snapshot writes
        # (Documents.update_many). No other op reads them from this column.
        whole: Any = None
        if column is None:
            if op == OP.OP_UPDATE:
                whole = b if logged is None else logged
                column = b.values if logged is None else None
            else:
                column = list(b.amounts) if op in batches.AMOUNT_OPS else b.values
        n = len(keys)
        first = origin_seq - b.position
        seen = self.tickets.get(b.ticket)
        if seen is not None and (seen.origin, seen.first_seq) != (origin, first):
            self._count_run(origin, origin_seq + n - 1)
            return None, [], True
        at_ms = hlcs.wall_ms(hlc)
        vals: list[Value] | None = None
        failed: list[tuple[int, int, str]] = []
        if op == OP.OP_ACTION:
            pass  # committed for replicas and subscribers; the owner's handler acts on it
        elif op == OP.OP_COUNTER_ADD:
            vals, failed = self._add_counters(keys, column, at_ms)  # type: ignore[arg-type]
        elif not (op == OP.OP_UPDATE and self.documents.update_many(keys, column, hlc, origin, whole)):  # type: ignore[arg-type]
            vals, failed = self._apply_each(b if logged is None else types_pb2.Batch.FromString(logged))
        applied = n - len(failed)
        if applied:
            self._count_run(origin, origin_seq + applied - 1)
        # A batch none of whose records applied is not remembered (nor logged): as with
        # a record that fails, a retry is judged afresh.
        if seen is None and applied:
            errors = tuple(failed) or tuple((e.index, e.code, e.message) for e in b.errors)
            self.tickets.put(b.ticket, Committed(
                offset - b.position, None, at_ms, origin, first,
                _compact(vals) if b.position == 0 else None, errors, max(1, n),
            ))
        return vals, failed, False

    def _add_counters(
        self, keys: Sequence[str], amounts: Sequence[int], at_ms: int
    ) -> tuple[list[Value], list[tuple[int, int, str]]]:
        """COUNTER_ADD in bulk: one dict lookup and one add per record while counters
        are plain ints without expiry (the common case); the rest as apply() does it."""
        counters = self.counters
        out: list[Value] = []
        append = out.append
        failed: list[tuple[int, int, str]] = []
        for i, (name, a) in enumerate(zip(keys, amounts)):
            c = counters.get(name)
            if c is None:
                counters[name] = a
                append(a)
            elif c.__class__ is int:
                v = counters[name] = c + a
                append(v)
            else:
                try:
                    c = self._live_counter(name, at_ms)
                    if c is None:  # expired past its grace: the name is free, a new int counter
                        counters[name] = a
                        append(a)
                    else:
                        append(c.add(values.from_number(types_pb2.Number(i64=a), c.kind), at_ms))
                except FeroError as exc:
                    failed.append((i, exc.code.value[0], exc.message))
        return out, failed

    def _apply_each(self, b: types_pb2.Batch) -> tuple[list[Value] | None, list[tuple[int, int, str]]]:
        """The records of a batch one by one, as Records (ops without a bulk path)."""
        out: list[Value] | None = [] if b.op in batches.AMOUNT_OPS else None
        failed: list[tuple[int, int, str]] = []
        Record = types_pb2.Record
        vals, amounts = b.values, b.amounts
        k = 0
        for i, key in enumerate(b.keys):
            rec = Record(key=key, op=b.op, hlc=b.hlc + k, origin=b.origin, origin_seq=b.origin_seq + k)
            if vals:
                rec.value = vals[i]
            if amounts:
                rec.amount.i64 = amounts[i]
            try:
                v = self.apply(rec, 0, remember=False)
            except FeroError as exc:
                failed.append((i, exc.code.value[0], exc.message))
                continue
            if out is not None:
                out.append(v)  # type: ignore[arg-type]
            k += 1
        return out, failed

    def _count_run(self, origin: str, last_seq: int) -> None:
        if last_seq > self.origins.get(origin, 0):
            self.origins[origin] = last_seq

    def _count_origin(self, record: types_pb2.Record) -> None:
        origin = record.origin
        if origin:
            seq = record.origin_seq
            if seq > self.origins.get(origin, 0):
                self.origins[origin] = seq

    def note_epoch(self, epoch: int, owner: str, start_offset: int) -> None:
        """Records that lineage (epoch, owner) writes from `start_offset` on."""
        if not self.epochs or self.epochs[-1][:2] != (epoch, owner):
            self.epochs.append((epoch, owner, start_offset))

    def truncate_log(self, offset: int) -> None:
        """Cuts the log back to `offset` (state is kept: see the module docstring)."""
        self.next_offset = offset
        # A cut below where the log starts (it began at an install, or retention
        # dropped its start) leaves no frame below `offset`: the log starts there now,
        # and the frames that follow it can be read and sent.
        self.log_start_offset = min(self.log_start_offset, offset)
        self.epochs = [e for e in self.epochs if e[2] < offset]
        self.gap_end = min(self.gap_end, offset)

    def logged_unapplied(self, end: int) -> None:
        """The log holds records it did not apply, up to offset `end` (exclusive)."""
        if end > self.gap_end:
            self.gap_end = end

    def counter(self, name: str, at_ms: int) -> Counter | None:
        """The counter, or None if it does not exist; Expired if it is closed."""
        c = _as_counter(name, self._live_counter(name, at_ms))
        if c is not None:
            c.check_open(at_ms)
        return c

    def peek(self, name: str) -> Counter | None:
        """The counter as held, expired or not (None if there is none). An int counter
        comes as a new Counter: changing it changes nothing here."""
        return _as_counter(name, self.counters.get(name))

    def all_counters(self) -> Iterator[Counter]:
        """Every counter as held, expired or not, as peek() gives it."""
        for name, c in self.counters.items():
            yield _as_counter(name, c)  # type: ignore[misc]

    def counters_named(self, prefix: str, at_ms: int) -> list[tuple[str, Value, Kind, int]]:
        """(name, value, kind, expire_at_ms) of the counters open at `at_ms` whose names
        start with `prefix`, in no order; no Counter is made for an int one."""
        INT = Kind.INT
        return [(name, c, INT, 0) if c.__class__ is int else (name, c.value, c.kind, c.expire_at_ms)
                for name, c in self.counters.items()
                if name.startswith(prefix) and (c.__class__ is int or not c.expired(at_ms))]

    def _live_counter(self, name: str, at_ms: int) -> int | Counter | None:
        """The counter as held (an int or a Counter), None if it does not exist or has
        expired past its grace period (it is dropped then)."""
        c = self.counters.get(name)
        if c is None or c.__class__ is int:
            return c
        if c.expire_at_ms and at_ms >= c.expire_at_ms + self.expired_grace_ms:
            del self.counters[name]
            return None
        return c

    def _keep(self, c: Counter) -> None:
        """Holds `c`: as its plain value if it is an int counter without expiry."""
        if c.kind is Kind.INT and not c.expire_at_ms:
            self.counters[c.name] = c.value
        else:
            self.counters[c.name] = c
            self._objects = True

    def compact(self, now_ms: int) -> int:
        """Drops counters expired for longer than the grace period, and tickets older
        than their window; returns how many counters were dropped."""
        cutoff = now_ms - self.expired_grace_ms
        # Only Counter objects expire: no pass over a million ints if there are none.
        dead = [n for n, c in self.counters.items()
                if c.__class__ is not int and c.expire_at_ms and c.expire_at_ms <= cutoff] if self._objects else []
        for n in dead:
            del self.counters[n]
        self.tickets.expire(now_ms)
        from fero.hlc import pack

        self.documents.reap_tombstones(pack(now_ms - self.tickets.window_ms))
        return len(dead)

    def statistics(self) -> PartitionStatistics:
        return PartitionStatistics(
            partition=self.partition,
            epoch=self.epoch,
            next_offset=self.next_offset,
            log_start_offset=self.log_start_offset,
            counters=len(self.counters),
            keys=len(self.documents),
            tickets=len(self.tickets),
        )


    # -- snapshots --------------------------------------------------------------------

    def to_snapshot(self) -> storage_pb2.PartitionSnapshot:
        """This partition's whole state, for a state transfer (a node snapshot builds
        the same message in its writer's thread, from cuts: Engine._build_snapshot)."""
        ps = self.cut().message()
        self.documents.to_columns(ps.key_columns)
        return ps

    def cut(self) -> "StateCut":
        """The state but the documents as it is now, in copies later writes do not change."""
        counters = dict(self.counters)
        # Counter objects (not plain ints) change in place when added to: copied too.
        # They are few (decimal, rational or expiring counters), but finding them is a
        # pass over every counter (in C, yet 120 ms a million in a node: a cache miss
        # a value), so it is made only if the partition may hold one.
        if self._objects:
            objects = list(compress(counters, map(isinstance, counters.values(), repeat(Counter))))
            self._objects = bool(objects)
            for name in objects:
                c = counters[name]
                counters[name] = Counter(name, c.kind, c.value, c.expire_at_ms)  # type: ignore[union-attr]
        return StateCut(self.partition, self.epoch, self.next_offset, self.log_start_offset, counters,
                        dict(self.documents.tombstones), dict(self.origins), list(self.epochs), self.tickets.copy(),
                        self.gap_end)

    def load_snapshot(self, ps: storage_pb2.PartitionSnapshot) -> None:
        """Replaces this partition's state with `ps` (a snapshot's or a state transfer's)."""
        self.epoch, self.next_offset, self.log_start_offset = ps.epoch, ps.next_offset, ps.log_start_offset
        self.counters = {}
        for cs in ps.counters:
            kind = Kind.parse(cs.kind)
            self._keep(Counter(cs.name, kind, values.from_number(cs.value, kind), cs.expire_at_ms))
        self.documents = Documents()
        self.documents.from_columns(ps.key_columns)
        self.documents.load_runs(ps.runs)
        for ks in ps.keys:
            if ks.removed:
                self.documents.tombstones[ks.key] = (ks.hlc, ks.origin)
            else:
                self.documents.docs[ks.key] = Doc(raw=ks.value, hlc=ks.hlc, origin=ks.origin)
        self.origins = OriginVector((o.origin, o.seq) for o in ps.origins)
        self.epochs = [(e.epoch, e.owner, e.start_offset) for e in ps.epochs]
        # A snapshot from before gap_end was kept says nothing of its log: all of it
        # may hold such records.
        self.gap_end = ps.gap_end if ps.HasField("gap_end") else ps.next_offset
        self.tickets = TicketTable(self.tickets.window_ms, self.tickets.max_entries)
        for ts in ps.tickets:
            value = values.parse_number(ts.value) if ts.has_value else None
            if ts.origin:
                self.tickets.put(ts.ticket, Committed(
                    ts.offset, value, ts.committed_ms, ts.origin, ts.first_seq,
                    batches.result_values(ts.batch) if ts.HasField("batch") else None,
                    tuple((e.index, e.code, e.message) for e in ts.batch.errors), max(1, ts.weight),
                ))
            else:
                self.tickets.put(ts.ticket, Committed(ts.offset, value, ts.committed_ms))


def _as_counter(name: str, held: int | Counter | None) -> Counter | None:
    """A counter as PartitionState.counters holds it, as a Counter: an int one comes as a
    new Counter (changing it changes nothing held)."""
    return Counter(name, Kind.INT, held, 0) if held.__class__ is int else held  # type: ignore[arg-type]
