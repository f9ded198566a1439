"""A local cluster for trying fero: `make cluster` or `python -m fero.cli.cluster`.

Starts N `fero serve` processes on 127.0.0.1 (ports BASE, BASE+1, ...), data in
DIR/n0, DIR/n1, ..., joined through the first; prints `fero-ls members` once they
agree; stops them all (SIGTERM: graceful leave) on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

from fero.testing.process import ServeProcess


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fero-cluster", description="run a local fero cluster")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--base-port", type=int, default=4001)
    p.add_argument("--data-dir", default="./fero-cluster")
    args = p.parse_args(argv)
    procs: list[ServeProcess] = []
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for i in range(args.nodes):
            extra = ["--membership", "local"]
            if procs:
                extra += ["--seeds", procs[0].address]
            proc = ServeProcess(Path(args.data_dir) / f"n{i}", port=args.base_port + i, node_id=f"n{i}", extra_args=extra)
            procs.append(proc.start())
            print(f"fero-cluster: n{i} serving on {proc.address}", flush=True)
        seeds = ",".join(x.address for x in procs)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not stop:
            out = subprocess.run([sys.executable, "-m", "fero.cli.ls", "members", "--seeds", seeds],
                                 capture_output=True, text=True, timeout=30).stdout
            if out.count(" alive ") == args.nodes and "coherent: true" in out:
                print(out, flush=True)
                break
            time.sleep(0.5)
        print(f"fero-cluster: {args.nodes} nodes; try  .venv/bin/fero add visits 1 --address {procs[0].address}"
              f"  and  .venv/bin/fero-ls members --seeds {seeds}. Ctrl-C stops them.", flush=True)
        while not stop:
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.stop()
        print("fero-cluster: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
