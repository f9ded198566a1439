"""grpc_runtime — what fero's gRPC runtime settings (fero/grpc_runtime.py) change, on
bare grpc.aio with no fero code: round trips of a bidirectional-stream echo and a unary
echo between two processes, one message in flight, under gRPC's defaults and under
fero's GRPC_EXPERIMENTS. Each run starts fresh processes, because gRPC reads the setting
once when it starts. The runs alternate between the two settings.

    python -m benchmarks.grpc_runtime --messages 5000 --repeat 3

Reported for each setting: the p50 round trip and the CPU per round trip of client and
server, medians of the runs, and their ratio. Results go to
benchmarks/results/grpc_runtime.json and grpc_runtime.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time

from benchmarks import common

SETTINGS = ("grpc defaults", "fero settings")


async def _measure(address: str, server_pid: int, n: int) -> dict[str, dict[str, float]]:
    import grpc

    from benchmarks.grpc_echo import round_trip

    payload = b"x" * 64  # about an AddRequest
    out: dict[str, dict[str, float]] = {}
    async with grpc.aio.insecure_channel(address) as ch:
        for kind in ("stream", "unary"):
            once = round_trip(ch, payload, kind == "stream")
            for _ in range(min(500, n)):
                await once()
            lat: list[float] = []
            c0, s0 = resource.getrusage(resource.RUSAGE_SELF), common.process_cpu_s(server_pid)
            for _ in range(n):
                t = time.perf_counter()
                await once()
                lat.append(time.perf_counter() - t)
            c1, s1 = resource.getrusage(resource.RUSAGE_SELF), common.process_cpu_s(server_pid)
            lat.sort()
            out[kind] = {
                "p50_ms": lat[n // 2] * 1e3,
                "p99_ms": lat[int(n * 0.99)] * 1e3,
                "client_cpu_us": (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) / n * 1e6,
                "server_cpu_us": (s1 - s0) / n * 1e6,
            }
    return out


def _pair(n: int) -> None:
    """Child: starts an echo server (the latency benchmark's floor, inheriting this
    environment) and measures it."""
    from benchmarks.latency import floor_address, start_floor

    server = start_floor()
    try:
        assert server.proc is not None
        print(json.dumps(asyncio.run(_measure(floor_address(server), server.proc.pid, n))), flush=True)
    finally:
        server.stop()


def _environment(setting: str) -> dict[str, str]:
    from fero import grpc_runtime

    env = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    if setting == "grpc defaults":
        env["FERO_GRPC_DEFAULTS"] = "0"
    else:
        env["GRPC_EXPERIMENTS"] = grpc_runtime.EXPERIMENTS
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.grpc_runtime", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000, help="round trips per kind per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per setting; medians are reported")
    ap.add_argument("--out", default="grpc_runtime")
    ap.add_argument("--pair", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.pair:
        _pair(args.messages)
        return 0
    common.install_signal_handlers()
    meta = common.header("grpc_runtime")
    runs: dict[str, list[dict[str, dict[str, float]]]] = {s: [] for s in SETTINGS}
    for r in range(args.repeat):
        for setting in SETTINGS:
            common.note(f"run {r + 1}/{args.repeat}: {setting}")
            done = subprocess.run([sys.executable, "-m", "benchmarks.grpc_runtime", "--pair", "--messages",
                                   str(args.messages)], env=_environment(setting), capture_output=True, text=True,
                                  cwd=common.ROOT.parent, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"{setting} run failed: {done.stderr[-2000:]}")
            runs[setting].append(json.loads(done.stdout.strip().splitlines()[-1]))
    medians = {s: {kind: {k: common.median([run[kind][k] for run in rs]) for k in rs[0][kind]} for kind in rs[0]}
               for s, rs in runs.items()}
    rows = []
    for kind in ("stream", "unary"):
        d, f = medians["grpc defaults"][kind], medians["fero settings"][kind]
        for k in ("p50_ms", "p99_ms", "client_cpu_us", "server_cpu_us"):
            rows.append([kind, k, f"{d[k]:.3f}", f"{f[k]:.3f}", f"{f[k] / d[k]:.2f}x"])
    print()
    table = common.print_table(["echo", "figure (median of runs)", "grpc defaults", "fero settings", "fero/defaults"], rows)
    common.write_json(args.out, {**meta, "params": vars(args), "per_run": runs, "median_of_runs": medians,
                                 "experiments": _environment("fero settings")["GRPC_EXPERIMENTS"], "table": table})
    common.plot_bars(common.RESULTS / f"{args.out}.png", "bare grpc.aio echo, one in flight: p50 round trip",
                     ["stream", "unary"], {s: [medians[s][k]["p50_ms"] for k in ("stream", "unary")] for s in SETTINGS},
                     "ms", fmt=lambda v: f"{v:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(common.cli(main))
