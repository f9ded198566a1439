"""An embedded fero.Node with a custom-action handler, as its own process: what the
speed benchmark's sacks (acks=REPLY) run against, since `fero serve` has no handler.

    python -m benchmarks.echo_node --handler echo --port 0 --memory

Takes the `fero serve` flags the benchmarks use and prints the same ready line
(`fero: serving on HOST:PORT (node ID, storage)`); SIGTERM/SIGINT stop it cleanly.
Handlers: `echo` returns the action's payload, `ok` returns b"ok".
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from fero import heap, logs
from fero.config import Config
from fero.engine import Action
from fero.membership.config import MembershipConfig
from fero.node import Node


# Plain functions, as a handler with nothing to wait for can be (fero.engine.Handler).
def echo(action: Action) -> bytes:
    return action.payload


def ok(action: Action) -> bytes:
    return b"ok"


HANDLERS = {"echo": echo, "ok": ok}


async def run(args: argparse.Namespace) -> int:
    overrides = {"storage.fsync": args.fsync} if args.fsync else {}
    base = Config(membership=MembershipConfig.local() if args.membership == "local" else MembershipConfig.lan())
    config = base.with_environment().with_overrides(overrides).validate()
    node = Node(args.node_id, host=args.host, port=args.port, data_dir=None if args.memory else args.data_dir,
                config=config, handler=HANDLERS[args.handler],
                seeds=[s for s in args.seeds.split(",") if s.strip()])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    heap.watch()
    try:
        await node.start()
        heap.freeze()  # as `fero serve` does (fero/heap.py)
        print(f"fero: serving on {node.address} (node {node.node_id}, storage {node.storage_label})", flush=True)
        await stop.wait()
    finally:
        await node.stop()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.echo_node")
    p.add_argument("--handler", choices=sorted(HANDLERS), default="echo")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--node-id", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--memory", action="store_true")
    p.add_argument("--fsync", choices=("always", "interval", "never"), default=None)
    p.add_argument("--seeds", default="")
    p.add_argument("--membership", choices=("lan", "local"), default="local")
    args = p.parse_args()
    if not args.memory and not args.data_dir:
        args.memory = True
    logs.configure(json_lines=False)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
