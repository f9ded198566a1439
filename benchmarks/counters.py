"""counters — the headline workload: random increments of 10,000 counters.

    python -m benchmarks.counters --clients 2 --nodes 3 --repeat 3

--clients client processes, each through fero's producer (`Client.producer().add(name,
amount)`: columnar batches of --batch increments per partition, up to
--request-records per gRPC message, --in-flight messages in flight), add random amounts 1..10 to random counters out of --counters
(10,000), for acks LEADER and ALL, against --nodes fero nodes (3; RF=3 by config) with
fsync `interval`. Reported per level: increments/s (median of --repeat runs) and the
round-trip percentiles of the gRPC messages (an increment is acknowledged with its
batch; it may wait up to --linger-ms in the producer before it is sent).
At the end every counter is read back and must equal the sum of the acknowledged
increments the clients sent: the exactness check.

If the cluster cannot serve (a write sent to a non-owner is refused, e.g. UNAVAILABLE
"not owner" while forwarding is not built) it falls back to one node; if acks=ALL
records do not reach the replicas (replication not built) the ALL rows say "not
replicated". Both are printed and recorded under "topology" in the JSON.
Results: benchmarks/results/counters.json and counters.png.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import queue
import random
import sys
import time
from typing import Any

from benchmarks import common

LEVELS = ("leader", "all")


# -- one client process ---------------------------------------------------------------


def _client_process(idx: int, spec: dict[str, Any], ready: Any, start: Any, progress: Any, out: Any) -> None:
    try:
        out.put(asyncio.run(_client(idx, spec, ready, start, progress)))
    except BaseException as exc:
        out.put({"client": idx, "error": f"{type(exc).__name__}: {exc}"})


async def _client(idx: int, spec: dict[str, Any], ready: Any, start: Any, progress: Any) -> dict[str, Any]:
    import fero
    from fero.v1 import cluster_pb2

    names = [f"{spec['prefix']}{i}" for i in range(spec["counters"])]
    index = {n: i for i, n in enumerate(names)}
    acknowledged: list[tuple[Any, Any]] = []

    def on_result(batch: Any, result: Any) -> None:
        acknowledged.append((batch, result))  # summed after the clock stops

    rng = random.Random(spec["seed"] * 1000 + idx)
    # The workload is drawn before the clock starts: what is timed is fero, not random.
    todo = list(zip(rng.choices(names, k=spec["count"]), rng.choices(range(1, 11), k=spec["count"])))
    async with fero.connect(spec["addresses"], timeout_s=60.0, retry_for_s=10.0) as c:
        await c.status()
        await c.refresh_ring()
        p = c.producer(spec["acks"], batch_size=spec["batch"], max_in_flight=spec["in_flight"],
                       request_records=spec["request_records"], linger_ms=spec["linger_ms"], on_result=on_result)
        for addr in spec["addresses"]:  # every channel up before the clock starts
            await c._conn(addr).cluster.Status(cluster_pb2.StatusRequest())
        ready.put(idx)
        start.wait()
        t0 = time.perf_counter()
        deadline = t0 + spec["budget"]
        n = 0
        budget_hit = False
        add = p.add
        for name, amount in todo:
            await add(name, amount)
            n += 1
            if n % 2000 == 0:
                progress.value = p.acked
                if time.perf_counter() > deadline:
                    budget_hit = True
                    break
        await p.flush()
        t_end = time.perf_counter()
        progress.value = p.acked
        await p.close()
    sums = [0] * len(names)
    for batch, result in acknowledged:
        failed = {e.index for e in result.errors}
        for k, (name, amount) in enumerate(zip(batch.keys, batch.amounts)):
            if k not in failed:
                sums[index[name]] += amount
    return {"client": idx, "submitted": n, "acked": p.acked, "failed": p.failed, "first_error": p.first_error,
            "total_s": t_end - t0, "budget_hit": budget_hit, "batch_ms": [s * 1000 for s in p.request_seconds],
            "sums": sums}


def run_clients(spec: dict[str, Any], clients: int, label: str) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    ready, out, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    progress = [ctx.Value("q", 0, lock=False) for _ in range(clients)]
    per = [spec["count"] // clients + (1 if i < spec["count"] % clients else 0) for i in range(clients)]
    procs = []
    try:
        for i in range(clients):
            pr = ctx.Process(target=_client_process, args=(i, {**spec, "count": per[i]}, ready, start, progress[i], out),
                             daemon=True)
            pr.start()
            procs.append(pr)
        results: list[dict[str, Any]] = []
        for _ in range(clients):
            try:
                ready.get(timeout=60)
            except queue.Empty:
                raise RuntimeError("a client process did not connect in 60 s") from None
        start.set()
        bar = common.Progress(label, spec["count"], "incr")
        deadline = time.monotonic() + spec["budget"] * 3 + 60
        while len(results) < clients and time.monotonic() < deadline:
            try:
                results.append(out.get(timeout=0.2))
            except queue.Empty:
                pass
            bar.update(sum(v.value for v in progress))
        bar.done(sum(v.value for v in progress))
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise RuntimeError("client failed: " + errors[0])
        if len(results) < clients:
            raise RuntimeError(f"{clients - len(results)} client(s) did not finish")
        return results
    finally:
        for pr in procs:
            if pr.is_alive():
                pr.terminate()
            pr.join(5)


async def read_counters(addresses: list[str], names: list[str], concurrency: int = 200) -> list[int]:
    import fero

    out = [0] * len(names)
    async with fero.connect(addresses, timeout_s=30.0) as c:
        for lo in range(0, len(names), concurrency):
            vals = await asyncio.gather(*(c.get(n) for n in names[lo:lo + concurrency]))
            for k, v in enumerate(vals):
                out[lo + k] = int(v.value)
    return out


# -- the workload, reusable by compare ------------------------------------------------


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--counters", type=int, default=10_000)
    ap.add_argument("--increments", type=int, default=1_000_000, help="per level per run (all clients)")
    ap.add_argument("--batch", type=int, default=1000, help="increments per batch (one partition; fero.producer)")
    ap.add_argument("--request-records", type=int, default=8000, help="increments per gRPC message at most")
    ap.add_argument("--linger-ms", type=float, default=20.0, help="a partly filled batch waits this long at most")
    ap.add_argument("--in-flight", type=int, default=8, help="requests in flight per client")
    ap.add_argument("--budget", type=float, default=10.0, help="seconds per level per run at most")
    ap.add_argument("--repeat", type=int, default=3, help="runs; medians are reported")
    ap.add_argument("--fsync", choices=("always", "interval", "never"), default="interval")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Starts the nodes, runs every level --repeat times, checks exactness, stops them."""
    topology: dict[str, Any] = {"requested_nodes": args.nodes, "replication_factor": 3}
    per_level: dict[str, list[dict[str, Any]]] = {lv: [] for lv in LEVELS}
    expected: dict[str, list[int]] = {}
    nodes = common.Nodes(args.nodes, fsync=args.fsync, label="counters")
    try:
        nodes.__enter__()
        ok, why = asyncio.run(common.probe_forwarding(nodes.nodes))
        topology.update(cluster_serves=ok, probe=why)
        if not ok:
            common.note(f"the {args.nodes}-node cluster cannot serve: {why}")
            common.note("FALLBACK: measuring against a single node; acks=ALL on one node = LEADER")
            nodes.__exit__()
            nodes = common.Nodes(1, fsync=args.fsync, label="counters").__enter__()
        if ok and len(nodes.nodes) > 1:
            rep, rwhy = asyncio.run(common.probe_replication(nodes.nodes))
        else:
            rep, rwhy = False, "single node: acks=ALL = LEADER (the owner is the whole in-sync set)"
        if not rep:
            common.note(f"acks=ALL is NOT replicated here: {rwhy}")
        topology.update(mode="cluster" if ok else "single-node fallback", measured_nodes=len(nodes.nodes),
                        acks_all_replicates=rep, replication_probe=rwhy)
        # warm-up (not measured): connections, code paths, the first counters
        run_clients({"acks": "leader", "prefix": "warmup-", "counters": args.counters, "count": min(50_000, args.increments),
                     "batch": args.batch, "in_flight": args.in_flight,
                     "request_records": args.request_records, "linger_ms": args.linger_ms, "budget": 5.0, "addresses": nodes.addresses,
                     "seed": 99}, args.clients, "warm-up (not measured)")
        for r in range(args.repeat):
            # alternate the order, so neither level always runs on a fresher node
            for acks in (LEVELS if r % 2 == 0 else tuple(reversed(LEVELS))):
                prefix = f"ctr-{r}-{acks}-"
                spec = {"acks": acks, "prefix": prefix, "counters": args.counters, "count": args.increments,
                        "batch": args.batch, "in_flight": args.in_flight,
                     "request_records": args.request_records, "linger_ms": args.linger_ms, "budget": args.budget,
                        "addresses": nodes.addresses, "seed": r}
                res = run_clients(spec, args.clients, f"run {r + 1} acks={acks}")
                sums = [sum(x) for x in zip(*(c["sums"] for c in res))]
                expected[prefix] = sums
                acked = sum(c["acked"] for c in res)
                secs = max(c["total_s"] for c in res)
                lat = common.percentiles([m for c in res for m in c["batch_ms"]])
                row = {"run": r, "acks": acks, "increments": acked, "failed": sum(c["failed"] for c in res),
                       "first_error": next((c["first_error"] for c in res if c["first_error"]), ""),
                       "seconds": secs, "increments_per_s": acked / secs if secs else 0.0,
                       "budget_hit": any(c["budget_hit"] for c in res), "batch_ms": lat}
                per_level[acks].append(row)
                print(f"   run {r + 1} acks={acks:6}: {common.fmt_rate(row['increments_per_s']):>7} incr/s  "
                      f"({acked:,} in {secs:.1f} s; batch p50 {lat.get('p50', 0):.1f} ms p99 {lat.get('p99', 0):.1f} ms)"
                      + (f"  {row['failed']} failed: {row['first_error']}" if row["failed"] else ""), flush=True)
        # exactness: every counter equals the sum of the acknowledged increments sent to it
        t0 = time.perf_counter()
        mismatches = 0
        checked = 0
        first_bad = ""
        for prefix, sums in expected.items():
            names = [f"{prefix}{i}" for i in range(args.counters)]
            got = asyncio.run(read_counters(nodes.addresses, names))
            for n, g, e in zip(names, got, sums):
                checked += 1
                if g != e:
                    mismatches += 1
                    first_bad = first_bad or f"{n}: read {g}, sent {e}"
        exact = {"counters_checked": checked, "mismatches": mismatches, "ok": mismatches == 0,
                 "increments_total": sum(sum(s) for s in expected.values()), "first_mismatch": first_bad,
                 "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        nodes.__exit__()
    summary = {}
    for acks, rows in per_level.items():
        if not rows:
            continue
        keys = [k for k in rows[0]["batch_ms"] if k != "count"]
        summary[acks] = {
            "increments_per_s": common.median([x["increments_per_s"] for x in rows]),
            "batch_ms": {k: common.median([x["batch_ms"][k] for x in rows]) for k in keys},
            "replicated": bool(topology["acks_all_replicates"]) if acks == "all" else None,
        }
    return {"topology": topology, "runs": per_level, "median": summary, "exactness": exact}


BAR_ALL = 500_000


def bar_checks(res: dict[str, Any]) -> dict[str, bool | None]:
    """The issue's bar for this workload: acks=ALL at RF 3 (median of runs) at least
    500k increments/s; None when acks=ALL did not replicate (then it is not that)."""
    m = res["median"].get("all")
    if m is None:
        return {}
    return {"fero_all_ge_500k": m["increments_per_s"] >= BAR_ALL if m["replicated"] else None}


def print_bar_checks(checks: dict[str, bool | None]) -> None:
    print("   bar: " + ", ".join(f"{k} {'n/a (acks=ALL not replicated)' if v is None else 'PASS' if v else 'FAIL'}"
                            for k, v in checks.items()))


def print_report(res: dict[str, Any]) -> str:
    topo = res["topology"]
    print(f"\n   topology: {topo['mode']} ({topo['measured_nodes']} node(s) measured); probe: {topo['probe']}")
    print(f"   acks=ALL replicates: {topo['acks_all_replicates']} ({topo['replication_probe']})")
    rows = []
    for acks, m in res["median"].items():
        label = f"fero acks={acks.upper()}" + (" (not replicated)" if acks == "all" and not m["replicated"] else "")
        rows.append([label, f"{m['increments_per_s']:,.0f}"] + [f"{m['batch_ms'].get(k, 0):.1f}" for k in ("p50", "p90", "p99", "p99.9")])
    table = common.print_table(["median of runs", "incr/s", "batch p50 ms", "p90", "p99", "p99.9"], rows)
    e = res["exactness"]
    print(f"   exactness: {e['counters_checked']:,} counters read back, {e['mismatches']} differ from the sum sent "
          f"({e['increments_total']:,} total) -> {'EXACT' if e['ok'] else 'NOT EXACT: ' + e['first_mismatch']}")
    return table


def plot(res: dict[str, Any], meta: dict[str, Any], args: argparse.Namespace, name: str) -> None:
    topo = res["topology"]
    sub = (f"{meta['machine']['cores']} cores, {args.clients} clients, batch {args.batch}x{args.in_flight} in flight, "
           f"fsync {args.fsync}, {topo['mode']} ({topo['measured_nodes']} node(s))")
    med = res["median"]
    labels = [f"acks={a.upper()}" + ("\n(not replicated)" if a == "all" and not m["replicated"] else "") for a, m in med.items()]
    common.plot_bars(common.RESULTS / f"{name}.png", f"fero counters: increments/s, {args.counters:,} counters",
                     labels, {"fero": [m["increments_per_s"] for m in med.values()]}, "increments/s", subtitle=sub,
                     hline=(BAR_ALL, "bar 500k/s (RF=3, acks=ALL)"))
    common.plot_percentiles(common.RESULTS / f"{name}-latency.png", "fero counters: batch round trip percentiles",
                            {f"acks={a.upper()}" + (" (not replicated: = LEADER)" if a == "all" and not m["replicated"] else ""): m["batch_ms"]
                             for a, m in med.items()}, subtitle=sub)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.counters", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    ap.add_argument("--out", default="counters")
    args = ap.parse_args(argv)
    common.install_signal_handlers()
    meta = common.header("counters")
    common.note(f"{args.clients} clients, {args.counters:,} counters, {args.increments:,} increments per level per run "
                f"(at most {args.budget:g} s), batch {args.batch}, {args.in_flight} in flight, fsync {args.fsync}, "
                f"{args.repeat} runs")
    res = run(args)
    table = print_report(res)
    checks = bar_checks(res)
    print_bar_checks(checks)
    common.write_json(args.out, {**meta, "params": vars(args), **res, "table": table, "bar_checks": checks})
    plot(res, meta, args, args.out)
    return 0 if res["exactness"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(common.cli(main))
