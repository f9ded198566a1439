"""compare — the counter workload on fero and on Redis, same machine, same invocation.

    python -m benchmarks.compare --repeat 3

1. fero: the `counters` benchmark (same flags: --clients, --nodes 3, --counters 10000,
   acks LEADER and ALL, fsync interval), including its fallback and exactness check.
2. Redis, started and stopped here on loopback (installed with apt-get if missing):
   a single redis-server, and a Redis Cluster of 3 masters + 3 replicas
   (`redis-cli --cluster create --cluster-replicas 1`), each without AOF and with
   `appendonly yes, appendfsync everysec` (RDB snapshots off), measured with
   `redis-benchmark -c 50 -P 16` and `-P 1`, `INCRBY ctr:__rand_int__ 1 -r 10000`
   (10,000 counters; `--cluster` for the cluster).
Prints one table, every row with the ratio fero/redis for fero acks=LEADER and ALL;
the headline is fero acks=ALL against Redis Cluster with AOF, -P 16.
Results: benchmarks/results/compare.json and compare.png.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import time
from typing import Any

from benchmarks import common, counters


def redis_benchmark(server: common.RedisServer, *, pipeline: int, requests: int, cluster: bool,
                    timeout_s: float) -> dict[str, Any]:
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(server.port), "-c", "50", "-P", str(pipeline),
            "-n", str(requests), "-r", "10000", "--csv"]
    if cluster:
        argv.append("--cluster")
    # In cluster mode redis-benchmark routes a custom command by the `{tag}` it fills in
    # per master (a hash tag owned by that master); __rand_int__ still picks 1 of 10,000.
    argv += ["INCRBY", "ctr:{tag}:__rand_int__" if cluster else "ctr:__rand_int__", "1"]
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"redis-benchmark failed: {r.stderr[-500:]} {r.stdout[-500:]}")
    text = r.stdout[r.stdout.find('"test"'):] if '"test"' in r.stdout else r.stdout
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    head = rows[0]
    if head[0] != "test" or len(rows) < 2:
        raise RuntimeError(f"unexpected redis-benchmark output: {r.stdout[:300]}")
    vals = dict(zip(head, rows[-1]))
    return {"ops_per_s": float(vals["rps"]), "p50_ms": float(vals.get("p50_latency_ms", 0)),
            "p99_ms": float(vals.get("p99_latency_ms", 0)), "avg_ms": float(vals.get("avg_latency_ms", 0)),
            "requests": requests, "wall_s": wall, "argv": " ".join(argv)}


def run_redis(args: argparse.Namespace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    setups = [("single", False), ("single", True)]
    if not args.no_redis_cluster:
        setups += [("cluster 3+3", False), ("cluster 3+3", True)]
    for kind, aof in setups:
        label = f"redis {kind}, {'AOF everysec' if aof else 'no AOF'}"
        cluster = kind != "single"
        ctx: Any = common.RedisCluster(aof=aof) if cluster else None
        single = None
        try:
            if cluster:
                ctx.__enter__()
                server = ctx.seed
            else:
                single = common.RedisServer(aof=aof).start()
                server = single
            for pipeline, n in ((16, args.redis_requests_p16), (1, args.redis_requests_p1)):
                runs = []
                for k in range(args.repeat):
                    bar = common.Progress(f"{label} -P {pipeline} run {k + 1}", None, "")
                    bar.update(0, force=True)
                    runs.append(redis_benchmark(server, pipeline=pipeline, requests=n, cluster=cluster,
                                                timeout_s=args.budget * 6 + 60))
                    bar.done(n)
                row = {"system": label, "setup": kind, "aof": aof, "pipeline": pipeline,
                       "ops_per_s": common.median([r["ops_per_s"] for r in runs]),
                       "p50_ms": common.median([r["p50_ms"] for r in runs]),
                       "p99_ms": common.median([r["p99_ms"] for r in runs]), "runs": runs}
                print(f"   {label:32} -c 50 -P {pipeline:2}: {common.fmt_rate(row['ops_per_s']):>7} ops/s  "
                      f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms", flush=True)
                out.append(row)
        finally:
            if cluster:
                ctx.__exit__()
            elif single is not None:
                single.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    counters.add_arguments(ap)
    ap.add_argument("--redis-requests-p16", type=int, default=1_000_000)
    ap.add_argument("--redis-requests-p1", type=int, default=200_000)
    ap.add_argument("--no-redis-cluster", action="store_true")
    ap.add_argument("--out", default="compare")
    args = ap.parse_args(argv)
    common.install_signal_handlers()
    ok, redis_version = common.ensure_redis()
    meta = common.header("compare", {"redis": redis_version if ok else "missing"})
    common.note(f"fero: {args.clients} clients, {args.counters:,} counters, batches of {args.batch} per partition, "
                f"{args.request_records} per message x{args.in_flight} in flight, linger {args.linger_ms} ms, "
                f"fsync {args.fsync}; redis: -c 50, -P 16 ({args.redis_requests_p16:,} req) and -P 1 "
                f"({args.redis_requests_p1:,} req); {args.repeat} runs each, medians")
    fero_res = counters.run(args)
    counters.print_report(fero_res)
    redis_rows: list[dict[str, Any]] = []
    if ok:
        redis_rows = run_redis(args)
    else:
        common.note(f"no Redis comparison: {redis_version}")
    fl = fero_res["median"]["leader"]["increments_per_s"]
    fa = fero_res["median"]["all"]["increments_per_s"]
    replicated = fero_res["topology"]["acks_all_replicates"]
    all_label = "fero acks=ALL" + ("" if replicated else " (NOT replicated)")
    rows = [["fero acks=LEADER", f"{fero_res['topology']['measured_nodes']} node(s)", f"{fl:,.0f}",
             f"{fero_res['median']['leader']['batch_ms'].get('p50', 0):.2f}", f"{fero_res['median']['leader']['batch_ms'].get('p99', 0):.2f}", "", ""],
            [all_label, f"{fero_res['topology']['measured_nodes']} node(s)", f"{fa:,.0f}",
             f"{fero_res['median']['all']['batch_ms'].get('p50', 0):.2f}", f"{fero_res['median']['all']['batch_ms'].get('p99', 0):.2f}", "", ""]]
    for r in redis_rows:
        r["fero_leader_ratio"] = fl / r["ops_per_s"] if r["ops_per_s"] else None
        r["fero_all_ratio"] = fa / r["ops_per_s"] if r["ops_per_s"] else None
        rows.append([f"{r['system']}", f"-c 50 -P {r['pipeline']}", f"{r['ops_per_s']:,.0f}", f"{r['p50_ms']:.2f}",
                     f"{r['p99_ms']:.2f}", f"{r['fero_leader_ratio']:.3f}x", f"{r['fero_all_ratio']:.3f}x"])
    print()
    print("   increments/s; latency: fero = batch round trip, redis = per request (pipelined) from redis-benchmark")
    table = common.print_table(["system", "how", "incr/s", "p50 ms", "p99 ms", "fero LEADER / this", "fero ALL / this"], rows)
    head = next((r for r in redis_rows if r["setup"] != "single" and r["aof"] and r["pipeline"] == 16), None)
    bar = counters.bar_checks(fero_res)
    if head is not None:
        bar["fero_all_ge_1.0x_redis_cluster_aof_p16"] = (fa >= head["ops_per_s"]) if replicated else None
        print(f"   headline: fero acks=ALL / Redis Cluster AOF everysec -P 16 = {head['fero_all_ratio']:.3f}x"
              + ("" if replicated else " (fero acks=ALL NOT replicated yet: not the RF=3 figure)"))
    counters.print_bar_checks(bar)
    print(f"   fero exactness: {'EXACT' if fero_res['exactness']['ok'] else 'NOT EXACT'}")
    data = {**meta, "params": vars(args), "fero": fero_res, "redis": redis_rows, "table": table, "bar_checks": bar}
    common.write_json(args.out, data)
    labels = ["fero LEADER", "fero ALL" + ("" if replicated else "\n(not repl.)")]
    vals = [fl, fa]
    for r in redis_rows:
        setup = "single" if r["setup"] == "single" else "cluster"
        labels.append(f"redis {setup}\n{'AOF' if r['aof'] else 'no AOF'} P{r['pipeline']}")
        vals.append(r["ops_per_s"])
    common.plot_bars(common.RESULTS / f"{args.out}.png", "counter increments/s: fero vs Redis (same machine, same run)",
                     labels, {"increments/s": vals}, "increments/s (log)", log_y=True,
                     subtitle=f"{meta['machine']['cores']} cores; fero {fero_res['topology']['mode']} "
                     f"({fero_res['topology']['measured_nodes']} node(s)), {args.clients} clients; redis-benchmark -c 50",
                     hline=(counters.BAR_ALL, "bar 500k/s"))
    return 0 if fero_res["exactness"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(common.cli(main))
