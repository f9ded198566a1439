"""`fero-ls`: what a node and its cluster look like.

    fero-ls [node|members|partitions|counters PREFIX] [--seeds H:P[,H:P...]] [--json] [--watch [SECONDS]]

    node        (default) this node as a table, then the members it sees
    members     one row per member: id, address, status, incarnation, partitions owned
                and replicated, records and replication lag (asked of each member), ring
                checksum (a `*` marks one that differs from the asking node's), last RTT
    partitions  the partitions the asked node holds: role, owner, replicas, epoch,
                offset, high-watermark and replica lag (owner's view), log start
    counters    counters whose names start with PREFIX, across the cluster

The first seed that answers is asked. `--json` prints JSON for machines (for
`members`, a list with one object per member). If no seed answers, it says so in one
line and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from google.protobuf import json_format

from fero.v1 import counters_pb2

DEFAULT_ADDRESS = "127.0.0.1:4000"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fero-ls", description="show a fero node and its cluster")
    p.add_argument("view", nargs="?", choices=("node", "members", "partitions", "counters"), default="node")
    p.add_argument("prefix", nargs="?", default="", help="with `counters`: the name prefix")
    p.add_argument("--seeds", "--address", dest="address", default=DEFAULT_ADDRESS,
                   help="HOST:PORT of nodes to ask, comma-separated: the first that answers")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.add_argument("--partitions", action="store_true", help="with the node view, also list partitions")
    p.add_argument("--watch", nargs="?", const=2.0, type=float, default=None, metavar="SECONDS",
                   help="refresh every SECONDS until interrupted")
    from fero.cli.main import add_client_security

    add_client_security(p)
    args = p.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace) -> int:
    import fero
    from fero.errors import FeroError

    addresses = [a.strip() for a in args.address.split(",") if a.strip()]
    want_partitions = args.partitions or args.view == "partitions"
    from fero.cli.main import client_security

    async with fero.connect(addresses, timeout_s=3.0, retry_for_s=0.0, route=False, **client_security(args)) as c:
        while True:
            if args.view == "counters":
                try:
                    reply = await c._call(lambda conn: conn.counters.List(
                        counters_pb2.ListRequest(prefix=args.prefix, limit=10_000), timeout=5.0))
                except FeroError as exc:
                    print(f"fero-ls: no node answered at {args.address} ({exc.code.name}: {exc.message})", file=sys.stderr)
                    return 1
                print(render_counters(reply, args.json), flush=True)
                if args.watch is None:
                    return 0
                await asyncio.sleep(args.watch)
                continue
            status = None
            for _ in addresses:  # the client moves on to the next seed on each failure
                try:
                    status = await c.status(include_partitions=want_partitions)
                    break
                except FeroError as exc:
                    error = exc
                    await c._failed_over()
            if status is None:
                print(f"fero-ls: no node answered at {args.address} ({error.code.name}: {error.message})", file=sys.stderr)
                return 1
            data = json_format.MessageToDict(status, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
            if args.view in ("node", "members"):
                await _member_details(data, client_security(args))
            if args.watch is not None and not args.json:
                print("\x1b[2J\x1b[H", end="")
            print(render(data, args.view, args.json, args.partitions), flush=True)
            if args.watch is None:
                return 0
            await asyncio.sleep(args.watch)


async def _member_details(data: dict[str, Any], security: dict[str, Any]) -> None:
    """Asks each live member for its own records and replication lag (what only it
    knows); a member that does not answer keeps them empty."""
    import fero
    from fero.errors import FeroError

    async def ask(m: dict[str, Any]) -> None:
        if m["status"] not in ("alive", "suspect"):
            return
        try:
            async with fero.connect(m["address"], timeout_s=2.0, retry_for_s=0.0, route=False, **security) as c:
                st = await c.status()
            m["records"] = int(st.node.records)
            m["replication_lag_records"] = int(st.node.replication_lag_records)
        except FeroError:
            pass

    await asyncio.gather(*(ask(m) for m in data.get("members", [])))


def render(data: dict[str, Any], view: str, as_json: bool, partitions: bool = False) -> str:
    if as_json:
        if view == "members":
            return json.dumps([_member(m) for m in data.get("members", [])], indent=2)
        if view == "partitions":
            return json.dumps(data.get("partition_status", []), indent=2)
        return json.dumps(data, indent=2)
    if view == "members":
        return render_members(data)
    if view == "partitions":
        return render_partitions(data)
    out = [render_node(data), "", render_members(data)]
    if partitions:
        out += ["", render_partitions(data)]
    return "\n".join(out)


def _member(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": m["id"], "address": m["address"], "status": m["status"],
        "incarnation": int(m["incarnation"]), "partitions_owned": m["partitions_owned"],
        "partitions_replicated": m.get("partitions_replicated", 0),
        "records": m.get("records"), "replication_lag_records": m.get("replication_lag_records"),
        "ring_checksum": f"{int(m['ring_checksum']):016x}", "rtt_ms": round(float(m["rtt_ms"]), 3),
    }


def render_node(data: dict[str, Any]) -> str:
    node = data["node"]
    rows = [
        ("id", "address", "state", "partitions", "records", "counters", "keys", "storage", "fsync", "coherent"),
        (node["id"], node["address"], node["state"], str(node["partitions_owned"]), str(node["records"]),
         str(node["counters"]), str(node["keys"]), node["storage"], node["fsync"], str(data["coherent"]).lower()),
    ]
    return "\n".join([
        _table(rows), "",
        f"partitions {data['partitions']}  ring checksum {int(data['ring_checksum']):016x}  "
        f"uptime {float(node['uptime_s']):.0f}s  version {node['version']}",
    ])


def render_members(data: dict[str, Any]) -> str:
    mine = int(data["ring_checksum"])
    rows = [("id", "address", "status", "incarnation", "owned", "replicated", "records", "lag", "ring checksum", "rtt ms")]
    disagree = False
    for m in data.get("members", []):
        cs = int(m["ring_checksum"])
        differs = m["status"] in ("alive", "suspect") and cs not in (0, mine)
        disagree |= differs
        rows.append((m["id"], m["address"], m["status"], str(int(m["incarnation"])), str(m["partitions_owned"]),
                     str(m.get("partitions_replicated", 0)), str(m.get("records", "-")),
                     str(m.get("replication_lag_records", "-")),
                     f"{cs:016x}{' *' if differs else ''}" if cs else "-",
                     f"{float(m['rtt_ms']):.2f}" if float(m["rtt_ms"]) else "-"))
    lines = [_table(rows)]
    lines.append("* ring checksums disagree: the cluster has not converged" if disagree
                 else f"coherent: {str(data['coherent']).lower()}")
    return "\n".join(lines)


def render_partitions(data: dict[str, Any]) -> str:
    rows = [("partition", "role", "owner", "replicas", "epoch", "offset", "high-watermark", "lag", "log start",
             "counters", "keys")]
    for ps in data.get("partition_status") or []:
        rows.append((str(ps["partition"]), ps.get("role", ""), ps["owner"], ",".join(ps.get("replicas", [])) or "-",
                     str(ps["epoch"]), str(ps["next_offset"]), str(ps.get("high_watermark", 0)),
                     str(ps.get("lag_records", 0)), str(ps["log_start_offset"]), str(ps["counters"]), str(ps["keys"])))
    return _table(rows)


def render_counters(reply: Any, as_json: bool) -> str:
    from fero import values

    entries = [
        {"name": e.name, "value": str(values.parse_number(e.value)), "kind": values.Kind.parse(e.kind).label,
         "expire_at_ms": e.expire_at_ms}
        for e in reply.counters
    ]
    if as_json:
        return json.dumps({"counters": entries, "truncated": reply.truncated, "partial": reply.partial,
                           "coherent": reply.coherent}, indent=2)
    rows = [("name", "value", "kind", "expires (unix ms)")]
    rows += [(e["name"], e["value"], e["kind"], str(e["expire_at_ms"] or "-")) for e in entries]
    notes = []
    if reply.truncated:
        notes.append("(more counters than shown)")
    if reply.partial:
        notes.append("(some owners did not answer: the list may be incomplete)")
    return "\n".join([_table(rows), *notes])


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
