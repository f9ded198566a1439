"""The producer's bulk calls (update_many, add_many, action_many): each must do what
the same records put one call each would do, batch for batch, against an unconnected
producer and against a real node on a real gRPC server (127.0.0.1, port 0)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import pytest

import fero
from fero.documents import partition_key
from fero.engine import Action
from fero.errors import InvalidArgument
from fero.ring import partition_of
from fero.v1 import changelog_pb2
from fero.v1 import types_pb2 as pb

from .test_producer import I64_MAX, I64_MIN, counter, node_and_client, run


class Unconnected:
    """A client that knows the ring and hands out tickets, and is never asked to send:
    the producers below linger for good and need a request's worth (request_records)
    before they send."""

    def __init__(self, partitions: int) -> None:
        self._partitions = partitions
        self._tickets = 0

    def ticket(self) -> str:
        self._tickets += 1
        return f"t{self._tickets}"


class Recording(Unconnected):
    """A client whose every request succeeds at once; it keeps each request's batches."""

    timeout_s = 5.0

    def __init__(self, partitions: int) -> None:
        super().__init__(partitions)
        self.requests: list[list[pb.Batch]] = []

    async def _ensure_ring(self) -> None:
        pass

    def address_for_partition(self, p: int) -> str:
        return "node"

    def _conn(self, address: str) -> Any:
        return self

    async def commit(self, req: Any, timeout: float) -> changelog_pb2.CommitReply:
        batches = [pb.Batch.FromString(b.SerializeToString()) for b in req.batches]
        self.requests.append(batches)
        return changelog_pb2.CommitReply(batch_results=[pb.BatchResult() for _ in batches])


def sending(partitions: int, **kwargs: Any) -> fero.producer.Producer:
    return fero.producer.Producer(Recording(partitions), pb.ACKS_LEADER, **kwargs)  # type: ignore[arg-type]


def sent_by_partition(prod: fero.producer.Producer) -> dict[int, list[tuple[int, str, list, list]]]:
    out: dict[int, list[tuple[int, str, list, list]]] = {}
    for req in prod.client.requests:  # type: ignore[attr-defined]
        for b in req:
            column = list(b.values) if b.values else list(b.amounts)
            out.setdefault(b.partition, []).append((b.op, b.action, list(b.keys), column))
    return out


def unsent(partitions: int, batch_size: int) -> fero.producer.Producer:
    return fero.producer.Producer(Unconnected(partitions), pb.ACKS_LEADER, batch_size=batch_size,  # type: ignore[arg-type]
                                  linger_ms=3_600_000, request_records=10**9, request_bytes=1 << 60,
                                  max_buffered=10**9)


def batches_by_partition(prod: fero.producer.Producer) -> dict[int, list[tuple[int, str, list, list]]]:
    """Each partition's batches, sealed ones in the order they were sealed and then the
    open one: (op, action, keys, column)."""
    out: dict[int, list[tuple[int, str, list, list]]] = {}
    for buf in prod._ready + list(prod._buffers.values()):
        out.setdefault(buf.partition, []).append((buf.op, buf.action, list(buf.keys), list(buf.column)))
    return out


@pytest.mark.parametrize("partitions, batch_size", [(256, 7), (64, 1), (100, 3), (1, 50), (1024, 1000)])
def test_bulk_calls_make_the_batches_that_one_call_per_record_makes(partitions: int, batch_size: int) -> None:
    """Random runs of records, each run put by a bulk call into one producer and record
    by record into another: every partition gets the same batches, in the same order,
    each of batch_size records at most, and the same open batch; dotted keys (whose
    partition is their first part's) and ops that seal another op's batch included."""
    rng = random.Random(partitions * 1000 + batch_size)

    async def body() -> None:
        bulk, single = unsent(partitions, batch_size), unsent(partitions, batch_size)
        for _ in range(60):
            n = rng.choice([1, 2, 5, 40, 300])
            keys = [rng.choice([f"k{rng.randrange(500)}", f"d{rng.randrange(50)}.f{rng.randrange(3)}"])
                    for _ in range(n)]
            kind = rng.choice(["update", "add", "action", "remove"])
            if kind == "update":
                vals = [rng.choice([b"1", {"a": rng.randrange(9)}, [1, 2], "s"]) for _ in keys]
                await bulk.update_many(keys, vals)
                for k, v in zip(keys, vals):
                    await single.update(k, v)
            elif kind == "add":
                amounts = [rng.randrange(-5, 6) for _ in keys]
                await bulk.add_many(keys, amounts)
                for k, a in zip(keys, amounts):
                    await single.add(k, a)
            elif kind == "action":
                payloads = [bytes([rng.randrange(256)]) for _ in keys]
                await bulk.action_many(keys, "echo", payloads)
                for k, v in zip(keys, payloads):
                    await single.action(k, "echo", v)
            else:  # no bulk call: a record of another op between bulk runs
                for k in keys[:3]:
                    await bulk.remove(k)
                    await single.remove(k)
        got, want = batches_by_partition(bulk), batches_by_partition(single)
        assert got == want
        assert all(len(b[2]) <= batch_size for bs in got.values() for b in bs)
        for p, bs in got.items():
            assert all(partition_of(partition_key(k), partitions) == p for b in bs for k in b[2])
        assert (bulk._buffered, bulk._ready_records, bulk._ready_bytes) == \
            (single._buffered, single._ready_records, single._ready_bytes)
        for prod in (bulk, single):
            prod._stop()

    run(body)


@pytest.mark.parametrize("max_buffered, request_records, linger_ms", [(10, 10**9, 0), (37, 20, 0), (500, 64, 0), (64, 64, 60_000)])
def test_while_sending_bulk_calls_send_each_partition_the_batches_single_calls_send(
    max_buffered: int, request_records: int, linger_ms: float,
) -> None:
    """As above, with a producer that sends: max_buffered, request_records and a
    linger task (one that never fires: its timing would change the batches) or none
    at work. Each partition must get the same records in the same order, in batches of
    at most batch_size. Where a batch ends may differ: at max_buffered single calls
    seal the oldest batches at the record that reaches it, counting the sends made
    meanwhile, and a bulk call once a part of it has."""
    rng = random.Random(max_buffered * 7 + request_records)

    async def body() -> None:
        kwargs = dict(batch_size=9, max_buffered=max_buffered, request_records=request_records, linger_ms=linger_ms)
        bulk, single = sending(16, **kwargs), sending(16, **kwargs)
        for _ in range(40):
            keys = [f"k{rng.randrange(200)}" for _ in range(rng.choice([1, 3, 30, 120]))]
            if rng.random() < 0.5:
                amounts = [rng.randrange(1, 9) for _ in keys]
                await bulk.add_many(keys, amounts)
                for k, a in zip(keys, amounts):
                    await single.add(k, a)
            else:
                vals = [bytes([rng.randrange(256)]) for _ in keys]
                await bulk.update_many(keys, vals)
                for k, v in zip(keys, vals):
                    await single.update(k, v)
            for prod in (bulk, single):  # the bound single calls keep, bulk ones too
                assert prod._buffered + prod._ready_records < max_buffered
        for prod in (bulk, single):
            await prod.close()

        def records(prod: fero.producer.Producer) -> dict[int, list[tuple[int, str, Any]]]:
            return {p: [(op, k, v) for op, _, ks, vs in bs for k, v in zip(ks, vs)]
                    for p, bs in sent_by_partition(prod).items()}

        assert records(bulk) == records(single)
        assert max(len(b[2]) for bs in sent_by_partition(bulk).values() for b in bs) <= 9
        assert bulk.acked == single.acked == sum(len(b.keys) for r in bulk.client.requests for b in r)

    run(body)


def test_at_max_buffered_a_bulk_call_sends_the_requests_single_calls_send() -> None:
    """max_buffered 10, one partition, 25 records: single calls send the batch at the
    10th and the 20th record, and flush sends the last 5; a bulk call too."""

    async def body() -> None:
        bulk, single = sending(1, max_buffered=10, linger_ms=0), sending(1, max_buffered=10, linger_ms=0)
        keys = [f"k{i}" for i in range(25)]
        await bulk.update_many(keys, [b"1"] * 25)
        for k in keys:
            await single.update(k, b"1")
        for prod in (bulk, single):
            await prod.flush()
        sizes = [[len(b.keys) for b in r] for r in bulk.client.requests]
        assert sizes == [[len(b.keys) for b in r] for r in single.client.requests] == [[10], [10], [5]]

    run(body)


def test_without_a_linger_task_a_batch_sealed_by_another_op_waits_as_with_single_calls() -> None:
    """linger_ms=0: a batch goes out when one fills (nothing else would send it); one
    sealed because another op came waits for that, or for flush."""

    async def body() -> None:
        bulk, single = sending(1, linger_ms=0, batch_size=3), sending(1, linger_ms=0, batch_size=3)
        for prod in (bulk, single):
            await prod.add("c", 1)
        await bulk.update_many(["x"], [b"1"])
        await single.update("x", b"1")
        assert bulk.client.requests == single.client.requests == []
        await bulk.update_many(["y", "z"], [b"2", b"3"])  # fills the batch: both go
        for k in ("y", "z"):
            await single.update(k, b"1")
        ops = [[[(b.op, len(b.keys)) for b in r] for r in prod.client.requests] for prod in (bulk, single)]
        assert ops[0] == ops[1] == [[(pb.OP_COUNTER_ADD, 1), (pb.OP_UPDATE, 3)]]
        for prod in (bulk, single):
            prod._stop()

    run(body)


def test_batches_open_in_the_order_their_partitions_first_appear_and_a_remainder_opens_anew() -> None:
    """_buffers is in opening order (the linger and max_buffered seal the oldest
    first): a bulk call opens batches in the order single calls would, and the part of
    a partition's records left after its full batches is a batch opened now."""

    async def body() -> None:
        prod = unsent(16, batch_size=4)
        keys = [keys_of(16)[p] for p in (9, 3, 12, 0, 7)]
        await prod.update_many(keys, [b"1"] * 5)
        assert list(prod._buffers) == [9, 3, 12, 0, 7]
        opened = prod._buffers[3].since
        await asyncio.sleep(0.02)
        await prod.update_many([keys[1]] * 5 + [keys[0]], [b"2"] * 6)  # partition 3: 6 records, a batch of 4
        assert [len(b.keys) for b in prod._ready] == [4]
        assert list(prod._buffers) == [9, 12, 0, 7, 3] and len(prod._buffers[3].keys) == 2
        assert prod._buffers[3].since > opened + 0.015
        prod._stop()

    run(body)


def keys_of(partitions: int) -> dict[int, str]:
    """A key of each partition."""
    out: dict[int, str] = {}
    i = 0
    while len(out) < partitions:
        out.setdefault(partition_of(f"key{i}", partitions), f"key{i}")
        i += 1
    return out


def test_bad_bulk_calls_raise_invalid_argument_naming_the_record_and_buffer_nothing() -> None:
    async def body() -> None:
        prod = unsent(256, 10)
        cases: list[tuple[Any, str]] = [
            (prod.update_many(["a", "b"], [b"1"]), "2 keys and 1 values"),
            (prod.update_many(["a", "", "c"], [1, 2, 3]), "key 1 is empty"),
            (prod.update_many(["a", 7], [1, 2]), "key 1 (7) is not a string"),
            (prod.add_many(["a", "b"], [1, 1.5]), "amount 1 (1.5)"),
            (prod.add_many(["a", "b", "c"], [1, 2, True]), "amount 2 (True)"),
            (prod.add_many(["a"], [I64_MAX + 1]), "amount 0"),
            (prod.add_many(["a", "b"], [0, I64_MIN - 1]), "amount 1"),
            (prod.add_many(["a"], [Decimal(2)]), "amount 0"),
            (prod.action_many(["a"], "", [b""]), "action name is empty"),
            (prod.update_many("abc", [1, 2, 3]), "keys is one string"),
        ]
        for call, words in cases:
            with pytest.raises(InvalidArgument, match=words.replace("(", r"\(").replace(")", r"\)")):
                await call
        assert prod._buffered == 0 and not prod._buffers and prod._error is None
        # Empty calls are no-ops; the 64-bit bounds themselves are accepted, and keys of
        # a subclass of str, as update() accepts them.
        await prod.update_many([], [])
        await prod.add_many(["lo", "hi"], [I64_MIN, I64_MAX])

        class Name(str):
            pass

        await prod.update_many([Name("n1"), "n2"], [b"1", b"2"])
        assert prod._buffered == 4
        prod._stop()

    run(body)


def test_bulk_calls_commit_on_a_node_in_order_with_single_calls_and_count_once() -> None:
    """Against a real node: bulk calls and single calls mixed on the same keys commit
    in the order given (a remove between two bulk updates of a key leaves the later
    value), counters add up exactly, and every batch stays within batch_size."""

    async def body() -> None:
        async with node_and_client() as (node, client):
            sizes: list[int] = []
            commit = node.commit_batches

            async def recorded(batch_list, *args, **kwargs):
                sizes.extend(len(b.keys) for b in batch_list)
                return await commit(batch_list, *args, **kwargs)

            node.commit_batches = recorded  # type: ignore[method-assign]
            names = [f"c{i % 97}" for i in range(5000)]
            async with client.producer(acks="leader", batch_size=64, linger_ms=5, max_buffered=1000) as prod:
                await prod.update_many([f"u{i}" for i in range(3000)], [{"i": i} for i in range(3000)])
                await prod.update_many(["x", "y"], [1, 2])
                await prod.remove("x")
                await prod.update_many(["x"], [3])
                await prod.add_many(names, [1] * 5000)
                await prod.add("c0", 10)
                await prod.add_many(names[:97], [-1] * 97)
                assert prod._buffered + prod._ready_records < 1000
            assert prod.acked == 3000 + 2 + 1 + 1 + 5000 + 1 + 97 and prod.failed == 0
            assert max(sizes) <= 64 and sum(sizes) == prod.acked
            assert [await client.read(f"u{i}") for i in (0, 1234, 2999)] == [{"i": 0}, {"i": 1234}, {"i": 2999}]
            assert await client.read("x") == 3 and await client.read("y") == 2
            assert counter(node, "c0") == 52 - 1 + 10 and counter(node, "c96") == 51 - 1

    run(body)


def test_a_bulk_call_larger_than_max_buffered_sends_until_the_producer_holds_less() -> None:
    async def body() -> None:
        async with node_and_client() as (node, client):
            prod = client.producer(batch_size=1000, linger_ms=0, max_buffered=500, request_records=200)
            await prod.add_many([f"m{i}" for i in range(5000)], [1] * 5000)
            assert prod._buffered + prod._ready_records < 500
            await prod.close()
            assert prod.acked == 5000
            assert sum(counter(node, f"m{i}") for i in range(5000)) == 5000

    run(body)


def test_action_many_runs_the_handler_on_every_record_and_returns_its_replies() -> None:
    async def echo(action: Action) -> bytes:
        return action.key.encode() + b"=" + action.payload

    async def body() -> None:
        node = fero.Node(port=0, handler=echo)
        await node.start()
        try:
            async with fero.connect(node.address) as client:
                replies: dict[str, bytes] = {}

                def on_result(b: pb.Batch, r: pb.BatchResult) -> None:
                    replies.update(zip(b.keys, r.replies))

                keys = [f"a{i}" for i in range(700)]
                async with client.producer(acks="reply", batch_size=50, on_result=on_result) as prod:
                    await prod.action_many(keys, "echo", [str(i).encode() for i in range(700)])
                assert replies == {k: f"{k}={i}".encode() for i, k in enumerate(keys)}
        finally:
            await node.stop(grace_s=1.0)

    asyncio.run(asyncio.wait_for(body(), 30))
