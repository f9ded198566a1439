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
        self.acked_batches: dict = {}
        self.pending_batches: dict = {}

    def sums(self, which, batches=None):
        out: dict[str, int] = {}
        for name, amount in which.values():
            out[name] = out.get(name, 0) + amount
        for name, amount in _batch_sums(batches or {}).items():
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


async def batch_writer(address, ledger, seed, stop):
    """Columnar batches (fero.batch) of one partition each; the ledger is by batch."""
    from fero import batch as batches
    from fero.v1 import changelog_pb2, types_pb2

    rng = random.Random(seed)
    async with fero.connect(address, retry_for_s=0.0, timeout_s=5.0) as c:
        st = await c.status()
        P = st.partitions
        by_partition: dict[int, list[str]] = {}
        for i, p in enumerate(batches.partitions_of([f"c{i}" for i in range(COUNTERS)], P)):
            by_partition.setdefault(p, []).append(f"c{i}")
        parts = sorted(by_partition)
        for i in range(100_000):
            if stop.is_set():
                return
            p = parts[rng.randrange(len(parts))]
            keys = [rng.choice(by_partition[p]) for _ in range(rng.randrange(1, 50))]
            amounts = [rng.randrange(1, 1000) for _ in keys]
            b = types_pb2.Batch(partition=p, ticket=f"b-{i}", op=types_pb2.OP_COUNTER_ADD, keys=keys, amounts=amounts)
            ledger.pending_batches[b.ticket] = b
            try:
                reply = await c._conn(address).changelog.Commit(changelog_pb2.CommitRequest(batches=[b], acks=2))
            except Exception:
                return
            (r,) = reply.batch_results
            assert not r.error_code and not r.errors, r
            ledger.acked_batches[b.ticket] = ledger.pending_batches.pop(b.ticket)


def _batch_sums(found):
    out: dict[str, int] = {}
    for b in found.values():
        for name, amount in zip(b.keys, b.amounts):
            out[name] = out.get(name, 0) + amount
    return out


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
        writers.append(asyncio.create_task(batch_writer(node.address, ledger, 7, stop)))
        try:
            await eventually(lambda: len(ledger.acked) >= 3000 and len(ledger.acked_batches) >= 50, 60,
                             "3,000 acknowledged increments and 50 batches")
            node.kill()  # SIGKILL, mid-stream
            await asyncio.wait_for(asyncio.gather(*writers), 30)
        finally:
            stop.set()
            await asyncio.gather(*writers, return_exceptions=True)

    asyncio.run(load_then_kill())
    assert len(ledger.acked) >= 3000
    node.start()  # same data directory, same port

    async def verify():
        acked = ledger.sums(ledger.acked, ledger.acked_batches)
        pending = ledger.sums(ledger.pending, ledger.pending_batches)
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
            # Batches: those in flight again (some committed already), and acknowledged ones.
            from fero.v1 import changelog_pb2

            again = list(ledger.pending_batches.values()) + list(ledger.acked_batches.values())[:50]
            reply = await c._conn(node.address).changelog.Commit(changelog_pb2.CommitRequest(batches=again, acks=2))
            for b, r in zip(again, reply.batch_results):
                assert not r.error_code, r
                if b.ticket in ledger.acked_batches:
                    assert r.duplicate, b.ticket
                duplicates += r.duplicate
        total = ledger.sums({**ledger.acked, **ledger.pending}, {**ledger.acked_batches, **ledger.pending_batches})
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
