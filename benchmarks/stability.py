"""stability — does a cluster under full load stay whole?

    python -m benchmarks.stability --runs 4 --size 1000 [--drop-caches]

Runs the speed benchmark's cells (tacks, yacks, sacks; 1 client, 3 nodes, RF 3, 1M
records of --size bytes) --runs times, a fresh cluster each, and meanwhile asks every
node for its Status every 100 ms from this process. It reports, per run:

* the membership events the nodes logged: suspicions of a member, and members declared
  dead. Every node is healthy throughout, so each one is a false alarm, and a death
  moves partitions away and back under full load;
* the Status round trips (p50, p90, max): a slow one is a node whose event loop is held,
  which is what makes its membership probes time out.

`--drop-caches` (root) empties the page cache before each run: fresh memory is slow to
fault in on some VMs, which is when such stalls showed first. Not in `make bench`.
Results: benchmarks/results/stability.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

import grpc

from benchmarks import common, speed

#: Log events that say the membership saw a healthy node as failing.
EVENTS = common.COUNTED


def _poll_status(addresses: list[str], stop: threading.Event, out: list[float]) -> None:
    from fero.v1 import cluster_pb2, cluster_pb2_grpc

    channels = [grpc.insecure_channel(a) for a in addresses]
    stubs = [cluster_pb2_grpc.ClusterStub(ch) for ch in channels]
    try:
        while not stop.is_set():
            for stub in stubs:
                t0 = time.perf_counter()
                try:
                    stub.Status(cluster_pb2.StatusRequest(), timeout=10)
                except grpc.RpcError:
                    pass  # counted by its time: a node that does not answer is as bad
                out.append(time.perf_counter() - t0)
            stop.wait(0.1)
    finally:
        for ch in channels:
            ch.close()


def run_once(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    if args.drop_caches:
        os.system("sync; echo 3 > /proc/sys/vm/drop_caches")
    with common.Nodes(3, fsync="interval", handler="echo" if mode == "sacks" else None, label="stability") as nodes:
        spec = {"mode": mode, "size": args.size, "count": args.records, "batch": 1000, "in_flight": 8,
                "request_records": 8000, "request_bytes": args.request_bytes, "linger_ms": 20.0,
                "budget": args.budget, "addresses": dict(zip(nodes.ids, nodes.addresses)),
                "owners": common.owner_table(nodes.ids)}
        stop, lags = threading.Event(), []
        poller = threading.Thread(target=_poll_status, args=(nodes.addresses, stop, lags), daemon=True)
        poller.start()
        error = ""
        t0 = time.perf_counter()
        try:
            results, _ = speed.run_clients(spec, 1, f"{mode} {args.size}B c3", timeout_s=args.budget * 3 + 60,
                                           server_pids=[n.pid for n in nodes.nodes])
            acked = sum(r["acked"] for r in results)
        except RuntimeError as exc:  # a client gave up (e.g. a partition still catching up)
            error, acked = str(exc), 0
        finally:
            stop.set()
            poller.join(15)
        seconds = time.perf_counter() - t0
        events = {e: sum(n.proc.events.get(e, 0) for n in nodes.nodes) for e in EVENTS}
    return {"mode": mode, "acked": acked, "seconds": seconds, "error": error, "events": events,
            "status_s": common.percentiles(lags, (50, 90))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--size", type=int, default=1000, help="value bytes")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--modes", default="tacks,yacks,sacks")
    ap.add_argument("--request-bytes", type=int, default=1 << 20, help="producer: bytes per gRPC message at most")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per run at most")
    ap.add_argument("--drop-caches", action="store_true", help="empty the page cache before each run (root)")
    ap.add_argument("--out", default="stability", help="results name: benchmarks/results/OUT.json")
    args = ap.parse_args(argv)
    meta = common.header("stability")
    common.install_signal_handlers()
    runs = []
    for i in range(args.runs):
        for mode in args.modes.split(","):
            r = run_once(mode, args)
            runs.append(r)
            s = {k: 0.0 for k in ("p50", "p90", "max")} | r["status_s"]
            print(f"   run {i + 1} {mode}: {r['acked']:,} acked in {r['seconds']:.1f} s; "
                  f"suspicions {r['events']['membership.suspect']}, declared dead {r['events']['membership.dead']}; "
                  f"Status p50/p90/max {s['p50']:.3f}/{s['p90']:.3f}/{s['max']:.3f} s"
                  + (f"; FAILED: {r['error']}" if r["error"] else ""), flush=True)
    whole = sum(1 for r in runs if not r["error"] and not any(r["events"].values()))
    print(f"\n   {whole} of {len(runs)} runs without a false suspicion or a failed client")
    common.write_json(args.out, {**meta, "params": vars(args), "runs": runs, "whole_runs": whole})
    return 0 if all(not r["error"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(common.cli(main))
