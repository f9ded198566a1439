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


def test_the_task_has_a_context_of_its_own_from_its_first_step():
    import contextvars

    var = contextvars.ContextVar("var", default="caller")

    async def run():
        seen = []

        async def work():
            var.set("task")
            await asyncio.sleep(0)
            seen.append(var.get())

        task = eager.start(work())
        assert var.get() == "caller", "the first step's set leaked into the caller"
        await task
        assert seen == ["task"]

    asyncio.run(run())


def test_what_the_first_step_waits_on_can_be_awaited_by_others_meanwhile():
    async def run():
        shared = asyncio.get_running_loop().create_future()

        async def work():
            return await shared

        task = eager.start(work())
        asyncio.get_running_loop().call_soon(shared.set_result, 5)
        assert await shared == 5  # not "await wasn't used with future"
        assert await task == 5

    asyncio.run(run())


def test_cancelled_while_awaiting_a_task_that_declines_it_gets_that_tasks_result():
    # As with any task: cancel() cancels what the task waits on, and the task wakes when
    # that is done; a child that swallows the cancel gives its result to the parent.
    async def run():
        async def child():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(0.01)
            return "child result"

        async def parent(inner):
            return await inner

        inner = asyncio.get_running_loop().create_task(child())
        await asyncio.sleep(0)  # the child is waiting
        task = eager.start(parent(inner))
        task.cancel()
        assert await task == "child result"
        assert inner.done()

    asyncio.run(run())


def test_the_task_names_its_coroutine():
    async def run():
        async def well_named():
            await asyncio.sleep(0)

        task = eager.start(well_named())
        assert "well_named" in repr(task)
        await task

    asyncio.run(run())
