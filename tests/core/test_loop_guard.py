"""The suite's loop-block guard itself: it must catch a sleeping or computing callback."""

import asyncio
import time


def test_guard_catches_blocking_sleep_and_cpu(no_blocked_loop) -> None:
    async def main() -> None:
        time.sleep(0.08)  # noqa: ASYNC251 - a blocking call on the loop, on purpose
        await asyncio.sleep(0)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.08:  # CPU work on the loop
            pass
        await asyncio.sleep(0)
        await asyncio.sleep(0.01)  # fine: awaiting yields the loop

    asyncio.run(main())
    caught = list(no_blocked_loop.blocked)
    no_blocked_loop.blocked.clear()  # this test blocks on purpose
    assert len(caught) == 2, caught
    assert all("took" in c for c in caught)
