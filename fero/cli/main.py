"""`fero`: run a node, or talk to one.

    fero serve [--host H] [--port 4000] [--data-dir ./fero-data | --memory] [--node-id ID]
               [--fsync always|interval|never] [--seeds H:P,...] [--membership lan|local]
               [--advertise H:P] [--constants.SECTION.FIELD VALUE ...]
    fero add NAME AMOUNT [--ticket T] [--acks leader]   [--address 127.0.0.1:4000]
    fero get NAME
    fero setup NAME --kind decimal [--ttl-s 3600 | --expire-at-ms MS]
    fero update KEY JSON | fero read KEY

`serve` prints one line `fero: serving on HOST:PORT (node ID, storage)` on stdout once
it accepts requests (with `--port 0` that names the port chosen), and stops cleanly on
SIGTERM or SIGINT: it stops taking requests, flushes and fsyncs the log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from fero import heap, logs
from fero.config import Config, parse_constant_flags
from fero.errors import FeroError

DEFAULT_ADDRESS = "127.0.0.1:4000"


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    try:
        overrides, rest = parse_constant_flags(args_in)
    except ValueError as exc:
        print(f"fero: {exc}", file=sys.stderr)
        return 2
    parser = _parser()
    args = parser.parse_args(rest)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "serve":
            return _serve(args, overrides)
        return asyncio.run(_client_command(args))
    except FeroError as exc:
        print(f"fero: {exc}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"fero: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fero", description="fero: replicated shared state")
    sub = parser.add_subparsers(dest="command")

    s = sub.add_parser("serve", help="run a node")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=4000, help="0 picks a free port")
    s.add_argument("--data-dir", default="./fero-data")
    s.add_argument("--memory", action="store_true", help="keep everything in memory (lost on exit)")
    s.add_argument("--node-id", default=None, help="default: kept in DATA_DIR/node-id")
    s.add_argument("--fsync", choices=("always", "interval", "never"), default=None)
    s.add_argument("--seeds", default="", help="HOST:PORT[,HOST:PORT...] of nodes to join; a name may resolve to several")
    s.add_argument("--membership", choices=("lan", "local"), default="lan",
                   help="SWIM timing preset: lan (memberlist's LAN defaults) or local (loopback)")
    s.add_argument("--advertise", default=None, help="HOST:PORT peers should use to reach this node")
    s.add_argument("--split-policy", choices=("available", "consistent"), default=None,
                   help="available: every side of a split takes writes; consistent: a minority refuses them")
    s.add_argument("--json-logs", action="store_true")
    s.add_argument("--config", default=None, help="a TOML file of [section] fields (see fero/config.py)")
    s.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics at http://HOST:PORT/metrics")
    s.add_argument("--tls-cert", default=None, help="PEM certificate: serve TLS (with --tls-key)")
    s.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    s.add_argument("--tls-ca", default=None, help="PEM CA: require and check client certificates (mutual TLS)")
    s.add_argument("--cluster-secret", default=os.environ.get("FERO_CLUSTER_SECRET"),
                   help="shared secret peers must present (default: $FERO_CLUSTER_SECRET)")
    s.add_argument("--tokens", default=None, help="file of 'TOKEN read|write' lines: clients need a bearer token")

    def client(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--address", default=DEFAULT_ADDRESS)
        add_client_security(p)
        return p

    a = client("add", "add to a counter")
    a.add_argument("name")
    a.add_argument("amount")
    a.add_argument("--ticket", default=None)
    a.add_argument("--acks", default="leader")
    g = client("get", "read a counter")
    g.add_argument("name")
    st = client("setup", "fix a counter's kind and expiry")
    st.add_argument("name")
    st.add_argument("--kind", default="int", choices=("int", "decimal", "rational"))
    st.add_argument("--ttl-s", type=float, default=None)
    st.add_argument("--expire-at-ms", type=int, default=0)
    u = client("update", "set the JSON value at a key path")
    u.add_argument("key")
    u.add_argument("json")
    r = client("read", "read the JSON value at a key path")
    r.add_argument("key")
    return parser


def _serve(args: argparse.Namespace, overrides: dict[str, str]) -> int:
    logs.configure(json_lines=args.json_logs)
    if args.fsync:
        overrides = {**overrides, "storage.fsync": args.fsync}
    if args.split_policy:
        overrides = {**overrides, "cluster.split_policy": args.split_policy}
    from fero.membership.config import MembershipConfig

    base = Config(membership=MembershipConfig.local() if args.membership == "local" else MembershipConfig.lan())
    if args.config:
        base = base.with_toml(args.config)
    config = base.with_environment().with_overrides(overrides).validate()
    return asyncio.run(_run_node(args, config))


async def _run_node(args: argparse.Namespace, config: Config) -> int:
    from fero.node import Node

    from fero.security import Security

    security = Security.from_files(args.tls_cert, args.tls_key, args.tls_ca, args.cluster_secret, args.tokens)
    node = Node(
        args.node_id, host=args.host, port=args.port, security=security,
        data_dir=None if args.memory else args.data_dir, config=config,
        seeds=[x for x in args.seeds.split(",") if x.strip()], advertise=args.advertise,
        metrics_port=args.metrics_port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    heap.watch()
    try:
        await node.start()
    except BaseException:
        await node.stop()
        raise
    # What the node holds once it serves stays: later full collections skip it (see fero.heap).
    heap.freeze()
    print(f"fero: serving on {node.address} (node {node.node_id}, storage {node.storage_label})", flush=True)
    await stop.wait()
    await node.stop()
    return 0


async def _client_command(args: argparse.Namespace) -> int:
    import fero

    async with fero.connect(args.address, retry_for_s=5.0, **client_security(args)) as c:
        if args.command == "add":
            r = await c.add(args.name, args.amount, ticket=args.ticket, acks=args.acks)
            print(json.dumps({"name": args.name, "value": str(r.value), "coherent": r.coherent, "duplicate": r.duplicate}))
        elif args.command == "get":
            v = await c.get(args.name)
            print(json.dumps({"name": args.name, "value": str(v.value), "kind": v.kind.label, "exists": v.exists,
                              "expire_at_ms": v.expire_at_ms, "coherent": v.coherent}))
        elif args.command == "setup":
            r = await c.setup(args.name, args.kind, expire_at_ms=args.expire_at_ms, ttl_s=args.ttl_s)
            print(json.dumps({"name": args.name, "kind": args.kind, "expire_at_ms": r.expire_at_ms}))
        elif args.command == "update":
            try:
                value = json.loads(args.json)
            except ValueError as exc:
                raise ValueError(f"{args.json!r} is not JSON: {exc}") from None
            await c.update(args.key, value)
            print(json.dumps({"key": args.key, "ok": True}))
        elif args.command == "read":
            print(json.dumps(await c.read(args.key)))
    return 0


def add_client_security(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token", default=os.environ.get("FERO_TOKEN"), help="bearer token (default: $FERO_TOKEN)")
    p.add_argument("--tls-ca", default=None, help="PEM CA to trust: connect with TLS")
    p.add_argument("--tls-cert", default=None, help="PEM client certificate, for mutual TLS")
    p.add_argument("--tls-key", default=None, help="PEM key of --tls-cert")


def client_security(args: argparse.Namespace) -> dict[str, object]:
    def read(path: str | None) -> bytes | None:
        return open(path, "rb").read() if path else None

    return {"token": args.token, "tls_ca": read(args.tls_ca), "tls_cert": read(args.tls_cert), "tls_key": read(args.tls_key)}


if __name__ == "__main__":
    sys.exit(main())
