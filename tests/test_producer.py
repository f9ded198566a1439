"""The producer (fero/producer.py), the client's fast path, against real nodes: an
in-process node on a real gRPC server (127.0.0.1, port 0), and three real `fero serve`
processes (RF 3, acks=all), one of which is SIGKILLed while a producer streams to the
partitions it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
import types
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import fero
from fero import values
from fero.documents import partition_key
from fero.errors import InvalidArgument
from fero.ring import partition_of
from fero.v1 import cluster_pb2
from fero.v1 import types_pb2 as pb

from .batches import P, keys_in, part
from .conftest import eventually

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1


@contextlib.asynccontextmanager
async def node_and_client(**client_kwargs: Any) -> AsyncIterator[tuple[fero.Node, fero.Client]]:
    node = fero.Node(port=0)
    await node.start()
    try:
        async with fero.connect(node.address, **client_kwargs) as client:
            yield node, client
    finally:
        await node.stop(grace_s=1.0)


def run(body: Callable[[], Awaitable[None]], timeout_s: float = 30) -> None:
    asyncio.run(asyncio.wait_for(body(), timeout_s))


def counter(node: fero.Node, name: str) -> Any:
    """The owner's value of counter `name`, read straight from its state (no await)."""
    c = node.engine.partitions[node.engine.partition_for(name)].peek(name)
    return 0 if c is None else c.value


def result_values(r: pb.BatchResult) -> list[Any]:
    if r.exact_values:
        return [values.parse_number(v) for v in r.exact_values]
    return list(r.values)


def check_running_totals(seen: dict[str, list[tuple[Any, int]]], expected: dict[str, int]) -> None:
    """`seen[name]`: (value after, amount) of every acknowledged add of `name`. The values,
    in order, must be the running totals of the amounts: each is the one before plus its
    own amount, and the last is the sum."""
    assert set(seen) == set(expected)
    for name, pairs in seen.items():
        pairs = sorted(pairs)
        previous = 0
        for value, amount in pairs:
            assert value - amount == previous, (name, value, amount, previous)
            previous = value
        assert previous == expected[name], name


# -- results, acknowledgement, flush ------------------------------------------------------


def test_on_result_once_per_batch_with_running_totals_and_flush_waits_for_everything() -> None:
    rng = random.Random(11)
    names = [f"ctr{i}" for i in range(40)]
    sent = [(rng.choice(names), rng.randrange(1, 50)) for _ in range(5000)]
    expected: dict[str, int] = defaultdict(int)
    for name, amount in sent:
        expected[name] += amount

    async def body() -> None:
        async with node_and_client() as (node, client):
            calls: list[tuple[pb.Batch, pb.BatchResult]] = []
            prod = client.producer(batch_size=100, linger_ms=5, request_records=300,
                                   on_result=lambda b, r: calls.append((b, r)))
            for name, amount in sent:
                await prod.add(name, amount)
            await prod.flush()
            # flush() returned: everything is acknowledged and applied at the owner.
            got = {name: counter(node, name) for name in expected}
            assert got == expected
            assert not prod._in_flight and not prod._ready and prod._buffered == 0
            assert prod.acked == len(sent) and prod.failed == 0 and not prod.first_error
            assert prod.batches == len(calls) > len(sent) // 100 - 1

            tickets = [b.ticket for b, _ in calls]
            assert len(set(tickets)) == len(tickets), "on_result once per batch"
            assert sum(len(b.keys) for b, _ in calls) == len(sent)
            seen: dict[str, list[tuple[Any, int]]] = defaultdict(list)
            for b, r in calls:
                assert b.op == pb.OP_COUNTER_ADD and len(b.keys) <= 100
                assert {part(k) for k in b.keys} == {b.partition}
                assert (r.partition, r.ticket, r.duplicate, r.error_code, len(r.errors)) == (b.partition, b.ticket, False, 0, 0)
                vals = result_values(r)
                assert len(vals) == len(b.keys)
                for k, amount, v in zip(b.keys, b.amounts, vals):
                    seen[k].append((v, amount))
            check_running_totals(seen, expected)
            assert {name: (await client.get(name)).value for name in expected} == expected
            await prod.close()
            assert prod.acked == len(sent) and prod.batches == len(calls), "close() sent nothing more"

    run(body)


def test_leaving_the_block_sends_and_acknowledges_everything() -> None:
    rng = random.Random(9)
    sent = [(f"blk{rng.randrange(50)}", rng.randrange(1, 10)) for _ in range(3000)]
    expected: dict[str, int] = defaultdict(int)
    for name, amount in sent:
        expected[name] += amount

    async def body() -> None:
        async with node_and_client() as (node, client):
            async with client.producer(batch_size=10_000, linger_ms=60_000) as prod:
                for name, amount in sent:
                    await prod.add(name, amount)
                assert prod.acked == 0 and prod.batches == 0, "nothing was due yet"
            # Straight from the owner's state, right after the block: no await between.
            assert prod.acked == len(sent)
            assert {n: counter(node, n) for n in expected} == expected

    run(body)


def test_flush_and_close_wait_for_batches_the_linger_task_is_still_sending() -> None:
    """The linger task takes every ready batch and sends them one request at a time
    (max_in_flight=1). flush() called while it does must still wait for all of them,
    and close() must not drop them."""
    names = [f"lgs{i}" for i in range(200)]
    sent = [(names[i % len(names)], 1 + i % 7) for i in range(2000)]
    expected: dict[str, int] = defaultdict(int)
    for name, amount in sent:
        expected[name] += amount

    async def body() -> None:
        async with node_and_client() as (node, client):
            prod = client.producer(batch_size=10_000, linger_ms=1, max_in_flight=1, request_records=20)
            for name, amount in sent:
                await prod.add(name, amount)  # below batch_size and max_buffered: only buffered
            assert prod.batches == 0
            # The linger task has started sending (about 100 requests, one at a time).
            await eventually(lambda: prod.batches >= 1, 5, "the linger task to send a first request")
            await prod.flush()
            acked_at_flush = prod.acked
            on_node_at_flush = sum(counter(node, n) for n in names)
            await prod.close()
            on_node_at_close = sum(counter(node, n) for n in names)
            total = sum(expected.values())
            assert (acked_at_flush, on_node_at_flush) == (len(sent), total), (
                f"flush() returned with {acked_at_flush} of {len(sent)} records acknowledged, "
                f"{on_node_at_flush} of {total} on the node")
            assert (prod.acked, on_node_at_close) == (len(sent), total), "close() dropped records"

    run(body)


def test_two_producers_of_one_client_do_not_reuse_each_others_tickets() -> None:
    """A producer's batch tickets must be unique to the client session: the node takes
    a batch whose ticket it already has for a duplicate and does not apply it."""

    async def body() -> None:
        async with node_and_client() as (node, client):
            results: list[pb.BatchResult] = []
            for _ in range(3):  # one after the other, as a program that produces in rounds
                async with client.producer(on_result=lambda b, r: results.append(r)) as prod:
                    await prod.add("rounds", 1)
                assert prod.acked == 1
            assert [r.ticket for r in results] and len({r.ticket for r in results}) == 3, [r.ticket for r in results]
            assert [r.duplicate for r in results] == [False] * 3
            assert counter(node, "rounds") == 3

    run(body)


# -- when batches go out ----------------------------------------------------------------------


def test_linger_sends_partial_batches_without_flush() -> None:
    async def body() -> None:
        async with node_and_client() as (node, client):
            prod = client.producer(batch_size=10_000, linger_ms=20)
            for i in range(60):
                await prod.add(f"lg{i % 6}", i)
            assert prod._linger is not None
            await eventually(lambda: prod.acked == 60, 5, "the linger task to send the partial batches")
            assert prod.batches >= 1 and prod._buffered == 0
            assert [counter(node, f"lg{j}") for j in range(6)] == [sum(range(j, 60, 6)) for j in range(6)]
            # And again for records added later: the linger task keeps running.
            await prod.add("lg0", 1000)
            await eventually(lambda: prod.acked == 61, 5, "a later record to be sent by linger")
            assert counter(node, "lg0") == sum(range(0, 60, 6)) + 1000
            await prod.close()

    run(body)


def test_linger_zero_starts_no_linger_task_and_max_buffered_forces_sending() -> None:
    async def body() -> None:
        async with node_and_client() as (node, client):
            prod = client.producer(batch_size=10_000, linger_ms=0, max_buffered=10)
            for i in range(9):
                await prod.add(f"mb{i % 3}", 1)
            # linger_ms=0: nothing sends by time; below max_buffered nothing is sent at all.
            assert prod._linger is None
            assert prod._buffered == 9 and not prod._ready and not prod._in_flight and prod.batches == 0
            await prod.add("mb0", 1)  # the 10th record: the producer holds max_buffered
            await eventually(lambda: prod.acked == 10, 5, "max_buffered to send the 10 records")
            for i in range(15):
                await prod.add(f"mb{i % 3}", 1)
            await eventually(lambda: prod.acked == 20, 5, "max_buffered to send the next 10")
            assert prod._buffered == 5 and prod._linger is None
            assert sum(counter(node, f"mb{j}") for j in range(3)) == 20
            await prod.flush()
            assert prod.acked == 25 and [counter(node, f"mb{j}") for j in range(3)] == [9, 8, 8]

    run(body)


def test_at_max_buffered_the_oldest_batches_go_a_request_at_a_time() -> None:
    """Holding max_buffered records seals the oldest open batches, about a request's
    worth (request_records), and sends them; the others stay open and keep filling.
    (Sealing all of them made a producer whose caller never waits go stop-and-go.)"""

    async def body() -> None:
        async with node_and_client() as (node, client):
            requests: list[list[tuple[int, int]]] = []
            commit = node.commit_batches

            async def recorded(batch_list, *args, **kwargs):
                requests.append([(b.partition, len(b.keys)) for b in batch_list])
                return await commit(batch_list, *args, **kwargs)

            node.commit_batches = recorded  # type: ignore[method-assign]
            a, b, c = keys_in(10, 14, "fa"), keys_in(11, 9, "fb"), keys_in(12, 7, "fc")
            prod = client.producer(batch_size=1000, linger_ms=0, max_buffered=30, request_records=10)
            for k in a + b + c[:6]:  # 29 records: below max_buffered
                await prod.update(k, b"1")
            assert prod.batches == 0 and not requests
            await prod.update(c[6], b"1")  # the 30th
            await eventually(lambda: prod.acked == 14, 5, "the oldest batch to be sent")
            assert requests == [[(10, 14)]]
            assert prod._buffered == 16 and sorted(prod._buffers) == [11, 12], "the other batches stay open"
            await prod.flush()
            assert prod.acked == 30 and sorted(requests[1]) == [(11, 9), (12, 7)]
            assert all(node.engine.read(k) == b"1" for k in a + b + c)

    run(body)


def test_lingered_batches_stay_open_while_every_request_slot_is_taken() -> None:
    """A batch past linger_ms is sealed only when a request slot is free for it. Until
    then it keeps taking records, so the records that came while max_in_flight requests
    were out go as one batch, not as a new small batch per linger period."""

    async def body() -> None:
        async with node_and_client() as (node, client):
            requests: list[list[int]] = []
            release = asyncio.Event()
            commit = node.commit_batches

            async def held(batch_list, *args, **kwargs):
                requests.append([len(b.keys) for b in batch_list])
                if len(requests) == 1:
                    await release.wait()
                return await commit(batch_list, *args, **kwargs)

            node.commit_batches = held  # type: ignore[method-assign]
            keys = keys_in(20, 6, "lo")
            prod = client.producer(batch_size=1000, linger_ms=10, max_in_flight=1)
            await prod.update(keys[0], b"0")
            await eventually(lambda: len(requests) == 1, 5, "the linger task to send the first record")
            for k in keys[1:]:
                await prod.update(k, b"1")
                await asyncio.sleep(0.03)  # three linger periods: each record is overdue
            # The one slot is taken: nothing was sealed, the batch kept filling.
            assert len(requests) == 1 and not prod._ready and prod._buffered == 5
            release.set()
            await prod.flush()
            assert requests == [[1], [5]] and prod.acked == 6

    run(body)


@pytest.mark.parametrize("partitions", [256, 128, 100, 1024, 1])
def test_each_record_is_buffered_in_the_partition_the_ring_gives_its_key(partitions: int) -> None:
    """The producer computes partitions inline (from the digest's low byte when P is a
    power of two up to 256); they must be fero.ring.partition_of(partition_key(key)),
    as the owner checks."""

    class Unconnected:  # the ring is known; nothing is sent (no linger, nothing full)
        _partitions = partitions

        def ticket(self) -> str:
            raise AssertionError("nothing is sealed")

    async def body() -> None:
        prod = fero.producer.Producer(Unconnected(), pb.ACKS_LEADER, batch_size=10**6, linger_ms=0)  # type: ignore[arg-type]
        keys = [f"k{i}" for i in range(3000)] + [f"doc{i}.a.b" for i in range(1000)]
        for k in keys:
            await prod.update(k, b"1")
        got = {k: p for p, buf in prod._buffers.items() for k in buf.keys}
        assert got == {k: partition_of(partition_key(k), partitions) for k in keys}

    run(body)


def test_a_full_batch_goes_out_without_flush_when_linger_is_zero() -> None:
    """The module's docstring: "A batch goes out when it holds `batch_size` records".
    With linger_ms=0 there is no linger task, so nothing else would ever send it."""

    async def body() -> None:
        async with node_and_client() as (node, client):
            prod = client.producer(batch_size=5, linger_ms=0)
            for _ in range(5):
                await prod.add("full", 1)
            try:
                await eventually(lambda: prod.acked == 5, 3, "a full batch (batch_size=5) to be sent with linger_ms=0")
            finally:
                held = (len(prod._ready), prod._ready_records, prod._buffered, len(prod._in_flight))
                await prod.close()
            assert counter(node, "full") == 5, held

    run(body)


def test_max_in_flight_one_never_has_two_requests_out_and_everything_arrives() -> None:
    rng = random.Random(5)
    names = [f"bp{i}" for i in range(60)]
    sent = [(rng.choice(names), rng.randrange(1, 10)) for _ in range(4000)]
    expected: dict[str, int] = defaultdict(int)
    for name, amount in sent:
        expected[name] += amount

    async def stream(address: str, max_in_flight: int) -> tuple[Any, list[int], list[int], int, str]:
        async with fero.connect(address) as client:  # a client per producer: see test_two_producers_of_one_client_...
            return await stream_with(client, max_in_flight)

    async def stream_with(client: fero.Client, max_in_flight: int) -> tuple[Any, list[int], list[int], int, str]:
        prod: Any = None
        in_callback: list[int] = []
        samples: list[int] = []
        # request_records=batch_size: every full batch is a request of its own, sent by
        # the caller's add(), which waits for a free slot. (linger_ms=0: no linger task;
        # the linger task is in test_flush_and_close_wait_for_batches_the_linger_task_is_still_sending.)
        prod = client.producer(batch_size=20, linger_ms=0, request_records=20, max_in_flight=max_in_flight,
                               on_result=lambda b, r: in_callback.append(len(prod._in_flight)))
        done = asyncio.Event()

        async def sample() -> None:
            for _ in range(2_000_000):  # bounded; ends at `done`
                samples.append(len(prod._in_flight))
                if done.is_set():
                    return
                await asyncio.sleep(0)

        sampler = asyncio.create_task(sample())
        for name, amount in sent:
            await prod.add(name, amount)
            samples.append(len(prod._in_flight))
        await prod.flush()
        acked_at_flush = prod.acked
        state = f"ready={len(prod._ready)} buffered={prod._buffered} in flight={len(prod._in_flight)}"
        done.set()
        await sampler
        await prod.close()
        return prod, in_callback, samples, acked_at_flush, state

    async def body() -> None:
        async with node_and_client() as (node, _):
            prod, in_callback, samples, acked_at_flush, state = await stream(node.address, 1)
            # The same stream with max_in_flight=4 does keep several requests out, so the
            # sampling would see a second one if the limit let it.
            _, _, samples4, acked4, state4 = await stream(node.address, 4)
            assert max(samples) == 1 and max(in_callback) == 1, (max(samples), max(in_callback))
            assert samples.count(1) > 10, "requests were in flight while sampling"
            assert len(in_callback) == prod.batches
            assert 1 < max(samples4) <= 4, max(samples4)
            assert acked4 == len(sent), f"max_in_flight=4: flush() returned at {acked4} of {len(sent)} ({state4})"
            assert acked_at_flush == len(sent), (
                f"max_in_flight=1: flush() returned with {acked_at_flush} of {len(sent)} records acknowledged ({state})")
            assert {n: counter(node, n) for n in expected} == {n: 2 * v for n, v in expected.items()}

    run(body)


def test_request_seconds_keeps_only_the_most_recent_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-lived producer keeps the last REQUEST_SECONDS_KEPT round trips: keeping
    every one, it grew by a float a request for as long as it lived (115 MB an hour at
    1000 requests a second). The producer's clock here is one the owner moves on by k
    seconds while it answers the k-th request, so each round trip kept names its request."""
    kept = 5
    clock = [0.0]
    monkeypatch.setattr(fero.producer, "REQUEST_SECONDS_KEPT", kept)
    monkeypatch.setattr(fero.producer, "time", types.SimpleNamespace(perf_counter=lambda: clock[0], monotonic=time.monotonic))

    async def body() -> None:
        async with node_and_client() as (node, client):
            answered = 0
            commit = node.commit_batches

            async def timed(batch_list, *args, **kwargs):
                nonlocal answered
                answered += 1
                clock[0] += answered
                return await commit(batch_list, *args, **kwargs)

            node.commit_batches = timed  # type: ignore[method-assign]
            # A record a request, a request at a time: the k-th round trip is k seconds.
            async with client.producer(batch_size=1, request_records=1, max_in_flight=1, linger_ms=0) as prod:
                for _ in range(3 * kept):
                    await prod.add("rt", 1)
            assert answered == prod.acked == 3 * kept
            assert list(prod.request_seconds) == [float(k) for k in range(2 * kept + 1, 3 * kept + 1)]

    run(body)


# -- documents ----------------------------------------------------------------------------------


def test_document_ops_through_the_producer_match_the_client() -> None:
    docs = range(8)

    async def through_producer(client: fero.Client, adds: list[int]) -> None:
        prod = client.producer(batch_size=1000, linger_ms=5, on_result=lambda b, r: adds.extend(result_values(r)) if b.op == pb.OP_ADD else None)
        # One op at a time: the producer batches per partition and op.
        for i in docs:
            d = f"pd{i}"
            await prod.update(f"{d}.name", f"n{i}")
            await prod.update(f"{d}.v", 1)
            await prod.update(f"{d}.v", {"final": i})  # same key twice: the later wins
            await prod.update(f"{d}.n", i)
            await prod.update(f"{d}.tags", [])
            await prod.update(f"{d}.obj", {"a": 1, "b": {"c": 2}})
            await prod.update(f"{d}.raw", b'{"x":[1,2]}')
        await prod.flush()
        for i in docs:
            await prod.add_at(f"pd{i}.n", 5)
            await prod.add_at(f"pd{i}.n", -2)
            await prod.add_at(f"pd{i}.fresh", 3)
        await prod.flush()
        for i in docs:
            await prod.push(f"pd{i}.tags", "a")
            await prod.push(f"pd{i}.tags", {"k": i})
            await prod.push(f"pd{i}.tags", b"3")
        await prod.flush()
        for i in docs:
            await prod.patch(f"pd{i}.obj", {"b": {"c": None, "d": 4}, "e": "new"})
        await prod.flush()
        for i in docs:
            await prod.remove(f"pd{i}.name")
            await prod.remove(f"pd{i}.obj.a")
        await prod.close()
        assert prod.acked == len(docs) * 16 and prod.failed == 0, (prod.acked, prod.first_error)

    async def through_client(client: fero.Client, adds: list[int]) -> None:
        for i in docs:
            d = f"cd{i}"
            await client.update(f"{d}.name", f"n{i}")
            await client.update(f"{d}.v", 1)
            await client.update(f"{d}.v", {"final": i})
            await client.update(f"{d}.n", i)
            await client.update(f"{d}.tags", [])
            await client.update(f"{d}.obj", {"a": 1, "b": {"c": 2}})
            await client.update(f"{d}.raw", b'{"x":[1,2]}')
        for i in docs:
            adds.append(await client.add_at(f"cd{i}.n", 5))
            adds.append(await client.add_at(f"cd{i}.n", -2))
            adds.append(await client.add_at(f"cd{i}.fresh", 3))
        for i in docs:
            await client.push(f"cd{i}.tags", "a")
            await client.push(f"cd{i}.tags", {"k": i})
            await client.push(f"cd{i}.tags", b"3")
        for i in docs:
            await client.patch(f"cd{i}.obj", {"b": {"c": None, "d": 4}, "e": "new"})
        for i in docs:
            await client.remove(f"cd{i}.name")
            await client.remove(f"cd{i}.obj.a")

    async def body() -> None:
        async with node_and_client() as (node, client):
            p_adds: list[int] = []
            c_adds: list[int] = []
            await through_producer(client, p_adds)
            await through_client(client, c_adds)
            assert len({part(f"pd{i}") for i in docs}) > 1
            for i in docs:
                want = {"v": {"final": i}, "n": i + 3, "fresh": 3, "tags": ["a", {"k": i}, 3],
                        "obj": {"b": {"d": 4}, "e": "new"}, "raw": {"x": [1, 2]}}
                assert await client.read(f"cd{i}") == want, i
                assert await client.read(f"pd{i}") == want, i
                assert await client.read_raw(f"pd{i}.raw") == await client.read_raw(f"cd{i}.raw")
            assert sorted(p_adds) == sorted(c_adds) and len(c_adds) == 3 * len(docs)

    run(body)


# -- bad input ----------------------------------------------------------------------------------


def test_bad_amounts_and_empty_keys_raise_invalid_argument_at_once() -> None:
    async def body() -> None:
        async with node_and_client() as (node, client):
            prod = client.producer(batch_size=10_000, linger_ms=0)
            bad_amounts = [1.0, 1.5, "3", b"3", None, True, I64_MAX + 1, I64_MIN - 1, 1 << 100, Fraction(1, 2), Decimal("2")]
            for amount in bad_amounts:
                with pytest.raises(InvalidArgument):
                    await prod.add("good", amount)  # type: ignore[arg-type]
                with pytest.raises(InvalidArgument):
                    await prod.add_at("doc.n", amount)  # type: ignore[arg-type]
            assert prod._buffered == 0 and prod._error is None
            empty = [lambda: prod.add("", 1), lambda: prod.add_at("", 1), lambda: prod.update("", 1),
                     lambda: prod.remove(""), lambda: prod.push("", 1), lambda: prod.patch("", {})]
            for call in empty:  # at the call itself, before the producer has started
                with pytest.raises(InvalidArgument, match="empty"):
                    call()
            assert prod._buffered == 0 and prod._error is None and prod.batches == 0
            # The producer still works, and the 64-bit bounds themselves are accepted.
            for amount in (I64_MAX, I64_MAX, 5):
                await prod.add("good", amount)
            for amount in (I64_MIN, I64_MIN):
                await prod.add("low", amount)
            await prod.add_at("doc.n", I64_MAX)
            await prod.add_at("doc.n", 1)
            for call in empty:  # and once it has
                with pytest.raises(InvalidArgument, match="empty"):
                    call()
            await prod.close()
            assert prod.acked == 7 and prod.failed == 0
            assert (await client.get("good")).value == 2 * I64_MAX + 5
            assert (await client.get("low")).value == 2 * I64_MIN
            assert await client.read("doc") == {"n": I64_MAX + 1}

    run(body)


def test_a_failed_batch_ends_the_producer_and_every_later_put_raises_it() -> None:
    """A batch refused for good (actions on a node with no handler: UNIMPLEMENTED) is
    raised at the next put, flush and close; also at a put that goes straight into the
    open batch of its partition (the producer's fast path)."""
    (key,) = keys_in(40, 1, "act")
    (doc,) = keys_in(41, 1, "open")

    async def body() -> None:
        async with node_and_client() as (node, client):
            prod = client.producer(batch_size=10, linger_ms=0, max_in_flight=1)
            await prod.update(doc, 1)  # stays open: partition 41's batch of UPDATEs
            for i in range(10):  # a full batch: it goes out, and is refused
                await prod.action(key, "nope", b"x")
            await eventually(lambda: prod._error is not None, 10, "the refusal to come back")
            for call in (lambda: prod.update(doc, 2), lambda: prod.action(key, "nope"), lambda: prod.add("c", 1)):
                with pytest.raises(fero.FeroError, match="handler"):
                    await call()
            with pytest.raises(fero.FeroError, match="handler"):
                await prod.close()
            assert await client.read(doc) is None

    run(body)


# -- per-record errors ------------------------------------------------------------------------


def test_records_of_an_expired_counter_come_back_as_record_errors_and_the_others_commit() -> None:
    live, gone = keys_in(33, 2, "exp")
    (elsewhere,) = keys_in(34, 1, "els")

    async def body() -> None:
        async with node_and_client() as (node, client):
            await client.setup(gone, "int", expire_at_ms=int(time.time() * 1000) - 60_000)
            calls: list[tuple[pb.Batch, pb.BatchResult]] = []
            prod = client.producer(batch_size=1000, linger_ms=5, on_result=lambda b, r: calls.append((b, r)))
            sent = [live, gone, live, live, gone, elsewhere, live, gone]
            for k, name in enumerate(sent):
                await prod.add(name, k + 1)
            await prod.flush()  # per-record errors do not fail the producer
            assert prod.failed == 3 and prod.acked == 5
            code, _, message = prod.first_error.partition(": ")
            assert code == "9" and "expired" in message, prod.first_error

            by_partition = {b.partition: (b, r) for b, r in calls}
            assert set(by_partition) == {33, 34} and len(calls) == 2
            b, r = by_partition[33]
            assert list(b.keys) == [live, gone, live, live, gone, live, gone]
            assert not r.error_code and not r.duplicate
            assert [(e.index, e.code) for e in r.errors] == [(1, 9), (4, 9), (6, 9)]
            assert all("expired" in e.message for e in r.errors)
            assert result_values(r) == [1, 4, 8, 15]  # live: 1, +3, +4, +7
            b2, r2 = by_partition[34]
            assert list(b2.keys) == [elsewhere] and not r2.errors and result_values(r2) == [6]
            assert counter(node, live) == 15 and counter(node, elsewhere) == 6 and counter(node, gone) == 0

    run(body)


# -- failover -----------------------------------------------------------------------------------


def test_producer_retries_across_a_sigkilled_owner_and_nothing_is_lost_or_doubled(serve, tmp_path: Path) -> None:
    args = ["--membership", "local", "--fsync", "interval"]
    first = serve(tmp_path / "n0", node_id="n0", extra_args=args)
    nodes = [first] + [serve(tmp_path / f"n{i}", node_id=f"n{i}", extra_args=args + ["--seeds", first.address])
                       for i in (1, 2)]
    addresses = [n.address for n in nodes]

    async def body() -> None:
        async with fero.connect(addresses, retry_for_s=30, timeout_s=5) as client:
            async def whole() -> bool:
                try:
                    st = await client.status()
                except fero.FeroError:
                    return False
                return st.coherent and sum(m.status == "alive" for m in st.members) == 3

            await eventually(whole, 20, "a coherent cluster of 3")
            client._ring_checked_at = -1e9  # learn the ring of three now, not in up to 5 s
            await client.refresh_ring()
            assert sorted(client._members) == ["n0", "n1", "n2"]
            failovers = 0
            failed_over = client._failed_over

            async def counting_failed_over() -> None:  # counts the producer's retries
                nonlocal failovers
                failovers += 1
                await failed_over()

            client._failed_over = counting_failed_over  # type: ignore[method-assign]
            victim = nodes[2]
            st = await client._conn(victim.address).cluster.Status(
                cluster_pb2.StatusRequest(include_partitions=True), timeout=5)
            owned = sorted(p.partition for p in st.partition_status if p.role == "owner")
            assert owned, "the victim owns partitions"
            # Counters in 6 of the victim's partitions, and some elsewhere.
            names = [k for p in owned[:6] for k in keys_in(p, 3, f"v{p}-")]
            others = [k for p in range(P) if p not in owned for k in keys_in(p, 1, f"o{p}-")][:10]
            names += others
            rng = random.Random(3)
            expected: dict[str, int] = defaultdict(int)
            prod = client.producer("all", batch_size=50, linger_ms=5)

            async def stream(n: int) -> None:
                for i in range(n):
                    name, amount = rng.choice(names), rng.randrange(1, 10)
                    await prod.add(name, amount)
                    expected[name] += amount
                    if i % 50 == 49:
                        await asyncio.sleep(0.002)  # a steady stream, not a flood

            await stream(1500)
            acked_before_kill = prod.acked
            await asyncio.to_thread(victim.kill, signal.SIGKILL)
            killed_at = time.monotonic()
            await stream(1500)
            await prod.flush()
            flushed_after_s = time.monotonic() - killed_at
            assert prod.acked == 3000 and prod.failed == 0, (prod.acked, prod.first_error)
            assert failovers > 0, "batches to the killed owner were retried"

            survivors = nodes[:2]
            got = {name: (await client.get(name)).value for name in names}
            wrong = {n: (got[n], expected.get(n, 0)) for n in names if got[n] != expected.get(n, 0)}
            assert not wrong, f"(got, expected) after flush: {wrong}"
            # Each survivor holds the same, from its own copy.
            for s in survivors:
                async def copy_agrees(s: Any = s) -> bool:
                    vals = {n: (await client.get(n, stale_ok=True, address=s.address)).value for n in names}
                    return vals == {n: expected.get(n, 0) for n in names}

                await eventually(copy_agrees, 10, f"{s.node_id}'s copies to equal the sums")
            st2 = await client.status()
            assert {m.id for m in st2.members if m.status == "alive"} == {"n0", "n1"}
            print(f"acked before the kill {acked_before_kill}; flush returned {flushed_after_s:.1f}s after the SIGKILL; "
                  f"{len(owned)} partitions moved; {failovers} retries")

    run(body, 60)


def test_records_of_one_partition_commit_in_the_order_given_across_ops() -> None:
    """A record of another op seals the partition's open batch first: the order of
    update, remove, update, add on one document is kept (batched by op, the two
    updates would meet in one batch and the remove would come after them)."""

    async def body() -> None:
        async with node_and_client() as (node, c):
            async with c.producer(acks="leader", linger_ms=1000) as prod:
                await prod.update("doc", {"a": 1})
                await prod.remove("doc")
                await prod.update("doc", {"b": 2})
                await prod.add_at("doc.n", 5)
                await prod.update("other", [1])
                await prod.push("other", 2)
            assert await c.read("doc") == {"b": 2, "n": 5}
            assert await c.read("other") == [1, 2]

    run(body)


def test_a_partitions_later_batch_never_overtakes_one_kept_for_the_next_request() -> None:
    """A request is filled up to request_bytes and what does not fit waits for the next
    one; a later, smaller batch of the same partition must wait too, or it commits
    first: here a REMOVE would land before the UPDATE it follows, and the key survive."""
    big = b'"' + b"v" * 1498 + b'"'
    mid = b'"' + b"v" * 998 + b'"'

    async def body() -> None:
        async with node_and_client() as (node, client):
            requests: list[list[tuple[int, int]]] = []
            commit = node.commit_batches

            async def recorded(batch_list, *args, **kwargs):
                requests.append([(b.partition, b.op) for b in batch_list])
                return await commit(batch_list, *args, **kwargs)

            node.commit_batches = recorded  # type: ignore[method-assign]
            q, p = keys_in(30, 4, "oq"), keys_in(31, 3, "op")
            prod = client.producer(batch_size=4, linger_ms=60_000, request_bytes=9000, max_in_flight=1)
            for k in q:
                await prod.update(k, big)  # a full batch of 6 KB: sealed, not sent (under 9000 B)
            for k in p:
                await prod.update(k, mid)  # 3 KB, open
            await prod.remove(p[0])  # another op: the updates are sealed; 9 KB in all
            await prod.flush()
            assert prod.acked == 8
            assert requests == [[(30, pb.OP_UPDATE)], [(31, pb.OP_UPDATE), (31, pb.OP_REMOVE)]]
            assert node.engine.read(p[0]) is None
            assert all(node.engine.read(k) == mid for k in p[1:])

    run(body)


def test_a_request_carries_at_most_request_bytes_unless_one_batch_is_larger() -> None:
    """request_bytes bounds a request by the bytes of its keys and values (the owner
    applies a request in one step of its event loop): a request of 1 KB values is cut
    into requests of at most request_bytes, each of whole batches, and a batch larger
    than request_bytes still goes, alone. Nothing is lost or counted twice."""
    value = b'"' + b"v" * 998 + b'"'  # 1000 bytes of JSON, stored as given

    async def body() -> None:
        async with node_and_client() as (node, client):
            requests: list[list[int]] = []
            commit = node.commit_batches

            async def recorded(batch_list, *args, **kwargs):
                requests.append([sum(len(k) for k in b.keys) + sum(len(v) for v in b.values) for b in batch_list])
                return await commit(batch_list, *args, **kwargs)

            node.commit_batches = recorded  # type: ignore[method-assign]
            keys = keys_in(40, 40, "rb") + keys_in(41, 40, "rb")
            # batch_size 4: batches of about 4 KB; nothing leaves before flush() but
            # what fills a request (the linger is long).
            async with client.producer(batch_size=4, linger_ms=60_000, request_records=10_000,
                                       request_bytes=10_000) as prod:
                for k in keys:
                    await prod.update(k, value)
            assert prod.acked == len(keys)
            per_request = [sum(r) for r in requests]
            assert sum(len(r) for r in requests) == 20, requests
            assert all(size <= 10_000 for size in per_request), per_request
            assert max(len(r) for r in requests) == 2, "a request of 10,000 bytes holds two batches of ~4 KB"
            assert all(node.engine.read(k) == value for k in keys)

            requests.clear()
            async with client.producer(batch_size=4, linger_ms=60_000, request_bytes=100) as prod:
                for k in keys[:8]:
                    await prod.update(k, value)
            assert [len(r) for r in requests] == [1, 1], "a batch larger than request_bytes goes alone"

    run(body)
