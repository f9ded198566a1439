"""A fero node: wires config, storage, the commit engine, routing and the gRPC server.

    node = fero.Node("n1", data_dir="./fero-data", port=4000, handler=my_actions, restore=load)
    await node.start()      # recovers the log, binds, reports SERVING to gRPC health
    ...
    await node.stop()       # stops taking requests, flushes and fsyncs the log

`handler(action)` runs custom actions on the owner (a coroutine function, or a plain
function if it has nothing to wait for); `restore(node)` runs once when the
node starts with an empty log, to load initial state. `data_dir=None` keeps everything
in memory (for tests). The node takes an exclusive
lock on its data directory, so two processes can never write one log.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fero import __version__
from fero import batch as batches
from fero.clock import REAL, Clock
from fero.config import Config
from fero.engine import Engine, Handler
from fero.errors import FailedPrecondition, FeroError, InvalidArgument, NotOwner, Unavailable, from_status
from fero.membership.driver import MembershipDriver
from fero.ring import Ring
from fero.router import Router
from fero.server import ChangelogServicer, ClusterServicer, CountersServicer, PeerServicer, add_changelog_servicer
from fero.subscriptions import Subscription
from fero.handoff import Ownership
from fero.security import AuthInterceptor, Security
from fero.replication import Replicator
from fero.transport import HOP, PeerTransport
from fero.v1 import (
    changelog_pb2,
    cluster_pb2,
    cluster_pb2_grpc,
    counters_pb2,
    counters_pb2_grpc,
    peer_pb2,
    peer_pb2_grpc,
    types_pb2,
)
from fero import values
from fero.values import Kind, Value

log = structlog.get_logger("fero.node")

#: With seeds, how long start() waits to hear from the cluster before owning partitions.
JOIN_WAIT_S = 3.0

#: How long a forwarded call may take before the caller is told UNAVAILABLE (retry).
FORWARD_TIMEOUT_S = 10.0


def _failed(batch: Sequence[types_pb2.Record], err: FeroError) -> list[types_pb2.Result]:
    return [
        types_pb2.Result(ticket=r.ticket, error_code=err.code.value[0], error_message=err.message) for r in batch
    ]

def _failed_batches(group: Sequence[types_pb2.Batch], err: FeroError) -> list[types_pb2.BatchResult]:
    return [
        types_pb2.BatchResult(partition=b.partition, ticket=b.ticket, error_code=err.code.value[0], error_message=err.message)
        for b in group
    ]


SERVICE_NAMES = (
    counters_pb2.DESCRIPTOR.services_by_name["Counters"].full_name,
    changelog_pb2.DESCRIPTOR.services_by_name["Changelog"].full_name,
    cluster_pb2.DESCRIPTOR.services_by_name["Cluster"].full_name,
)


class Node:
    def __init__(
        self,
        name: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 4000,
        data_dir: str | Path | None = None,
        config: Config | None = None,
        handler: Handler | None = None,
        restore: "Callable[[Node], Awaitable[None]] | None" = None,
        seeds: Iterable[str] = (),
        advertise: str | None = None,
        metrics_port: int | None = None,
        security: "Security | None" = None,
        clock: Clock = REAL,
    ) -> None:
        self.config = (config or Config()).validate()
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.clock = clock
        self.handler = handler
        self.restore = restore
        self.seeds = list(seeds)
        self.metrics_port = metrics_port
        self.security = security or Security()
        self._metrics_server: asyncio.AbstractServer | None = None
        #: Requests this node forwarded to another owner (proxy hops).
        self.forwards = 0
        self._advertise = advertise
        self.membership: MembershipDriver | None = None
        self.ownership: Ownership | None = None
        #: Members when the cluster was last coherent: the base of the majority test of
        #: split_policy "consistent".
        self._stable_members: frozenset[str] = frozenset()
        self._stable_task: asyncio.Task[None] | None = None
        self._reported_ready = False
        self._lock_fd = -1
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock_data_dir()
        self.node_id = name or self._stored_node_id()
        self.ring = Ring([self.node_id], vnodes=self.config.dht.vnodes)
        self.router = Router(self.node_id, self.ring, self.config.dht.partitions)
        self.engine = Engine(self.config, clock, self.node_id, self.data_dir, handler)
        self.state = "new"
        self.address = ""
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        self._started_at = 0.0

    # -- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        self.state = "recovering"
        await asyncio.to_thread(self.engine.open)
        self.engine.start()
        limit = self.config.limits.max_message_bytes
        sec = self.security
        server = grpc.aio.server(
            interceptors=[AuthInterceptor(sec)] if (sec.cluster_secret or sec.tokens) else None,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
            ]
        )
        counters_pb2_grpc.add_CountersServicer_to_server(CountersServicer(self), server)
        add_changelog_servicer(ChangelogServicer(self), server)
        cluster_pb2_grpc.add_ClusterServicer_to_server(ClusterServicer(self), server)
        peer_pb2_grpc.add_PeerServicer_to_server(PeerServicer(self), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            SERVICE_NAMES + (health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        if sec.tls:
            bound = server.add_secure_port(f"{self.host}:{self.port}", sec.server_credentials())
        else:
            bound = server.add_insecure_port(f"{self.host}:{self.port}")
        if bound == 0:
            raise OSError(f"cannot listen on {self.host}:{self.port}")
        self.port = bound
        self.address = self._advertise or f"{self.host}:{bound}"
        self.transport = PeerTransport(
            send_timeout_s=max(1.0, self.config.membership.probe_interval_s),
            credentials=sec.channel_credentials() if sec.tls else None, metadata=sec.peer_metadata(),
        )
        self.replicator = Replicator(
            self.engine, self.transport, self._address_of, linger_s=self.config.dht.replication_linger_ms / 1000,
        )
        self.ownership = Ownership(
            self.engine, self.node_id, self.config.dht.replication_factor, self.transport,
            self.replicator, self._address_of, self._alive_peers,
        )
        self.engine.on_append = self.replicator.notify
        self.membership = MembershipDriver(
            self.node_id, self.address, self.config.membership, self.config.cluster.name,
            self.clock, self._on_ring_change, transport=self.transport,
        )
        self.membership.set_ring_checksum(self.ring.checksum())
        await server.start()
        self._server = server
        self.ownership.start()
        await self.membership.start(self.seeds)
        self._stable_task = asyncio.get_running_loop().create_task(self._watch_stable(), name="stable-membership")
        if self.seeds:
            # Do not take every partition for a moment before the cluster answers: wait
            # (briefly) to hear from it, then own what the ring gives this node.
            deadline = time.monotonic() + JOIN_WAIT_S
            while len(self.ring) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        self.ownership.on_ring(self.ring)
        # Report SERVING once the partitions this node owns are caught up (bounded: a
        # slow catch-up leaves health NOT_SERVING and requests waiting, not a stuck start).
        deadline = time.monotonic() + JOIN_WAIT_S
        while self.ownership.catching_up() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._started_at = time.monotonic()
        self.state = "serving"
        first_of_a_new_cluster = not self.seeds and not any(s.next_offset for s in self.engine.partitions)
        if self.restore is not None and first_of_a_new_cluster:
            # fero's restore hook: the first node of a new cluster, with nothing in its
            # log, loads initial state (e.g. from a database) through its own API. A node
            # that joins a running cluster gets its state from the cluster instead.
            await self.restore(self)
        await self._report_health(not self.ownership.catching_up())
        if self.metrics_port is not None:
            from fero import metrics

            self._metrics_server = await metrics.serve(self, self.host, self.metrics_port)
            self.metrics_port = self._metrics_server.sockets[0].getsockname()[1]
        log.info("node.serving", node=self.node_id, address=self.address, storage=self.storage_label)

    async def stop(self, grace_s: float = 2.0) -> None:
        if self.state in ("stopped", "new"):
            self._unlock_data_dir()
            self.state = "stopped"
            return
        self.state = "stopping"
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.ownership is not None:
            # Hand over: writes are refused from now on (clients retry elsewhere), and
            # before leaving, the replicas get everything this node committed as owner.
            await self.replicator.flush(grace_s)
        if self._stable_task is not None:
            self._stable_task.cancel()
        if self._metrics_server is not None:
            self._metrics_server.close()
        if self.membership is not None:
            await self.membership.leave()
            await self.membership.stop()
        if self.ownership is not None:
            await self.ownership.stop()
            await self.replicator.close()
        if self._server is not None:
            await self._server.stop(grace_s)
        await self.engine.close()
        self._unlock_data_dir()
        self.state = "stopped"
        log.info("node.stopped", node=self.node_id)

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def _set_health(self, status: int) -> None:
        for name in ("",) + SERVICE_NAMES:
            result = self._health.set(name, status)
            if asyncio.iscoroutine(result):
                await result

    # -- the API the servicers call -------------------------------------------------

    async def commit(
        self, records: Sequence[types_pb2.Record], acks: int, forwarded: bool = False, checked: bool = False,
    ) -> list[types_pb2.Result]:
        """Commits records, each at the owner of its partition: locally, or forwarded
        once to the owner. A record whose owner cannot be reached, or that reached this
        node by forward although it is not the owner, gets an UNAVAILABLE result (retry;
        its ticket makes that safe). acks=ALL waits for the in-sync replicas; alone, the
        owner is the whole in-sync set (as with Kafka's acks=all). `checked`: the
        caller ran engine.validate() on them already."""
        self._check_serving()
        self._check_split_policy()
        if not checked:
            self.engine.validate(records)
        parts = [self.engine.partition_for(r.key) for r in records]
        groups = self.router.group(parts)
        if len(groups) == 1 and self.node_id in groups:
            return await self._commit_local(records, set(parts), acks)

        async def local(idxs: list[int]) -> list[types_pb2.Result]:
            return await self._commit_local([records[i] for i in idxs], {parts[i] for i in idxs}, acks)

        def request(idxs: list[int]) -> changelog_pb2.CommitRequest:
            return changelog_pb2.CommitRequest(records=[records[i] for i in idxs], acks=acks)

        return await self._at_owners(
            groups, forwarded, local, request, lambda reply: list(reply.results),
            lambda idxs, err: _failed([records[i] for i in idxs], err),
        )

    async def commit_batches(
        self, batch_list: Sequence[types_pb2.Batch], acks: int, forwarded: bool = False,
        raw: Sequence[bytes | memoryview] | None = None, columns: batches.Checked | None = None,
    ) -> list[types_pb2.BatchResult]:
        """Commits columnar batches (fero.batch), each at the owner of its partition, as
        commit() does records; a batch that cannot reach its owner gets a BatchResult
        with an UNAVAILABLE error_code (retry it whole: its ticket makes that safe).
        `raw`: each batch's bytes as the client sent them, if known (fero.wire);
        `columns`: what fero.batch.validate returned for them, if the caller checked."""
        self._check_serving()
        self._check_split_policy()
        if columns is None:
            columns = batches.validate(batch_list, len(self.engine.partitions), self.config.limits, raw=raw)
        groups = self.router.group([b.partition for b in batch_list])

        async def local(idxs: list[int]) -> list[types_pb2.BatchResult]:
            return await self._commit_batches_local(
                [batch_list[i] for i in idxs], acks, [columns[i] for i in idxs],
                None if raw is None else [raw[i] for i in idxs],
            )

        def request(idxs: list[int]) -> changelog_pb2.CommitRequest:
            return changelog_pb2.CommitRequest(batches=[batch_list[i] for i in idxs], acks=acks)

        return await self._at_owners(
            groups, forwarded, local, request, lambda reply: list(reply.batch_results),
            lambda idxs, err: _failed_batches([batch_list[i] for i in idxs], err),
        )

    async def _at_owners(
        self, groups: dict[str | None, list[int]], forwarded: bool,
        local: Callable[[list[int]], Awaitable[list[Any]]],
        request: Callable[[list[int]], changelog_pb2.CommitRequest],
        results_of: Callable[[changelog_pb2.CommitReply], list[Any]],
        failed: Callable[[list[int], FeroError], list[Any]],
    ) -> list[Any]:
        """Runs each group of a call's items (records or batches, by index) at its owner:
        here, or forwarded once; an owner out of reach, or a call that was forwarded to
        a node that is not the owner, gets `failed` results (UNAVAILABLE: retry). The
        results in the items' order."""
        results: list[Any] = [None] * sum(len(idxs) for idxs in groups.values())

        async def run(owner: str | None, idxs: list[int]) -> None:
            if owner == self.node_id:
                try:
                    out = await local(idxs)
                except Unavailable as exc:
                    out = failed(idxs, exc)
            elif owner is None:
                out = failed(idxs, Unavailable("no node owns this partition; the ring is empty"))
            elif forwarded:
                out = failed(idxs, NotOwner(f"not owner of this partition; its owner is {owner}"))
            else:
                address = self._address_of(owner)
                if address is None:
                    out = failed(idxs, Unavailable(f"owner {owner} has no known address"))
                else:
                    self.forwards += 1
                    try:
                        reply = await self.transport.changelog(address).Commit(
                            request(idxs), metadata=HOP, timeout=FORWARD_TIMEOUT_S
                        )
                        out = results_of(reply)
                    except grpc.aio.AioRpcError as exc:
                        err = from_status(exc.code(), exc.details() or "")
                        if not err.retriable and err.code != grpc.StatusCode.INVALID_ARGUMENT:
                            err = Unavailable(f"forward to owner {owner} failed: {err}")
                        out = failed(idxs, err)
            for i, r in zip(idxs, out):
                results[i] = r

        if len(groups) == 1:
            ((owner, idxs),) = groups.items()
            await run(owner, idxs)
        else:
            await asyncio.gather(*(run(o, idxs) for o, idxs in groups.items()))
        return results

    async def _commit_batches_local(
        self, batch_list: Sequence[types_pb2.Batch], acks: int, columns: batches.Checked,
        raw: Sequence[bytes | memoryview] | None = None,
    ) -> list[types_pb2.BatchResult]:
        assert self.ownership is not None
        await self.ownership.wait_serving({b.partition for b in batch_list})
        results = await self.engine.commit_batches(batch_list, acks, columns, raw)
        if acks == types_pb2.ACKS_ALL and self.replicator.assignment:
            needs: dict[int, int] = {}
            for b, r in zip(batch_list, results):
                # A duplicate's first commit may still be on its way to the replicas:
                # wait for everything this partition has.
                end = (self.engine.partitions[r.partition].next_offset if r.duplicate
                       else r.base_offset + len(b.keys) - len(r.errors))
                if end > r.base_offset:
                    needs[r.partition] = max(needs.get(r.partition, 0), end)
            await self.replicator.wait_all(needs)
        return results

    async def _commit_local(self, records: Sequence[types_pb2.Record], partitions: set[int], acks: int) -> list[types_pb2.Result]:
        """Commits records whose partitions this node owns: once it serves them (a new
        owner catches up first), and for acks=ALL once the in-sync replicas have them."""
        assert self.ownership is not None
        await self.ownership.wait_serving(partitions)
        results = await self.engine.commit(records, acks, checked=True)  # commit() checked them
        if acks == types_pb2.ACKS_ALL and self.replicator.assignment:
            needs: dict[int, int] = {}
            for r in results:
                if not r.error_code:
                    needs[r.partition] = max(needs.get(r.partition, 0), r.offset + 1)
            await self.replicator.wait_all(needs)
        return results

    async def wait_serving(self, key: str) -> None:
        """For reads at the owner: waits until the owner has caught up."""
        if self.ownership is not None:
            await self.ownership.wait_serving({self.engine.partition_for(key)})

    def holds(self, key: str) -> bool:
        """Whether this node keeps a copy of `key`'s partition (as owner or replica)."""
        if self.ownership is None:
            return True
        return self.node_id in self.ownership.preference[self.engine.partition_for(key)]

    def _alive_peers(self) -> list[str]:
        if self.membership is None:
            return []
        return [m.id for m in self.membership.members() if m.id != self.node_id and m.status in ("alive", "suspect")]

    def owner_address(self, key: str) -> str | None:
        """The address of the owner of `key`'s partition if it is another node, else None."""
        owner = self.ring.owner(self.engine.partition_for(key))
        if owner is None:
            raise Unavailable("no node owns this partition; the ring is empty")
        if owner == self.node_id:
            return None
        address = self._address_of(owner)
        if address is None:
            raise Unavailable(f"owner {owner} has no known address")
        return address

    def _address_of(self, node_id: str) -> str | None:
        if self.membership is None:
            return None
        return self.membership.swim.address_of(node_id)

    def get_counter(self, name: str) -> tuple[Value, Kind, bool, int]:
        self._check_serving()
        return self.engine.get_counter(name)

    def list_counters(self, prefix: str, limit: int) -> tuple[list[counters_pb2.CounterEntry], bool]:
        """Counters named `prefix...` in the partitions this node owns and serves."""
        now = self.clock.wall_ms()
        found = []
        for p, state in enumerate(self.engine.partitions):
            if self.ownership is not None and not self.ownership.is_serving(p):
                continue
            found.extend(state.counters_named(prefix, now))
        found.sort(key=lambda c: c[0])
        out = []
        for name, value, kind, expire_at_ms in found[:limit]:
            e = counters_pb2.CounterEntry(name=name, kind=int(kind), expire_at_ms=expire_at_ms)
            values.to_number(value, e.value)
            out.append(e)
        return out, len(found) > limit

    async def list_counters_cluster(self, prefix: str, limit: int) -> counters_pb2.ListReply:
        """Asks every live member (this one included) and merges in name order."""
        self._check_serving()
        entries, truncated = self.list_counters(prefix, limit)
        partial = False

        async def ask(address: str) -> None:
            nonlocal truncated, partial
            try:
                r = await self.transport.counters(address).List(
                    counters_pb2.ListRequest(prefix=prefix, limit=limit), metadata=HOP, timeout=FORWARD_TIMEOUT_S
                )
            except grpc.aio.AioRpcError:
                partial = True
                return
            entries.extend(r.counters)
            truncated |= r.truncated

        await asyncio.gather(*(ask(a) for a in (self._address_of(n) for n in self._alive_peers()) if a))
        entries.sort(key=lambda e: e.name)
        truncated |= len(entries) > limit
        return counters_pb2.ListReply(counters=entries[:limit], truncated=truncated, coherent=self.coherent(), partial=partial)

    def counter_kind(self, name: str) -> Kind:
        """The kind of a counter as it stands (int if it does not exist), even if expired."""
        c = self.engine.partitions[self.engine.partition_for(name)].peek(name)
        return c.kind if c is not None else Kind.INT

    def read(self, key: str) -> bytes | None:
        self._check_serving()
        return self.engine.read(key)

    def subscribe(self, sub: Subscription, from_offsets: dict[int, int], earliest: bool,
                  resume: dict[int, tuple[int, int, str]] | None = None) -> None:
        self._check_serving()
        self.engine.subscribe(sub, from_offsets, earliest, resume)

    def coherent(self) -> bool:
        """True iff this node sees every known member alive, none suspect, and every peer
        gossiping the ring checksum this node computes (DESIGN.md, `coherent`)."""
        return self.membership.coherent() if self.membership is not None else True

    async def _watch_stable(self) -> None:
        while True:
            self._note_stable()
            # gRPC health says NOT_SERVING while this node catches up on partitions it
            # now owns, so a load balancer or an orchestrator waits for it.
            ready = self.ownership is None or self.ownership.catching_up() == 0
            if self.state == "serving" and ready != self._reported_ready:
                await self._report_health(ready)
            await asyncio.sleep(0.2)

    async def _report_health(self, ready: bool) -> None:
        self._reported_ready = ready
        await self._set_health(
            health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    def _note_stable(self) -> None:
        if self.membership is not None and self.coherent():
            self._stable_members = self.membership.alive_set()

    def _on_ring_change(self, alive_ids: list[str]) -> None:
        self.ring = Ring(alive_ids, vnodes=self.config.dht.vnodes)
        self.router.ring = self.ring
        if self.membership is not None:
            self.membership.set_ring_checksum(self.ring.checksum())
        if self.ownership is not None and self.state == "serving":
            self.ownership.on_ring(self.ring)
        log.info("node.ring_changed", members=len(alive_ids), checksum=f"{self.ring.checksum():016x}",
                 owned=len(self.router.owned()))

    # -- peer service: replication ----------------------------------------------------

    async def append_replicated(self, request: "peer_pb2.AppendRequest") -> "peer_pb2.AppendReply":
        if self.state not in ("serving", "recovering") or self.engine.wal.failed is not None:
            raise Unavailable(f"node {self.node_id} is {self.state}")
        results, seq = self.engine.append_replicated(request.frames)
        await self.engine.durable(seq)
        return peer_pb2.AppendReply(results=results)

    def digests(self, partitions: Iterable[int], compact: bool = False) -> "peer_pb2.DigestReply":
        P = len(self.engine.partitions)
        return peer_pb2.DigestReply(digests=[self.engine.digest(p, compact) for p in partitions if 0 <= p < P])

    def fetch(self, request: "peer_pb2.FetchRequest") -> "peer_pb2.FetchReply":
        p = request.partition
        if p >= len(self.engine.partitions):
            raise InvalidArgument(f"partition {p} does not exist")
        limit = request.max_records or 10_000
        if request.WhichOneof("what") == "from_offset":
            state = self.engine.partitions[p]
            if request.from_offset < state.log_start_offset:
                return peer_pb2.FetchReply(snapshot=state.to_snapshot())
            entries = self.engine.frames_from(p, request.from_offset, limit)
            return peer_pb2.FetchReply(entries=entries)
        have = {o.origin: o.seq for o in request.beyond.origins}
        records, more = self.engine.records_beyond(p, have, limit)
        return peer_pb2.FetchReply(records=records, more=more)

    def deliver_peer_message(self, message: "peer_pb2.PeerMessage") -> None:
        if message.cluster != self.config.cluster.name:
            raise FailedPrecondition(
                f"this node is in cluster {self.config.cluster.name!r}, not {message.cluster!r}"
            )
        if self.membership is None:
            raise Unavailable(f"node {self.node_id} is {self.state}")
        try:
            self.membership.deliver(message)
        except ValueError as exc:
            raise InvalidArgument(f"malformed peer message: {exc}") from None

    def status(self, include_partitions: bool = False) -> cluster_pb2.StatusReply:
        st = self.engine.statistics()
        P = self.config.dht.partitions
        owned = self.router.owned()
        prefs = self.ownership.preference if self.ownership is not None else [[self.node_id]] * P
        replicated: dict[str, int] = {}
        for pl in prefs:
            for r in pl[1:]:
                replicated[r] = replicated.get(r, 0) + 1
        links = self.replicator.links if self.ownership is not None else {}
        reply = cluster_pb2.StatusReply(
            node=cluster_pb2.NodeStatus(
                id=self.node_id, address=self.address, state=self.state,
                partitions_owned=len(owned), records=st.records, counters=st.counters, keys=st.keys,
                uptime_s=time.monotonic() - self._started_at if self._started_at else 0.0,
                version=__version__, storage=self.storage_label, fsync=self.engine.wal.fsync_policy,
                replication_lag_records=sum(link.statistics().lag_records for link in links.values()),
                partitions_replicated=replicated.get(self.node_id, 0),
                partitions_catching_up=self.ownership.catching_up() if self.ownership is not None else 0,
            ),
            coherent=self.coherent(),
            partitions=P,
            ring_checksum=self.ring.checksum(),
            vnodes=self.config.dht.vnodes,
            replication_factor=self.config.dht.replication_factor,
        )
        if self.membership is not None:
            ownership = self.ring.ownership(P)
            for m in self.membership.members():
                reply.members.add(
                    id=m.id, address=m.address, status=m.status, incarnation=m.incarnation,
                    partitions_owned=len(ownership.get(m.id, ())),
                    partitions_replicated=replicated.get(m.id, 0),
                    ring_checksum=self.ring.checksum() if m.id == self.node_id else m.ring_checksum,
                    rtt_ms=m.rtt_ms,
                )
        if include_partitions:
            for p, pl in enumerate(prefs):
                if self.node_id not in pl:
                    continue
                ps = self.engine.partitions[p].statistics()
                owner = pl[0]
                role = "replica"
                hw, lag = 0, 0
                if owner == self.node_id:
                    serving = self.ownership is None or self.ownership.is_serving(p)
                    role = "owner" if serving else "catching-up"
                    acked = [
                        links[r].progress[p].acked or 0 for r in pl[1:]
                        if r in links and p in links[r].progress and links[r].in_sync(p)
                    ]
                    hw = min([ps.next_offset, *acked])
                    lag = max([0, *(ps.next_offset - a for a in acked)])
                reply.partition_status.add(
                    partition=p, owner=owner, epoch=ps.epoch, next_offset=ps.next_offset,
                    log_start_offset=ps.log_start_offset, counters=ps.counters, keys=ps.keys,
                    replicas=pl[1:], high_watermark=hw, lag_records=lag, role=role,
                )
        return reply

    @property
    def storage_label(self) -> str:
        return str(self.data_dir) if self.data_dir is not None else "memory"

    def _check_split_policy(self) -> None:
        if self.config.cluster.split_policy != "consistent" or self.membership is None:
            return
        self._note_stable()
        alive = self.membership.alive_set()
        stable = self._stable_members or alive
        seen = len(alive & stable)
        if seen * 2 <= len(stable):
            raise Unavailable(
                f"split policy 'consistent': this node sees {seen} of the {len(stable)} members of the "
                "last stable membership, no majority; writes are refused until the cluster heals"
            )

    def _check_serving(self) -> None:
        if self.state != "serving":
            raise Unavailable(f"node {self.node_id} is {self.state}")
        if self.engine.wal.failed is not None:
            raise Unavailable(f"node {self.node_id} has a failed log and takes no requests: {self.engine.wal.failed}")

    # -- the data directory ---------------------------------------------------------

    def _lock_data_dir(self) -> None:
        assert self.data_dir is not None
        fd = os.open(self.data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"{self.data_dir} is in use by another fero process") from None
        self._lock_fd = fd

    def _unlock_data_dir(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _stored_node_id(self) -> str:
        if self.data_dir is None:
            return f"fero-{uuid.uuid4().hex[:8]}"
        p = self.data_dir / "node-id"
        if p.exists():
            return p.read_text().strip()
        node_id = f"fero-{uuid.uuid4().hex[:8]}"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(node_id + "\n")
        os.replace(tmp, p)
        return node_id
