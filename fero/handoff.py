"""Ownership changes: who serves each partition, and catching up before serving.

On every ring change each node recomputes, for every partition, its preference list
(owner + replicas). A partition this node newly owns is not served until it has caught
up: it asks every live member for its digest, takes the frames of the longest log that
its own log is a prefix of (log shipping: a promoted replica usually needs only the
old owner's last frames), pulls from everyone else whatever records it still lacks (a
merge, after a split), bumps the partition's epoch above any it has seen, and only
then serves. Requests wait for that (up to `serve_wait_s`) rather than fail.

Anti-entropy: every `anti_entropy_s` an owner compares its partitions' digests with
every live member's and pulls what it lacks, so records stranded on a node that is no
longer in the preference list (the old owner after a join, a node that came back from
the other side of a split) still reach the owner; and a replica whose log has caught
up but whose state lacks records takes them from the owner. Both ask for compact
digests: a partition's latest changed origins in full and the rest of its origin
vector as a fingerprint (fero.origins), which is what keeps a round's cost flat as
vectors grow with every restart; only a partition whose fingerprints differ is asked
for again in full.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import grpc
import structlog

from fero.engine import Engine
from fero.errors import Unavailable
from fero.lineage import divergence
from fero.origins import OriginVector, fingerprint_of
from fero.replication import Replicator
from fero.ring import Ring
from fero.transport import PeerTransport
from fero.v1 import peer_pb2

log = structlog.get_logger("fero.handoff")

FETCH_TIMEOUT_S = 10.0
#: Entries Ownership._covered keeps at most (peers x partitions; a bound for peers that come and go).
COVERED_KEPT = 1 << 16


class Ownership:
    def __init__(
        self,
        engine: Engine,
        node_id: str,
        replication_factor: int,
        transport: PeerTransport,
        replicator: Replicator,
        address_of: Callable[[str], str | None],
        alive_peers: Callable[[], list[str]],
        serve_wait_s: float = 10.0,
        anti_entropy_s: float = 2.0,
    ) -> None:
        self.engine = engine
        self.node_id = node_id
        self.rf = replication_factor
        self.transport = transport
        self.replicator = replicator
        self.address_of = address_of
        self.alive_peers = alive_peers
        self.serve_wait_s = serve_wait_s
        self.anti_entropy_s = anti_entropy_s
        P = len(engine.partitions)
        self.preference: list[list[str]] = [[] for _ in range(P)]
        self._serving: set[int] = set()
        self._ready: dict[int, asyncio.Event] = {}
        self._generation = 0
        self._catch_up_task: asyncio.Task[None] | None = None
        self._anti_entropy_task: asyncio.Task[None] | None = None
        self.catch_ups = 0
        #: (peer address, partition) -> (this node's origin vector, the fingerprint of
        #: the peer's) for a peer's vector that a full digest showed to hold nothing
        #: this node lacks (see _beyond_ours).
        self._covered: dict[tuple[str, int], tuple[OriginVector, int]] = {}

    def start(self) -> None:
        self._anti_entropy_task = asyncio.get_running_loop().create_task(self._anti_entropy_loop(), name="anti-entropy")

    async def stop(self) -> None:
        for t in (self._catch_up_task, self._anti_entropy_task):
            if t is not None:
                t.cancel()
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass

    # -- ring changes ---------------------------------------------------------------

    def on_ring(self, ring: Ring) -> None:
        rf = max(1, min(self.rf, len(ring)))
        P = len(self.engine.partitions)
        newly_owned: list[int] = []
        assignment: dict[int, list[str]] = {}
        for p in range(P):
            pl = ring.preference_list(p, rf)
            self.preference[p] = pl
            if pl and pl[0] == self.node_id:
                if p not in self._serving:
                    newly_owned.append(p)
                else:
                    assignment[p] = pl[1:]
            else:
                self._serving.discard(p)
        self.replicator.assign(assignment)
        self._generation += 1
        if newly_owned:
            for p in newly_owned:
                self._ready.setdefault(p, asyncio.Event()).clear()
            if self._catch_up_task is not None and not self._catch_up_task.done():
                self._catch_up_task.cancel()
            pending = [p for p in range(P) if self.preference[p] and self.preference[p][0] == self.node_id and p not in self._serving]
            self._catch_up_task = asyncio.get_running_loop().create_task(self._catch_up(pending, self._generation))

    def is_serving(self, p: int) -> bool:
        return p in self._serving

    def catching_up(self) -> int:
        """How many partitions this node owns but does not serve yet."""
        return sum(1 for p, pl in enumerate(self.preference) if pl and pl[0] == self.node_id and p not in self._serving)

    async def wait_serving(self, partitions: set[int]) -> None:
        """Waits until this node serves each partition as owner; Unavailable if it does
        not own one, or catching up takes longer than `serve_wait_s`."""
        for p in partitions:
            if p in self._serving:
                continue
            pl = self.preference[p]
            if not pl or pl[0] != self.node_id:
                raise Unavailable(f"not owner of partition {p}")
            ev = self._ready.setdefault(p, asyncio.Event())
            try:
                async with asyncio.timeout(self.serve_wait_s):
                    await ev.wait()
            except TimeoutError:
                raise Unavailable(f"partition {p} is still catching up on its new owner; retry") from None
            if p not in self._serving:
                raise Unavailable(f"partition {p} moved while waiting; retry")

    # -- catching up ----------------------------------------------------------------

    async def _catch_up(self, partitions: list[int], generation: int) -> None:
        peers = [a for a in (self.address_of(n) for n in self.alive_peers()) if a]
        digests: dict[str, dict[int, peer_pb2.PartitionDigest]] = {}

        async def ask(address: str) -> None:
            try:
                reply = await self.transport.stub(address).Digest(
                    peer_pb2.DigestRequest(partitions=partitions), timeout=FETCH_TIMEOUT_S
                )
                digests[address] = {d.partition: d for d in reply.digests}
            except grpc.aio.AioRpcError as exc:
                log.warning("handoff.digest_failed", peer=address, code=exc.code().name)

        await asyncio.gather(*(ask(a) for a in peers))
        for p in partitions:
            if generation != self._generation:
                return
            try:
                await self._catch_up_one(p, {a: d[p] for a, d in digests.items() if p in d})
            except grpc.aio.AioRpcError as exc:
                log.warning("handoff.catch_up_failed", partition=p, code=exc.code().name)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Serve anyway: what was not pulled now, anti-entropy pulls later; a
                # partition that never serves would refuse every write to it.
                log.exception("handoff.catch_up_failed", partition=p)
            pl = self.preference[p]
            if pl and pl[0] == self.node_id and generation == self._generation:
                self._serving.add(p)
                self._ready.setdefault(p, asyncio.Event()).set()
                self.replicator.assign({**self.replicator.assignment, p: pl[1:]})
        self.catch_ups += 1
        log.info("handoff.serving", partitions=len(partitions), peers=len(peers))

    async def _catch_up_one(self, p: int, digests: dict[str, peer_pb2.PartitionDigest]) -> None:
        engine = self.engine
        state = engine.partitions[p]
        mine = list(state.epochs)
        # Log shipping: the longest log that ours is a prefix of.
        best, best_end = None, state.next_offset
        for address, d in digests.items():
            theirs = [(e.epoch, e.owner, e.start_offset) for e in d.epochs]
            if d.next_offset > best_end and divergence(mine, state.next_offset, theirs, d.next_offset) == state.next_offset:
                best, best_end = address, d.next_offset
        if best is not None:
            stub = self.transport.stub(best)
            while state.next_offset < best_end:
                reply = await stub.Fetch(
                    peer_pb2.FetchRequest(partition=p, from_offset=state.next_offset, max_records=10_000),
                    timeout=FETCH_TIMEOUT_S,
                )
                if reply.HasField("snapshot"):
                    # Its log no longer reaches back to ours: take its whole state, if
                    # that loses nothing of ours (else the merge below does the work).
                    if engine.lacks_beyond(p, reply.snapshot.origins):
                        break
                    await engine.wal.wait(engine.install(reply.snapshot))
                    continue
                if not reply.entries:
                    break
                await engine.wal.wait(engine.adopt(reply.entries))
        # A new epoch above any seen: this node's lineage from here on, and what fences
        # a previous owner that still thinks it owns the partition.
        state.epoch = max([state.epoch, *(d.epoch for d in digests.values())]) + 1
        # Merge: whatever anyone still holds that we lack, re-committed in our lineage.
        for address, d in digests.items():
            if any(o.seq > state.origins.get(o.origin, 0) for o in d.origins):
                await self.replicator.pull(p, self.transport.stub(address))

    # -- anti-entropy ---------------------------------------------------------------

    async def _repair_replicas(self) -> None:
        """As a replica: if the owner holds records this copy's state lacks, take them."""
        by_owner: dict[str, list[int]] = {}
        for p, pl in enumerate(self.preference):
            if len(pl) > 1 and self.node_id in pl[1:]:
                by_owner.setdefault(pl[0], []).append(p)
        for owner, parts in by_owner.items():
            address = self.address_of(owner)
            if address is None:
                continue
            stub = self.transport.stub(address)
            try:
                # Only a log that has caught up but a state that still lacks records
                # needs this; a log that is behind gets them from replication (and a
                # pull here would make the owner scan its whole log for nothing).
                lacking = [d for d in await self._beyond_ours(address, parts)
                           if d.next_offset <= self.engine.partitions[d.partition].next_offset]
                for d in lacking:
                    got = await stub.Fetch(self.engine.fetch_beyond(d.partition), timeout=FETCH_TIMEOUT_S)
                    n = self.engine.repair(d.partition, got.records)
                    if n:
                        log.info("handoff.replica_repaired", partition=d.partition, records=n)
            except grpc.aio.AioRpcError:
                continue

    async def _beyond_ours(self, address: str, partitions: list[int]) -> list[peer_pb2.PartitionDigest]:
        """The digests of those of `partitions` whose copy at the peer at `address` holds
        records this node lacks (an origin seq above ours). Asks for compact digests,
        which compare all but the latest changed origins by fingerprint, and again in
        full for the partitions whose fingerprints differ, unless the peer's vector is
        the one a full digest last showed to hold nothing we lack (a copy that is
        behind ours, or stale, differs from ours for good)."""
        stub = self.transport.stub(address)
        reply = await stub.Digest(peer_pb2.DigestRequest(partitions=partitions, compact=True), timeout=FETCH_TIMEOUT_S)
        found: list[peer_pb2.PartitionDigest] = []
        unsure: list[int] = []
        covered = self._covered
        for d in reply.digests:
            if d.compact:
                hit = covered.get((address, d.partition))
                if (hit is not None and hit[0] is self.engine.partitions[d.partition].origins
                        and hit[1] == fingerprint_of(((o.origin, o.seq) for o in d.origins), d.rest_fingerprint)):
                    continue
            beyond = self._beyond(d)
            if beyond is None:
                unsure.append(d.partition)
            elif beyond:
                found.append(d)
        if not unsure:
            return found
        try:
            reply = await stub.Digest(peer_pb2.DigestRequest(partitions=unsure), timeout=FETCH_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            log.debug("handoff.digest_failed", peer=address, code=exc.code().name)
            return found  # the others wait for the next round
        if len(covered) > COVERED_KEPT:
            covered.clear()
        for d in reply.digests:
            if self._beyond(d):
                found.append(d)
            else:
                # While the peer's vector has this fingerprint it is this vector, and it
                # holds nothing ours lacks: ours only rises (an install makes another).
                covered[(address, d.partition)] = (
                    self.engine.partitions[d.partition].origins,
                    fingerprint_of((o.origin, o.seq) for o in d.origins),
                )
        return found

    def _beyond(self, d: peer_pb2.PartitionDigest) -> bool | None:
        """Whether digest `d` shows records this node's copy lacks; None if it cannot
        tell: a compact digest whose other origins differ from ours."""
        mine = self.engine.partitions[d.partition].origins
        if d.compact and mine.rest(o.origin for o in d.origins) != d.rest_fingerprint:
            return None
        return any(o.seq > mine.get(o.origin, 0) for o in d.origins)

    async def _anti_entropy_loop(self) -> None:
        while True:
            await asyncio.sleep(self.anti_entropy_s)
            await self._repair_replicas()
            owned = sorted(self._serving)
            if not owned:
                continue
            for peer in self.alive_peers():
                address = self.address_of(peer)
                if address is None:
                    continue
                try:
                    stub = self.transport.stub(address)
                    for d in await self._beyond_ours(address, owned):
                        if d.partition in self._serving:
                            await self.replicator.pull(d.partition, stub)
                except grpc.aio.AioRpcError:
                    continue
                except Exception:
                    log.exception("handoff.anti_entropy_failed", peer=peer)
