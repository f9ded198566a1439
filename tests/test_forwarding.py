"""Proxy to owner and client routing, with three real in-process nodes on loopback."""

import asyncio

import grpc
import pytest

import fero
from fero.documents import partition_key
from fero.ring import partition_of
from fero.testing.cluster import local_cluster
from fero.v1 import counters_pb2, counters_pb2_grpc, types_pb2

from .conftest import eventually


def cluster(n=3):
    return local_cluster(n)


def owned_records(node):
    return sum(node.engine.partitions[p].next_offset for p in range(node.config.dht.partitions))


def test_any_node_forwards_to_the_owner_and_reads_are_forwarded_too():
    async def main():
        async with cluster() as nodes:
            async with fero.connect(nodes[0].address, route=False) as c:
                for i in range(300):
                    r = await c.add(f"c{i % 100}", i)
                    assert r.coherent
                results = await c.commit([c.record(types_pb2.OP_UPDATE, f"doc{i}.v", value=i) for i in range(50)])
                assert not any(r.error_code for r in results)
            for node in nodes:  # every node answers every read, by forwarding it
                async with fero.connect(node.address, route=False) as c:
                    for i in range(100):
                        assert (await c.get(f"c{i}")).value == sum(j for j in range(300) if j % 100 == i)
                    assert await c.read("doc7") == {"v": 7}
            # Each record sits on its owner and, with RF=3 on three nodes, on both others.
            on_owners = [sum(n.engine.partitions[p].next_offset for p in range(256) if n.ring.owner(p) == n.node_id)
                         for n in nodes]
            assert sum(on_owners) == 350 and all(on_owners), on_owners
            await eventually(lambda: [owned_records(n) for n in nodes] == [350] * 3, 10, "replicas to have every record")

    asyncio.run(main())


def test_routing_client_sends_to_owners_directly():
    async def main():
        async with cluster() as nodes:
            async with fero.connect([nodes[1].address]) as c:
                async with c.pipeline(batch_size=256) as p:
                    for i in range(3000):
                        await p.add(f"k{i % 500}", 1)
                assert len(c._members) == 3
                for i in range(0, 500, 50):
                    assert (await c.get(f"k{i}")).value == 6
            await eventually(lambda: [owned_records(n) for n in nodes] == [3000] * 3, 10, "every record on all three nodes")

    asyncio.run(main())


def test_a_stale_ring_is_refreshed_in_the_background_while_calls_go_on():
    """A call that comes after RING_REFRESH_S does not wait for the refresh: it goes to
    the owner the ring it has names, and one refresh runs meanwhile. The same members
    keep the same ring (and the owners it looked up)."""

    async def main():
        async with cluster() as nodes:
            async with fero.connect([nodes[1].address]) as c:
                await c.add("k", 1)
                ring = c._ring
                assert ring is not None and len(c._members) == 3
                gate, entered = asyncio.Event(), []
                real_refresh = c.refresh_ring

                async def held_refresh() -> None:
                    # Only the background refresh waits at the gate (a retried call's
                    # refresh, after a "not owner", goes straight through).
                    if asyncio.current_task() is c._ring_refresh:
                        entered.append(1)
                        c._ring_checked_at = loop.time()  # as refresh_ring does before its first await
                        await gate.wait()
                        c._ring_checked_at = -1e9  # (so that it is not rate-limited here)
                    await real_refresh()

                loop = asyncio.get_running_loop()
                c.refresh_ring = held_refresh  # type: ignore[method-assign]
                c._ring_checked_at = loop.time() - fero.client.RING_REFRESH_S - 1
                # Each call returns while the refresh it started still waits at the gate.
                for i in range(5):
                    assert (await asyncio.wait_for(c.add("k", 1), 5)).value == i + 2
                assert entered == [1] and c._ring_refresh is not None
                gate.set()
                await eventually(lambda: c._ring_refresh is None, 10, "the background refresh to end")
                assert loop.time() - c._ring_checked_at < fero.client.RING_REFRESH_S
                assert c._ring is ring  # nobody joined or left: the same ring
                # A failover (the node that answered failed) replaces a refresh still
                # running, at once: that one may be asking the failed node.
                gate.clear()
                c._ring_checked_at = loop.time() - fero.client.RING_REFRESH_S - 1
                await c.add("k", 1)
                held = c._ring_refresh
                assert held is not None and not held.done()
                began = c._ring_checked_at
                await c._failed_over()
                assert held.cancelled() and c._ring_refresh is None and c._ring_checked_at > began
                # A refresh still running when the client closes is cancelled with it.
                gate.clear()
                c._ring_checked_at = loop.time() - fero.client.RING_REFRESH_S - 1
                await c.add("k", 1)
                pending = c._ring_refresh
                assert pending is not None and not pending.done()
            assert pending.cancelled() and c._ring_refresh is None

    asyncio.run(main())


def test_a_forwarded_call_to_a_non_owner_is_refused_not_forwarded_again():
    async def main():
        async with cluster() as nodes:
            name = next(f"x{i}" for i in range(1000)
                        if nodes[0].ring.owner(partition_of(partition_key(f"x{i}"), 256)) != nodes[0].node_id)
            async with grpc.aio.insecure_channel(nodes[0].address) as ch:
                stub = counters_pb2_grpc.CountersStub(ch)
                req = counters_pb2.AddRequest(name=name, amount=types_pb2.Number(i64=1), ticket="hop-test")
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.Add(req, metadata=(("fero-hop", "1"),), timeout=5)
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
                assert err.value.details().startswith("not owner")
                ok = await stub.Add(req, timeout=5)  # without the hop marker it is forwarded
                assert ok.value.i64 == 1

    asyncio.run(main())


def test_list_counters_across_owners_and_fero_ls_counters():
    import json
    import subprocess
    import sys

    async def main():
        async with cluster() as nodes:
            async with fero.connect([nodes[0].address]) as c:
                for i in range(60):
                    await c.add(f"bill.{i:02d}" if i % 2 else f"bill-{i:02d}", i + 1)
                    await c.add(f"other{i}", 1)
                listed = await c.list("bill-")
                everything = await c.list("", limit=1000)
                capped = await c.list("bill", limit=10)
            out = await asyncio.to_thread(subprocess.run, [
                sys.executable, "-m", "fero.cli.ls", "counters", "bill-", "--seeds", nodes[2].address, "--json"],
                capture_output=True, text=True, timeout=30)
            owners = {nodes[0].ring.owner(partition_of(partition_key(f"bill-{i:02d}"), 256)) for i in range(0, 60, 2)}
            return listed, everything, capped, out, owners

    listed, everything, capped, out, owners = asyncio.run(main())
    assert listed == {f"bill-{i:02d}": i + 1 for i in range(0, 60, 2)}
    assert list(listed) == sorted(listed)
    assert len(owners) == 3, "the counters live on all three owners"
    assert len(everything) == 120
    assert len(capped) == 10
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [e["name"] for e in data["counters"]] == sorted(listed) and not data["partial"]
    assert {e["name"]: int(e["value"]) for e in data["counters"]} == listed
