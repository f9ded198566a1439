"""A subscription to a key prefix across a 3-node cluster receives every commit once,
in per-partition order, while partitions move (a node leaves and ownership changes)."""

import asyncio

import pytest

import fero

from .test_forwarding import cluster
from .conftest import eventually

pytestmark = pytest.mark.slow


def test_prefix_subscription_sees_every_commit_once_across_an_ownership_change():
    async def main():
        async with cluster() as nodes:
            async with fero.connect([n.address for n in nodes[:2]]) as c:
                sub = await c.subscribe(prefix="", earliest=True)
                got: list = []

                async def read():
                    async for ch in sub:
                        got.append(ch)

                reader = asyncio.create_task(read())
                sent = []
                for i in range(300):
                    r = await c.add(f"s{i % 60}", 1, ticket=f"before-{i}")
                    sent.append(r.ticket)
                await eventually(lambda: len(got) >= 300, 20, "the first 300 commits")
                # nodes[2] leaves: its partitions move to the other two.
                await nodes[2].stop()
                await eventually(lambda: all(len(n.ring) == 2 for n in nodes[:2]), 30, "the ring to drop the leaver")
                for i in range(300):
                    r = await c.add(f"s{i % 60}", 1, ticket=f"after-{i}")
                    sent.append(r.ticket)
                await eventually(lambda: len({ch.ticket for ch in got}) >= 600, 30, "all 600 commits")
                await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now
                reader.cancel()
                await sub.aclose()
            return sent, got

    sent, got = asyncio.run(main())
    commits = [ch for ch in got if ch.op != "reset"]
    tickets = [ch.ticket for ch in commits]
    assert sorted(tickets) == sorted(sent), "every commit exactly once"
    by_partition: dict[int, list[int]] = {}
    for ch in commits:
        by_partition.setdefault(ch.partition, []).append(ch.offset)
    for p, offs in by_partition.items():
        assert offs == sorted(offs) and len(set(offs)) == len(offs), (p, offs)
    assert not [ch for ch in got if ch.op == "reset"], "a clean handover rewrites no log"
