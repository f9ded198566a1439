"""gRPC health checking and server reflection on a real in-process node."""

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import fero


def test_health_reports_serving_for_the_node_and_each_service(tmp_path):
    async def main():
        node = fero.Node("h1", port=0, data_dir=tmp_path)
        await node.start()
        async with grpc.aio.insecure_channel(node.address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            overall = await stub.Check(health_pb2.HealthCheckRequest(service=""))
            counters = await stub.Check(health_pb2.HealthCheckRequest(service="fero.v1.Counters"))
            await node.stop()
        return overall.status, counters.status

    overall, counters = asyncio.run(main())
    assert overall == counters == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_public_services():
    async def main():
        node = fero.Node("r1", port=0)
        await node.start()
        try:
            async with grpc.aio.insecure_channel(node.address) as ch:
                stub = reflection_pb2_grpc.ServerReflectionStub(ch)
                responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
                async for r in responses:
                    return {s.name for s in r.list_services_response.service}
        finally:
            await node.stop()

    names = asyncio.run(main())
    assert {"fero.v1.Counters", "fero.v1.Changelog", "fero.v1.Cluster", "grpc.health.v1.Health"} <= names


def test_restore_runs_once_on_an_empty_log_and_not_after_restart(tmp_path):
    from fero import values
    from fero.v1 import types_pb2

    calls = []

    async def restore(node):
        calls.append(node.node_id)
        rec = types_pb2.Record(key="seeded", op=types_pb2.OP_COUNTER_ADD, amount=values.number_of(41), ticket="restore-1")
        await node.commit([rec], types_pb2.ACKS_LEADER)

    async def start_and_read():
        node = fero.Node("r2", port=0, data_dir=tmp_path, restore=restore)
        await node.start()
        try:
            async with fero.connect(node.address) as c:
                return (await c.get("seeded")).value
        finally:
            await node.stop()

    assert asyncio.run(start_and_read()) == 41
    assert asyncio.run(start_and_read()) == 41
    assert calls == ["r2"]


def test_health_is_not_serving_while_owned_partitions_catch_up():
    async def status(address):
        async with grpc.aio.insecure_channel(address) as ch:
            r = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
            return r.status

    async def main():
        from .conftest import eventually

        node = fero.Node("hc", port=0)
        await node.start()
        try:
            assert await status(node.address) == health_pb2.HealthCheckResponse.SERVING
            held = set(node.ownership._serving)
            node.ownership._serving.difference_update({0, 1, 2})  # as if it had just taken them over
            seen = []

            async def not_serving():
                seen.append(await status(node.address))
                return seen[-1] == health_pb2.HealthCheckResponse.NOT_SERVING

            await eventually(not_serving, 5, "NOT_SERVING while catching up")
            node.ownership._serving |= held  # caught up

            async def serving():
                return await status(node.address) == health_pb2.HealthCheckResponse.SERVING

            await eventually(serving, 5, "SERVING again once caught up")
        finally:
            await node.stop()

    asyncio.run(main())
