"""Membership at scale, in virtual time: detection, split heal, message rates.

    python benchmarks/membership_sim.py                 # 200 and 1,000 members, lan
    python benchmarks/membership_sim.py --sizes 200 --preset local --seed 3

For each cluster size N, on the seeded simulated network (1-5 ms delay, no loss):

1. steady state: an already-converged cluster runs 30 s; messages/member/s.
2. detection: one member is killed; time until every live member declared it dead,
   against the bound tests/membership/test_swim_simulation.py states.
3. split: the cluster splits in two halves for `--split-s` (default 130 s: long
   enough for each side to declare the other dead and reap the tombstones), then
   heals; time until every member sees all N alive and nothing suspect, and the
   messages/member/s during that convergence.

All times are virtual seconds; CPU is the real cost of simulating them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fero.membership import EventKind, MembershipConfig
from fero.membership.broadcast import retransmit_limit
from fero.membership.suspicion import suspicion_timeout_s
from fero.testing.simnet import SwimCluster


def detection_bound_s(config: MembershipConfig, n: int) -> float:
    """Same formula as the simulation test: first probe (10 intervals) + one probe +
    max suspicion timeout + retransmit limit * gossip interval."""
    min_s = suspicion_timeout_s(config.suspicion_mult, n, config.probe_interval_s)
    return (
        11 * config.probe_interval_s
        + config.suspicion_max_timeout_mult * min_s
        + retransmit_limit(config.retransmit_mult, n) * config.gossip_interval_s
    )


def measure(n: int, config: MembershipConfig, seed: int, split_s: float) -> dict[str, float]:
    cpu = time.process_time()
    cluster = SwimCluster(n, config, seed=seed)
    net = cluster.net
    cluster.bootstrap()
    net.run_for(5)
    sent = net.statistics().sent
    net.run_for(30)
    steady_rate = (net.statistics().sent - sent) / n / 30

    victim = cluster.address(n // 3)
    net.kill(victim)
    killed_at = net.now
    victim_id = cluster.node_id(n // 3)
    seen: set[str] = set()
    last_seen = 0.0

    def all_declared() -> bool:
        nonlocal last_seen
        for address, swim in cluster.swims.items():
            for event in swim.drain_events():
                if event.kind is EventKind.DEAD and event.member.id == victim_id:
                    seen.add(address)
                    last_seen = max(last_seen, event.member.state_change_s)
        return len(seen) >= n - 1

    bound = detection_bound_s(config, n)
    detected = net.run_until_true(all_declared, timeout_s=bound * 2, check_every_s=0.5)
    detection = last_seen - killed_at if detected else float("nan")
    cluster.add(n // 3)  # a restart with fresh state: it must refute its own death
    cluster.join(n // 3, [0])
    net.run_until_true(cluster.converged, timeout_s=120, check_every_s=0.5)

    half = n // 2
    net.partition([cluster.address(i) for i in range(half)], [cluster.address(i) for i in range(half, n)])
    net.run_for(split_s)
    net.heal()
    healed_at = net.now
    sent = net.statistics().sent
    converged = net.run_until_true(cluster.converged, timeout_s=600, check_every_s=0.5)
    heal_s = net.now - healed_at if converged else float("nan")
    heal_rate = (net.statistics().sent - sent) / n / max(heal_s, 1e-9)
    return {
        "n": n,
        "steady_msgs": steady_rate,
        "detect_s": detection,
        "detect_bound_s": bound,
        "heal_s": heal_s,
        "heal_msgs": heal_rate,
        "cpu_s": time.process_time() - cpu,
        "virtual_s": net.now,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000")
    parser.add_argument("--preset", choices=("lan", "local"), default="lan")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--split-s", type=float, default=130.0)
    args = parser.parse_args()
    config = MembershipConfig.lan() if args.preset == "lan" else MembershipConfig.local()
    print(f"preset={args.preset} seed={args.seed} split={args.split_s:.0f} s (virtual time)")
    header = (
        "| members | msgs/member/s steady | detection s (bound) | heal converged s "
        "| msgs/member/s while healing | CPU s (virtual s) |"
    )
    print(header)
    print("|" + "---|" * 6)
    for n in (int(x) for x in args.sizes.split(",")):
        r = measure(n, config, args.seed, args.split_s)
        print(
            f"| {n} | {r['steady_msgs']:.2f} | {r['detect_s']:.1f} ({r['detect_bound_s']:.1f}) "
            f"| {r['heal_s']:.1f} | {r['heal_msgs']:.1f} | {r['cpu_s']:.0f} ({r['virtual_s']:.0f}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
