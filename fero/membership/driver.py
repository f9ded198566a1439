"""The asyncio driver of `Swim`: timers, the transport, and ring updates.

It is the only membership code that does I/O. It ticks the state machine at its next
deadline, hands every outgoing message to the transport, feeds received messages to
`handle()`, and after each step drains membership events: when one changes the ring
(alive ↔ dead/left, never mere suspicion) it calls `on_ring_change(alive_ids)`.
"""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Callable, Iterable

import structlog

from fero.clock import Clock
from fero.membership import codec
from fero.membership.config import MembershipConfig
from fero.membership.member import EventKind, Member
from fero.membership.messages import Outgoing
from fero.membership.swim import Swim, SwimStatistics
from fero.transport import PeerTransport
from fero.v1 import peer_pb2

log = structlog.get_logger("fero.membership")

#: The driver never sleeps longer than this between ticks, so a state machine whose
#: deadline moved earlier through a received message is served promptly anyway.
MAX_TICK_S = 0.05


def resolve_seeds(seeds: Iterable[str]) -> list[str]:
    """"host:port" seeds → addresses; a DNS name resolving to several addresses (a
    Kubernetes headless service) yields each of them. Unresolvable names are skipped."""
    out: list[str] = []
    for seed in seeds:
        seed = seed.strip()
        if not seed:
            continue
        host, _, port = seed.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"seed {seed!r} is not HOST:PORT")
        try:
            infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            log.warning("membership.seed_unresolved", seed=seed, error=str(exc))
            continue
        for family, _, _, _, sockaddr in infos:
            ip = sockaddr[0]
            addr = f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"
            if addr not in out:
                out.append(addr)
    return out


class MembershipDriver:
    def __init__(
        self,
        node_id: str,
        address: str,
        config: MembershipConfig,
        cluster: str,
        clock: Clock,
        on_ring_change: Callable[[list[str]], None],
        transport: PeerTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.address = address
        self.cluster = cluster
        self.clock = clock
        self.on_ring_change = on_ring_change
        self.transport = transport or PeerTransport(send_timeout_s=max(1.0, config.probe_interval_s))
        self.swim = Swim(node_id, address, config, rng, now=clock.now())
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._seeds: list[str] = []
        #: Membership change events seen, for metrics.
        self.events = 0

    async def start(self, seeds: Iterable[str]) -> None:
        seed_list = list(seeds)
        self._seeds = await asyncio.to_thread(resolve_seeds, seed_list) if seed_list else []
        self._send(self.swim.join(self._seeds, self.clock.now()))
        self._after_step()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="membership")

    async def _run(self) -> None:
        while True:
            now = self.clock.now()
            self._send(self.swim.tick(now))
            self._after_step()
            delay = min(max(self.swim.next_deadline() - self.clock.now(), 0.001), MAX_TICK_S)
            self._wakeup.clear()
            # A timer, not wait_for: in Python 3.11 wait_for drops a cancellation that
            # lands as the wait finishes, and this loop would then outlive stop().
            tick = asyncio.get_running_loop().call_later(delay, self._wakeup.set)
            try:
                await self._wakeup.wait()
            finally:
                tick.cancel()

    def deliver(self, message: peer_pb2.PeerMessage) -> None:
        """A message from a peer (called by the peer servicer). ValueError if malformed."""
        msg = codec.decode(message)
        self._send(self.swim.handle(message.from_address, msg, self.clock.now()))
        self._after_step()
        self._wakeup.set()

    def _send(self, out: list[Outgoing]) -> None:
        for o in out:
            self.transport.send(o.to, codec.encode(o.msg, self.address, self.cluster))

    def _after_step(self) -> None:
        events = self.swim.drain_events()
        if not events:
            return
        ring_changed = False
        self.events += len(events)
        for e in events:
            log.info(
                f"membership.{e.kind.value}", member=e.member.id, address=e.member.address,
                incarnation=e.member.incarnation, previous=e.previous_status,
            )
            ring_changed |= e.changes_ring
            if e.kind is EventKind.REAPED:
                self.transport.forget(e.member.address)
        if ring_changed:
            self.on_ring_change(self.swim.alive_ids())

    async def leave(self, timeout_s: float = 2.0) -> None:
        """Graceful leave: tell the others, and keep gossiping until the news is out."""
        others = [m for m in self.swim.members() if m.id != self.swim.id and m.status in ("alive", "suspect")]
        self._send(self.swim.leave(self.clock.now()))
        if not others:
            return
        deadline = self.clock.now() + timeout_s
        while self.swim.statistics().broadcast_queue and self.clock.now() < deadline:
            self._wakeup.set()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.transport.close()

    def set_ring_checksum(self, checksum: int) -> None:
        self.swim.set_ring_checksum(checksum)

    def coherent(self) -> bool:
        return self.swim.is_coherent_locally()

    def members(self) -> list[Member]:
        return self.swim.members()

    def alive_set(self) -> frozenset[str]:
        return self.swim.alive_set()

    def statistics(self) -> SwimStatistics:
        return self.swim.statistics()
