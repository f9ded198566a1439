"""Replication timing: writes nobody waits for (acks LEADER) gather for
`dht.replication_linger_ms` and reach the replicas in one Append; acks=ALL never waits
for the linger, takes whatever is gathering with it, and waits for an idle replica; an
Append the replica does not answer is given up after APPEND_TIMEOUT_S."""

import asyncio
import contextlib
import dataclasses

import pytest

import fero
from fero.config import Config, DhtConfig, StorageConfig
from fero.membership.config import MembershipConfig

from .conftest import eventually

pytestmark = pytest.mark.slow


def config(linger_ms: float, fsync: str = "always") -> Config:
    return Config(membership=MembershipConfig.local(), dht=dataclasses.replace(DhtConfig(), replication_linger_ms=linger_ms),
                  storage=dataclasses.replace(StorageConfig(), fsync=fsync)).validate()


@contextlib.asynccontextmanager
async def pair(tmp_path, linger_ms: float, fsync: str = "always"):
    a = fero.Node("a", port=0, config=config(linger_ms, fsync), data_dir=tmp_path / "a")
    b = fero.Node("b", port=0, config=config(linger_ms, fsync), data_dir=tmp_path / "b")
    try:
        await a.start()
        b.seeds = [a.address]
        await b.start()
        await eventually(lambda: all(len(n.ring) == 2 and n.coherent() for n in (a, b)), 20, "a and b to meet")
        # Every partition of a's is replicated to b and b's link has caught up.
        await eventually(lambda: a.replicator.assignment and all(
            a.replicator.links["b"].in_sync(p) for p in a.replicator.assignment), 20, "b in sync")
        yield a, b
    finally:
        await b.stop()
        await a.stop()


def owned_by(node: fero.Node, n: int, tag: str) -> list[str]:
    """n counter names in distinct partitions that `node` owns."""
    names, parts, i = [], set(), 0
    while len(names) < n:
        name = f"{tag}-{i}"
        p = node.engine.partition_for(name)
        if p in node.replicator.assignment and p not in parts:
            names.append(name)
            parts.add(p)
        i += 1
    return names


async def replica_value(client: fero.Client, b: fero.Node, name: str) -> int:
    return (await client.get(name, stale_ok=True, address=b.address)).value


async def leader_writes_one_by_one(tmp_path, linger_ms: float, n: int) -> int:
    """Appends a's link to b took for n LEADER adds sent one at a time."""
    async with pair(tmp_path, linger_ms) as (a, b):
        name = owned_by(a, 1, "one-by-one")[0]
        link = a.replicator.links["b"]
        before = link.calls
        async with fero.connect([a.address]) as c:
            for _ in range(n):
                await c.add(name, 1, acks="leader")

            async def replica_has_all():
                return await replica_value(c, b, name) == n

            await eventually(replica_has_all, 10, "b to hold every write")
        return link.calls - before


def test_leader_writes_sent_one_by_one_share_appends(tmp_path):
    # A long linger, so that the whole loop of writes falls in one or two windows even
    # on a slow machine; the same loop with no linger takes an Append per write.
    lingering = asyncio.run(leader_writes_one_by_one(tmp_path / "linger", 1000, 30))
    at_once = asyncio.run(leader_writes_one_by_one(tmp_path / "none", 0, 30))
    assert at_once >= 20, f"with no linger each write should go on its own Append, took {at_once}"
    assert lingering <= 5, f"30 writes in a 1 s linger took {lingering} Appends"


def test_acks_all_goes_at_once_and_takes_the_gathered_writes_along(tmp_path):
    async def main():
        async with pair(tmp_path, 1000) as (a, b):
            a.replicator.linger_s = 3600  # outlasts the test: only urgency sends anything
            quiet, waited = owned_by(a, 2, "urgent")
            async with fero.connect([a.address]) as c:
                for _ in range(5):
                    await c.add(quiet, 1, acks="leader")
                # Longer than the link's periodic look at its partitions (1 s), which
                # leaves gathering writes alone.
                await asyncio.sleep(1.5)
                assert await replica_value(c, b, quiet) == 0, "a LEADER write reached b before its linger ended"
                # acks=ALL does not wait for the linger (if it did, it would time out).
                r = await asyncio.wait_for(c.add(waited, 7, acks="all"), 20)
                assert r.value == 7
                assert await replica_value(c, b, waited) == 7
                # The writes gathering for another partition went along with it.
                async def quiet_arrived():
                    return await replica_value(c, b, quiet) == 5

                await eventually(quiet_arrived, 5, "the gathered LEADER writes to reach b")

    asyncio.run(main())


def test_a_graceful_stop_sends_gathered_writes_before_leaving(tmp_path):
    async def main():
        async with pair(tmp_path, 1000) as (a, b):
            a.replicator.linger_s = 3600
            name = owned_by(a, 1, "leave")[0]
            async with fero.connect([a.address]) as c:
                for _ in range(9):
                    await c.add(name, 1, acks="leader")
            await a.stop()  # a hands its partitions over: the gathered writes must go first
            async with fero.connect([b.address]) as c:
                async def b_serves_all():
                    return (await c.get(name)).value == 9

                await eventually(b_serves_all, 20, "b to serve every write after a left")

    asyncio.run(main())


def test_an_idle_replica_stays_in_sync_and_acks_all_waits_for_it(tmp_path, monkeypatch):
    from fero import replication

    monkeypatch.setattr(replication, "LAG_TIMEOUT_S", 2.5)

    async def main():
        async with pair(tmp_path, 1000) as (a, b):
            a.replicator.linger_s = 3600
            await asyncio.sleep(3.5)  # quiet for longer than the lag timeout
            parts = sorted(a.replicator.assignment)
            out = [p for p in parts if a.replicator.in_sync(p) != ["b"]]
            assert not out, f"after a quiet spell b dropped out of the in-sync set of {len(out)} partitions"
            name = owned_by(a, 1, "idle")[0]
            async with fero.connect([a.address]) as c:
                await c.add(name, 3, acks="all")
                assert await replica_value(c, b, name) == 3, "acks=ALL returned before the replica had the write"

    asyncio.run(main())


@pytest.mark.parametrize("fsync", ["always", "interval"])
def test_an_acks_all_write_costs_its_link_one_step(tmp_path, fsync, monkeypatch):
    # After the Append's reply, nothing is left to send: the link waits for the next
    # notice instead of taking another pass first (which ran before the call the reply
    # released could answer). Under fsync=always the Append is on its way while the
    # owner fsyncs, and the wait for the replicas must not send the link round again.
    from fero import replication

    monkeypatch.setattr(replication, "LOOK_EVERY_S", 3600.0)  # no periodic look in the count

    async def main():
        async with pair(tmp_path, 2, fsync) as (a, b):
            link = a.replicator.links["b"]
            step = link._step
            steps = 0

            async def counted():
                nonlocal steps
                steps += 1
                return await step()

            link._step = counted
            name = owned_by(a, 1, "one-step")[0]
            n = 40
            async with fero.connect([a.address]) as c:
                calls, steps = link.calls, 0
                for i in range(n):
                    assert (await c.add(name, 1, acks="all")).value == i + 1
                assert await replica_value(c, b, name) == n
            appends = link.calls - calls
            assert appends >= n, f"{n} acks=ALL writes went in {appends} Appends"
            # Each write: the step that sends it (a few more for the cluster's own notices,
            # e.g. a ring change, while the writes run).
            assert steps <= appends + 3, f"{steps} steps for {appends} Appends"

    asyncio.run(main())


def test_an_append_the_replica_does_not_answer_is_given_up_and_the_link_recovers(tmp_path, monkeypatch):
    # No timer per Append: the replicator's watch closes a stream whose Append is late.
    # The link fails like on any broken stream (its task lives on) and opens a new one.
    from fero import replication

    monkeypatch.setattr(replication, "APPEND_TIMEOUT_S", 0.5)
    monkeypatch.setattr(replication, "LOOK_EVERY_S", 0.1)

    async def main():
        async with pair(tmp_path, 2, "interval") as (a, b):
            link = a.replicator.links["b"]
            answer = asyncio.Event()
            hung = 0
            append = b.append_replicated

            async def hanging(request):
                nonlocal hung
                if not answer.is_set():
                    hung += 1
                    await answer.wait()
                return await append(request)

            b.append_replicated = hanging
            name = owned_by(a, 1, "late")[0]
            async with fero.connect([a.address]) as c:
                failures = link.failures
                await c.add(name, 1, acks="leader")
                t0 = asyncio.get_running_loop().time()
                await eventually(lambda: hung > 0, 10, "the Append to reach b and hang")
                await eventually(lambda: link.failures > failures, 10, "the late Append to be given up")
                took = asyncio.get_running_loop().time() - t0
                assert took >= 0.4, f"given up after {took:.2f} s, before APPEND_TIMEOUT_S"
                assert not link._task.done(), "the link's task ended with its Append"
                answer.set()
                # Out of the in-sync set since it failed: acks=ALL does not wait for b
                # now, but the link brings it up to date over a new stream.
                assert (await c.add(name, 2, acks="all")).value == 3

                async def caught_up() -> bool:
                    return await replica_value(c, b, name) == 3

                await eventually(caught_up, 10, "b's copy after the late Append")

    asyncio.run(main())
