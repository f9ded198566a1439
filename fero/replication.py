"""Owner → replica streaming, acknowledgements, and acks=ALL.

For each replica node the owner runs one `Link`: a loop that sends, in one Append call,
the frames every partition this node owns and that node replicates is missing, then
records how far each partition got. A link starts from the replica's digest, so a
replica that is behind catches up from the log and one whose log diverged (it followed
another owner during a split, or this node lost an unsynced tail) is realigned: what it
holds that the owner lacks is pulled and re-committed first, then its log is cut back
to where the two agree and refilled from there. Nothing a replica held is lost.

acks=ALL waits until every in-sync replica of the partition has the record: a replica
is in sync while its link answers; after `lag_timeout_s` without an answer it drops out
of the set (Kafka's replica.lag.time.max.ms), so a dead replica delays writes by at
most that long, and it rejoins the set when it has caught up.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import grpc
import structlog

from fero.engine import Engine
from fero.errors import Unavailable
from fero.lineage import divergence, lineage_at
from fero.transport import PeerTransport
from fero.wire import field
from fero.v1 import peer_pb2, storage_pb2

log = structlog.get_logger("fero.replication")

#: Records and bytes per Append call, across partitions (a call carries at least one
#: frame): they bound a call's size and latency, and how long the replica's event loop
#: is held by one call. With 20,000 records of 1 KB a call held the replica for a
#: quarter of a second and more, long enough under load for its membership probes to
#: time out and a healthy node to be declared dead (as Kafka bounds a fetch by bytes).
MAX_RECORDS_PER_CALL = 20_000
MAX_BYTES_PER_CALL = 1 << 20
#: A replica that has not answered for this long is out of the in-sync set.
LAG_TIMEOUT_S = 5.0
APPEND_TIMEOUT_S = 10.0
#: Frames up to this size are built once for all the replicas of a partition.
FRAME_PART_CACHE_BYTES = 4096
#: Every link looks at all its partitions this often, in case a notice was missed; an
#: Append out longer than APPEND_TIMEOUT_S is given up then (see Replicator._watch).
LOOK_EVERY_S = 1.0
#: How often waiting acks=ALL calls are looked at without any message (lag, deadline).
RECHECK_S = 0.5


APPEND_STREAM = "/fero.v1.Peer/AppendStream"


class _StreamEnded(Exception):
    """The replica ended the Append stream (it is shutting down)."""


@dataclass
class _PartitionProgress:
    acked: int | None = None  # the replica's log end as it last told us; None: unknown
    caught_up: bool = False  # reached the owner's log end since it became a replica
    truncate: bool = False  # the next frame must cut the replica's log first
    realign: peer_pb2.PartitionDigest | None = None


@dataclass
class LinkStatistics:
    replica: str
    up: bool
    partitions: int
    lag_records: int
    calls: int
    failures: int


class Link:
    def __init__(self, replicator: "Replicator", replica: str) -> None:
        self.r = replicator
        self.replica = replica
        self.progress: dict[int, _PartitionProgress] = {}
        self.last_ok = time.monotonic()
        self.up = False
        self.calls = 0
        self.failures = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Partitions that may have something to send (new frames, unknown or behind
        #: replica): a step looks at these only, not at every partition of the link.
        self._pending: set[int] = set()
        #: The Append stream to the replica and the address it goes to; None: closed.
        self._stream: Any = None
        self._stream_address = ""
        self._unary = False  # the replica has no AppendStream: unary Append calls
        #: The last partition an Append carried frames of: the next one starts after it.
        self._last = -1
        #: Partition → the log end the Append now on its way carries it to.
        self._sending: dict[int, int] = {}
        #: When the Append on the stream now was written (None: none is out).
        self._append_since: float | None = None

    def assign(self, partitions: set[int]) -> None:
        for p in list(self.progress):
            if p not in partitions:
                del self.progress[p]
        for p in partitions:
            self.progress.setdefault(p, _PartitionProgress())
        self._pending = set(self.progress)
        self.wake()

    def wake(self, partitions: Iterable[int] | None = None) -> None:
        """Something may be to send: for `partitions` (None: any of this link's)."""
        if partitions is None:
            self._pending.update(self.progress)
        else:
            progress = self.progress
            self._pending.update(p for p in partitions if p in progress)
        self._wakeup.set()

    def covers(self, p: int, end: int) -> bool:
        """Whether the replica has p's log up to `end`, or an Append on its way does, or
        the link's next step sends it (p is pending and the link woken: it sends up to
        the log's end, and `end` is in the log already)."""
        prog = self.progress.get(p)
        return prog is not None and (
            (prog.acked or 0) >= end or self._sending.get(p, 0) >= end
            or (p in self._pending and self._wakeup.is_set())
        )

    def in_sync(self, p: int) -> bool:
        prog = self.progress.get(p)
        return (
            prog is not None and prog.caught_up and prog.acked is not None
            and time.monotonic() - self.last_ok < LAG_TIMEOUT_S
        )

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"link-{self.replica}")

    async def stop(self) -> None:
        self._close_stream()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            # Cleared before the step looks at what is pending: a notice that comes
            # while it runs (it may wait for a Digest) starts another step at once.
            self._wakeup.clear()
            try:
                sent = await self._step()
                backoff = 0.05
            except (grpc.aio.AioRpcError, asyncio.TimeoutError, _StreamEnded) as exc:
                self._close_stream()
                self.failures += 1
                self.up = False
                log.debug("replication.link_failed", replica=self.replica,
                          code=exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else type(exc).__name__)
                for prog in self.progress.values():
                    # Ask again where it stands once it answers; until it has caught up
                    # again it is out of the in-sync set.
                    prog.acked, prog.caught_up = None, False
                self._pending = set(self.progress)
                self.r.changed()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                # E.g. a replica so far behind that this log no longer reaches back to
                # it (OutOfRange: it needs a state transfer, which fero does not do yet).
                # Keep the link alive for the other partitions and try again later.
                self.failures += 1
                log.exception("replication.link_error", replica=self.replica)
                self._close_stream()
                self._pending = set(self.progress)
                await asyncio.sleep(1.0)
                continue
            if not sent or not self._pending:
                # After an Append that left nothing pending, another step right away
                # would find nothing to send; it also ran before the acks=ALL call
                # this reply released could answer (about 20 µs each time). New
                # frames that came meanwhile set the event, so this wait returns at once.
                # No timer of its own: the replicator's watch looks now and then.
                await self._wakeup.wait()

    def _look(self, now: float) -> None:
        """Now and then, a look at every partition (but what is gathering waits); and
        an Append out too long is given up: its stream is closed, which fails the
        step waiting on it, and the link starts again (see _run)."""
        self._pending = {p for p in self.progress if not self.r.lingering(p)}
        self._wakeup.set()
        since = self._append_since
        if since is not None and now - since > APPEND_TIMEOUT_S:
            log.info("replication.append_timed_out", replica=self.replica, after_s=round(now - since, 1))
            self._close_stream()

    async def _step(self) -> bool:
        address = self.r.address_of(self.replica)
        if address is None or not self.progress:
            return False
        stub = self.r.transport.stub(address)
        progress = self.progress
        # Round robin: from the partition after the one the last call ended with. Under
        # a backlog larger than a call (MAX_BYTES_PER_CALL may be one frame), partitions
        # that keep getting new frames would otherwise take every call, and the others'
        # acks=ALL writes wait until they time out.
        last = self._last
        pending = sorted((p for p in self._pending if p in progress), key=lambda p: (p <= last, p))
        unknown = [p for p in pending if progress[p].acked is None]
        if unknown:
            reply = await stub.Digest(peer_pb2.DigestRequest(partitions=unknown), timeout=APPEND_TIMEOUT_S)
            self._ok()
            for d in reply.digests:
                self._place(d)
        for p in pending:
            # .get: the Digest and each realign await, and a ring change meanwhile may
            # have taken the partition off this link (assign()).
            prog = progress.get(p)
            if prog is not None and prog.realign is not None:
                await self._realign(p, prog, prog.realign, stub)
        # The request is assembled from serialized pieces: each frame's LogEntry goes as
        # the bytes the log holds, never parsed and re-encoded (protobuf concatenation).
        parts: list[bytes] = []
        budget, byte_budget = MAX_RECORDS_PER_CALL, MAX_BYTES_PER_CALL
        engine = self.r.engine
        done: list[int] = []
        sent_to: dict[int, int] = {}
        for p in pending:
            prog = progress.get(p)
            if prog is None:
                done.append(p)
                continue
            if prog.acked is None or budget <= 0 or byte_budget <= 0:
                continue
            state = engine.partitions[p]
            if prog.acked < state.log_start_offset:
                # Further behind than this log reaches back: send the whole state.
                f = peer_pb2.AppendFrame(install=state.to_snapshot(), owner_epoch=state.epoch)
                parts.append(field(2, f.SerializeToString()))
                budget -= 1000
                byte_budget -= len(parts[-1])
                continue
            if prog.acked >= state.next_offset and not prog.truncate:
                if not prog.caught_up:
                    prog.caught_up = True
                    self.r.changed((p,))
                done.append(p)
                continue
            bodies = (engine.frame_bodies_from(p, prog.acked, budget, byte_budget)
                      if prog.acked < state.next_offset else [])
            if not bodies:  # only a cut to make
                cut = storage_pb2.LogEntry(partition=p, epoch=state.epoch, base_offset=prog.acked, owner=engine.node_id)
                bodies = [(prog.acked, 0, cut.SerializeToString())]
            for i, (base, count, body) in enumerate(bodies):
                truncate = prog.truncate and i == 0
                # Every replica of the partition gets the same bytes: built once.
                part = None if truncate else self.r.frame_part(p, state.epoch, body)
                if part is None:
                    f = peer_pb2.AppendFrame(truncate=truncate, owner_epoch=state.epoch)
                    if truncate:
                        for o, s in state.origins.items():
                            f.owner_origins.add(origin=o, seq=s)
                    prev = lineage_at(state.epochs, base - 1) if base else None
                    if prev is not None:
                        f.has_prev, f.prev_epoch, f.prev_owner = True, prev[0], prev[1]
                    part = field(2, f.SerializeToString() + field(5, body))
                    if not truncate:
                        self.r.keep_frame_part(p, state.epoch, body, part)
                parts.append(part)
                budget -= count
                byte_budget -= len(part)
                self._last = p
            if bodies and bodies[-1][0] + bodies[-1][1] >= state.next_offset:
                # Sent to the end: it waits for the next notice of new frames (which may
                # linger), not for this reply, before it is looked at again.
                done.append(p)
                sent_to[p] = state.next_offset
        self._pending.difference_update(done)
        if not parts:
            if not self._pending and self.up:
                # Nothing to send and nothing it lacks: an idle replica is as good as
                # one that just answered. (Otherwise, after LAG_TIMEOUT_S of quiet, it
                # fell out of the in-sync set, and the next acks=ALL write did not wait
                # for it.)
                self.last_ok = time.monotonic()
            return False
        request = b"".join([self.r.append_head, *parts])
        self._sending = sent_to
        try:
            reply = await self._append(address, stub, request)
        finally:
            self._sending = {}
        self.calls += 1
        self._ok()
        for res in reply.results:
            prog = self.progress.get(res.partition)
            if prog is None:
                continue
            prog.truncate = False
            if res.ok:
                prog.acked = res.next_offset
                # In sync once it has all the owner had when this Append left (as a
                # Kafka follower that fetched up to the leader's log end): under steady
                # writes the owner's end has always moved on by the time it answers.
                end = sent_to.get(res.partition)
                if res.next_offset >= (engine.partitions[res.partition].next_offset if end is None else end):
                    prog.caught_up = True
                if end is not None and res.next_offset < end:
                    self._pending.add(res.partition)
            else:
                log.info("replication.mismatch", replica=self.replica, partition=res.partition, why=res.error)
                self._place(res.digest)
                self._pending.add(res.partition)
        self.r.changed([res.partition for res in reply.results])
        return True

    async def _append(self, address: str, stub: Any, request: bytes) -> peer_pb2.AppendReply:
        """One Append (a serialized AppendRequest) on the link's stream, opened on first
        use and again after any failure; a unary call if the replica lacks the stream."""
        if self._unary:
            return await stub.Append(peer_pb2.AppendRequest.FromString(request), timeout=APPEND_TIMEOUT_S)
        # A stream is bound to where it went: if the replica moved, or became unreachable
        # (a split, in tests: transport.blocked), a new one goes to the new route.
        route = self.r.transport.route(address)
        if self._stream is not None and self._stream_address != route:
            self._close_stream()
        if self._stream is None:
            self._stream = self.r.transport.channel(address).stream_stream(
                APPEND_STREAM, request_serializer=None, response_deserializer=peer_pb2.AppendReply.FromString,
            )()
            self._stream_address = route
        stream = self._stream

        # The deadline is kept by Replicator._watch, which closes a stream whose Append
        # is late: no timer per Append (asyncio.timeout costs 6 µs of each).
        self._append_since = time.monotonic()
        try:
            await stream.write(request)
            reply = await stream.read()
            if reply is grpc.aio.EOF:
                raise _StreamEnded(f"the replica {self.replica} closed the Append stream")
            return reply
        except grpc.aio.AioRpcError as exc:
            self._close_stream()
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._unary = True
                return await stub.Append(peer_pb2.AppendRequest.FromString(request), timeout=APPEND_TIMEOUT_S)
            raise
        except asyncio.CancelledError:
            self._close_stream()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the link is stopping
            # The stream was cancelled, not the link's task: the watch gave it up.
            raise asyncio.TimeoutError(f"no answer from {self.replica} to an Append in {APPEND_TIMEOUT_S} s") from None
        except _StreamEnded:
            self._close_stream()
            raise
        except Exception as exc:
            # cygrpc's own errors on a stream whose peer died (ExecuteBatchError, a
            # UsageError after it ended): the link fails like on any RPC error, and the
            # next step opens a new stream. (Left as is, every later step failed.)
            self._close_stream()
            raise _StreamEnded(f"the Append stream to {self.replica} broke: {type(exc).__name__}: {exc}") from exc
        finally:
            self._append_since = None

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None

    def _ok(self) -> None:
        self.last_ok = time.monotonic()
        if not self.up:
            self.up = True
            self.r.changed()

    def _place(self, d: peer_pb2.PartitionDigest) -> None:
        """Where the replica's log stands against ours: continue, or realign."""
        prog = self.progress.get(d.partition)
        if prog is None:
            return
        state = self.r.engine.partitions[d.partition]
        theirs = [(e.epoch, e.owner, e.start_offset) for e in d.epochs]
        lacking = any(o.seq > state.origins.get(o.origin, 0) for o in d.origins)
        agreed = divergence(state.epochs, state.next_offset, theirs, d.next_offset)
        if d.epoch > state.epoch:
            state.epoch = d.epoch + 1  # the ring says we own it: outrank whoever wrote that
        if agreed == d.next_offset and not lacking:
            prog.acked, prog.realign = d.next_offset, None
        else:
            prog.acked, prog.realign = None, d

    async def _realign(self, p: int, prog: _PartitionProgress, d: peer_pb2.PartitionDigest, stub) -> None:
        engine = self.r.engine
        state = engine.partitions[p]
        have = {o: s for o, s in state.origins.items()}
        if any(o.seq > have.get(o.origin, 0) for o in d.origins):
            if not await self.r.pull(p, stub):
                # It claims records its log cannot give (they survive only in its
                # state, after an earlier cut): nothing to pull now; do not spin.
                log.warning("replication.nothing_to_pull", replica=self.replica, partition=p)
                await asyncio.sleep(1.0)
        theirs = [(e.epoch, e.owner, e.start_offset) for e in d.epochs]
        agreed = divergence(state.epochs, state.next_offset, theirs, d.next_offset)
        prog.acked = agreed
        prog.truncate = agreed < d.next_offset
        prog.realign = None
        prog.caught_up = False
        log.info("replication.realign", replica=self.replica, partition=p, from_offset=agreed,
                 replica_end=d.next_offset, owner_end=state.next_offset)

    def statistics(self) -> LinkStatistics:
        lag = 0
        for p, prog in self.progress.items():
            end = self.r.engine.partitions[p].next_offset
            lag += end - prog.acked if prog.acked is not None else end
        return LinkStatistics(self.replica, self.up, len(self.progress), lag, self.calls, self.failures)


class _Wait:
    """An acks=ALL call waiting: the end offset it needs of each partition, the future
    that answers it, its deadline (time.monotonic)."""

    __slots__ = ("needs", "fut", "deadline")

    def __init__(self, needs: dict[int, int], fut: asyncio.Future[None], deadline: float) -> None:
        self.needs = needs
        self.fut = fut
        self.deadline = deadline


_GONE = object()


class Replicator:
    """All links of this node, the in-sync sets, and acks=ALL waits."""

    def __init__(
        self, engine: Engine, transport: PeerTransport, address_of: Callable[[str], str | None], linger_s: float = 0.0,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.address_of = address_of
        self.links: dict[str, Link] = {}
        #: partition -> replica ids, for the partitions this node owns and serves
        self.assignment: dict[int, list[str]] = {}
        #: acks=ALL calls waiting, in the order they came (dicts as ordered sets), and
        #: the same by each partition they wait on.
        self._waiters: dict[_Wait, None] = {}
        self._waiting: dict[int, dict[_Wait, None]] = {}
        self._recheck_handle: asyncio.TimerHandle | None = None
        self._watch_handle: asyncio.TimerHandle | None = None
        #: How long new frames nobody waits for gather before the links send them.
        self.linger_s = linger_s
        #: Partitions with frames gathering (None: none), or all of them.
        self._lingering: set[int] | None = None
        self._linger_all = False
        self._linger_handle: asyncio.TimerHandle | None = None
        #: partition -> (frame body, epoch, AppendRequest field): the last frame a link
        #: sent, kept by identity of the body (frames_from hands out the same object).
        self._frame_parts: dict[int, tuple[bytes, int, bytes]] = {}

    @functools.cached_property
    def append_head(self) -> bytes:
        """The fields of every AppendRequest this node sends but its frames."""
        return peer_pb2.AppendRequest(owner=self.engine.node_id).SerializeToString()

    def assign(self, assignment: dict[int, list[str]]) -> None:
        self.assignment = assignment
        by_replica: dict[str, set[int]] = {}
        for p, replicas in assignment.items():
            for r in replicas:
                by_replica.setdefault(r, set()).add(p)
        for r, parts in by_replica.items():
            link = self.links.get(r)
            if link is None:
                link = self.links[r] = Link(self, r)
                link.start()
                if self._watch_handle is None:
                    self._watch_handle = asyncio.get_running_loop().call_later(LOOK_EVERY_S, self._watch)
            link.assign(parts)
        for r, link in self.links.items():
            if r not in by_replica:
                link.assign(set())
        self.changed()

    def notify(self, partitions: Iterable[int] | None = None, urgent: bool = False) -> None:
        """New frames were appended (to `partitions`; None: anywhere): links send them,
        at once if `urgent` (someone waits for the replicas), else after `linger_s`.

        Lingering is for the CPU, not the network: an Append costs each side about the
        same CPU whether it carries one write or fifty, and on a busy node that CPU is
        taken from the writes themselves. Writes nobody waits for (acks=LEADER) so reach
        the replicas up to `linger_s` later; acks=ALL and handoff flushes are urgent and
        take whatever is gathering with them.

        Even urgent, a link sends from its own task, a round of the event loop later:
        by then every commit of this round has appended, and one Append takes them all.
        (Sending in the waking commit's own step was tried, session 21: the commits
        after it in the round waited a round trip for the next Append, and acks=ALL
        counters under load fell from 457k to 428k a second.)"""
        if not urgent and self.linger_s > 0:
            if partitions is None:
                self._linger_all = True
            else:
                if self._lingering is None:
                    self._lingering = set()
                self._lingering.update(partitions)
            if self._linger_handle is None:
                self._linger_handle = asyncio.get_running_loop().call_later(self.linger_s, self._release)
            return
        self._release()
        if partitions is not None:
            partitions = list(partitions)
        for link in self.links.values():
            if link.progress:
                link.wake(partitions)

    def frame_part(self, p: int, epoch: int, body: bytes) -> bytes | None:
        """The AppendRequest field a link built last for this frame (the same bytes
        object, at the same epoch), for the partition's other links."""
        hit = self._frame_parts.get(p)
        return hit[2] if hit is not None and hit[0] is body and hit[1] == epoch else None

    def keep_frame_part(self, p: int, epoch: int, body: bytes, part: bytes) -> None:
        # Small frames only: building a part is dearer than copying it only for those,
        # and a big one kept here would outlive the log's own cache of recent frames.
        if len(body) <= FRAME_PART_CACHE_BYTES:
            self._frame_parts[p] = (body, epoch, part)

    def lingering(self, p: int) -> bool:
        return self._linger_all or (self._lingering is not None and p in self._lingering)

    def _release(self) -> None:
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        parts = None if self._linger_all else self._lingering
        if parts is None and not self._linger_all:
            return
        self._lingering, self._linger_all = None, False
        for link in self.links.values():
            if link.progress:
                link.wake(parts)

    def changed(self, partitions: Iterable[int] | None = None) -> None:
        """Progress or the in-sync sets changed (of `partitions` only, if given): releases
        the waits now satisfied (at once, in the caller's step: no task or lock between
        an ack and its reply). Only the waits on those partitions are looked at: each
        Append reply looked at every waiting call, 0.4 ms a reply with a thousand
        waiting."""
        if not self._waiters:
            return
        if partitions is None:
            candidates = list(self._waiters)
        else:
            waiting = self._waiting
            candidates = list(dict.fromkeys(w for p in partitions for w in waiting.get(p, ())))
        for w in candidates:
            if w.fut.done():
                self._drop(w)
            elif self._satisfied(w.needs):
                w.fut.set_result(None)
                self._drop(w)

    def _drop(self, w: "_Wait") -> None:
        if self._waiters.pop(w, _GONE) is _GONE:
            return
        for p in w.needs:
            ws = self._waiting.get(p)
            if ws is not None:
                ws.pop(w, None)
                if not ws:
                    del self._waiting[p]

    def _recheck(self) -> None:
        """Now and then while calls wait: a replica that drops out of the in-sync set
        (lag timeout) releases waits without any message, and a wait can time out."""
        self._recheck_handle = None
        self.changed()
        now = time.monotonic()
        for w in list(self._waiters):
            if now >= w.deadline:
                w.fut.set_exception(Unavailable("replicas did not acknowledge in time; retry"))
                self._drop(w)
        if self._waiters:
            self._recheck_handle = asyncio.get_running_loop().call_later(RECHECK_S, self._recheck)

    def _watch(self) -> None:
        """Every LOOK_EVERY_S: each link looks at all its partitions, and gives up an
        Append that is late (Link._look). One timer for all links, rather than one per
        wait and per Append."""
        now = time.monotonic()
        for link in self.links.values():
            link._look(now)
        self._watch_handle = asyncio.get_running_loop().call_later(LOOK_EVERY_S, self._watch)

    def in_sync(self, p: int) -> list[str]:
        return [r for r in self.assignment.get(p, ()) if r in self.links and self.links[r].in_sync(p)]

    def _satisfied(self, needs: dict[int, int]) -> bool:
        for p, end in needs.items():
            for r in self.assignment.get(p, ()):
                link = self.links.get(r)
                if link is not None and link.in_sync(p) and (link.progress[p].acked or 0) < end:
                    return False
        return True

    async def wait_all(self, needs: dict[int, int], timeout_s: float = 30.0) -> None:
        """Returns once every in-sync replica of each partition p has offsets < needs[p];
        Unavailable if that takes longer than `timeout_s` (retry: tickets make it safe)."""
        # Only what is not on its way already: the commit sent its frames urgently
        # (Engine.on_append), and under fsync=always the links are mid-Append by now; a
        # notice for those partitions would cost each link another (empty) step.
        behind = [p for p, end in needs.items()
                  if not all(self.links[r].covers(p, end) for r in self.assignment.get(p, ()) if r in self.links)]
        if behind:
            self.notify(behind, urgent=True)
        else:
            self._release()  # what else is gathering goes along, as notify() promises
        if self._satisfied(needs):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        w = _Wait(needs, fut, time.monotonic() + timeout_s)
        self._waiters[w] = None
        for p in needs:
            self._waiting.setdefault(p, {})[w] = None
        if self._recheck_handle is None:
            self._recheck_handle = asyncio.get_running_loop().call_later(RECHECK_S, self._recheck)
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()
            self._drop(w)

    async def pull(self, p: int, stub) -> int:
        """Fetches from a peer what partition `p` lacks (by origin vector) and re-commits
        it here as owner; returns how many records came."""
        engine = self.engine
        total = 0
        while True:
            state = engine.partitions[p]
            reply = await stub.Fetch(engine.fetch_beyond(p), timeout=APPEND_TIMEOUT_S)
            if reply.records:
                seq = engine.recommit(p, reply.records, state.epoch)
                await engine.wal.wait(seq)
                total += len(reply.records)
            if not reply.more:
                break
        if total:
            log.info("replication.pulled", partition=p, records=total)
            self.notify()
        return total

    async def flush(self, timeout_s: float) -> bool:
        """Waits (up to `timeout_s`) until every reachable replica has every frame of
        the partitions this node owns; True if they all have."""
        needs = {p: self.engine.partitions[p].next_offset for p in self.assignment}
        self.notify(urgent=True)

        def behind(r: str, p: int) -> bool:
            link = self.links.get(r)
            prog = link.progress.get(p) if link is not None else None
            # An unreachable replica cannot be waited for; it catches up from the new
            # owner later (or this node's records reach it by anti-entropy).
            return link is not None and link.up and prog is not None and (prog.acked or 0) < needs[p]

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not any(behind(r, p) for p in needs for r in self.assignment[p]):
                return True
            await asyncio.sleep(0.02)
        return False

    async def close(self) -> None:
        for handle in (self._recheck_handle, self._watch_handle):
            if handle is not None:
                handle.cancel()
        self._recheck_handle = self._watch_handle = None
        # Calls still waiting for replicas would wait without a deadline now.
        for w in self._waiters:
            if not w.fut.done():
                w.fut.set_exception(Unavailable("this node is stopping; retry"))
        self._waiters, self._waiting = {}, {}
        if self._linger_handle is not None:
            self._linger_handle.cancel()
            self._linger_handle = None
        for link in self.links.values():
            await link.stop()
