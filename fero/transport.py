"""The only module that opens gRPC channels to peers.

One channel per peer address, reused for every message (HTTP/2 multiplexes them).
Channels reconnect quickly (100 ms to 1 s backoff instead of gRPC's default of up to
two minutes): a restarted peer at the same address must be reachable again within a
probe interval, or it could not refute its own death.

`send()` is fire-and-forget with a deadline, like a UDP packet: membership treats a
failed or late delivery as a lost message. In-flight sends are bounded per peer, so a
peer that hangs (SIGSTOP) cannot make this node pile up calls.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import grpc
import structlog

from fero.security import open_channel
from fero.v1 import changelog_pb2_grpc, counters_pb2_grpc, peer_pb2, peer_pb2_grpc

#: Where calls to a blocked peer go: the discard port on loopback, closed, so they fail
#: at once with UNAVAILABLE, like a peer behind a split.
UNREACHABLE = "127.0.0.1:9"

#: Metadata that marks a forwarded call: the receiver never forwards it again.
HOP = (("fero-hop", "1"),)

log = structlog.get_logger("fero.transport")

CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]


class PeerTransport:
    def __init__(
        self, send_timeout_s: float = 1.0, max_in_flight_per_peer: int = 64,
        credentials: grpc.ChannelCredentials | None = None, metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.send_timeout_s = send_timeout_s
        #: TLS for peer calls, and metadata (the cluster secret) sent with each of them.
        self.credentials = credentials
        self.metadata = metadata
        self.max_in_flight_per_peer = max_in_flight_per_peer
        self._channels: dict[str, tuple[grpc.aio.Channel, peer_pb2_grpc.PeerStub]] = {}
        self._in_flight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._closed = False
        #: Fault injection for tests: a peer address for which this returns True is
        #: unreachable (every call fails fast with UNAVAILABLE), as across a split.
        self.blocked: Callable[[str], bool] = lambda address: False

    def route(self, address: str) -> str:
        """Where calls to `address` go: UNREACHABLE while it is blocked."""
        return UNREACHABLE if self.blocked(address) else address

    def _entry(self, address: str) -> tuple[grpc.aio.Channel, peer_pb2_grpc.PeerStub]:
        address = self.route(address)
        entry = self._channels.get(address)
        if entry is None:
            channel = open_channel(address, CHANNEL_OPTIONS, self.credentials, self.metadata)
            entry = (channel, peer_pb2_grpc.PeerStub(channel))
            self._channels[address] = entry
        return entry

    def _channel(self, address: str) -> grpc.aio.Channel:
        return self._entry(address)[0]

    def channel(self, address: str) -> grpc.aio.Channel:
        """The pooled channel to `address` (for streams with their own serializers)."""
        return self._entry(address)[0]

    def stub(self, address: str) -> peer_pb2_grpc.PeerStub:
        return self._entry(address)[1]

    def changelog(self, address: str) -> changelog_pb2_grpc.ChangelogStub:
        """The owner's public Changelog service, on the pooled peer channel."""
        return changelog_pb2_grpc.ChangelogStub(self._channel(address))

    def counters(self, address: str) -> counters_pb2_grpc.CountersStub:
        return counters_pb2_grpc.CountersStub(self._channel(address))

    def send(self, address: str, message: peer_pb2.PeerMessage, on_error: Callable[[str], None] | None = None) -> None:
        if self._closed or self.blocked(address):
            return
        if self._in_flight.get(address, 0) >= self.max_in_flight_per_peer:
            self.dropped += 1
            return
        self._in_flight[address] = self._in_flight.get(address, 0) + 1
        task = asyncio.get_running_loop().create_task(self._deliver(address, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, address: str, message: peer_pb2.PeerMessage) -> None:
        try:
            await self.stub(address).Deliver(message, timeout=self.send_timeout_s)
            self.sent += 1
        except grpc.aio.AioRpcError as exc:
            self.failed += 1
            log.debug("transport.send_failed", to=address, code=exc.code().name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a closed channel during shutdown, etc.
            self.failed += 1
            log.debug("transport.send_failed", to=address, error=str(exc))
        finally:
            self._in_flight[address] -= 1

    def forget(self, address: str) -> None:
        """Closes the channel to a peer that is gone for good (tombstone reaped)."""
        entry = self._channels.pop(address, None)
        if entry is not None:
            asyncio.get_running_loop().create_task(entry[0].close())

    async def close(self, drain_s: float = 1.0) -> None:
        """Stops sending. Messages already handed over get up to `drain_s` to go out
        first: the last ones are often a graceful leave, which must reach someone."""
        self._closed = True
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=drain_s)
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel, _ in self._channels.values():
            await channel.close()
        self._channels.clear()
