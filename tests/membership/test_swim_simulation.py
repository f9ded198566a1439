"""Whole-cluster behaviour of `Swim` on the seeded simulated network, 200 members.

Bounds asserted here, all from the config (lan preset, N = 200):

- Detection of a crashed member by every live member within
  10 probe intervals (for some member to probe the victim: P(miss) ~ e^-10 since N
  members each probe one of N per interval) + 1 probe interval (direct and indirect
  attempts) + the max suspicion timeout (no confirmation at all: 6 * 9.204 s)
  + retransmit limit * gossip interval (12 * 0.2 s, time for the Dead to spread)
  = 10 + 1 + 55.22 + 2.4 = 68.6 s. And never before the min suspicion timeout
  (9.204 s): confirmations cannot shorten it further.
- A healed 2-way split converges within 4 rejoin intervals (heal attempts are
  3 per interval cluster-wide; P(no attempt on a side in one interval) ~ e^-3).
- The same detection bound at 1,000 members (86.2 s), about 8 s of CPU.
- Under 5 % loss, and with one member processing everything 1.5 s late (Lifeguard),
  no healthy member is ever declared dead.
- 5 members (local preset, suspicion_mult 5): one paused until it is suspected, 2 s
  more, then resumed, is declared dead in at most 4 of 200 seeds (none of 1,000 now).

Figures are printed (`pytest -s`); `benchmarks/membership_sim.py` measures the same
at 1,000 members. Runs are deterministic; FERO_SIM_SEED=<int> shifts every seed to
explore other runs.
"""

from __future__ import annotations

import os

import pytest

from fero.membership import EventKind, MembershipConfig
from fero.membership.broadcast import retransmit_limit
from fero.membership.suspicion import suspicion_timeout_s
from fero.testing.simnet import NetworkFaults, SwimCluster

N = 200
LAN = MembershipConfig.lan()
SEED = int(os.environ.get("FERO_SIM_SEED", "0"))


def detection_bound_s(config: MembershipConfig, n: int) -> float:
    first_probe = 10 * config.probe_interval_s
    attempt = config.probe_interval_s
    min_s = suspicion_timeout_s(config.suspicion_mult, n, config.probe_interval_s)
    suspicion = config.suspicion_max_timeout_mult * min_s
    spread = retransmit_limit(config.retransmit_mult, n) * config.gossip_interval_s
    return first_probe + attempt + suspicion + spread


def dead_events(cluster: SwimCluster) -> dict[str, list[tuple[str, float]]]:
    """Per observer address: (member id, time) of every DEAD it declared or learned."""
    found: dict[str, list[tuple[str, float]]] = {}
    for address, swim in cluster.swims.items():
        for event in swim.drain_events():
            if event.kind is EventKind.DEAD:
                found.setdefault(address, []).append((event.member.id, event.member.state_change_s))
    return found


@pytest.mark.parametrize("seed", [1, 2])
def test_crashed_member_is_declared_dead_everywhere_within_bound(seed: int) -> None:
    cluster = SwimCluster(N, LAN, seed=SEED + seed)
    cluster.bootstrap()
    cluster.net.run_for(10)
    victim = 17
    cluster.net.kill(cluster.address(victim))
    killed_at = cluster.net.now
    bound = detection_bound_s(LAN, N)
    dead_seen: dict[str, float] = {}

    def everyone_knows() -> bool:
        for address, times in dead_events(cluster).items():
            for node_id, at in times:
                assert node_id == cluster.node_id(victim), f"false positive: {node_id} seen dead by {address}"
                dead_seen.setdefault(address, at)
        return len(dead_seen) == N - 1

    assert cluster.net.run_until_true(everyone_knows, timeout_s=bound + 5, check_every_s=0.5)
    first = min(dead_seen.values()) - killed_at
    last = max(dead_seen.values()) - killed_at
    min_suspicion = suspicion_timeout_s(LAN.suspicion_mult, N, LAN.probe_interval_s)
    print(f"\ndetection N={N} seed={SEED + seed}: first {first:.2f} s, everyone {last:.2f} s, bound {bound:.2f} s")
    assert min_suspicion <= first
    assert last <= bound


@pytest.mark.parametrize("seed", [3, 4])
def test_two_way_split_heals_without_help(seed: int) -> None:
    cluster = SwimCluster(N, LAN, seed=SEED + seed)
    cluster.bootstrap()
    cluster.net.run_for(5)
    side_a = [cluster.address(i) for i in range(N // 2)]
    side_b = [cluster.address(i) for i in range(N // 2, N)]
    cluster.net.partition(side_a, side_b)
    # Long enough for each side to declare the other dead and reap the tombstones,
    # so only partition healing (not gossip to the dead) can join them again.
    cluster.net.run_for(detection_bound_s(LAN, N) + LAN.tombstone_reap_s + 30)
    for swim in cluster.swims.values():
        stats = swim.statistics()
        assert stats.alive == N // 2 and not stats.coherent
    cluster.net.heal()
    healed_at = cluster.net.now
    bound = 4 * LAN.rejoin_interval_s
    assert cluster.net.run_until_true(cluster.converged, timeout_s=bound, check_every_s=0.5)
    took = cluster.net.now - healed_at
    print(f"\nheal N={N} seed={SEED + seed}: converged {took:.1f} s after the heal (bound {bound:.0f} s)")
    assert all(swim.is_coherent_locally() for swim in cluster.swims.values())
    ids = sorted(cluster.node_id(i) for i in range(N))
    assert all(swim.alive_ids() == ids for swim in cluster.swims.values())


def test_five_percent_loss_causes_no_false_positives() -> None:
    cluster = SwimCluster(N, LAN, seed=SEED + 5, faults=NetworkFaults(drop=0.05, duplicate=0.01, max_delay_s=0.02))
    cluster.bootstrap()
    cluster.net.run_for(300)
    assert dead_events(cluster) == {}
    refutations = sum(swim.statistics().refutations for swim in cluster.swims.values())
    failures = sum(swim.statistics().probe_failures for swim in cluster.swims.values())
    print(f"\nloss 5%: {failures} failed probes, {refutations} refutations, 0 declared dead in 300 s")
    # The run must have stressed the detector, or this test proves nothing.
    assert failures > 0 and refutations > 0
    # Suspicions keep arising under loss; each must be refuted, so a moment with none
    # in flight comes quickly (a snapshot at an arbitrary instant may catch one).
    assert cluster.net.run_until_true(cluster.converged, timeout_s=30, check_every_s=0.5)
    assert dead_events(cluster) == {}


def run_with_slow_member(config: MembershipConfig) -> tuple[set[str], int, int]:
    """100 s with member 42 processing every message 1.5 s late (longer than a probe
    interval, so its own probes all time out). Returns (ids anyone declared dead,
    the slow member's failed probes, its highest health score)."""
    cluster = SwimCluster(N, config, seed=SEED + 6)
    cluster.bootstrap()
    slow = cluster.address(42)
    cluster.net.set_slow(slow, 1.5)
    max_score = 0
    for _ in range(20):
        cluster.net.run_for(5)
        max_score = max(max_score, cluster.swims[slow].health_score)
    killed = {node for events in dead_events(cluster).values() for node, _ in events}
    return killed, cluster.swims[slow].statistics().probe_failures, max_score


def test_slow_member_does_not_kill_healthy_ones_and_lifeguard_quiets_it() -> None:
    killed, failures, max_score = run_with_slow_member(LAN)
    killed_off, failures_off, max_score_off = run_with_slow_member(LAN.with_(awareness_max_multiplier=1))
    print(
        f"\nslow member: failed probes (= accusations) {failures} with Lifeguard, {failures_off} without; "
        f"max health score {max_score}; declared dead: {sorted(killed | killed_off) or 'none'}"
    )
    assert killed <= {"node-42"} and killed_off <= {"node-42"}
    assert max_score == LAN.awareness_max_multiplier - 1 and max_score_off == 0
    # Backing off is the point of Lifeguard: far fewer false accusations.
    assert failures * 10 < failures_off


def test_thousand_members_detect_a_crash_within_bound() -> None:
    n = 1000
    cluster = SwimCluster(n, LAN, seed=SEED + 7)
    cluster.bootstrap()
    cluster.net.run_for(5)
    cluster.net.kill(cluster.address(500))
    killed_at = cluster.net.now
    bound = detection_bound_s(LAN, n)
    seen: dict[str, float] = {}

    def everyone_knows() -> bool:
        for address, times in dead_events(cluster).items():
            for node_id, at in times:
                assert node_id == "node-500", f"false positive: {node_id} seen dead by {address}"
                seen.setdefault(address, at)
        return len(seen) == n - 1

    assert cluster.net.run_until_true(everyone_knows, timeout_s=bound + 5, check_every_s=0.5)
    last = max(seen.values()) - killed_at
    print(f"\ndetection N={n}: everyone {last:.2f} s, bound {bound:.2f} s")
    assert last <= bound


def test_paused_member_hears_of_its_suspicion_and_refutes_in_time() -> None:
    """SIGSTOP and SIGCONT on the simulated network, as the process test does with 5
    real nodes, over 200 seeds. Messages to a stopped node are lost once their
    deadline (the transport's 1 s) passes, as gRPC drops them, so the gossip that
    spread the suspicion may never reach it. The probes' buddy Suspect, and the Alive
    that a stale accusation sets off, must get its refutation to every suspector
    before their timers (5 s at least) run out.

    Resumed 2 s after some member is seen suspecting it, the member was declared dead
    in 91 of 1,000 seeds before the buddy system; in 3 of 1,000 with it, when the
    refutation's 2 retransmits (local preset, N = 5) all missed the first accuser;
    and in none since a member's own Alive is no longer spent on it. The bound, 4 of
    200, fails the first with a wide margin and leaves room for other seeds.
    """
    config = MembershipConfig.local().with_(suspicion_mult=5)
    victim, seeds = 1, range(SEED + 100, SEED + 300)
    cleared_after: list[float] = []
    declared_dead: list[int] = []
    for seed in seeds:
        cluster = SwimCluster(5, config, seed=seed)
        cluster.bootstrap()
        cluster.net.run_for(5)
        address, node_id = cluster.address(victim), cluster.node_id(victim)
        others = [swim for a, swim in cluster.swims.items() if a != address]
        cluster.net.pause(address, deadline_s=1.0)
        assert cluster.net.run_until_true(
            lambda: any(s.member(node_id).status == "suspect" for s in others), timeout_s=30, check_every_s=0.05
        )
        cluster.net.run_for(2.0)
        cluster.net.resume(address)
        resumed_at = cluster.net.now

        def settled() -> bool:
            statuses = {s.member(node_id).status for s in others}
            return statuses == {"alive"} or "dead" in statuses

        assert cluster.net.run_until_true(settled, timeout_s=60, check_every_s=0.01)
        if dead_events(cluster):
            declared_dead.append(seed)
        else:
            cleared_after.append(cluster.net.now - resumed_at)
    cleared_after.sort()
    print(f"\npaused member, {len(seeds)} seeds: declared dead in {len(declared_dead)} {declared_dead}; "
          f"otherwise cleared everywhere after resume in median {cleared_after[len(cleared_after) // 2]:.2f} s, "
          f"max {cleared_after[-1]:.2f} s")
    assert len(declared_dead) <= 4


def test_the_kept_alive_set_and_coherence_are_what_a_scan_gives_at_every_moment() -> None:
    """alive_set() and whether the members' rings agree are kept between changes (a
    node asks on every write, and says on every reply whether it is coherent).
    Through suspicions, a crash and its death and reap, and a split and its heal,
    they must equal what a scan of the members gives at every check, on every node.
    Each node's ring checksum follows its view, as a node's ring does."""
    config = MembershipConfig.local()
    cluster = SwimCluster(6, config, seed=SEED + 7)
    cluster.bootstrap()
    checks: list[int] = []
    wrong: list[tuple[float, str]] = []

    def check() -> bool:
        for address, swim in cluster.swims.items():
            if not cluster.net.is_alive(address):
                continue
            scan = frozenset(m.id for m in swim.members() if m.status in ("alive", "suspect"))
            if swim.alive_set() != scan:
                wrong.append((cluster.net.now, address))
            kept = swim.is_coherent_locally()
            swim._rings_agree = None  # the same question, answered by a scan
            if kept != swim.is_coherent_locally():
                wrong.append((cluster.net.now, f"{address} coherent"))
            swim.set_ring_checksum(hash(scan) & 0xFFFF_FFFF)
        checks.append(1)
        return False

    def watch(seconds: float) -> None:
        cluster.net.run_until_true(check, timeout_s=seconds, check_every_s=0.05)

    watch(5)
    cluster.net.kill(cluster.address(5))  # suspected, declared dead, reaped
    watch(config.tombstone_reap_s + 60)
    cluster.net.partition([cluster.address(i) for i in range(2)], [cluster.address(i) for i in range(2, 5)])
    watch(60)
    cluster.net.heal()
    watch(60)
    assert not wrong, wrong[:5]
    statuses = {s.member(cluster.node_id(5)) for a, s in cluster.swims.items() if a != cluster.address(5)}
    assert statuses == {None}, "the crashed member was reaped everywhere (the test went through it)"
    assert all(s.alive_set() == frozenset(cluster.node_id(i) for i in range(5))
               for a, s in cluster.swims.items() if a != cluster.address(5))
    assert len(checks) > 1000
