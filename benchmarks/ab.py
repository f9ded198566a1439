"""ab — a paired A/B of two fero source trees, one request in flight.

    git worktree add ../fero-base REV
    python -m benchmarks.ab --base ../fero-base [--acks all] [--rounds 20] [--burst 500]

Starts a 3-node cluster from each tree (--base, and the tree this runs from), both at
once, and sends `Client.add(name, 1, acks=...)` to each counter's owner in bursts that
alternate between the two clusters. The development machine's speed drifts by ±20%
from one minute to the next, so back-to-back runs of the latency benchmark compare the
host as much as the code; here both trees see the same minutes. Prints, for each,
p50/p90/p99 of all its round trips and its nodes' CPU per request (the median over its
bursts), and the ratios. Results: benchmarks/results/ab-ACKS.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common

TREES = ("base", "new")


async def _alternate(clusters: dict[str, common.Nodes], acks: str, rounds: int, burst: int, budget_s: float,
                     bar: common.Progress) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    import fero

    rtt: dict[str, list[float]] = {t: [] for t in clusters}
    cpu: dict[str, list[float]] = {t: [] for t in clusters}
    targets = {}
    async with contextlib.AsyncExitStack() as stack:
        for tree, nodes in clusters.items():
            key = f"ab-{tree}-{time.time_ns()}"
            c = await stack.enter_async_context(fero.connect(nodes.owner_address(key), timeout_s=10.0))
            for _ in range(300):  # warm: channels, caches, the owner's first frames
                await c.add(key, 1, acks=acks)
            targets[tree] = (c, key, [n.pid for n in nodes.nodes])
        pc = time.perf_counter_ns
        deadline = time.monotonic() + budget_s
        for r in range(rounds):
            if time.monotonic() > deadline:
                common.note(f"--budget {budget_s:g} s reached after {r} rounds of {rounds}")
                break
            for tree in (TREES if r % 2 == 0 else TREES[::-1]):
                c, key, pids = targets[tree]
                cpu0 = sum(map(common.process_cpu_s, pids))
                for _ in range(burst):
                    t0 = pc()
                    await c.add(key, 1, acks=acks)
                    rtt[tree].append((pc() - t0) / 1e6)
                cpu[tree].append((sum(map(common.process_cpu_s, pids)) - cpu0) / burst * 1e6)
            bar.update((r + 1) * 2 * burst)
        bar.done(sum(map(len, rtt.values())))
    return rtt, cpu


def run(args: argparse.Namespace) -> dict[str, Any]:
    sources = {"base": Path(args.base).resolve(), "new": common.ROOT.parent}
    for tree, src in sources.items():
        if not (src / "fero" / "node.py").exists():
            raise SystemExit(f"--{tree}: {src} is not a fero source tree")
    clusters: dict[str, common.Nodes] = {}
    try:
        for tree, src in sources.items():
            clusters[tree] = common.Nodes(args.nodes, fsync=args.fsync, label=f"ab-{tree}", source=src).__enter__()
        rtt, cpu = asyncio.run(_alternate(clusters, args.acks, args.rounds, args.burst, args.budget,
                                          common.Progress(f"ab acks={args.acks}", args.rounds * 2 * args.burst, "req")))
    finally:
        for nodes in clusters.values():
            nodes.__exit__()
    return {"sources": {t: str(s) for t, s in sources.items()},
            "latency_ms": {t: common.percentiles(rtt[t]) for t in TREES},
            "nodes_cpu_us_per_request": {t: common.median(cpu[t]) for t in TREES},
            "bursts_per_tree": len(cpu["base"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the other fero source tree (e.g. a git worktree)")
    ap.add_argument("--acks", choices=("leader", "all"), default="all")
    ap.add_argument("--rounds", type=int, default=20, help="bursts per tree, alternating")
    ap.add_argument("--burst", type=int, default=500, help="requests per burst")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds; no new round starts after that")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--fsync", default="interval")
    args = ap.parse_args(argv)
    meta = common.header("ab")
    res = run(args)
    lat, cpu = res["latency_ms"], res["nodes_cpu_us_per_request"]
    rows = [[t, res["sources"][t]] + [f"{lat[t][k]:.3f}" for k in ("p50", "p90", "p99")] + [f"{cpu[t]:.0f}"]
            for t in TREES]
    rows.append(["new/base", ""] + [f"{lat['new'][k] / lat['base'][k]:.3f}" for k in ("p50", "p90", "p99")]
                + [f"{cpu['new'] / cpu['base']:.3f}"])
    print(f"\nacks={args.acks}, {res['bursts_per_tree']} alternating bursts of {args.burst} per tree, 1 in flight")
    common.print_table(["tree", "source", "p50 ms", "p90 ms", "p99 ms", "nodes CPU µs/req"], rows)
    common.write_json(f"ab-{args.acks}", {**meta, "args": vars(args), "results": res})
    return 0


if __name__ == "__main__":
    sys.exit(common.cli(main))
