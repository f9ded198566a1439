"""The asyncio driver's own lifecycle (the protocol is tested in the other files)."""

import asyncio

from fero.clock import REAL
from fero.membership.config import MembershipConfig
from fero.membership.driver import MembershipDriver


def test_stop_ends_the_loop_even_when_a_wakeup_and_the_cancel_land_together():
    # A message delivered (or leave() nudging the loop) in the same tick as stop()'s
    # cancel: in Python 3.11 asyncio.wait_for returns the finished wait and drops the
    # cancellation, so a loop built on it ran on, and stop() awaited it forever. A
    # node's shutdown hung that way in a test run, gossiping to its seed for minutes.
    async def main():
        driver = MembershipDriver("n0", "127.0.0.1:1", MembershipConfig.local(), "c", REAL, lambda ids: None)
        await driver.start([])
        for _ in range(20):
            await asyncio.sleep(0.005)
            assert not driver._task.done()
            driver._wakeup.set()
            driver._task.cancel()
            await asyncio.wait([driver._task], timeout=2.0)
            assert driver._task.done(), "the loop swallowed its cancellation"
            driver._task = asyncio.get_running_loop().create_task(driver._run())
        driver._wakeup.set()
        await asyncio.wait_for(driver.stop(), 5.0)

    asyncio.run(main())
