"""The owner's Append stream to a replica across the replica's restart: the old stream
is dead (writes to it fail, in cygrpc's own ways), and the link must open a new one
and bring the restarted replica up to date. Real processes, SIGKILL, same address."""

import asyncio
import signal

import fero

from .conftest import eventually

COUNTERS = 60


async def _add_all(addresses, tag, n):
    async with fero.connect(addresses, retry_for_s=30.0) as c:
        for i in range(n):
            await c.add(f"c{i % COUNTERS}", 1, ticket=f"{tag}-{i}", acks="all")


async def _copy_on(node, expected):
    async with fero.connect(node.address, route=False, retry_for_s=0.0, timeout_s=2.0) as c:
        for i in range(COUNTERS):
            if (await c.get(f"c{i}", stale_ok=True, address=node.address)).value != expected.get(f"c{i}", 0):
                return False
    return True


def test_a_restarted_replica_is_brought_up_to_date_over_a_new_stream(serve, tmp_path):
    args = ["--membership", "local", "--fsync", "interval"]
    n0 = serve(tmp_path / "n0", node_id="n0", extra_args=args)
    n1 = serve(tmp_path / "n1", node_id="n1", extra_args=args + ["--seeds", n0.address])

    async def whole():
        async with fero.connect(n0.address, retry_for_s=0.0) as c:
            st = await c.status()
            return st.coherent and sum(m.status == "alive" for m in st.members) == 2

    async def run():
        await eventually(whole, 30, "a cluster of 2")
        await _add_all([n0.address, n1.address], "before", 120)
        expected = {f"c{i}": 2 for i in range(COUNTERS)}
        await eventually(lambda: _copy_on(n1, expected), 20, "n1's copy before the kill")
        # The links are idle now, their streams open: kill the replica under them.
        n1.kill(signal.SIGKILL)
        n1.start()
        await eventually(whole, 60, "the restarted n1 back in the cluster")
        await _add_all([n0.address], "after", 120)
        expected = {f"c{i}": 4 for i in range(COUNTERS)}
        await eventually(lambda: _copy_on(n1, expected), 30, "n1's copy after its restart")
        await eventually(lambda: _copy_on(n0, expected), 30, "n0's copy")

    asyncio.run(run())
