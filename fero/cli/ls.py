"""`fero-ls`: what a node (and later, its cluster) looks like.

    fero-ls [--address 127.0.0.1:4000] [--json] [--partitions] [--watch [SECONDS]]

The default is a table; `--json` prints one object for machines. If no node answers,
it says so in one line and exits 1 (no traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from google.protobuf import json_format

DEFAULT_ADDRESS = "127.0.0.1:4000"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fero-ls", description="show a fero node's status")
    p.add_argument("--address", "--seeds", dest="address", default=DEFAULT_ADDRESS,
                   help="node to ask, HOST:PORT (several comma-separated: the first that answers)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    p.add_argument("--partitions", action="store_true", help="also list partitions")
    p.add_argument("--watch", nargs="?", const=2.0, type=float, default=None, metavar="SECONDS",
                   help="refresh every SECONDS until interrupted")
    args = p.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace) -> int:
    import fero
    from fero.errors import FeroError

    addresses = [a.strip() for a in args.address.split(",") if a.strip()]
    async with fero.connect(addresses, timeout_s=3.0, retry_for_s=0.0) as c:
        while True:
            try:
                status = await c.status(include_partitions=args.partitions)
            except FeroError as exc:
                print(f"fero-ls: no node answered at {args.address} ({exc.code.name}: {exc.message})", file=sys.stderr)
                return 1
            data = json_format.MessageToDict(status, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
            if args.watch is not None and not args.json:
                print("\x1b[2J\x1b[H", end="")
            print(json.dumps(data, indent=2) if args.json else render(data), flush=True)
            if args.watch is None:
                return 0
            await asyncio.sleep(args.watch)


def render(data: dict[str, Any]) -> str:
    node = data["node"]
    rows = [
        ("id", "address", "state", "partitions", "records", "counters", "keys", "storage", "fsync", "coherent"),
        (node["id"], node["address"], node["state"], str(node["partitions_owned"]), str(node["records"]),
         str(node["counters"]), str(node["keys"]), node["storage"], node["fsync"], str(data["coherent"]).lower()),
    ]
    out = [_table(rows), ""]
    out.append(f"partitions {data['partitions']}  ring checksum {int(data['ring_checksum']):016x}  "
               f"uptime {float(node['uptime_s']):.0f}s  version {node['version']}")
    parts = data.get("partition_status") or []
    if parts:
        prow = [("partition", "owner", "epoch", "next offset", "log start", "counters", "keys")]
        for ps in parts:
            prow.append((str(ps["partition"]), ps["owner"], str(ps["epoch"]), str(ps["next_offset"]),
                         str(ps["log_start_offset"]), str(ps["counters"]), str(ps["keys"])))
        out += ["", _table(prow)]
    return "\n".join(out)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
