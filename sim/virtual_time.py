"""A virtual-time asyncio event loop: the same flight code, a simulated day in minutes.

The loop's clock (``loop.time()``) is virtual. When nothing is ready to run and no blocking work is
in flight on an executor, the clock jumps straight to the next timer instead of sleeping. Work
handed to ``run_in_executor`` (bus I/O, CPU work) holds the clock until it completes, so a
transaction never "takes" virtual hours; real I/O on file descriptors (pty, sockets) is still
polled without blocking before each jump.

Bytes written into a pseudo-terminal or a socket reach the other end asynchronously in the
kernel (a pty pushes them through a work queue), so a plain non-blocking poll can miss a frame
that was just written and the clock would jump past it. Whoever knows that bytes are in flight
registers a check with :meth:`VirtualTimeLoop.add_io_pending_check`; while a check reports a
pending token the loop waits for fd readiness in real time instead of jumping. A token that
does not change for ``IO_HOLD_LIMIT`` real seconds (bytes lost with a closed device) stops
holding the clock and is counted in ``io_hold_expired``.

Holding the clock is not enough for a repeatable run: within one virtual instant, the iteration
whose poll first sees the bytes decides where their reader's callback lands among the others,
and that depends on the kernel's timing. So whoever can tell how many bytes were written but are
not yet readable at the far end registers :meth:`VirtualTimeLoop.add_io_arrival_check`; before
every poll the loop waits (real time, bounded by ``IO_HOLD_LIMIT``) until they are all readable,
and it hands ready descriptors over in descriptor order rather than the order they became ready.
Bytes written in one iteration are then read in the next, in every run.

Executors registered with :meth:`VirtualTimeLoop.run_inline` (a simulated I2C bus: in-memory
register work of a few microseconds) run their calls on the loop thread instead: a thread hand-off
costs ~100 us of context switches and GIL transfers, which over the millions of transactions of a
simulated day costs more than everything else together. The caller still gets a future and awaits
it exactly as before; only the thread is skipped. Never register an executor whose work can block.

Work handed to a thread does not start at once either: it is queued and handed to its executor
when the loop polls next, after the batch of callbacks that asked for it, and the loop then waits
for it. No flight callback ever runs while a worker thread does, so a data race between the two
(state a worker reads while a callback changes it) cannot make two runs differ.

``speed`` limits acceleration: ``None`` runs as fast as possible, ``N`` keeps virtual time at most
N times faster than real time (the real clock paces the jumps).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import selectors
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# How long a real wait lasts while executor work holds the virtual clock.
HOLD_POLL = 0.05
# Real wait per poll while bytes are in flight through the kernel, and the most one unchanged
# pending token may hold the clock.
IO_POLL = 0.002
IO_HOLD_LIMIT = 1.0
# Real sleep between arrival checks while written bytes are not readable yet (a pty's kernel
# worker needs ~10-50 us to move them).
ARRIVAL_POLL = 0.00005
# Longest real wait for executor work before the loop runs its next callbacks anyway.
EXECUTOR_SYNC_LIMIT = 1.0
# Rounds of newly ready callbacks run within one iteration before the selector is polled again.
CHAINED_ROUNDS = 4


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._vloop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._vloop
        loop.start_deferred_work()
        loop.settle_started_work()
        loop.await_io_arrival()
        ready = self._poll(timeout)
        if len(ready) > 1:  # epoll lists descriptors in the order they became ready: real timing
            ready.sort(key=lambda event: event[0].fd)
        return ready

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._vloop
        if timeout is not None and timeout <= 0:
            return super().select(0)
        ready = super().select(0)
        if ready:
            return ready
        if loop.inflight:
            # Executor work holds the clock: wait for it in real time (its completion wakes us).
            return super().select(HOLD_POLL if timeout is None else min(timeout, HOLD_POLL))
        if loop.io_pending():
            # Bytes on their way through the kernel: let them arrive before time moves on.
            return super().select(IO_POLL if timeout is None else min(timeout, IO_POLL))
        if timeout is None:
            # Nothing scheduled at all: only outside I/O can wake us; wait for it in real time.
            return super().select(None)
        if loop.speed is not None:
            real_due = loop.real_anchor + (loop.virtual_now + timeout - loop.virtual_anchor) / loop.speed
            wait = real_due - time.monotonic()
            if wait > 0:
                ready = super().select(wait)
                if ready:
                    loop.resync()
                    return ready
        loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = 0.0, speed: float | None = None) -> None:
        self.virtual_now = float(start)
        self.speed = speed
        self.inflight = 0
        self.virtual_anchor = self.virtual_now
        self.real_anchor = time.monotonic()
        self.io_hold_expired = 0
        self._io_checks: list[Callable[[], object | None]] = []
        self._io_token: object | None = None
        self._io_token_since = 0.0
        self._io_given_up = False
        self._arrival_checks: list[Callable[[], int]] = []
        self._arrival_stalled = 0  # bytes still missing when the last wait gave up
        self._inline: set[Any] = set()  # executors, by identity
        # work asked for during the current batch of callbacks: (executor, call, future to settle)
        self._deferred: collections.deque[tuple[Any, Callable[[], Any], concurrent.futures.Future[Any]]] = \
            collections.deque()
        # thread work started, with the future its caller awaits, in the order it was asked for
        self._started: collections.deque[tuple[concurrent.futures.Future[Any], concurrent.futures.Future[Any]]] = \
            collections.deque()
        self.inline_calls = 0
        super().__init__(selector=_VirtualSelector(self))

    def run_inline(self, executor: Any) -> None:
        """Run calls handed to `executor` on the loop thread (only for non-blocking simulated work)."""
        self._inline.add(executor)

    def add_io_pending_check(self, check: Callable[[], object | None]) -> None:
        """Hold the clock while `check()` returns a token (not None): bytes are in flight.

        The token should change whenever progress is made (e.g. a tuple of byte counters), so a
        stream that keeps moving keeps holding and one that stalled gives up after IO_HOLD_LIMIT.
        """
        self._io_checks.append(check)

    def remove_io_pending_check(self, check: Callable[[], object | None]) -> None:
        self._io_checks.remove(check)

    def add_io_arrival_check(self, check: Callable[[], int]) -> None:
        """Before every poll, wait until `check()` returns 0: the number of bytes written into a
        pty or socket that are not readable at the far end yet (e.g. written - read - FIONREAD)."""
        self._arrival_checks.append(check)

    def remove_io_arrival_check(self, check: Callable[[], int]) -> None:
        self._arrival_checks.remove(check)

    def await_io_arrival(self) -> None:
        """Let bytes written so far become readable before the poll (bounded; a count that stays
        the same for IO_HOLD_LIMIT is given up, counted in io_hold_expired, and not waited for again)."""
        started: float | None = None
        while self._arrival_checks:
            missing = sum(check() for check in self._arrival_checks)
            if missing == 0:
                self._arrival_stalled = 0  # everything arrived: a later stall is a new one
                return
            if missing == self._arrival_stalled:
                return
            now = time.monotonic()
            if started is None:
                started = now
            elif now - started >= IO_HOLD_LIMIT:
                self._arrival_stalled = missing
                self.io_hold_expired += 1
                return
            time.sleep(ARRIVAL_POLL)

    def io_pending(self) -> bool:
        if not self._io_checks:
            return False
        tokens = tuple(check() for check in self._io_checks)
        if all(token is None for token in tokens):
            self._io_token = None
            return False
        now = time.monotonic()
        if tokens != self._io_token:
            self._io_token = tokens
            self._io_token_since = now
            self._io_given_up = False
            return True
        if self._io_given_up:
            return False  # hold again only when the token changes
        if now - self._io_token_since < IO_HOLD_LIMIT:
            return True
        self._io_given_up = True
        self.io_hold_expired += 1
        return False

    def time(self) -> float:
        return self.virtual_now

    def _run_once(self) -> None:
        """One loop iteration, then the callbacks it made ready, at the same virtual instant.

        A timer that fires (a sleep ending) only sets a future; the task it wakes is queued for
        the next iteration, which on a stock loop means another selector poll and timer scan
        before the task runs. Virtual time cannot move while callbacks are ready, so running them
        straight away changes nothing the flight code can observe, and saves a whole iteration per
        wake-up (tens of thousands per simulated hour). Bounded, so I/O is still polled often;
        and never while work is out on a thread, whose completion must land in the ready queue
        at the deterministic place the selector gives it (see ``_VirtualSelector.select``).
        """
        super()._run_once()  # type: ignore[misc]
        ready = self._ready  # type: ignore[attr-defined]
        for _ in range(CHAINED_ROUNDS):
            if not ready or self._stopping or self.inflight:  # type: ignore[attr-defined]
                return
            for _ in range(len(ready)):
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()

    def start_deferred_work(self) -> None:
        """Hand the work the last batch of callbacks asked for to its executors (the loop is idle
        until it completes: see ``_VirtualSelector.select``)."""
        while self._deferred:
            executor, call, work = self._deferred.popleft()
            if not work.set_running_or_notify_cancel():
                continue  # cancelled before it started
            try:
                started = executor.submit(call)
            except BaseException as exc:  # e.g. an executor already shut down: the caller gets it
                work.set_exception(exc)
                continue
            self._started.append((work, started))
            # only a wake-up: the outcome is passed on by the loop, in order (settle_started_work)
            started.add_done_callback(lambda _: self._write_to_self())  # type: ignore[attr-defined]

    def settle_started_work(self) -> None:
        """Pass finished thread work on to its callers on the loop thread, in the order it was
        asked for, after waiting for it (bounded, in case a worker waits for the loop): however
        the threads are scheduled, the completions land at the same place in the ready queue.
        Waits on the work itself, not on epoll (level-triggered fds would make that a busy loop
        holding the GIL the workers need)."""
        if not self._started:
            return
        deadline = time.monotonic() + EXECUTOR_SYNC_LIMIT
        while self._started:
            work, started = self._started[0]
            if not started.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return  # still running: settled at a later poll (the clock stays held)
                concurrent.futures.wait([started], timeout=min(remaining, HOLD_POLL))
                continue
            self._started.popleft()
            _settle(work, started)

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Join the default executor's threads in real time (asyncio's own version bounds the join
        with a timer, which on this clock would expire at once: Python 3.12+ passes 300 s)."""
        self._executor_shutdown_called = True
        executor = getattr(self, "_default_executor", None)
        if executor is None:
            return
        joined = self.create_future()

        def join() -> None:
            executor.shutdown(wait=True)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.call_soon_threadsafe(_set_if_pending, joined)

        self.inflight += 1  # holds the clock: the select waits in real time
        thread = threading.Thread(target=join, name="asyncio-executor-join")
        thread.start()
        try:
            await joined
        finally:
            self.inflight -= 1
            thread.join()

    def advance(self, seconds: float) -> None:
        self.virtual_now += max(0.0, seconds)

    def resync(self) -> None:
        """With a speed limit: advance virtual time by the real time that passed (scaled)."""
        if self.speed is None:
            return
        target = self.virtual_anchor + (time.monotonic() - self.real_anchor) * self.speed
        if target > self.virtual_now:
            self.virtual_now = target

    def run_in_executor(self, executor: Any, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:  # type: ignore[override]
        if executor is not None and executor in self._inline:
            self.inline_calls += 1
            result: asyncio.Future[T] = self.create_future()
            try:
                result.set_result(func(*args))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # delivered to the awaiting caller, like a worker's error
                result.set_exception(exc)
            return result
        if executor is None:
            executor = getattr(self, "_default_executor", None)
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self.set_default_executor(executor)
        work: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._deferred.append((executor, functools.partial(func, *args), work))
        fut = asyncio.wrap_future(work, loop=self)
        self.inflight += 1  # until the caller's future is done: the clock is held meanwhile

        def done(_: asyncio.Future[T]) -> None:
            self.inflight -= 1

        fut.add_done_callback(done)
        return fut


def _set_if_pending(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


def _settle(work: concurrent.futures.Future[Any], started: concurrent.futures.Future[Any]) -> None:
    """Pass a started call's outcome on to the future its caller awaits (on the loop thread)."""
    exc = started.exception()
    if exc is not None:
        work.set_exception(exc)
    else:
        work.set_result(started.result())


def run_virtual(main: Awaitable[T], start: float = 0.0, speed: float | None = None, debug: bool = False) -> T:
    """``asyncio.run`` on a virtual-time loop."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start, speed), debug=debug) as runner:
        return runner.run(main)  # type: ignore[arg-type]
