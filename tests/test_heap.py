"""The collector in a node's process (fero.heap): `fero serve` freezes what it holds
once it serves, and the metrics page says so and how long collections stopped it."""

import asyncio
import gc
import re
import socket
import urllib.request

import fero
from fero import heap

from .test_metrics import scrape


def test_fero_serve_freezes_its_start_up_objects_and_reports_collection_pauses(serve, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = serve(tmp_path / "n", extra_args=["--metrics-port", str(port)])

    async def work():
        async with fero.connect(node.address) as c:
            for i in range(200):
                await c.add(f"h{i % 7}", 1)

    asyncio.run(work())
    m = scrape(port)
    assert_grouped(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
    # Modules, classes, functions, the gRPC server, 256 partitions: tens of thousands.
    assert m["fero_gc_frozen_objects"] > 10_000, m["fero_gc_frozen_objects"]
    # freeze() itself ran a full collection, and the adds made young ones.
    assert m['fero_gc_collections_total{generation="2"}'] >= 1
    assert m['fero_gc_collections_total{generation="0"}'] >= 1
    assert 0 < m['fero_gc_pause_longest_seconds{generation="2"}'] <= m['fero_gc_pause_seconds_total{generation="2"}']


def assert_grouped(page: str) -> None:
    """The text format's rule: each metric's samples in one block, after its HELP and TYPE."""
    seen: list[str] = []
    for line in page.splitlines():
        name = line.split(" ")[2] if line.startswith("# ") else re.split(r"[{ ]", line, maxsplit=1)[0]
        if not seen or seen[-1] != name:
            assert name not in seen, f"{name}'s lines are not together: {line!r}"
            assert line.startswith("# HELP"), f"{name} starts without HELP: {line!r}"
            seen.append(name)


def test_pauses_counts_each_collection_and_keeps_the_longest():
    p = heap.Pauses()
    gc.callbacks.append(p)
    try:
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
    finally:
        gc.callbacks.remove(p)
    assert p.count[2] >= 2 and p.count[0] >= 1
    # Two full collections, each of them some time: the longest is one part of the sum.
    assert 0 < p.longest[2] < p.seconds[2]
