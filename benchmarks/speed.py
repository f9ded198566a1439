"""speed — fero's own throughput benchmark (after the original fero's `speed`).

    python -m benchmarks.speed -m 10,100,1000 -r 1000000 -l 1,2 -c 1,3

For every permutation of message size M (-m), clients L (-l) and servers C (-c) it
measures three acknowledgement levels, each against freshly started nodes:

  tacks  acks=NONE    the node answers as soon as it has applied the batch (not durable)
  yacks  acks=LEADER  the owner committed the batch to its log (fsync policy --fsync)
  sacks  acks=REPLY   an embedded fero.Node ran its custom-action handler (echo) on
                      every record and the replies came back

Records are real keyed UPDATEs (for sacks: ACTIONs) of M-byte JSON values, one distinct
key each (so they spread over all partitions), sent through fero's producer
(`Client.producer`: columnar batches of up to --batch records per partition, up to
--request-records and --request-bytes per message on the commit stream, --in-flight
messages in flight).
--api says how a client hands its records to the producer: `single`, one call a
record (`await prod.update(key, value)`), or `bulk`, a call per 2000 records
(`await prod.update_many(keys, values)`, action_many for sacks), the keys made by a
list comprehension; the producer batches them alike either way. --bar-api measures the
cells that have a bar with these APIs too.
Each client is its own process; with several servers each client sends every batch
straight to its partition's owner (the ring every node computes), so nothing is
forwarded. -r is the total per measurement, split over the clients; every measurement
also stops after --budget seconds and reports the records actually acknowledged.
Results: benchmarks/results/speed.json and speed.png.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import queue
import re
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Sequence

from benchmarks import common

MODES = {
    "tacks": ("none", "all sent: acks=NONE, every reply back"),
    "yacks": ("leader", "all acknowledged by the owner: acks=LEADER"),
    "sacks": ("reply", "all handler replies received: acks=REPLY"),
}
#: Not a mode of --modes: the row --floor adds (benchmarks/speed_floor.py), the same
#: records through grpc.aio and protobuf to a sink that parses them and answers.
FLOOR = ("none", "the same records through grpc.aio and protobuf to a sink that only parses them (no fero)")
BAR = {("yacks", 100): 1_000_000, ("sacks", 100): 600_000}
REFERENCE = {("yacks", 100): "original fero 1.0.2: 436k rec/s; fero 1.7: 331k",
             ("sacks", 100): "original fero 1.0.2: 434k rec/s"}


def json_value(size: int) -> bytes:
    """A JSON string of exactly `size` bytes (at least 2: the quotes)."""
    return b'"' + b"x" * max(0, size - 2) + b'"'


# -- one client process ---------------------------------------------------------------


def _client_process(idx: int, spec: dict[str, Any], ready: Any, start: Any, progress: Any, out: Any) -> None:
    try:
        out.put(asyncio.run(_client(idx, spec, ready, start, progress)))
    except BaseException as exc:  # reported, never hangs the parent
        out.put({"client": idx, "error": f"{type(exc).__name__}: {exc}"})


async def _client(idx: int, spec: dict[str, Any], ready: Any, start: Any, progress: Any) -> dict[str, Any]:
    import fero
    from fero.v1 import cluster_pb2

    mode, size, count = spec["mode"], spec["size"], spec["count"]
    if mode == "floor":
        from benchmarks import speed_floor

        return await speed_floor.run({**spec, "client": idx}, json_value(size), ready, start, progress)
    acks = MODES[mode][0]
    action = "echo" if mode == "sacks" else ""
    value = json_value(size)
    async with AsyncExitStack() as stack:
        c = await stack.enter_async_context(fero.connect(list(spec["addresses"].values()), timeout_s=120.0, retry_for_s=10.0))
        await c.status()  # the channels are up before the clock starts
        session = os.urandom(4).hex()
        prefix = f"c{idx}-{session}-"
        # Columnar batches per partition, straight to each owner (fero.producer); for
        # sacks, ACTION batches whose every handler reply comes back (acks=REPLY).
        sender = c.producer(acks, batch_size=spec["batch"], max_in_flight=spec["in_flight"],
                            request_records=spec["request_records"], request_bytes=spec["request_bytes"],
                            linger_ms=spec["linger_ms"])
        await c.refresh_ring()
        for addr in spec["addresses"].values():
            await c._conn(addr).cluster.Status(cluster_pb2.StatusRequest())
        ready.put(idx)
        start.wait()
        t0, cpu0 = time.perf_counter(), time.process_time()
        deadline = t0 + spec["budget"]
        n = 0
        budget_hit = False
        # sacks: ACTION records with the payload; else UPDATEs of the value. With api
        # single each record is one call, as an application makes it (written out: a
        # call with *args costs 60 ns more a record, which is the benchmark's, not
        # fero's); with bulk, each 2000 are one call, their keys made first.
        values = [value] * 2000
        bulk = spec["api"] == "bulk"
        for first in range(0, count, 2000):
            n = min(first + 2000, count)
            if bulk:
                keys = [f"{prefix}{i}" for i in range(first, n)]
                if mode == "sacks":
                    await sender.action_many(keys, action, values[:n - first])
                else:
                    await sender.update_many(keys, values[:n - first])
            elif mode == "sacks":
                for i in range(first, n):
                    await sender.action(f"{prefix}{i}", action, value)
            else:
                for i in range(first, n):
                    await sender.update(f"{prefix}{i}", value)
            progress.value = sender.acked
            if time.perf_counter() > deadline:
                budget_hit = n < count
                break
        t_sent = time.perf_counter()
        await sender.flush()
        t_end, cpu_s = time.perf_counter(), time.process_time() - cpu0
        progress.value = sender.acked
        lat = [s * 1000 for s in sender.request_seconds]
        await sender.close()
        return {
            "client": idx,
            "submitted": n,
            "acked": sender.acked,
            "failed": sender.failed,
            "first_error": sender.first_error,
            "sent_s": t_sent - t0,
            "total_s": t_end - t0,
            "budget_hit": budget_hit,
            "cpu_s": cpu_s,
            "batch_ms": common.percentiles(lat),
        }


def run_clients(spec: dict[str, Any], clients: int, label: str, timeout_s: float,
                server_pids: Sequence[int] = ()) -> tuple[list[dict[str, Any]], float]:
    """Starts `clients` client processes, starts them together; returns their results
    and the CPU seconds the servers used meanwhile."""
    ctx = mp.get_context("spawn")
    ready, out, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    counters = [ctx.Value("q", 0, lock=False) for _ in range(clients)]
    procs = []
    per = [spec["count"] // clients + (1 if i < spec["count"] % clients else 0) for i in range(clients)]
    try:
        for i in range(clients):
            p = ctx.Process(target=_client_process, args=(i, {**spec, "count": per[i]}, ready, start, counters[i], out),
                            daemon=True)
            p.start()
            procs.append(p)
        results: list[dict[str, Any]] = []
        for _ in range(clients):  # every client connected (or failed) before the clock starts
            try:
                ready.get(timeout=60)
            except queue.Empty:
                raise RuntimeError("a client process did not connect in 60 s") from None
            while not out.empty():
                results.append(out.get())
            if any("error" in r for r in results):
                break
        server_cpu0 = sum(map(common.process_cpu_s, server_pids))
        start.set()
        bar = common.Progress(label, spec["count"])
        deadline = time.monotonic() + timeout_s
        while len(results) < clients and time.monotonic() < deadline:
            try:
                results.append(out.get(timeout=0.2))
            except queue.Empty:
                pass
            bar.update(sum(c.value for c in counters))
        bar.done(sum(c.value for c in counters))
        server_cpu_s = sum(map(common.process_cpu_s, server_pids)) - server_cpu0
        if len(results) < clients:
            raise RuntimeError(f"{clients - len(results)} client(s) did not finish in {timeout_s:.0f} s")
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise RuntimeError("client failed: " + errors[0])
        return results, server_cpu_s
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(5)


def summarise(results: list[dict[str, Any]], size: int, server_cpu_s: float) -> dict[str, Any]:
    acked = sum(r["acked"] for r in results)
    total_s = max(r["total_s"] for r in results)
    sent_s = max(r["sent_s"] for r in results)
    return {
        "records": acked,
        "submitted": sum(r["submitted"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), ""),
        "budget_hit": any(r["budget_hit"] for r in results),
        "ms": total_s * 1000,
        "sent_ms": sent_s * 1000,
        "records_per_s": acked / total_s if total_s > 0 else 0.0,
        "mb_per_s": acked * size / total_s / 1e6 if total_s > 0 else 0.0,
        # CPU per record is steadier than wall time on a shared machine: it says which
        # side (servers or clients) a change made cheaper.
        "server_cpu_us": server_cpu_s * 1e6 / acked if acked else 0.0,
        "client_cpu_us": sum(r["cpu_s"] for r in results) * 1e6 / acked if acked else 0.0,
        "batch_ms": results[0]["batch_ms"] if len(results) == 1 else {},
    }


# -- profiling ------------------------------------------------------------------------


def start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen[str] | None:
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        common.note("py-spy is not installed in the venv (pip install py-spy): no profile")
        return None
    argv = [str(exe), "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", "250", "-f", "raw",
            "-o", str(out), "--nonblocking"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    common._CHILDREN.append(p)
    time.sleep(0.5)
    return p


def summarise_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    """py-spy raw (collapsed) stacks → top functions by self and by inclusive samples."""
    selfc: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        k = int(n)
        total += k
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        selfc[frames[-1]] = selfc.get(frames[-1], 0) + k
        for f in set(frames):
            incl[f] = incl.get(f, 0) + k

    def rows(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(f, round(100 * c / total, 1)) for f, c in sorted(d.items(), key=lambda x: -x[1])[:top]]

    return {"samples": total, "self_pct": rows(selfc), "inclusive_pct": rows(incl)}


# -- main -----------------------------------------------------------------------------


def measure(mode: str, size: int, clients: int, servers: int, args: argparse.Namespace,
            profile_to: Path | None = None, api: str = "single") -> dict[str, Any]:
    handler = "echo" if mode == "sacks" else None
    label = f"{mode} {size}B l{clients} c{servers}{'' if api == 'single' else ' ' + api}"
    if mode == "floor":
        sink = common.Proc([sys.executable, "-m", "benchmarks.speed_floor"],
                           re.compile(r"speed-floor: serving on (\S+)"), name="speed floor").start()
        try:
            assert sink.match is not None
            spec = {"mode": mode, "size": size, "count": args.records, "batch": args.batch,
                    "in_flight": args.in_flight, "request_records": args.request_records, "budget": args.budget,
                    "floor_address": sink.match.group(1)}
            results, server_cpu_s = run_clients(spec, clients, label, timeout_s=args.budget * 3 + 60,
                                                server_pids=[sink.pid])
        finally:
            sink.stop()
        return summarise(results, size, server_cpu_s)
    with common.Nodes(servers, fsync=args.fsync, memory=args.memory, handler=handler, label="speed") as nodes:
        spec = {
            "mode": mode, "size": size, "count": args.records, "batch": args.batch, "in_flight": args.in_flight,
            "request_records": args.request_records, "request_bytes": args.request_bytes,
            "linger_ms": args.linger_ms, "budget": args.budget, "api": api, "addresses": dict(zip(nodes.ids, nodes.addresses)),
            "owners": common.owner_table(nodes.ids),
        }
        prof = start_profiler(nodes.nodes[0].pid, args.budget, profile_to) if profile_to else None
        try:
            results, server_cpu_s = run_clients(spec, clients, label, timeout_s=args.budget * 3 + 60,
                                                server_pids=[n.pid for n in nodes.nodes])
        finally:
            if prof is not None:
                try:
                    prof.wait(args.budget + 30)
                except subprocess.TimeoutExpired:
                    pass
                common.stop_process(prof)
    return summarise(results, size, server_cpu_s)


def measure_cell(mode: str, api: str, size: int, clients: int, servers: int, bar: int | None,
                 args: argparse.Namespace, repeat: int = 0) -> dict[str, Any]:
    """One cell of the table: its runs (--repeat, or --bar-repeat if it has a bar), the
    median of each figure, printed; py-spies the node in the first yacks run if asked."""
    global _profile
    runs = []
    for k in range(repeat or (max(args.repeat, args.bar_repeat) if bar else args.repeat)):
        prof_to = None
        if args.profile and _profile is None and mode == "yacks" and k == 0:
            prof_to = common.RESULTS / f"{args.out}-profile-yacks.txt"
        runs.append(measure(mode, size, clients, servers, args, prof_to, api))
        if prof_to is not None:
            if prof_to.exists():
                _profile = summarise_profile(prof_to)
                _profile["raw"] = common._rel(prof_to)
                _profile["measurement"] = f"yacks {size}B l{clients} c{servers} {api}, node n0"
            else:
                _profile = {"error": "py-spy wrote no profile"}
    med = {k2: common.median([r[k2] for r in runs]) for k2 in ("ms", "records_per_s", "mb_per_s",
                                                            "server_cpu_us", "client_cpu_us")}
    series = mode if api == "single" or mode == "floor" else f"{mode} {api}"
    acks = (FLOOR if mode == "floor" else MODES[mode])[0]
    row = {"mode": mode, "api": api, "series": series, "acks": acks, "size": size, "clients": clients,
           "servers": servers, **med, "runs": runs}
    if bar:
        row["bar_records_per_s"] = bar
        row["reference"] = REFERENCE[(mode, size)]
    fails = sum(r["failed"] for r in runs)
    extra = f"  ({fails} failed: {runs[0]['first_error']})" if fails else ""
    extra += "  [time budget hit]" if any(r["budget_hit"] for r in runs) else ""
    if len(runs) > 1:
        extra += f"  (median of {len(runs)}: " + ", ".join(common.fmt_rate(r["records_per_s"]) for r in runs) + ")"
    print(f"   {series:10} {size:5}B l{clients} c{servers}: {med['ms']:9.0f} ms "
          f"{common.fmt_rate(med['records_per_s']):>7} rec/s {med['mb_per_s']:8.1f} MB/s"
          f"  cpu/rec server {med['server_cpu_us']:.2f} µs client {med['client_cpu_us']:.2f} µs"
          f"  ({runs[0]['records']:,} records){extra}", flush=True)
    return row


#: The node's profile (--profile), taken in the first yacks run.
_profile: dict[str, Any] | None = None


def plot(rows: list[dict[str, Any]], modes: list[str], meta: dict[str, Any], batch: int, in_flight: int, fsync: str,
         out: str) -> None:
    if not rows:
        return
    groups = sorted({(r["size"], r["clients"], r["servers"]) for r in rows})
    labels = [f"{s}B l{l} c{c}" for s, l, c in groups]
    series = {m: [next((r["records_per_s"] for r in rows if r.get("series", r["mode"]) == m
                        and (r["size"], r["clients"], r["servers"]) == g), 0.0)
                  for g in groups] for m in modes}
    common.plot_bars(common.RESULTS / f"{out}.png", "fero speed: records/s (median)", labels, series,
                     "records/s (log)", log_y=True, subtitle=f"{meta['machine']['cores']} cores, batch {batch}, "
                     f"{in_flight} in flight, fsync {fsync}; red: the bar for 100 B yacks",
                     hline=(1_000_000, "bar 1M/s (100 B yacks)"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--message-sizes", default="10,100,1000", help="value sizes in bytes, comma separated")
    ap.add_argument("-r", "--records", type=int, default=1_000_000, help="records per measurement (all clients)")
    ap.add_argument("-l", "--clients", default="1", help="client processes, comma separated")
    ap.add_argument("-c", "--servers", default="1", help="fero nodes, comma separated")
    ap.add_argument("--modes", default="tacks,yacks,sacks")
    ap.add_argument("--batch", type=int, default=1000,
                    help="records per batch (one partition; the producer) or per gRPC message (sacks)")
    ap.add_argument("--request-records", type=int, default=8000, help="producer: records per gRPC message at most")
    ap.add_argument("--request-bytes", type=int, default=1 << 20,
                    help="producer: bytes of keys and values per gRPC message at most (but one batch)")
    ap.add_argument("--linger-ms", type=float, default=20.0, help="producer: a partly filled batch waits this long at most")
    ap.add_argument("--in-flight", type=int, default=8, help="requests in flight per client")
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per measurement at most")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the median is reported")
    ap.add_argument("--bar-repeat", type=int, default=1,
                    help="runs of each measurement that has a bar (100 B yacks and sacks, 1 client, 1 server), "
                         "if more than --repeat")
    ap.add_argument("--api", default="single",
                    help="how clients hand records to the producer, comma separated: single (a call a record) "
                         "or bulk (update_many/action_many, 2000 records a call)")
    ap.add_argument("--bar-api", default="",
                    help="more APIs, comma separated, for the measurements that have a bar")
    ap.add_argument("--floor", action="store_true",
                    help="also measure, for each size with a bar cell, the floor: the same records through "
                         "grpc.aio and protobuf to a sink that only parses them (benchmarks/speed_floor.py)")
    ap.add_argument("--fsync", choices=("always", "interval", "never"), default="interval")
    ap.add_argument("--memory", action="store_true", help="in-memory log instead of a data directory")
    ap.add_argument("--profile", action="store_true",
                    help="py-spy the (first) node during the first yacks measurement")
    ap.add_argument("--out", default="speed", help="name of the JSON/PNG under benchmarks/results/")
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG from benchmarks/results/OUT.json")
    args = ap.parse_args(argv)
    if args.plot_only:
        import json

        d = json.loads((common.RESULTS / f"{args.out}.json").read_text())
        p = d["params"]
        plot(d["results"], list(dict.fromkeys(r.get("series", r["mode"]) for r in d["results"])), d, p["batch"],
             p["in_flight"], p["fsync"], args.out)
        return 0
    sizes = [int(x) for x in args.message_sizes.split(",") if x]
    clients_l = [int(x) for x in args.clients.split(",") if x]
    servers_l = [int(x) for x in args.servers.split(",") if x]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}; one of {', '.join(MODES)}")
    apis = [a.strip() for a in args.api.split(",") if a.strip()]
    bar_apis = apis + [a.strip() for a in args.bar_api.split(",") if a.strip() and a.strip() not in apis]
    for a in bar_apis:
        if a not in ("single", "bulk"):
            ap.error(f"unknown api {a!r}; single or bulk")

    common.install_signal_handlers()
    meta = common.header("speed")
    common.note(f"{args.records:,} records per measurement, batch {args.batch}, {args.in_flight} in flight, "
                f"budget {args.budget:g} s, fsync {args.fsync}, {'memory' if args.memory else 'data dir'} log, "
                f"repeat {args.repeat}")
    rows: list[dict[str, Any]] = []
    global _profile
    _profile = None
    try:
        for size in sizes:
            for clients in clients_l:
                for servers in servers_l:
                    for mode in modes:
                        bar = BAR.get((mode, size)) if clients == 1 and servers == 1 else None
                        for api in bar_apis if bar else apis:
                            rows.append(measure_cell(mode, api, size, clients, servers, bar, args))
                    if args.floor and clients == 1 and servers == 1 and any((m, size) in BAR for m in modes):
                        rows.append(measure_cell("floor", "bulk", size, 1, 1, None, args,
                                                 repeat=max(args.repeat, args.bar_repeat)))
    except KeyboardInterrupt:
        print("\n   interrupted: writing what was measured", flush=True)
    print()
    table = common.print_table(
        ["mode", "size", "clients", "servers", "records", "ms", "records/s", "MB/s", "server µs/rec",
         "client µs/rec", "bar"],
        [[r["series"], f"{r['size']}B", r["clients"], r["servers"], f"{r['runs'][0]['records']:,}", f"{r['ms']:.0f}",
          f"{r['records_per_s']:,.0f}", f"{r['mb_per_s']:.1f}", f"{r['server_cpu_us']:.2f}", f"{r['client_cpu_us']:.2f}",
          f"{r['bar_records_per_s']:,} ({r['records_per_s'] / r['bar_records_per_s']:.2f}x)" if "bar_records_per_s" in r else ""]
         for r in rows])
    profile = _profile
    if profile and "self_pct" in profile:
        print(f"\n   server profile ({profile['measurement']}, {profile['samples']} samples), top self time:")
        for f, pct in profile["self_pct"][:12]:
            print(f"     {pct:5.1f}%  {f}")
    data = {**meta, "params": {k: v for k, v in vars(args).items()},
            "modes": {**{k: v[1] for k, v in MODES.items()}, "floor": FLOOR[1]},
            "results": rows, "table": table, "server_profile": profile}
    common.write_json(args.out, data)
    plot(rows, list(dict.fromkeys(r["series"] for r in rows)), meta, args.batch, args.in_flight, args.fsync, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(common.cli(main))
