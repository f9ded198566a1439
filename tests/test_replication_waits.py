"""acks=ALL waits (Replicator.wait_all) without any message from the replicas: a wait
ends when the replica drops out of the in-sync set, and fails at its deadline."""

import asyncio
from types import SimpleNamespace

import pytest

from fero import replication
from fero.errors import Unavailable


class FakeLink:
    """A link whose replica holds `acked` records of each partition (0, unless given)
    and never answers."""

    def __init__(self, partitions=(0,)) -> None:
        self.progress = {p: SimpleNamespace(acked=0) for p in partitions}
        self.synced = True

    def in_sync(self, p: int) -> bool:
        return self.synced

    def covers(self, p: int, end: int) -> bool:
        return self.progress[p].acked >= end

    def wake(self, partitions=None) -> None:
        pass

    async def stop(self) -> None:
        pass


def replicator(link: FakeLink) -> replication.Replicator:
    r = replication.Replicator(engine=None, transport=None, address_of=lambda _: None)
    r.assignment = {0: ["b"]}
    r.links = {"b": link}
    return r


def test_a_wait_ends_when_its_replica_drops_out_of_the_in_sync_set(monkeypatch):
    monkeypatch.setattr(replication, "RECHECK_S", 0.05)

    async def main():
        link = FakeLink()
        r = replicator(link)
        waiting = asyncio.ensure_future(r.wait_all({0: 5}, timeout_s=30))
        await asyncio.sleep(0.2)
        assert not waiting.done(), "returned although the in-sync replica lacks the records"
        link.synced = False  # the lag timeout passed: no message tells the replicator
        await asyncio.wait_for(waiting, 5)

    asyncio.run(main())


def test_a_wait_fails_retriably_at_its_deadline(monkeypatch):
    monkeypatch.setattr(replication, "RECHECK_S", 0.05)

    async def main():
        r = replicator(FakeLink())
        with pytest.raises(Unavailable, match="did not acknowledge"):
            await asyncio.wait_for(r.wait_all({0: 5}, timeout_s=0.2), 5)
        assert not r._waiters

    asyncio.run(main())


def test_an_ack_releases_the_wait_at_once():
    async def main():
        link = FakeLink()
        r = replicator(link)
        waiting = asyncio.ensure_future(r.wait_all({0: 5}, timeout_s=30))
        await asyncio.sleep(0)
        link.progress[0].acked = 5
        r.changed()  # what a link does when a reply comes
        await asyncio.sleep(0)
        assert waiting.done() and waiting.exception() is None

    asyncio.run(main())


def test_a_reply_looks_only_at_the_waits_on_its_partitions():
    """A link's reply names the partitions it moved: only the calls waiting on those are
    looked at (each reply looked at every waiting call, 0.4 ms a reply with a thousand
    waiting); the others stay waiting, and a wait on several partitions ends with the
    last of them."""

    async def main():
        link = FakeLink(range(50))
        r = replicator(link)
        r.assignment = {p: ["b"] for p in range(50)}
        waits = [asyncio.ensure_future(r.wait_all({p: 5}, timeout_s=30)) for p in range(50)]
        both = asyncio.ensure_future(r.wait_all({7: 5, 8: 5}, timeout_s=30))
        await asyncio.sleep(0)
        looked = []
        satisfied = r._satisfied
        r._satisfied = lambda needs: looked.append(sorted(needs)) or satisfied(needs)
        link.progress[7].acked = 5
        r.changed([7])
        await asyncio.sleep(0)
        assert looked == [[7], [7, 8]]
        assert [i for i, w in enumerate(waits) if w.done()] == [7] and not both.done()
        looked.clear()
        link.progress[8].acked = 5
        r.changed([8])
        await asyncio.sleep(0)
        assert looked == [[8], [7, 8]] and both.done() and waits[8].done()
        assert sorted(r._waiting) == sorted(set(range(50)) - {7, 8}) and len(r._waiters) == 48
        await r.close()
        assert not r._waiters and not r._waiting
        await asyncio.gather(*waits, both, return_exceptions=True)

    asyncio.run(main())


def test_closing_the_replicator_fails_the_waits_retriably():
    async def main():
        r = replicator(FakeLink())
        waiting = asyncio.ensure_future(r.wait_all({0: 5}, timeout_s=30))
        await asyncio.sleep(0)
        await r.close()
        with pytest.raises(Unavailable, match="stopping"):
            await asyncio.wait_for(waiting, 5)

    asyncio.run(main())


def test_a_step_survives_its_partitions_being_reassigned_while_it_asks_the_replica():
    """The Digest call awaits; a ring change meanwhile takes partition 0 off the link.
    The step went on to look the partition up and failed with KeyError (seen under load
    after a false suspicion), so the link slept a second and its other partitions waited."""

    async def main():
        link: replication.Link

        class Stub:
            async def Digest(self, request, timeout):
                link.assign({1})  # what Replicator.assign does on a ring change
                await asyncio.sleep(0)
                return replication.peer_pb2.DigestReply(digests=[replication.peer_pb2.PartitionDigest(partition=0)])

        r = SimpleNamespace(address_of=lambda _: "b:1", transport=SimpleNamespace(stub=lambda _: Stub()),
                            engine=None, changed=lambda: None)
        link = replication.Link(r, "b")
        link.assign({0})
        assert await link._step() is False
        assert set(link.progress) == {1} and link._pending == {1}

    asyncio.run(main())


def test_every_partition_gets_its_turn_when_a_backlog_is_larger_than_an_append(tmp_path, monkeypatch):
    """An Append carries about MAX_BYTES_PER_CALL (here one frame). Partitions 0 and 1
    get a new frame before every call; 2 and 3 have one each, waiting. Taking pending
    partitions in the same order every call, 0 and 1 took every Append and 2 and 3
    never went (their acks=ALL writes would time out)."""
    from fero.config import Config
    from fero.clock import ManualClock
    from fero.documents import partition_key
    from fero.engine import Engine
    from fero.ring import partition_of
    from fero.v1 import peer_pb2
    from fero.v1 import types_pb2 as pb

    monkeypatch.setattr(replication, "MAX_BYTES_PER_CALL", 3000)
    value = b'"' + b"v" * 1000 + b'"'

    async def main():
        e = Engine(Config(), ManualClock(), "n0", tmp_path)
        e.open()
        e.start()
        P = len(e.partitions)

        def names_in(p):
            return (n for i in range(10**6) if partition_of(partition_key(n := f"k{i}"), P) == p)

        names = {p: names_in(p) for p in range(4)}
        tickets = iter(range(10_000))

        async def frame(p):  # one frame of 3 records, about 3 KB
            keys = [next(names[p]) for _ in range(3)]
            await e.commit_batches([pb.Batch(partition=p, ticket=f"t{next(tickets)}", op=pb.OP_UPDATE, keys=keys,
                                             values=[value] * 3)], pb.ACKS_LEADER)

        r = replication.Replicator(engine=e, transport=SimpleNamespace(stub=lambda _: None), address_of=lambda _: "b:1")
        link = replication.Link(r, "b")
        carried: list[list[int]] = []

        async def append(address, stub, request):
            req = peer_pb2.AppendRequest.FromString(request)
            carried.append([f.entry.partition for f in req.frames])
            reply = peer_pb2.AppendReply()
            for f in req.frames:
                reply.results.add(partition=f.entry.partition, ok=True,
                                  next_offset=f.entry.base_offset + len(f.entry.batch.keys))
            return reply

        link._append = append
        try:
            for p in range(4):
                await frame(p)
            link.assign({0, 1, 2, 3})
            for prog in link.progress.values():
                prog.acked = 0
            for _ in range(8):
                await frame(0)
                await frame(1)
                link.wake([0, 1])
                await link._step()
        finally:
            await e.close()
        return carried

    carried = asyncio.run(main())
    sent = {p for call in carried for p in call}
    assert {2, 3} <= sent, f"partitions 2 and 3 never went: {carried}"
