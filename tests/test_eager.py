"""fero.eager.start: a coroutine's first step runs in the caller's step, the rest in a
task that is the current task throughout, and cancels, times out, returns and raises
as a task does."""

import asyncio

import pytest

from fero import eager


def test_the_first_step_runs_before_start_returns_and_the_rest_in_the_task():
    async def run():
        seen = []
        gate = asyncio.get_running_loop().create_future()

        async def work():
            seen.append("first")
            await gate
            seen.append("rest")
            return 7

        task = eager.start(work())
        assert seen == ["first"]  # no await between: it ran in this step
        await asyncio.sleep(0)
        assert seen == ["first"]
        gate.set_result(None)
        assert await task == 7
        assert seen == ["first", "rest"]

    asyncio.run(run())


def test_the_task_is_the_current_task_in_its_first_step_and_the_caller_is_again_after():
    async def run():
        me = asyncio.current_task()
        inside = []

        async def work():
            inside.append(asyncio.current_task())
            await asyncio.sleep(0)
            inside.append(asyncio.current_task())

        task = eager.start(work())
        assert asyncio.current_task() is me
        await task
        assert inside == [task, task]

    asyncio.run(run())


def test_a_timeout_entered_in_the_first_step_cancels_the_task_not_the_caller():
    async def run():
        async def work():
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()

        task = eager.start(work())
        with pytest.raises(TimeoutError):
            await task
        await asyncio.sleep(0.02)  # the caller was not cancelled meanwhile
        return "caller went on"

    assert asyncio.run(run()) == "caller went on"


def test_cancelled_before_its_first_scheduled_step_it_is_cancelled_where_it_waits():
    async def run():
        cleaned = []
        waited_on = asyncio.get_running_loop().create_future()

        async def work():
            try:
                await waited_on
            finally:
                cleaned.append(True)

        task = eager.start(work())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled() and cleaned == [True]
        # As a task's cancel() does: what it waited on is cancelled too.
        assert waited_on.cancelled()

    asyncio.run(run())


def test_a_coroutine_that_ends_or_raises_in_its_first_step_gives_the_task_its_outcome():
    async def run():
        async def ends():
            return "done"

        async def raises():
            raise ValueError("bad")

        ok, bad = eager.start(ends()), eager.start(raises())
        assert await ok == "done"
        with pytest.raises(ValueError, match="bad"):
            await bad

    asyncio.run(run())


def test_a_task_that_ended_in_its_first_step_and_is_cancelled_keeps_its_outcome():
    async def run():
        async def ends():
            return 1

        task = eager.start(ends())
        task.cancel()
        # The coroutine has returned already: the task ends with that, as a task
        # whose coroutine stops right as it is cancelled does.
        assert await task == 1

    asyncio.run(run())


def test_started_from_a_callback_with_no_task_running():
    async def run():
        loop = asyncio.get_running_loop()
        started = loop.create_future()
        seen = []

        async def work():
            seen.append(asyncio.current_task())
            await asyncio.sleep(0)
            return "ok"

        loop.call_soon(lambda: started.set_result(eager.start(work())))
        task = await started
        assert seen == [task]
        assert await task == "ok"

    asyncio.run(run())
