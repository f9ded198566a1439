"""detection — how long a 5-node cluster takes to notice a SIGKILLed member.

    python -m benchmarks.detection --repeat 5

Each run starts a fresh cluster of --nodes (default 5) `fero serve --membership local`
processes (the first is everyone's seed; `--memory` storage, since detection does not
touch the log), waits until every node sees every node alive, coherent, with one ring
checksum, then SIGKILLs one member (n1, n2, ... in turn, never the seed) and polls
Status on every survivor every --poll-ms (default 50) on a kept-open channel. Reported
per run, in seconds from the SIGKILL:

- first_dead_s: the first survivor reports the victim `dead`;
- all_dead_s: every survivor reports it `dead` (the detection time);
- ring_s: every survivor serves the ring without the victim (its own ring_checksum
  equals fero.ring.Ring(survivors).checksum());
- gossip_s: besides, on every survivor every alive peer gossips that checksum (the
  ring part of `coherent`).

`coherent` itself is not timed: by design a member that died (rather than left) keeps
it false for coherence_memory_s (600 s) after its tombstone is reaped, since from inside
a crash looks exactly like a split.

Then median and max over the runs. Messages per member per second are not reported:
the transport counters (PeerTransport.sent) are not exposed through Status.
Results: benchmarks/results/detection.json.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

import grpc

from benchmarks import common
from fero.membership.config import MembershipConfig
from fero.ring import Ring
from fero.v1 import cluster_pb2, cluster_pb2_grpc


def expected_bounds(n: int) -> dict[str, float]:
    """What the local preset predicts (DESIGN.md, Membership): a probe round plus the
    suspicion timeout SuspicionMult * max(1, log10 N) * ProbeInterval, which Lifeguard
    shortens with confirmations down to that minimum and stretches up to
    suspicion_max_timeout_mult times it when nobody confirms."""
    import math

    cfg = MembershipConfig.local()
    min_timeout = cfg.suspicion_mult * max(1.0, math.log10(n)) * cfg.probe_interval_s
    return {
        "probe_interval_s": cfg.probe_interval_s,
        "probe_timeout_s": cfg.probe_timeout_s,
        "suspicion_min_timeout_s": round(min_timeout, 3),
        "suspicion_max_timeout_s": round(min_timeout * cfg.suspicion_max_timeout_mult, 3),
    }


async def _poll(stubs: dict[str, Any], victim: str, expected_checksum: int, survivors: set[str],
                poll_s: float, budget_s: float, killed_at: float) -> dict[str, Any]:
    dead_at: dict[str, float] = {}
    ring_at: float | None = None
    gossip_at: float | None = None
    polls = 0
    while time.monotonic() - killed_at < budget_s:
        tick = time.monotonic()
        replies = await asyncio.gather(
            *(stub.Status(cluster_pb2.StatusRequest(), timeout=2.0) for stub in stubs.values()),
            return_exceptions=True,
        )
        now = time.monotonic() - killed_at
        polls += 1
        ok = {nid: r for nid, r in zip(stubs, replies) if not isinstance(r, BaseException)}
        for nid, r in ok.items():
            m = next((m for m in r.members if m.id == victim), None)
            if nid not in dead_at and (m is None or m.status in ("dead", "left")):
                dead_at[nid] = now
        if ring_at is None and len(ok) == len(stubs) and all(r.ring_checksum == expected_checksum for r in ok.values()):
            ring_at = now
        if gossip_at is None and len(ok) == len(stubs) and all(
            {m.id for m in r.members if m.status == "alive"} == survivors
            and all(m.ring_checksum == expected_checksum for m in r.members if m.status == "alive")
            for r in ok.values()
        ):
            gossip_at = now
        if len(dead_at) == len(stubs) and ring_at is not None and gossip_at is not None:
            break
        await asyncio.sleep(max(0.0, poll_s - (time.monotonic() - tick)))
    return {
        "first_dead_s": min(dead_at.values()) if dead_at else None,
        "all_dead_s": max(dead_at.values()) if len(dead_at) == len(stubs) else None,
        "ring_s": ring_at,
        "gossip_s": gossip_at,
        "dead_by_node_s": {k: round(v, 3) for k, v in sorted(dead_at.items())},
        "polls": polls,
    }


async def _one_run(nodes: Sequence[common.FeroNode], victim: common.FeroNode, poll_s: float,
                   budget_s: float, vnodes: int) -> dict[str, Any]:
    survivors = [n for n in nodes if n is not victim]
    ids = {n.node_id for n in survivors}
    expected = Ring(ids, vnodes=vnodes).checksum()
    channels = {n.node_id: grpc.aio.insecure_channel(n.address) for n in survivors}
    try:
        stubs = {nid: cluster_pb2_grpc.ClusterStub(ch) for nid, ch in channels.items()}
        # Warm the channels so the first poll after the kill is not a connection set-up.
        await asyncio.gather(*(s.Status(cluster_pb2.StatusRequest(), timeout=5.0) for s in stubs.values()))
        assert victim.proc.proc is not None
        victim.proc.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        result = await _poll(stubs, victim.node_id, expected, ids, poll_s, budget_s, killed_at)
        victim.proc.proc.wait(5)
    finally:
        for ch in channels.values():
            await ch.close()
    result["victim"] = victim.node_id
    return result


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.detection", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--repeat", "-R", type=int, default=5, help="runs, each on a fresh cluster (default 5)")
    ap.add_argument("--poll-ms", type=float, default=50.0, help="Status poll period on every survivor (default 50)")
    ap.add_argument("--budget", type=float, default=30.0, help="seconds to wait per run before giving up (default 30)")
    args = ap.parse_args(argv)
    if args.nodes < 3:
        ap.error("--nodes must be at least 3 (a victim and two survivors)")
    common.install_signal_handlers()
    meta = common.header("detection")
    bounds = expected_bounds(args.nodes)
    print(f"   preset  : local, probe every {bounds['probe_interval_s']}s, suspicion timeout "
          f"{bounds['suspicion_min_timeout_s']}-{bounds['suspicion_max_timeout_s']}s for N={args.nodes}", flush=True)

    runs: list[dict[str, Any]] = []
    for k in range(args.repeat):
        with common.Nodes(args.nodes, fsync="never", memory=True, label="detection") as cluster:
            vnodes = asyncio.run(_vnodes(cluster.addresses[0]))
            victim = cluster.nodes[1 + k % (args.nodes - 1)]
            t0 = time.monotonic()
            r = asyncio.run(_one_run(cluster.nodes, victim, args.poll_ms / 1000.0, args.budget, vnodes))
            r["run"] = k + 1
            runs.append(r)
            print(f"   run {k + 1}/{args.repeat}: killed {victim.node_id}, all dead {_fmt(r['all_dead_s'])}s, "
                  f"ring {_fmt(r['ring_s'])}s, gossiped {_fmt(r['gossip_s'])}s "
                  f"({time.monotonic() - t0:.1f}s)", flush=True)

    def col(key: str) -> list[float]:
        return [r[key] for r in runs if r[key] is not None]

    summary: dict[str, Any] = {}
    for key in ("first_dead_s", "all_dead_s", "ring_s", "gossip_s"):
        xs = col(key)
        summary[key] = {
            "median": round(common.median(xs), 3) if xs else None,
            "max": round(max(xs), 3) if xs else None,
            "min": round(min(xs), 3) if xs else None,
            "missing": len(runs) - len(xs),
        }
    print()
    rows = [[r["run"], r["victim"], _fmt(r["first_dead_s"]), _fmt(r["all_dead_s"]), _fmt(r["ring_s"]),
             _fmt(r["gossip_s"])] for r in runs]
    for stat in ("median", "max"):
        rows.append([stat, "", *(_fmt(summary[k][stat]) for k in ("first_dead_s", "all_dead_s", "ring_s", "gossip_s"))])
    table = common.print_table(["run", "victim", "first dead s", "all dead s", "ring agrees s", "ring gossiped s"], rows)
    missing = sum(s["missing"] for s in summary.values())
    if missing:
        common.note(f"{missing} figure(s) not reached within --budget {args.budget}s (shown as '-')")
    common.write_json("detection", {
        **meta,
        "params": {"nodes": args.nodes, "repeat": args.repeat, "poll_ms": args.poll_ms, "budget_s": args.budget,
                   "membership": "local", "storage": "memory"},
        "preset": bounds,
        "runs": runs,
        "summary": summary,
        "messages_per_member_per_s": None,
        "messages_note": "not measured: PeerTransport counters are not exposed through Status",
        "table": table,
    })
    return 0 if not missing else 1


async def _vnodes(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as ch:
        st = await cluster_pb2_grpc.ClusterStub(ch).Status(cluster_pb2.StatusRequest(), timeout=5.0)
    return st.vnodes


if __name__ == "__main__":
    sys.exit(main())
