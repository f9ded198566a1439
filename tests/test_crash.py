"""A real `fero serve` process killed with SIGKILL while clients stream acknowledged
increments: after restart every acknowledged increment is counted exactly once.

The clients keep a ledger: every ticket they sent, and which ones the node
acknowledged. After the crash a node must count every acknowledged increment, may
count some that were in flight (committed but not yet acknowledged), and never counts
anything twice; re-sending the in-flight tickets must then bring every counter to the
exact sum of everything ever sent.
"""

import asyncio
import random

import pytest

import fero
from fero.errors import FeroError

from .conftest import eventually

COUNTERS = 40


class Ledger:
    def __init__(self):
        self.acked: dict[str, tuple[str, int]] = {}
        self.pending: dict[str, tuple[str, int]] = {}

    def sums(self, which):
        out: dict[str, int] = {}
        for name, amount in which.values():
            out[name] = out.get(name, 0) + amount
        return out


async def unary_writer(address, ledger, wid, seed, stop):
    rng = random.Random(seed)
    async with fero.connect(address, retry_for_s=0.0, timeout_s=5.0) as c:
        for i in range(200_000):
            if stop.is_set():
                return
            name, amount, ticket = f"c{rng.randrange(COUNTERS)}", rng.randrange(1, 1000), f"u{wid}-{i}"
            ledger.pending[ticket] = (name, amount)
            try:
                await c.add(name, amount, ticket=ticket)
            except FeroError:
                return
            ledger.acked[ticket] = ledger.pending.pop(ticket)


async def pipeline_writer(address, ledger, seed, stop):
    rng = random.Random(seed)

    def on_batch(records, results):
        for rec, res in zip(records, results):
            assert not res.error_code, res.error_message
            ledger.acked[rec.ticket] = ledger.pending.pop(rec.ticket)

    async with fero.connect(address, retry_for_s=0.0, timeout_s=5.0) as c:
        try:
            async with c.pipeline(batch_size=200, max_in_flight=4, on_batch=on_batch) as p:
                for i in range(1_000_000):
                    if stop.is_set():
                        return
                    name, amount, ticket = f"c{rng.randrange(COUNTERS)}", rng.randrange(1, 1000), f"p-{i}"
                    ledger.pending[ticket] = (name, amount)
                    await p.add(name, amount, ticket=ticket)
        except FeroError:
            return


async def values_of(address):
    async with fero.connect(address) as c:
        return {f"c{i}": (await c.get(f"c{i}")).value for i in range(COUNTERS)}


@pytest.mark.parametrize("fsync", ["always", "interval"])
def test_sigkill_while_streaming_loses_nothing_acknowledged_and_doubles_nothing(serve, tmp_path, fsync):
    node = serve(tmp_path / "data", extra_args=["--fsync", fsync])
    ledger = Ledger()

    async def load_then_kill():
        stop = asyncio.Event()
        writers = [asyncio.create_task(unary_writer(node.address, ledger, w, w, stop)) for w in range(4)]
        writers.append(asyncio.create_task(pipeline_writer(node.address, ledger, 99, stop)))
        try:
            await eventually(lambda: len(ledger.acked) >= 3000, 60, "3,000 acknowledged increments")
            node.kill()  # SIGKILL, mid-stream
            await asyncio.wait_for(asyncio.gather(*writers), 30)
        finally:
            stop.set()
            await asyncio.gather(*writers, return_exceptions=True)

    asyncio.run(load_then_kill())
    assert len(ledger.acked) >= 3000
    node.start()  # same data directory, same port

    async def verify():
        acked, pending = ledger.sums(ledger.acked), ledger.sums(ledger.pending)
        got = await values_of(node.address)
        for name, value in got.items():
            low, high = acked.get(name, 0), acked.get(name, 0) + pending.get(name, 0)
            assert low <= value <= high, (name, value, low, high)
        # Re-send everything that was in flight, with the same tickets.
        duplicates = 0
        async with fero.connect(node.address) as c:
            for ticket, (name, amount) in list(ledger.pending.items()):
                r = await c.add(name, amount, ticket=ticket)
                duplicates += r.duplicate
            # An acknowledged ticket sent again is recognised too.
            for ticket, (name, amount) in list(ledger.acked.items())[:200]:
                assert (await c.add(name, amount, ticket=ticket)).duplicate
        total = ledger.sums({**ledger.acked, **ledger.pending})
        final = await values_of(node.address)
        assert final == {f"c{i}": total.get(f"c{i}", 0) for i in range(COUNTERS)}
        return duplicates

    duplicates = asyncio.run(verify())
    print(f"acked={len(ledger.acked)} in-flight={len(ledger.pending)} in-flight-already-committed={duplicates}")


def test_sigterm_stops_cleanly_and_restarts_with_the_same_state(serve, tmp_path):
    node = serve(tmp_path / "data")

    async def write():
        async with fero.connect(node.address) as c:
            for i in range(100):
                await c.add("t", i)
            await c.update("doc.x", {"y": [1, 2]})

    asyncio.run(write())
    assert node.stop() == 0
    node.start()

    async def read():
        async with fero.connect(node.address) as c:
            return (await c.get("t")).value, await c.read("doc")

    assert asyncio.run(read()) == (sum(range(100)), {"x": {"y": [1, 2]}})
