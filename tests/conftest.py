"""Suite-wide checks: every event loop runs in asyncio debug mode, and a test fails if any callback
held its loop longer than 50 ms (the flight loop must never be blocked).

asyncio's own slow-callback report measures wall time, so on a machine shared with other jobs it
also fires when the OS simply did not schedule the loop's thread. This check measures each callback
itself and excuses only that case: the thread was preempted (involuntary context switches) and
spent less than half the limit on the CPU. A callback that computes for too long, sleeps, waits on
a file or a lock, or waits for the GIL held by one of our own threads still fails the test.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import gc
import os
import resource
import time
from dataclasses import dataclass, field

import pytest

BLOCK_LIMIT = float(os.environ.get("FLIGHTSW_LOOP_BLOCK_MS", "50")) / 1000.0
os.environ.setdefault("PYTHONASYNCIODEBUG", "1")


@dataclass
class SlowCallbacks:
    blocked: list[str] = field(default_factory=list)
    preempted: list[str] = field(default_factory=list)


_current = SlowCallbacks()
_orig_init = asyncio.BaseEventLoop.__init__
_orig_run = asyncio.events.Handle._run


def _init(self: asyncio.BaseEventLoop, *args: object, **kwargs: object) -> None:
    _orig_init(self, *args, **kwargs)  # type: ignore[arg-type]
    self.slow_callback_duration = 3600.0  # measured below instead


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _describe(handle: asyncio.events.Handle) -> str:
    """Name the coroutine behind a task step (asyncio's repr shows only a wrapper)."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f" at {frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else ""
        return f"task {task.get_name()} {getattr(coro, '__qualname__', coro)!s}{where}"
    return f"{handle!r:.300}"


def _run(self: asyncio.events.Handle) -> None:
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_THREAD)
    try:
        _orig_run(self)
    finally:
        wall = time.perf_counter() - t0
        if wall > BLOCK_LIMIT:
            r1 = resource.getrusage(resource.RUSAGE_THREAD)
            cpu = _cpu(r1) - _cpu(r0)
            switches = r1.ru_nivcsw - r0.ru_nivcsw
            text = f"{_describe(self)} took {wall * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU, {switches} preemptions)"
            if switches > 0 and cpu < BLOCK_LIMIT / 2:
                _current.preempted.append(text)
            else:
                _current.blocked.append(text)


asyncio.BaseEventLoop.__init__ = _init  # type: ignore[method-assign]
asyncio.events.Handle._run = _run  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_blocked_loop(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    global _current
    # Hundreds of tests share this process: move what earlier tests left on the heap out of the
    # collector's reach, so a full collection of *their* objects cannot land inside this test's
    # callbacks (the flight process freezes its start-up heap the same way, see Satellite.run).
    gc.collect()
    gc.freeze()
    _current = SlowCallbacks()
    yield _current
    found = _current
    if found.blocked and not request.node.get_closest_marker("allow_slow_callbacks"):
        slow = "\n".join(found.blocked)
        pytest.fail(f"event loop blocked > {BLOCK_LIMIT * 1000:.0f} ms:\n{slow}")
