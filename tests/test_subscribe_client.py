"""`await c.subscribe()` returns only once the node has registered the subscription, so
a commit made right after it is delivered even when starting from now."""

import asyncio

import fero


def test_awaited_subscription_sees_every_commit_made_after_it():
    async def main():
        node = fero.Node("s1", port=0)
        await node.start()
        try:
            async with fero.connect(node.address) as c:
                for round_ in range(20):  # a race would show up in some round
                    sub = await c.subscribe(prefix=f"r{round_}")
                    await c.update(f"r{round_}.k", round_)
                    change = await asyncio.wait_for(sub.__anext__(), 5)
                    assert (change.key, change.json()) == (f"r{round_}.k", round_)
                    await sub.aclose()
        finally:
            await node.stop()

    asyncio.run(main())


def test_subscription_resumes_from_offsets_after_a_restart(tmp_path):
    async def main():
        node = fero.Node("s2", port=0, data_dir=tmp_path)
        await node.start()
        async with fero.connect(node.address) as c:
            for i in range(10):
                await c.push("log.items", i)
            sub = c.subscribe(prefix="log.", earliest=True)
            first = [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(4)]
            await sub.aclose()
        await node.stop()

        node = fero.Node("s2", port=0, data_dir=tmp_path)
        await node.start()
        try:
            async with fero.connect(node.address) as c:
                resume = {first[-1].partition: first[-1].offset + 1}
                sub = c.subscribe(prefix="log.", from_offsets=resume)
                rest = [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(6)]
                await sub.aclose()
        finally:
            await node.stop()
        return first, rest

    first, rest = asyncio.run(main())
    assert [ch.json() for ch in first + rest] == list(range(10))
    assert [ch.offset for ch in first + rest] == list(range(first[0].offset, first[0].offset + 10))
