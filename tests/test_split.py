"""A 5-node cluster split 2+3 through a fault-injecting transport (each node's peer
transport refuses the other side), increments on both sides, heal.

With split_policy "available" both sides keep taking writes and answer
coherent=false; after the heal every counter equals the sum of every acknowledged
increment from both sides, none twice. With "consistent" the minority refuses writes.
Real gRPC servers on loopback, one process; clients talk only to their own side.
"""

import asyncio
import dataclasses
import random

import pytest

import fero
from fero.config import ClusterConfig, Config
from fero.errors import FeroError, Unavailable
from fero.membership.config import MembershipConfig
from fero.testing.cluster import local_cluster

from .conftest import eventually

pytestmark = pytest.mark.slow

COUNTERS = 200


def membership():
    # The local preset at twice its probe rate, with partition healing tried every 2 s
    # instead of 15 s, so the test spends its time on the split, not on waiting.
    return MembershipConfig.local().with_(
        probe_interval_s=0.5, probe_timeout_s=0.2, rejoin_interval_s=2.0, heal_attempts_per_interval=5.0
    )


def cluster(policy="available", n=5):
    cfg = Config(membership=membership(), cluster=dataclasses.replace(ClusterConfig(), split_policy=policy)).validate()
    return local_cluster(n, cfg)


def describe(nodes):
    return "; ".join(
        f"{n.node_id}: ring {len(n.ring)}, coherent {n.coherent()}, catching up {n.ownership.catching_up()}" for n in nodes
    )


def split(nodes, left, right):
    la, ra = {n.address for n in left}, {n.address for n in right}
    for n in left:
        n.transport.blocked = lambda a, ra=ra: a in ra
    for n in right:
        n.transport.blocked = lambda a, la=la: a in la


def heal(nodes):
    for n in nodes:
        n.transport.blocked = lambda a: False


async def add_load(addresses, ledger, tag, count, acks="leader", retry_for_s=5.0, budget_s=60.0):
    """`count` adds through the given nodes only; returns how many were refused. Stops
    after `budget_s` (what was not tried counts as refused), so a cluster that cannot
    serve fails the test's assertions instead of its timeout."""
    rng = random.Random(tag)
    refused = 0
    deadline = asyncio.get_running_loop().time() + budget_s
    async with fero.connect(addresses, route=False, retry_for_s=retry_for_s) as c:
        for i in range(count):
            if asyncio.get_running_loop().time() > deadline:
                return refused + count - i
            name, amount, ticket = f"c{rng.randrange(COUNTERS)}", rng.randrange(1, 50), f"{tag}-{i}"
            try:
                r = await c.add(name, amount, ticket=ticket, acks=acks)
            except FeroError:
                refused += 1
                continue
            ledger[ticket] = (name, amount, r.coherent)
    return refused


def sums(ledger):
    out: dict[str, int] = {}
    for name, amount, _ in ledger.values():
        out[name] = out.get(name, 0) + amount
    return out


def test_split_both_sides_write_then_heal_converges_exactly():
    async def main():
        async with cluster() as nodes:
            left, right = nodes[:2], nodes[2:]
            ledger: dict = {}
            await add_load([n.address for n in nodes], ledger, "before", 300)
            split(nodes, left, right)
            await eventually(
                lambda: all(len(n.ring) == 2 for n in left) and all(len(n.ring) == 3 for n in right),
                60, "each side to drop the other from its ring",
            )
            assert not any(n.coherent() for n in nodes)
            during: dict = {}
            refused_left, refused_right = await asyncio.gather(
                add_load([n.address for n in left], during, "left", 400),
                add_load([n.address for n in right], during, "right", 400),
            )
            assert refused_left == refused_right == 0, f"with 'available' both sides take writes; {describe(nodes)}"
            assert during and not any(coherent for _, _, coherent in during.values())
            ledger.update(during)
            heal(nodes)
            await eventually(lambda: all(n.coherent() and len(n.ring) == 5 for n in nodes), 90, "the cluster to heal")
            expected = sums(ledger)
            wrong: list = []

            async def converged():
                wrong.clear()
                # Short retries: a counter that cannot be read counts as wrong, and the
                # failure then describes the cluster instead of hitting the test timeout.
                async with fero.connect([n.address for n in nodes], retry_for_s=2.0, timeout_s=2.0) as c:
                    for i in range(COUNTERS):
                        try:
                            got = (await c.get(f"c{i}")).value
                        except FeroError as exc:
                            wrong.append((f"c{i}", f"unreadable: {exc}", expected.get(f"c{i}", 0)))
                            return False
                        if got != expected.get(f"c{i}", 0):
                            wrong.append((f"c{i}", got, expected.get(f"c{i}", 0)))
                return not wrong

            try:
                await eventually(converged, 60, "every counter to equal the sum of both sides")
            except AssertionError:
                raise AssertionError(f"not converged: {wrong[:10]}; {describe(nodes)}") from None
            # And every replica agrees with its owner.
            async with fero.connect([n.address for n in nodes]) as c:
                for n in nodes:
                    for i in range(0, COUNTERS, 7):
                        if n.holds(f"c{i}"):
                            assert (await c.get(f"c{i}", stale_ok=True, address=n.address)).value == expected.get(f"c{i}", 0)
            return len(ledger), len(during)

    total, during = asyncio.run(main())
    print(f"acknowledged={total} (during the split: {during}); converged exactly")


def test_consistent_policy_minority_refuses_writes_majority_takes_them():
    async def main():
        async with cluster("consistent") as nodes:
            left, right = nodes[:2], nodes[2:]
            split(nodes, left, right)
            await eventually(
                lambda: all(len(n.ring) == 2 for n in left) and all(len(n.ring) == 3 for n in right),
                60, "each side to drop the other",
            )
            ledger: dict = {}
            refused_left = await add_load([n.address for n in left], ledger, "left", 20, retry_for_s=0.0)
            refused_right = await add_load([n.address for n in right], ledger, "right", 50)
            assert refused_left == 20, "the minority refuses every write"
            assert refused_right == 0, f"the majority keeps taking writes; {describe(nodes)}"
            async with fero.connect(left[0].address, route=False, retry_for_s=0.0) as c:
                with pytest.raises(Unavailable, match="no majority"):
                    await c.add("c1", 1)
            heal(nodes)
            await eventually(lambda: all(n.coherent() and len(n.ring) == 5 for n in nodes), 90, "the cluster to heal")
            refused = await add_load([left[0].address], ledger, "after", 20)
            assert refused == 0, f"after the heal every write is taken; {describe(nodes)}"

    asyncio.run(main())


def test_split_with_batches_on_both_sides_and_a_batch_retried_across_it_converges_exactly():
    """Columnar batches (one ticket each) written on both sides of a split, and some of
    the same batches sent again to the other side, as a client whose owner became
    unreachable would: after the heal each batch counts once. The merge meets the
    records of a batch one by one (with tickets derived from the batch's), so this
    checks that they are recognised by the batch ticket."""
    from fero import batch as batches
    from fero.v1 import changelog_pb2
    from fero.v1 import types_pb2 as pb

    P = 256
    names = [f"c{i}" for i in range(COUNTERS)]
    by_partition: dict[int, list[str]] = {}
    for name, p in zip(names, batches.partitions_of(names, P)):
        by_partition.setdefault(p, []).append(name)
    parts = sorted(by_partition)
    rng = random.Random(5)

    def make(tag: str, i: int) -> pb.Batch:
        p = parts[rng.randrange(len(parts))]
        keys = [rng.choice(by_partition[p]) for _ in range(rng.randrange(1, 20))]
        return pb.Batch(partition=p, ticket=f"{tag}-{i}", op=pb.OP_COUNTER_ADD, keys=keys,
                        amounts=[rng.randrange(1, 50) for _ in keys])

    async def commit(address: str, group: list[pb.Batch]) -> list[pb.BatchResult]:
        async with fero.connect(address, route=False, retry_for_s=5.0) as c:
            reply = await c._conn(address).commit(changelog_pb2.CommitRequest(batches=group, acks=pb.ACKS_LEADER), 10.0)
            return list(reply.batch_results)

    async def main():
        async with cluster() as nodes:
            left, right = nodes[:2], nodes[2:]
            split(nodes, left, right)
            await eventually(
                lambda: all(len(n.ring) == 2 for n in left) and all(len(n.ring) == 3 for n in right),
                60, "each side to drop the other from its ring",
            )
            acked: dict[str, pb.Batch] = {}
            sent_left = [make("L", i) for i in range(60)]
            sent_right = [make("R", i) for i in range(60)]
            for side, sent in ((left, sent_left), (right, sent_right)):
                for i in range(0, len(sent), 10):
                    group = sent[i:i + 10]
                    for b, r in zip(group, await commit(side[0].address, group)):
                        assert not r.error_code and not r.errors and not r.duplicate, (r, describe(nodes))
                        acked[b.ticket] = b
            # Retries across the split: batches the left side committed, sent again to
            # the right (which has never seen them), and the other way round.
            again = sent_left[:15] + sent_right[:15]
            for b, r in zip(again[:15], await commit(right[0].address, again[:15])):
                assert not r.error_code and not r.duplicate, r
            for b, r in zip(again[15:], await commit(left[0].address, again[15:])):
                assert not r.error_code and not r.duplicate, r
            heal(nodes)
            await eventually(lambda: all(n.coherent() and len(n.ring) == 5 for n in nodes), 90, "the cluster to heal")
            expected: dict[str, int] = {}
            for b in acked.values():
                for name, amount in zip(b.keys, b.amounts):
                    expected[name] = expected.get(name, 0) + amount
            wrong: list = []

            async def converged():
                wrong.clear()
                async with fero.connect([n.address for n in nodes], retry_for_s=2.0, timeout_s=2.0) as c:
                    for name in names:
                        try:
                            got = (await c.get(name)).value
                        except FeroError as exc:
                            wrong.append((name, f"unreadable: {exc}"))
                            return False
                        if got != expected.get(name, 0):
                            wrong.append((name, got, expected.get(name, 0)))
                return not wrong

            try:
                await eventually(converged, 60, "every counter to count each batch once")
            except AssertionError:
                raise AssertionError(f"not converged: {wrong[:10]}; {describe(nodes)}") from None
            # Every copy agrees, and a batch sent once more is a duplicate wherever it lands.
            async with fero.connect([n.address for n in nodes]) as c:
                for n in nodes:
                    for name in names[::5]:
                        if n.holds(name):
                            assert (await c.get(name, stale_ok=True, address=n.address)).value == expected.get(name, 0)
            for b, r in zip(again, await commit(nodes[0].address, again)):
                assert r.duplicate, r

    asyncio.run(main())
