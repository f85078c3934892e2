"""Suite-wide checks and fixtures.

Every event loop is checked: a test fails if any callback held its loop longer than 50 ms (the
flight loop must never be blocked). Loops run in asyncio debug mode, except the virtual-time loop.

Async tests are plain ``async def`` functions run by pytest-asyncio (``asyncio_mode = auto``), each
on a fresh stock loop; ``@pytest.mark.virtual_time`` runs a test on the virtual clock
(sim/virtual_time.py) instead. ``new_satellite`` and ``sat_runner`` give
satellites that are always torn down, whether the test passed, failed or timed out.

asyncio's own slow-callback report measures wall time, so on a machine shared with other jobs it
also fires when the OS simply did not schedule the loop's thread. This check measures each callback
itself and excuses only that case: the thread was preempted (involuntary context switches) and
spent less than half the limit on the CPU. A callback that computes for too long, sleeps, waits on
a file or a lock, or waits for the GIL held by one of our own threads still fails the test.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import functools
import gc
import os
import resource
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flightsw.app import Satellite
from flightsw.config import MissionConfig
from flightsw.core.component import Component
from flightsw.testing import SatelliteRunner, make_satellite
from sim.virtual_time import VirtualTimeLoop

pytest_plugins = ["pytester"]  # tests/core/test_loop_guard.py runs a test session of its own

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
            if switches > 0 and cpu < BLOCK_LIMIT:  # its own CPU under the limit: the machine, not the callback
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


# --- Event loops for async tests (pytest-asyncio) -------------------------------------------------

class _TestVirtualTimeLoop(VirtualTimeLoop):
    """The virtual-time loop as tests get it: asyncio debug mode off unless the test asks for it,
    as with ``run_virtual``.

    pytest-asyncio turns debug on for every loop it creates (``asyncio_debug = true``); on a
    simulated day that would record a stack for each of millions of callbacks. The loop-block
    guard above does not depend on debug mode.
    """

    def __init__(self, start: float = 0.0, speed: float | None = None, debug: bool = False) -> None:
        self._debug_wanted = debug
        super().__init__(start, speed)

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(getattr(self, "_debug_wanted", False))


LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "virtual": _TestVirtualTimeLoop,
}


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Async tests run on a stock asyncio loop; ``@pytest.mark.virtual_time`` (like
    ``@pytest.mark.asyncio(loop_factories=["virtual"])``, plus optional ``start``, ``speed`` and
    ``debug`` as for ``run_virtual``) runs one, with its async fixtures, on the virtual clock of
    sim/virtual_time.py instead: hours of flight time in seconds.

    Only the factories a test names are offered to it: pytest-asyncio would otherwise run every
    unmarked async test once per factory.
    """
    marker = item.get_closest_marker("asyncio")
    wanted = marker.kwargs.get("loop_factories") if marker is not None else None
    if wanted:
        return {name: LOOP_FACTORIES[name] for name in wanted if name in LOOP_FACTORIES}
    virtual = item.get_closest_marker("virtual_time")
    if virtual is not None:  # virtual_time(start=..., speed=..., debug=...) as for run_virtual
        return {"virtual": functools.partial(_TestVirtualTimeLoop, **virtual.kwargs)}
    return {"asyncio": LOOP_FACTORIES["asyncio"]}


# --- Satellites with guaranteed teardown ----------------------------------------------------------

@pytest.fixture
def new_satellite(tmp_path: Path) -> Iterator[Callable[..., Satellite]]:
    """Build satellites: ``new_satellite(components, extra_toml)`` is ``flightsw.testing.make_satellite``
    on ``tmp_path`` (or ``data_dir=``); ``new_satellite(config=...)`` builds a whole mission config
    with its subsystems. Their worker threads are shut down when the test ends, pass or fail."""
    built: list[Satellite] = []

    def build(components: Sequence[Component] = (), extra_toml: str = "", data_dir: Path | None = None,
              config: MissionConfig | None = None, **kwargs: Any) -> Satellite:
        if config is not None:
            sat = Satellite(config, **kwargs)
            for comp in components:
                sat.add(comp)
        else:
            sat = make_satellite(tmp_path if data_dir is None else data_dir, components, extra_toml, **kwargs)
        built.append(sat)
        return sat

    yield build
    for sat in built:
        sat.workers.shutdown()


@pytest.fixture
async def sat_runner() -> AsyncIterator[SatelliteRunner]:
    """Run satellites on the test's loop: ``sat = await sat_runner.start(new_satellite(...))``
    returns once the satellite runs; ``await sat_runner.stop(sat)`` stops one mid-test. Every one
    still running is stopped cleanly when the test ends, whether it passed, failed or timed out."""
    runner = SatelliteRunner()
    try:
        yield runner
    finally:
        await runner.close()
