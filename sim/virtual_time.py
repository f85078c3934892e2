"""A virtual-time asyncio event loop: the same flight code, a simulated day in minutes.

The loop's clock (``loop.time()``) is virtual. When nothing is ready to run and no blocking work is
in flight on an executor, the clock jumps straight to the next timer instead of sleeping. Work
handed to ``run_in_executor`` (bus I/O, CPU work) holds the clock until it completes, so a
transaction never "takes" virtual hours; real I/O on file descriptors (pty, sockets) is still
polled without blocking before each jump.

``speed`` limits acceleration: ``None`` runs as fast as possible, ``N`` keeps virtual time at most
N times faster than real time (the real clock paces the jumps).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# How long a real wait lasts while executor work holds the virtual clock.
HOLD_POLL = 0.05


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._vloop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._vloop
        if timeout is not None and timeout <= 0:
            return super().select(0)
        ready = super().select(0)
        if ready:
            return ready
        if loop.inflight:
            # Executor work holds the clock: wait for it in real time (its completion wakes us).
            return super().select(HOLD_POLL if timeout is None else min(timeout, HOLD_POLL))
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
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self.virtual_now

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
        fut = super().run_in_executor(executor, func, *args)
        self.inflight += 1

        def done(_: asyncio.Future[T]) -> None:
            self.inflight -= 1

        fut.add_done_callback(done)
        return fut


def run_virtual(main: Awaitable[T], start: float = 0.0, speed: float | None = None, debug: bool = False) -> T:
    """``asyncio.run`` on a virtual-time loop."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start, speed), debug=debug) as runner:
        return runner.run(main)  # type: ignore[arg-type]
