"""The simulated network itself: faults happen at the configured rates, partitions,
kill/pause/slow behave as documented, and a seed fixes the whole run."""

from __future__ import annotations

import math
from typing import Any

import pytest

from fero.testing.simnet import NetworkFaults, SimNet


class Recorder:
    """Records what it receives; ticks every `period_s` and sends `sends` on each tick."""

    def __init__(self, period_s: float = math.inf, sends: list[tuple[str, Any]] | None = None) -> None:
        self.period_s = period_s
        self.sends = sends or []
        self.received: list[tuple[float, str, Any]] = []
        self.ticks: list[float] = []
        self._next = period_s

    def handle(self, sender: str, msg: Any, now: float) -> list[tuple[str, Any]]:
        self.received.append((now, sender, msg))
        return []

    def tick(self, now: float) -> list[tuple[str, Any]]:
        self.ticks.append(now)
        self._next = now + self.period_s
        return list(self.sends)

    def next_deadline(self) -> float:
        return self._next


def blast(net: SimNet, count: int) -> Recorder:
    sink = Recorder()
    net.add("sink", sink)
    net.add("src", Recorder())
    for i in range(count):
        net.send("src", "sink", i)
    net.run_for(10)
    return sink


def test_drop_duplicate_and_delay_rates() -> None:
    net = SimNet(seed=1, faults=NetworkFaults(drop=0.2, duplicate=0.1, min_delay_s=0.01, max_delay_s=0.05))
    sink = blast(net, 10_000)
    stats = net.statistics()
    assert 1_800 <= stats.dropped <= 2_200
    assert 700 <= stats.duplicated <= 900  # 10 % of the ~8,000 not dropped
    assert stats.delivered == len(sink.received) == 10_000 - stats.dropped + stats.duplicated
    assert all(0.01 <= at <= 0.05 for at, _, _ in sink.received)


def test_same_seed_same_run_different_seed_different_run() -> None:
    def run(seed: int) -> list[Any]:
        net = SimNet(seed=seed, faults=NetworkFaults(drop=0.3, duplicate=0.2))
        return [(round(at, 9), msg) for at, _, msg in blast(net, 500).received]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_partition_blocks_only_across_groups() -> None:
    net = SimNet(seed=2)
    nodes = {name: Recorder() for name in "abcx"}
    for name, node in nodes.items():
        net.add(name, node)
    net.partition(["a", "b"], ["c"])
    for to in "bcx":
        net.send("a", to, "hi")
    net.send("x", "c", "hi")  # x is in no group: reaches everyone
    net.run_for(1)
    assert [len(nodes[n].received) for n in "bcx"] == [1, 1, 1]
    assert nodes["c"].received[0][1] == "x"
    assert net.statistics().blocked == 1
    net.heal()
    net.send("a", "c", "again")
    net.run_for(1)
    assert nodes["c"].received[-1][2] == "again"


def test_kill_and_revive() -> None:
    net = SimNet(seed=3)
    node = Recorder(period_s=1.0)
    net.add("n", node)
    net.run_until(3.5)
    assert node.ticks == [1.0, 2.0, 3.0]
    net.kill("n")
    net.send("m", "n", "lost")
    net.run_until(6.5)
    assert node.ticks == [1.0, 2.0, 3.0] and node.received == []
    net.revive("n")
    net.run_until(8.0)
    assert node.ticks[3:] == [6.5, 7.5]


def test_pause_holds_messages_and_ticks_until_resume() -> None:
    net = SimNet(seed=4)
    node = Recorder(period_s=1.0)
    net.add("n", node)
    net.pause("n")
    net.send("m", "n", "held")
    net.run_until(5.0)
    assert node.ticks == [] and node.received == []
    net.resume("n")
    net.run_until(5.0)
    assert [(at, msg) for at, _, msg in node.received] == [(5.0, "held")]
    net.run_until(6.0)
    assert node.ticks == [5.0, 6.0]  # overdue tick runs at resume, then on period


def test_pause_with_a_deadline_loses_what_waited_longer() -> None:
    net = SimNet(seed=4, faults=NetworkFaults(min_delay_s=0.0, max_delay_s=0.0))
    node = Recorder(period_s=1.0)
    net.add("n", node)
    net.pause("n", deadline_s=1.0)
    net.send("m", "n", "expired")
    net.run_until(4.5)
    net.send("m", "n", "fresh")
    net.run_until(5.0)
    net.resume("n")
    net.run_until(5.0)
    assert [msg for _, _, msg in node.received] == ["fresh"]
    assert net.statistics().dropped == 1


def test_slow_node_processes_late_but_keeps_its_timers() -> None:
    net = SimNet(seed=5, faults=NetworkFaults(min_delay_s=0.01, max_delay_s=0.01))
    node = Recorder(period_s=1.0)
    net.add("n", node)
    net.set_slow("n", 2.0)
    net.send("m", "n", "late")
    net.run_until(3.0)
    assert [(round(at, 6), msg) for at, _, msg in node.received] == [(2.01, "late")]
    assert node.ticks == [1.0, 2.0, 3.0]
    net.set_slow("n", 0)
    net.send("m", "n", "prompt")
    net.run_for(0.5)
    assert round(node.received[-1][0], 6) == 3.01


def test_idle_nodes_cost_nothing_and_waiting_is_bounded() -> None:
    net = SimNet(seed=6)
    for i in range(1000):
        net.add(f"n{i}", Recorder())  # never has a deadline
    assert net.run_until_true(lambda: False, timeout_s=100.0, check_every_s=1.0) is False
    assert net.statistics().ticks == 0
    assert net.now == pytest.approx(100.0)


def test_messages_bounce_between_ticking_nodes() -> None:
    net = SimNet(seed=7)
    a = Recorder(period_s=0.5, sends=[("b", "ping")])
    b = Recorder()
    net.add("a", a)
    net.add("b", b)
    net.run_until(10.0)
    assert net.statistics().by_type == {"str": 20}  # sent at 0.5, 1.0, ..., 10.0
    assert len(b.received) == 19  # the last is still on the wire at 10.0
