"""digest — what one anti-entropy comparison costs as origin vectors grow.

Every `anti_entropy_s` (2 s) each node asks its peers for the digests of the
partitions it holds and compares their origin vectors with its own, on its event loop.
A vector holds an entry for every node incarnation that ever wrote to the partition,
so it grows with every restart of every node. In process: two engines of 256
partitions hold the same --origins old origins in each partition, and the peer's
owner writes on between rounds (its own origin rises in every partition, as under
load). Each round is what one node's anti-entropy does with one peer:

  full     the digests as they were before compact ones: the peer builds and
           serialises every entry; this node parses them and compares each one
  compact  DigestRequest.compact: the latest changed origins in full, the rest as one
           fingerprint (fero/origins.py); a partition whose fingerprints differ is
           asked again in full (none here: the history is the same on both)

    python -m benchmarks.digest --origins 10,100,1000 --rounds 7

Reported: milliseconds per round on each side (medians of --rounds), the reply's size,
and compact over full. Results go to benchmarks/results/digest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from benchmarks import common

PARTITIONS = 256


def _engines(origins: int) -> tuple[Any, Any]:
    from fero.clock import Clock
    from fero.config import Config
    from fero.engine import Engine

    peer, mine = (Engine(Config().validate(), Clock(), n, None) for n in ("peer", "mine"))
    for e in (peer, mine):
        e.open()
        for state in e.partitions:
            for k in range(origins):
                state.origins[f"n{k % 3}/{1_700_000_000_000 + k}"] = 1000 + k
            state.origins["n0/now"] = 1
            state.origins.fingerprint  # as after an earlier round: the history is settled
    return peer, mine


class _Stub:
    """The peer's Digest endpoint, in process: what Node.digests answers, serialised."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.served_s = 0.0
        self.bytes = 0

    async def Digest(self, request: Any, timeout: float) -> Any:
        from fero.v1 import peer_pb2

        t = time.perf_counter()
        raw = peer_pb2.DigestReply(
            digests=[self.engine.digest(p, request.compact) for p in request.partitions]).SerializeToString()
        self.served_s += time.perf_counter() - t
        self.bytes += len(raw)
        return peer_pb2.DigestReply.FromString(raw)


async def _rounds(origins: int, rounds: int) -> dict[str, dict[str, float]]:
    from fero.handoff import Ownership
    from fero.v1 import peer_pb2

    peer, mine = _engines(origins)

    class Transport:
        stub_now: _Stub

        def stub(self, address: str) -> _Stub:
            return self.stub_now

    transport = Transport()
    ownership = Ownership(mine, "mine", 3, transport, None, lambda _: None, lambda: [])  # type: ignore[arg-type]
    parts = list(range(PARTITIONS))
    out: dict[str, dict[str, list[float]]] = {"full": {}, "compact": {}}
    for r in range(rounds):
        for mode in ("full", "compact"):
            for state in peer.partitions:  # the peer's owner wrote on since the last round
                state.origins["n0/now"] = state.origins["n0/now"] + 10
            stub = _Stub(peer)
            t = time.perf_counter()
            if mode == "full":
                reply = await stub.Digest(peer_pb2.DigestRequest(partitions=parts), timeout=10)
                found = [d for d in reply.digests
                         if any(o.seq > mine.partitions[d.partition].origins.get(o.origin, 0) for o in d.origins)]
            else:
                transport.stub_now = stub
                found = await ownership._beyond_ours("peer", parts)
            total = time.perf_counter() - t
            if len(found) != PARTITIONS:
                raise RuntimeError(f"{mode}: {len(found)} partitions found ahead, {PARTITIONS} are")
            row = out[mode]
            for k, v in (("peer_ms", stub.served_s * 1000), ("this_node_ms", (total - stub.served_s) * 1000),
                         ("reply_kb", stub.bytes / 1000)):
                row.setdefault(k, []).append(v)
    return {mode: {k: common.median(v) for k, v in row.items()} for mode, row in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.digest", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--origins", default="10,100,1000", help="old origins in each partition's vector")
    ap.add_argument("--rounds", type=int, default=7, help="rounds per size; medians are reported")
    ap.add_argument("--out", default="digest")
    args = ap.parse_args(argv)
    meta = common.header("digest")
    results: dict[str, Any] = {}
    rows = []
    for n in (int(x) for x in args.origins.split(",")):
        res = results[str(n)] = asyncio.run(_rounds(n, args.rounds))
        full, compact = res["full"], res["compact"]
        ratio = (compact["peer_ms"] + compact["this_node_ms"]) / (full["peer_ms"] + full["this_node_ms"])
        for mode, r in (("full", full), ("compact", compact)):
            rows.append([f"{n:,}", mode, f"{r['peer_ms']:.2f}", f"{r['this_node_ms']:.2f}", f"{r['reply_kb']:.0f}",
                         f"{ratio:.3f}x" if mode == "compact" else ""])
    table = common.print_table(
        ["origins", "digests", "peer ms", "this node ms", "reply KB", "compact/full"], rows)
    common.write_json(args.out, {**meta, "params": vars(args), "partitions": PARTITIONS, "results": results,
                                 "table": table})
    return 0


if __name__ == "__main__":
    sys.exit(common.cli(main))
