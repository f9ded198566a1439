"""acks=ALL waits (Replicator.wait_all) without any message from the replicas: a wait
ends when the replica drops out of the in-sync set, and fails at its deadline."""

import asyncio
from types import SimpleNamespace

import pytest

from fero import replication
from fero.errors import Unavailable


class FakeLink:
    """A link whose replica holds `acked` records of partition 0 and never answers."""

    def __init__(self) -> None:
        self.progress = {0: SimpleNamespace(acked=0)}
        self.synced = True

    def in_sync(self, p: int) -> bool:
        return self.synced

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


def test_closing_the_replicator_fails_the_waits_retriably():
    async def main():
        r = replicator(FakeLink())
        waiting = asyncio.ensure_future(r.wait_all({0: 5}, timeout_s=30))
        await asyncio.sleep(0)
        await r.close()
        with pytest.raises(Unavailable, match="stopping"):
            await asyncio.wait_for(waiting, 5)

    asyncio.run(main())
