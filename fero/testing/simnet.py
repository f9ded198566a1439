"""A deterministic in-memory network for I/O-free protocol state machines.

Nodes are any objects with `handle(sender_address, msg, now)`, `tick(now)` (both
returning an iterable of `(to_address, msg)` pairs) and `next_deadline()`. The
network runs in virtual time on a `ManualClock`: a heap holds message deliveries and
each node's next tick, so idle nodes cost nothing and a thousand members run in
seconds of CPU. Given the same seed and the same calls, a run is identical.

Faults, all seeded: per-message drop, uniform delay, duplication; partitions (groups
of addresses that cannot reach each other); kill/revive (a dead node neither receives
nor ticks; messages already in flight from it still arrive, as on a real network);
pause/resume (messages wait and the node does not tick, like a stopped process); and
slow nodes (every message to it is processed `slow_s` late: the Lifeguard case of an
overloaded member whose timers still fire on time).
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fero.clock import ManualClock


class Endpoint(Protocol):
    def handle(self, sender_address: str, msg: Any, now: float) -> Iterable[tuple[str, Any]]: ...

    def tick(self, now: float) -> Iterable[tuple[str, Any]]: ...

    def next_deadline(self) -> float: ...


@dataclass(frozen=True, slots=True)
class NetworkFaults:
    """Per-message fault model; probabilities in [0, 1], delays in seconds."""

    drop: float = 0.0
    duplicate: float = 0.0
    min_delay_s: float = 0.001
    max_delay_s: float = 0.005

    def __post_init__(self) -> None:
        if not (0 <= self.drop <= 1 and 0 <= self.duplicate <= 1):
            raise ValueError("drop and duplicate are probabilities in [0, 1]")
        if not 0 <= self.min_delay_s <= self.max_delay_s:
            raise ValueError("need 0 <= min_delay_s <= max_delay_s")


@dataclass(frozen=True, slots=True)
class SimStatistics:
    now_s: float
    sent: int
    delivered: int
    dropped: int  # by the fault model, or past their deadline at a resume
    blocked: int  # by a partition or a dead receiver
    duplicated: int
    ticks: int
    by_type: dict[str, int] = field(default_factory=dict)  # sent, per message class


_DELIVER = 0
_TICK = 1
_SLOWED = 2  # a delivery already held back by set_slow()


class SimNet:
    """The network and its event loop. Not thread-safe; one test drives it.

    `run_*` methods never sleep and are bounded by virtual time. `on_send`, when set,
    sees every message a node sends (before faults) for counting or tracing.
    """

    def __init__(self, seed: int, faults: NetworkFaults | None = None, clock: ManualClock | None = None) -> None:
        self.rng = random.Random(seed)
        self.faults = faults or NetworkFaults()
        self.clock = clock or ManualClock()
        self.nodes: dict[str, Endpoint] = {}
        self.on_send: Callable[[str, str, Any], None] | None = None
        self._heap: list[tuple[float, int, int, Any]] = []
        self._seq = 0
        self._scheduled: dict[str, float] = {}  # address -> time of its live tick entry
        self._dead: set[str] = set()
        # address -> (deadline_s or None, [(arrived at, sender, message)])
        self._paused: dict[str, tuple[float | None, list[tuple[float, str, Any]]]] = {}
        self._slow: dict[str, float] = {}
        self._group: dict[str, int] = {}
        self._sent = self._delivered = self._dropped = self._blocked = 0
        self._duplicated = self._ticks = 0
        self._by_type: Counter[str] = Counter()

    @property
    def now(self) -> float:
        return self.clock.now()

    # ------------------------------------------------------------ topology and faults

    def add(self, address: str, node: Endpoint) -> None:
        """Attach `node` at `address` (replacing any node there) and schedule it."""
        self.nodes[address] = node
        self._dead.discard(address)
        self._scheduled.pop(address, None)
        self._schedule(address)

    def kill(self, address: str) -> None:
        """Crash: the node stops ticking and every message to it is lost."""
        self._dead.add(address)
        self._paused.pop(address, None)

    def revive(self, address: str, node: Endpoint | None = None) -> None:
        """Bring a killed node back, with its old state or as `node` (a restart)."""
        self.add(address, node if node is not None else self.nodes[address])

    def is_alive(self, address: str) -> bool:
        return address in self.nodes and address not in self._dead

    def pause(self, address: str, deadline_s: float | None = None) -> None:
        """Stop processing (SIGSTOP): messages queue up and ticks are skipped until resume.

        With `deadline_s`, a message that waited longer than that is lost at resume, as
        a gRPC call whose deadline passed while the process was stopped is never served.
        """
        self._paused.setdefault(address, (deadline_s, []))

    def resume(self, address: str) -> None:
        deadline_s, backlog = self._paused.pop(address, (None, []))
        for arrived_at, sender, msg in backlog:
            if deadline_s is not None and self.now - arrived_at > deadline_s:
                self._dropped += 1
                continue
            self._push(self.now, _DELIVER, (address, sender, msg))
        self._scheduled.pop(address, None)
        self._schedule(address)

    def set_slow(self, address: str, extra_delay_s: float) -> None:
        """Process every message to `address` this much later (0 clears it)."""
        if extra_delay_s <= 0:
            self._slow.pop(address, None)
        else:
            self._slow[address] = extra_delay_s

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the network: addresses in different groups cannot reach each other.

        Addresses in no group reach everyone. Replaces any previous partition.
        """
        self._group = {address: index for index, group in enumerate(groups) for address in group}

    def heal(self) -> None:
        self._group = {}

    def set_faults(self, faults: NetworkFaults) -> None:
        self.faults = faults

    # ------------------------------------------------------------------ sending

    def send(self, sender: str, to: str, msg: Any) -> None:
        """Put `msg` on the wire from `sender` to `to`, subject to the fault model."""
        self._sent += 1
        self._by_type[type(msg).__name__] += 1
        if self.on_send is not None:
            self.on_send(sender, to, msg)
        faults = self.faults
        rng = self.rng
        if faults.drop and rng.random() < faults.drop:
            self._dropped += 1
            return
        copies = 1
        if faults.duplicate and rng.random() < faults.duplicate:
            copies = 2
            self._duplicated += 1
        for _ in range(copies):
            delay = rng.uniform(faults.min_delay_s, faults.max_delay_s)
            self._push(self.now + delay, _DELIVER, (to, sender, msg))

    def _send_all(self, sender: str, messages: Iterable[tuple[str, Any]]) -> None:
        for to, msg in messages:
            self.send(sender, to, msg)

    def _push(self, at: float, kind: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, payload))

    def _schedule(self, address: str) -> None:
        node = self.nodes.get(address)
        if node is None or address in self._dead or address in self._paused:
            return
        at = max(node.next_deadline(), self.now)
        current = self._scheduled.get(address)
        if current is None or at < current:
            self._scheduled[address] = at
            self._push(at, _TICK, address)

    # ------------------------------------------------------------------ running

    def step(self) -> bool:
        """Process the next event; False when there is none."""
        if not self._heap:
            return False
        self._process(*heapq.heappop(self._heap))
        return True

    def _process(self, at: float, _seq: int, kind: int, payload: Any) -> None:
        if at > self.now:
            self.clock.advance(at - self.now)
        if kind == _TICK:
            self._tick(payload, at)
        elif kind == _DELIVER:
            self._deliver(*payload)
        else:
            self._deliver(*payload, slowed=True)

    def _tick(self, address: str, at: float) -> None:
        if self._scheduled.get(address) != at:
            return  # superseded by an earlier tick entry
        del self._scheduled[address]
        node = self.nodes.get(address)
        if node is None or address in self._dead or address in self._paused:
            return
        self._ticks += 1
        self._send_all(address, node.tick(self.now))
        self._schedule(address)

    def _deliver(self, to: str, sender: str, msg: Any, slowed: bool = False) -> None:
        if to not in self.nodes or to in self._dead:
            self._blocked += 1
            return
        group = self._group
        if group and group.get(to, -1) != group.get(sender, -1) and to in group and sender in group:
            self._blocked += 1
            return
        if to in self._paused:
            self._paused[to][1].append((self.now, sender, msg))
            return
        extra = self._slow.get(to)
        if extra and not slowed:
            self._push(self.now + extra, _SLOWED, (to, sender, msg))
            return
        self._delivered += 1
        self._send_all(to, self.nodes[to].handle(sender, msg, self.now))
        self._schedule(to)

    def run_until(self, t: float) -> None:
        """Process every event up to virtual time `t`, then set the clock to `t`."""
        heap = self._heap
        while heap and heap[0][0] <= t:
            self._process(*heapq.heappop(heap))
        if t > self.now:
            self.clock.advance(t - self.now)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until_true(self, condition: Callable[[], bool], timeout_s: float, check_every_s: float = 0.1) -> bool:
        """Run until `condition()` holds, checked every `check_every_s` of virtual
        time; False if `timeout_s` passes first. Bounded: at most timeout/check steps."""
        deadline = self.now + timeout_s
        while True:
            if condition():
                return True
            if self.now >= deadline:
                return False
            self.run_until(min(deadline, self.now + check_every_s))

    def statistics(self) -> SimStatistics:
        return SimStatistics(
            now_s=self.now,
            sent=self._sent,
            delivered=self._delivered,
            dropped=self._dropped,
            blocked=self._blocked,
            duplicated=self._duplicated,
            ticks=self._ticks,
            by_type=dict(self._by_type),
        )


class SwimCluster:
    """N `fero.membership.Swim` members on one `SimNet`: the in-process cluster the
    membership tests and `benchmarks/membership_sim.py` share.

    Member i has id `node-i` and address `10.<i // 250>.<i % 250>.1:7946`; each has its
    own `random.Random` derived from `seed`, so runs are reproducible.
    """

    def __init__(self, n: int, config: Any = None, seed: int = 0, faults: NetworkFaults | None = None) -> None:
        from fero.membership import MembershipConfig, Swim

        self.config = config or MembershipConfig.lan()
        self.net = SimNet(seed, faults)
        self.swims: dict[str, Swim] = {}
        self._seed = seed
        self._swim_class = Swim
        for i in range(n):
            self.add(i)

    @staticmethod
    def address(i: int) -> str:
        return f"10.{i // 250}.{i % 250}.1:7946"

    @staticmethod
    def node_id(i: int) -> str:
        return f"node-{i}"

    def add(self, i: int) -> Any:
        """Start (or restart, with fresh state) member i; it knows only itself."""
        address = self.address(i)
        swim = self._swim_class(
            self.node_id(i), address, self.config, random.Random(self._seed * 1_000_003 + i), now=self.net.now
        )
        self.swims[address] = swim
        self.net.add(address, swim)
        return swim

    def join(self, i: int, seeds: Iterable[int]) -> None:
        address = self.address(i)
        self.net._send_all(address, self.swims[address].join([self.address(s) for s in seeds], self.net.now))

    def bootstrap(self) -> None:
        """Make every member know every other, as a cluster long since converged.

        Delivered as a push-pull response to each member directly (no network), so
        no join storm; the members then run normally.
        """
        from fero.membership.messages import ALIVE, MemberState, PushPullResponse

        table = tuple(MemberState(s.id, s.address, s.incarnation, ALIVE) for s in self.swims.values())
        response = PushPullResponse("bootstrap", table)
        for address, swim in self.swims.items():
            self.net._send_all(address, swim.handle("bootstrap", response, self.net.now))

    def live(self) -> list[Any]:
        return [s for a, s in self.swims.items() if self.net.is_alive(a)]

    def converged(self) -> bool:
        """Every live member sees exactly the live members alive, nothing suspect or
        dead (tombstones of killed members must be reaped). O(N)."""
        live = self.live()
        n = len(live)
        for swim in live:
            counts = swim.status_counts()  # O(1); statistics() also scans checksums
            if counts["alive"] != n or counts["suspect"] or counts["dead"]:
                return False
        return True

    def status_of(self, node_id: str) -> dict[str, str]:
        """Each live member's view of `node_id`: a status, or "unknown" (reaped)."""
        view = {}
        for address, swim in self.swims.items():
            if self.net.is_alive(address) and swim.id != node_id:
                member = swim.member(node_id)
                view[address] = "unknown" if member is None else member.status
        return view
