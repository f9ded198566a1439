"""A node that joins after the others' logs were trimmed by retention gets the state
itself (a state transfer), as owner and as replica, and then follows the logs."""

import asyncio
import contextlib
import dataclasses

import pytest

import fero
from fero.config import Config, StorageConfig
from fero.membership.config import MembershipConfig

from .conftest import eventually

pytestmark = pytest.mark.slow


def config():
    storage = dataclasses.replace(StorageConfig(), segment_bytes=4096, retention_s=0, retention_bytes=0, fsync="never")
    return Config(membership=MembershipConfig.local(), storage=storage).validate()


@contextlib.asynccontextmanager
async def started(nodes):
    try:
        yield
    finally:
        for n in nodes:
            await n.stop()


def test_joiner_gets_state_when_logs_no_longer_reach_back(tmp_path):
    async def main():
        a = fero.Node("a", port=0, config=config(), data_dir=tmp_path / "a")
        b = fero.Node("b", port=0, config=config(), data_dir=tmp_path / "b")
        nodes = [a, b]
        async with started(nodes):
            await a.start()
            b.seeds = [a.address]
            await b.start()
            await eventually(lambda: all(len(n.ring) == 2 and n.coherent() for n in nodes), 20, "a and b")
            expected: dict[str, int] = {}
            async with fero.connect([a.address, b.address]) as c:
                async with c.pipeline(batch_size=200) as p:
                    for i in range(4000):
                        await p.add(f"k{i % 300}", i)
                        expected[f"k{i % 300}"] = expected.get(f"k{i % 300}", 0) + i
                await c.update("doc.x", {"y": 1})
            for n in nodes:  # snapshot, and let retention drop every closed segment
                await n.engine.take_snapshot()
            trimmed = sum(1 for s in a.engine.partitions if s.log_start_offset > 0)
            assert trimmed > 100, "retention should have cut most partition logs"

            c3 = fero.Node("c", port=0, config=config(), data_dir=tmp_path / "c", seeds=[a.address])
            nodes.append(c3)
            await c3.start()
            await eventually(lambda: all(len(n.ring) == 3 and n.coherent() for n in nodes), 30, "c to join")

            async def c_has_everything():
                async with fero.connect([c3.address]) as c:
                    for name, value in expected.items():
                        if (await c.get(name, stale_ok=True, address=c3.address)).value != value:
                            return False
                    return await c.read("doc") == {"x": {"y": 1}}

            await eventually(c_has_everything, 30, "the joiner to hold every counter")
            installed = sum(1 for s in c3.engine.partitions if s.log_start_offset > 0)
            # And it follows the logs afterwards.
            async with fero.connect([c3.address]) as c:
                for i in range(300):
                    await c.add(f"k{i}", 1, acks="all")
            for name in expected:
                expected[name] += 1
            await eventually(c_has_everything, 30, "the joiner to follow new writes")
            return trimmed, installed

    trimmed, installed = asyncio.run(main())
    print(f"partitions trimmed on the old nodes: {trimmed}; installed on the joiner: {installed}")
    assert installed > 100
