"""The virtual-time loop's hooks for accelerated runs: bytes in flight, inline simulated buses."""

from __future__ import annotations

import asyncio
import os
import threading
import tty
from concurrent.futures import ThreadPoolExecutor

import pytest

from sim.virtual_time import VirtualTimeLoop, run_virtual


def test_bytes_in_flight_through_a_pty_hold_the_clock_until_they_arrive() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    counters = {"written": 0, "read": 0}
    arrivals: list[tuple[float, bytes]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        loop.add_io_pending_check(lambda: (counters["written"], counters["read"])
                                  if counters["written"] > counters["read"] else None)

        def readable() -> None:
            data = os.read(master, 4096)
            counters["read"] += len(data)
            arrivals.append((loop.time(), data))

        loop.add_reader(master, readable)
        for i in range(20):  # each write is followed by a long idle stretch the clock would skip
            frame = bytes([0xC0, i]) * 50
            counters["written"] += os.write(slave, frame)
            await asyncio.sleep(600.0)
        loop.remove_reader(master)

    try:
        run_virtual(main())
    finally:
        os.close(master)
        os.close(slave)
    assert counters["read"] == counters["written"] == 2000
    # every frame was seen at the virtual instant it was written, never after a jump
    assert sorted({round(t) for t, _ in arrivals}) == [600 * i for i in range(20)]


def test_a_stalled_token_stops_holding_the_clock_and_is_counted() -> None:
    async def main() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        loop.add_io_pending_check(lambda: "bytes that never arrive")
        await asyncio.sleep(3600.0)
        return loop.time(), loop.io_hold_expired

    now, expired = run_virtual(main())
    assert now == pytest.approx(3600.0) and expired == 1


def test_inline_executor_runs_on_the_loop_thread_and_delivers_errors() -> None:
    executor = ThreadPoolExecutor(max_workers=1)

    def fail() -> None:
        raise OSError(121, "Remote I/O error")

    async def main() -> tuple[int, int, int, int]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        threaded = await loop.run_in_executor(executor, threading.get_ident)
        loop.run_inline(executor)
        inline = await loop.run_in_executor(executor, threading.get_ident)
        with pytest.raises(OSError, match="Remote I/O"):
            await loop.run_in_executor(executor, fail)
        return threaded, inline, threading.get_ident(), loop.inline_calls

    try:
        threaded, inline, loop_thread, calls = run_virtual(main())
    finally:
        executor.shutdown()
    assert threaded != loop_thread and inline == loop_thread and calls == 2


def test_executor_work_holds_the_clock_and_completes_before_the_next_batch() -> None:
    """A completion lands at a fixed point among the other ready callbacks, whatever the real
    duration of the work: that is what makes equal-time timers queue identically run to run."""
    executor = ThreadPoolExecutor(max_workers=1)
    steps = 0

    def slow() -> str:
        threading.Event().wait(0.05)  # 50 ms of real time: thousands of loop iterations
        return "work"

    async def busy() -> None:
        nonlocal steps
        for _ in range(100_000):
            steps += 1
            await asyncio.sleep(0)

    async def main() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(busy())
        await loop.run_in_executor(executor, slow)
        seen = steps
        task.cancel()
        return loop.time(), seen

    try:
        now, seen = run_virtual(main())
    finally:
        executor.shutdown()
    assert now == 0.0  # real work takes no virtual time
    assert seen == 2  # busy() ran exactly two steps before the completion, not "as many as fit in 50 ms"
