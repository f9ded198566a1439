"""latency — one request in flight: round-trip percentiles of a counter increment.

    python -m benchmarks.latency --messages 10000 --repeat 3

Measures, in one run, the round trip of `Client.add(name, 1, acks=...)` through fero's
Python client (a commit on the client's CommitStream to the owner) with one request in
flight, for acks LEADER and ALL, and three floors, bare grpc.aio servers
(benchmarks/grpc_echo.py: generic handlers, no protobuf, each its own process like a
node) sent a payload the size of an AddRequest:

  grpc floor                 unary calls to an echo server (the floor issue 5 names)
  grpc fan-out floor         messages on a bidirectional stream to a server that
                             answers each once two echo servers, over a stream each,
                             have echoed it: the gRPC work of an acks=ALL write at RF 3,
                             sent as fero's client sends it
  grpc fan-out floor, unary  the same server, called with unary calls

Reported: p50/p90/p99/p99.9/p99.99 of each, their ratios to the unary floor, and p50
over the stream fan-out floor (what fero adds to the gRPC work an acks=ALL write needs).

The cluster: --nodes (default 3, RF=3 as the config says) started with
`--membership local`; the client sends to the counter's owner. If the cluster cannot
serve (a write sent to a non-owner is refused, e.g. UNAVAILABLE "not owner" while
forwarding and replication are not built), it says so and falls back to one node
(`"topology"` in the JSON); on one node acks=ALL means LEADER (the owner is the whole
in-sync set). Results: benchmarks/results/latency.json and latency.png.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import sys
import time
from typing import Any

import grpc

from benchmarks import common

LEVELS = ("leader", "all")
#: The bare-gRPC floors (benchmarks/grpc_echo.py): the unary echo the issue names, and
#: an acks=ALL write's, a fan-out to two replicas, from a stream client (as fero's
#: client sends commits) and from unary calls.
FLOORS = ("grpc floor", "grpc fan-out floor", "grpc fan-out floor, unary")


class _Cpu:
    """CPU seconds this process and `pids` used between start() and stop(): what one
    series cost each process that served it, per request."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.used: list[float] = []

    @staticmethod
    def _self_s() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def start(self) -> None:
        self._at = [self._self_s()] + [common.process_cpu_s(p) for p in self.pids]

    def stop(self) -> None:
        now = [self._self_s()] + [common.process_cpu_s(p) for p in self.pids]
        self.used = [b - a for a, b in zip(self._at, now)]

    def per_request_us(self, n: int) -> list[float]:
        return [u / max(n, 1) * 1e6 for u in self.used]


async def _time_floor(address: str, payload: bytes, n: int, budget: float, bar: common.Progress,
                      stream: bool = False, cpu: _Cpu | None = None) -> list[float]:
    """Round trips to a bare server: unary calls, or (`stream`) messages on one
    bidirectional stream, as fero's client sends commits."""
    from benchmarks.grpc_echo import round_trip

    async with grpc.aio.insecure_channel(address) as ch:
        once = round_trip(ch, payload, stream)
        for _ in range(min(500, n)):
            await once()
        out: list[float] = []
        deadline = time.perf_counter() + budget
        pc = time.perf_counter_ns
        if cpu is not None:
            cpu.start()
        for i in range(n):
            t0 = pc()
            await once()
            out.append((pc() - t0) / 1e6)
            if i % 500 == 0:
                bar.update(i)
                if time.perf_counter() > deadline:
                    break
        if cpu is not None:
            cpu.stop()
        bar.done(len(out))
        return out


async def _time_fero(address: str, key: str, acks: str, n: int, budget: float, bar: common.Progress,
                     cpu: _Cpu | None = None) -> tuple[list[float], int]:
    import fero

    async with fero.connect(address, timeout_s=10.0) as c:
        total = 0
        for _ in range(min(500, n)):
            await c.add(key, 1, acks=acks)
            total += 1
        out: list[float] = []
        deadline = time.perf_counter() + budget
        pc = time.perf_counter_ns
        if cpu is not None:
            cpu.start()
        for i in range(n):
            t0 = pc()
            await c.add(key, 1, acks=acks)
            out.append((pc() - t0) / 1e6)
            total += 1
            if i % 500 == 0:
                bar.update(i)
                if time.perf_counter() > deadline:
                    break
        if cpu is not None:
            cpu.stop()
        bar.done(len(out))
        got = (await c.get(key)).value
        return out, int(got) - total  # 0 if every increment counted once (key is fresh per run)


def _cpu_row(cpu: _Cpu, lat_ms: list[float]) -> dict[str, float]:
    """CPU µs a request of the client, the server, and the other servers together (the
    replicas, at RF 3 on 3 nodes; /proc counts in 10 ms ticks, so a run should last
    seconds); their total; and how many cores that kept busy, on average."""
    n = len(lat_ms)
    us = cpu.per_request_us(n)
    wall_us = sum(lat_ms) / max(n, 1) * 1e3
    row = {"client": us[0], "server": us[1] if len(us) > 1 else 0.0, "replicas": sum(us[2:]), "total": sum(us)}
    row["cores_busy"] = row["total"] / wall_us if wall_us else 0.0
    return row


def start_floor(relay: list[str] | None = None) -> common.Proc:
    argv = [sys.executable, "-m", "benchmarks.grpc_echo"] + (["--relay", ",".join(relay)] if relay else [])
    return common.Proc(argv, re.compile(r"grpc-echo: serving on (\S+)"),
                       name="grpc fan-out" if relay else "grpc echo").start()


def floor_address(p: common.Proc) -> str:
    """The address a server start_floor started serves on."""
    assert p.match is not None
    return p.match.group(1)


def run(args: argparse.Namespace, meta: dict[str, Any]) -> dict[str, Any]:
    from fero.v1 import counters_pb2, types_pb2

    payload = counters_pb2.AddRequest(name="latency-0-r0", amount=types_pb2.Number(i64=1), ticket="0123456789abcdef-123",
                                      acks=types_pb2.ACKS_LEADER).SerializeToString()
    topology: dict[str, Any] = {"requested_nodes": args.nodes, "replication_factor": 3}
    samples: dict[str, list[list[float]]] = {name: [] for name in FLOORS} | {"leader": [], "all": []}
    cpu_runs: dict[str, list[dict[str, float]]] = {name: [] for name in samples}
    drift: list[int] = []
    procs: list[common.Proc] = []
    nodes = common.Nodes(args.nodes, fsync=args.fsync, memory=args.memory, label="latency")
    try:
        for _ in range(3):  # the unary floor, then the fan-out's two replicas
            procs.append(start_floor())
        procs.append(start_floor(relay=[floor_address(p) for p in procs[1:3]]))
        floor_at = {"grpc floor": (floor_address(procs[0]), False),
                    "grpc fan-out floor": (floor_address(procs[3]), True),
                    "grpc fan-out floor, unary": (floor_address(procs[3]), False)}
        nodes.__enter__()
        ok, why = asyncio.run(common.probe_forwarding(nodes.nodes))
        topology["cluster_serves"] = ok
        topology["probe"] = why
        if not ok:
            common.note(f"the {args.nodes}-node cluster cannot serve: {why}")
            common.note("FALLBACK: measuring against a single node; acks=ALL on one node = LEADER")
            nodes.__exit__()
            nodes = common.Nodes(1, fsync=args.fsync, memory=args.memory, label="latency").__enter__()
        topology["measured_nodes"] = len(nodes.nodes)
        topology["mode"] = "cluster" if ok else "single-node fallback"
        if ok and len(nodes.nodes) > 1:
            rep, rwhy = asyncio.run(common.probe_replication(nodes.nodes))
        else:
            rep, rwhy = False, "single node: acks=ALL = LEADER (the owner is the whole in-sync set)"
        topology["acks_all_replicates"] = rep
        topology["replication_probe"] = rwhy
        if not rep:
            common.note(f"acks=ALL is NOT replicated here: {rwhy}")
        # Who serves each series: its server (an echo server, a fan-out server, the
        # owner), then the replicas it waits for or streams to.
        floor_pids = {"grpc floor": [procs[0].pid]} | {
            name: [procs[3].pid, procs[1].pid, procs[2].pid] for name in FLOORS[1:]}
        for r in range(args.repeat):
            key = f"latency-{r}-{time.time_ns()}"
            for name, (address, stream) in floor_at.items():
                cpu = _Cpu(floor_pids[name])
                samples[name].append(asyncio.run(_time_floor(
                    address, payload, args.messages, args.budget,
                    common.Progress(f"run {r + 1} {name}", args.messages, "req"), stream, cpu)))
                cpu_runs[name].append(_cpu_row(cpu, samples[name][-1]))
            for acks in LEVELS:
                target = nodes.owner_address(f"{key}-{acks}")
                cpu = _Cpu(sorted((n.pid for n in nodes.nodes), key=lambda pid: pid != nodes.pid_at(target)))
                s, d = asyncio.run(_time_fero(target, f"{key}-{acks}", acks, args.messages, args.budget,
                                              common.Progress(f"run {r + 1} fero acks={acks}", args.messages, "req"), cpu))
                samples[acks].append(s)
                cpu_runs[acks].append(_cpu_row(cpu, s))
                drift.append(d)
    finally:
        nodes.__exit__()
        for p in procs:
            p.stop()
    per_run = {k: [common.percentiles(s) for s in v] for k, v in samples.items()}
    medians = {k: {pk: common.median([p[pk] for p in runs]) for pk in runs[0] if pk != "count"}
               for k, runs in per_run.items() if runs}
    cpu_medians = {k: {f: common.median([run[f] for run in runs]) for f in runs[0]} for k, runs in cpu_runs.items() if runs}
    return {"topology": topology, "per_run": per_run, "median_of_runs": medians,
            "cpu_us_per_request_per_run": cpu_runs, "cpu_us_per_request": cpu_medians,
            "messages_per_run": {k: [len(s) for s in v] for k, v in samples.items()},
            "exactness": {"counter_minus_sent_per_run": drift, "ok": all(d == 0 for d in drift)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10_000, help="requests per level per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the median of each percentile is reported")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--fsync", choices=("always", "interval", "never"), default="interval")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--budget", type=float, default=30.0, help="seconds per level per run at most")
    ap.add_argument("--out", default="latency")
    args = ap.parse_args(argv)
    common.install_signal_handlers()
    meta = common.header("latency")
    common.note(f"{args.messages:,} requests per level, one in flight, {args.repeat} runs, fsync {args.fsync}")
    res = run(args, meta)
    med = res["median_of_runs"]
    floor, fan_out = med["grpc floor"], med["grpc fan-out floor"]
    keys = [common.pct_key(p) for p in common.PERCENTILES]
    rows = []
    for name in FLOORS + LEVELS:
        m = med[name]
        label = name if name in FLOORS else f"fero acks={name.upper()}"
        if name == "all" and not res["topology"]["acks_all_replicates"]:
            label += " (not replicated)"
        rows.append([label] + [f"{m[k]:.3f}" for k in keys]
                    + [f"{m['p50'] / floor['p50']:.2f}x", f"{m['p99'] / floor['p99']:.2f}x", f"{m['p50'] / fan_out['p50']:.2f}x"])
    print()
    topo = res["topology"]
    print(f"   topology: {topo['mode']} ({topo['measured_nodes']} node(s) measured; probe: {topo['probe']})")
    print(f"   acks=ALL replicates: {topo['acks_all_replicates']} ({topo['replication_probe']})")
    table = common.print_table(["ms (median of runs)"] + keys + ["p50/floor", "p99/floor", "p50/fan-out"], rows)
    cpu = res["cpu_us_per_request"]
    print()
    cpu_table = common.print_table(
        ["CPU µs a request (median of runs)", "client", "server/owner", "other nodes", "total", "cores busy"],
        [[r[0]] + [f"{cpu[name][f]:.0f}" for f in ("client", "server", "replicas", "total")] + [f"{cpu[name]['cores_busy']:.2f}"]
         for r, name in zip(rows, FLOORS + LEVELS)])
    lead, all_ = med["leader"], med["all"]
    checks = {
        "leader_p50_le_1.2x_floor": lead["p50"] <= 1.2 * floor["p50"],
        "leader_p99_le_1.5ms": lead["p99"] <= 1.5,
        "all_p50_le_1.0ms": (all_["p50"] <= 1.0) if topo["acks_all_replicates"] else None,
    }
    print("   bar: " + ", ".join(f"{k} {'n/a (acks=ALL not replicated)' if v is None else 'PASS' if v else 'FAIL'}"
                            for k, v in checks.items()))
    print(f"   exactness: every counter equals what was sent: {res['exactness']['ok']}")
    data = {**meta, "params": vars(args), **res, "table": table, "cpu_table": cpu_table, "bar_checks": checks}
    common.write_json(args.out, data)
    sub = (f"{meta['machine']['cores']} cores, 1 in flight, median of {args.repeat} runs, fsync {args.fsync}; "
           f"{topo['mode']} ({topo['measured_nodes']} node(s))")
    common.plot_percentiles(common.RESULTS / f"{args.out}.png", "round trip of one request, percentiles",
                            {"bare grpc.aio echo (floor)": floor, "bare grpc.aio fan-out to 2 (stream)": fan_out,
                             "fero add, acks=LEADER": lead,
                             "fero add, acks=ALL" + ("" if topo["acks_all_replicates"] else " (NOT replicated: = LEADER)"): all_},
                            subtitle=sub)
    return 0


if __name__ == "__main__":
    sys.exit(common.cli(main))
