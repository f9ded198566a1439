"""snapshot — what one snapshot of a large state costs the node: CPU, wall time, and the
longest stalls of its event loop while it is taken (a stall delays every request the
node serves). In process, on real files: an engine is filled with --documents keyed
UPDATEs of 100 B values in batches of 1000, as the speed benchmark's producer sends
them, then takes one snapshot while a task ticks every millisecond on the loop. Each
run is a fresh process (this VM is slow the first time memory is touched).

    python -m benchmarks.snapshot --documents 1000000 --repeat 3

For an A/B, run it under both versions of fero (PYTHONPATH=<worktree> for the other).
Results go to benchmarks/results/snapshot.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

from benchmarks import common

VALUE = b'"' + b"x" * 98 + b'"'


async def _one(documents: int) -> dict[str, float]:
    import dataclasses
    import tempfile
    from pathlib import Path

    from fero import batch
    from fero.clock import Clock
    from fero.config import Config, StorageConfig
    from fero.engine import Engine
    from fero.v1 import types_pb2

    partitions = 256
    keys = [f"c0-{i:09d}" for i in range(documents)]
    by_partition: dict[int, list[str]] = {}
    for key, p in zip(keys, batch.partitions_of(keys, partitions)):
        by_partition.setdefault(p, []).append(key)
    storage = dataclasses.replace(StorageConfig(), fsync="interval", snapshot_every_records=10**9, snapshot_every_s=86400)
    config = Config(storage=storage).validate()
    with tempfile.TemporaryDirectory(prefix="fero-bench-snapshot-") as d:
        engine = Engine(config, Clock(), "n1", Path(d))
        engine.open()
        engine.start()
        try:
            ticket = 0
            for p, ks in by_partition.items():
                for i in range(0, len(ks), 1000):
                    ticket += 1
                    b = types_pb2.Batch(partition=p, ticket=f"t{ticket}", op=types_pb2.OP_UPDATE,
                                        keys=ks[i:i + 1000], values=[VALUE] * len(ks[i:i + 1000]))
                    # As the owner gets them: with the batch's bytes (its values then
                    # stay in the logged message: see Documents.update_many).
                    await engine.commit_batches([b], types_pb2.ACKS_LEADER, raw=[b.SerializeToString()])
            held = sum(len(st.documents) for st in engine.partitions)
            if held != documents:
                raise RuntimeError(f"{held} documents held, {documents} sent")
            gaps: list[float] = []
            stop = False

            async def tick() -> None:
                last = time.perf_counter()
                while not stop:
                    await asyncio.sleep(0.001)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            ticker = asyncio.get_running_loop().create_task(tick())
            await asyncio.sleep(0.05)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await engine.take_snapshot()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            stop = True
            await ticker
            gaps.sort(reverse=True)
            size = sum(f.stat().st_size for f in (Path(d) / "snapshots").iterdir())
        finally:
            await engine.close()
    return {"cpu_ms": cpu * 1000, "wall_ms": wall * 1000, "longest_stall_ms": gaps[0] * 1000,
            "second_stall_ms": gaps[1] * 1000, "bytes": size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.snapshot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--documents", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs (fresh processes); medians are reported")
    ap.add_argument("--out", default="snapshot")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(asyncio.run(_one(args.documents))))
        return 0
    common.install_signal_handlers()
    meta = common.header("snapshot")
    runs: list[dict[str, float]] = []
    for r in range(args.repeat):
        done = subprocess.run([sys.executable, "-m", "benchmarks.snapshot", "--one", "--documents", str(args.documents)],
                              capture_output=True, text=True, cwd=common.ROOT.parent, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"run {r + 1} failed: {done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        one = runs[-1]
        common.note(f"run {r + 1}/{args.repeat}: cpu {one['cpu_ms']:.0f} ms, wall {one['wall_ms']:.0f} ms, "
                    f"longest stalls {one['longest_stall_ms']:.0f} and {one['second_stall_ms']:.0f} ms")
    medians = {k: common.median([run[k] for run in runs]) for k in runs[0]}
    table = common.print_table(
        ["documents", "snapshot MB", "cpu ms", "wall ms", "longest stall ms", "second stall ms"],
        [[f"{args.documents:,}", f"{medians['bytes'] / 1e6:.0f}", f"{medians['cpu_ms']:.0f}",
          f"{medians['wall_ms']:.0f}", f"{medians['longest_stall_ms']:.0f}", f"{medians['second_stall_ms']:.0f}"]],
    )
    common.write_json(args.out, {**meta, "params": vars(args), "runs": runs, "median_of_runs": medians, "table": table})
    return 0


if __name__ == "__main__":
    sys.exit(common.cli(main))
