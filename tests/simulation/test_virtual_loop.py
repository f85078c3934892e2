"""The virtual-time loop's hooks for accelerated runs: bytes in flight, inline simulated buses."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import tty
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from sim.transceiver import readable_bytes
from sim.virtual_time import VirtualTimeLoop, run_virtual


def _raw_pty() -> tuple[int, int]:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave


@pytest.fixture
def raw_pty() -> Iterator[Callable[[], tuple[int, int]]]:
    """Raw pseudo-terminals (master non-blocking), all closed when the test ends."""
    opened: list[int] = []

    def make() -> tuple[int, int]:
        master, slave = _raw_pty()
        opened.extend((master, slave))
        return master, slave

    yield make
    for fd in opened:
        os.close(fd)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown()


pytestmark = pytest.mark.virtual_time  # the async tests below run on the loop under test


async def test_bytes_in_flight_through_a_pty_hold_the_clock_until_they_arrive(raw_pty) -> None:
    master, slave = raw_pty()
    counters = {"written": 0, "read": 0}
    arrivals: list[tuple[float, bytes]] = []

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

    assert counters["read"] == counters["written"] == 2000
    # every frame was seen at the virtual instant it was written, never after a jump
    assert sorted({round(t) for t, _ in arrivals}) == [600 * i for i in range(20)]


async def test_a_stalled_token_stops_holding_the_clock_and_is_counted() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    loop.add_io_pending_check(lambda: "bytes that never arrive")
    await asyncio.sleep(3600.0)
    assert loop.time() == pytest.approx(3600.0) and loop.io_hold_expired == 1


async def test_inline_executor_runs_on_the_loop_thread_and_delivers_errors(executor) -> None:
    def fail() -> None:
        raise OSError(121, "Remote I/O error")

    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    threaded = await loop.run_in_executor(executor, threading.get_ident)
    loop.run_inline(executor)
    inline = await loop.run_in_executor(executor, threading.get_ident)
    with pytest.raises(OSError, match="Remote I/O"):
        await loop.run_in_executor(executor, fail)
    loop_thread = threading.get_ident()
    assert threaded != loop_thread and inline == loop_thread and loop.inline_calls == 2


async def test_executor_work_holds_the_clock_and_completes_before_the_next_batch(executor) -> None:
    """A completion lands at a fixed point among the other ready callbacks, whatever the real
    duration of the work: that is what makes equal-time timers queue identically run to run."""
    steps = 0

    def slow() -> str:
        threading.Event().wait(0.05)  # 50 ms of real time: thousands of loop iterations
        return "work"

    async def busy() -> None:
        nonlocal steps
        for _ in range(100_000):
            steps += 1
            await asyncio.sleep(0)

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(busy())
    await loop.run_in_executor(executor, slow)
    seen = steps
    task.cancel()
    now = loop.time()
    assert now == 0.0  # real work takes no virtual time
    assert seen == 2  # busy() ran exactly two steps before the completion, not "as many as fit in 50 ms"


async def test_bytes_written_into_a_pty_are_read_in_the_next_iteration_every_time(raw_pty) -> None:
    """Within one virtual instant, where a reader's callback lands among the others must not
    depend on when the kernel's pty worker moves the bytes (it often has not, right after the
    write): with an arrival check, bytes written in one iteration are read in the next."""
    master, slave = raw_pty()
    counters = {"written": 0, "read": 0}
    positions: list[int] = []

    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    loop.add_io_arrival_check(lambda: counters["written"] - counters["read"] - readable_bytes(master))
    ticks = 0

    def readable() -> None:
        counters["read"] += len(os.read(master, 4096))
        positions.append(ticks)

    loop.add_reader(master, readable)
    await asyncio.sleep(60.0)  # every round starts the same way: woken by a timer
    for round_ in range(40):
        ticks = 0
        counters["written"] += os.write(slave, bytes([0xC0, round_]) * 100)
        for _ in range(30):  # the same instant stays busy: a poll follows every few callbacks
            ticks += 1
            await asyncio.sleep(0)
        await asyncio.sleep(60.0)
    loop.remove_reader(master)

    assert counters["read"] == counters["written"] == 8000
    assert len(positions) == 40 and len(set(positions)) == 1, f"reader ran after {positions} steps"


async def test_descriptors_ready_together_are_handled_in_descriptor_order(raw_pty) -> None:
    """epoll lists descriptors in the order they became ready; the loop must not pass that real
    timing on to the order of the reader callbacks."""
    first, first_slave = raw_pty()
    second, second_slave = raw_pty()
    low, high = sorted((first, second))
    order: list[int] = []

    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    written = {first: 0, second: 0}
    read = {first: 0, second: 0}
    loop.add_io_arrival_check(lambda: sum(written[fd] - read[fd] - readable_bytes(fd) for fd in written))

    def reader(fd: int) -> None:
        read[fd] += len(os.read(fd, 4096))
        order.append(fd)

    for fd in written:
        loop.add_reader(fd, reader, fd)
    slaves = {first: first_slave, second: second_slave}

    def write_high_then_low() -> None:
        """The higher descriptor's bytes become readable first, in real time."""
        written[high] += os.write(slaves[high], b"\xc0high\xc0")
        deadline = time.monotonic() + 1.0
        while readable_bytes(high) == 0 and time.monotonic() < deadline:
            time.sleep(0.0001)
        written[low] += os.write(slaves[low], b"\xc0low\xc0")

    for _ in range(10):
        write_high_then_low()
        await asyncio.sleep(1.0)
    for fd in written:
        loop.remove_reader(fd)

    assert order == [low, high] * 10


async def test_thread_work_starts_only_after_the_batch_of_callbacks_that_asked_for_it(executor) -> None:
    """Callbacks of the same batch never run while a worker thread does (on a stock loop they
    race it: the record log was rotated by a callback while a worker flushed it, now and then)."""
    started = threading.Event()
    seen_running: list[bool] = []

    def work() -> str:
        started.set()
        return "synced"

    loop = asyncio.get_running_loop()
    results: list[asyncio.Future[str]] = []

    def ask() -> None:
        results.append(loop.run_in_executor(executor, work))

    def same_batch() -> None:
        seen_running.append(started.wait(0.03))  # a thread started at once would be seen

    loop.call_soon(ask)
    loop.call_soon(same_batch)
    await asyncio.sleep(1.0)
    assert await results[0] == "synced"
    assert seen_running == [False]


def test_thread_work_asked_for_together_completes_in_the_order_asked_whatever_finishes_first() -> None:
    """Three runs, each on a fresh loop (``run_virtual``), must agree."""
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        order: list[str] = []

        async def job(name: str, seconds: float) -> None:
            await loop.run_in_executor(None, time.sleep, seconds)
            order.append(name)

        # "slow" really finishes last on its thread, yet its caller resumes first: it asked first
        await asyncio.gather(job("slow", 0.02), job("fast", 0.0), job("medium", 0.01))
        return order

    for _ in range(3):
        assert run_virtual(main()) == ["slow", "fast", "medium"]


def test_default_executor_is_joined_in_real_time_not_on_the_virtual_clock() -> None:
    """asyncio.Runner closes the loop with a 300 s join timeout (Python 3.12+): on a virtual clock
    a timer would expire at once and leave the threads running."""
    async def main() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        finished: list[int] = []

        def slow() -> None:
            time.sleep(0.05)
            finished.append(1)

        await loop.run_in_executor(None, slow)
        loop.run_in_executor(None, slow)  # asked for just before the join, never awaited
        await asyncio.sleep(0)
        before = loop.time()
        await loop.shutdown_default_executor(300.0)
        return finished, loop.time() - before

    finished, elapsed = run_virtual(main())
    assert finished == [1, 1] and elapsed == 0.0
