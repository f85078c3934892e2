"""What a watchdog reset needs beyond the flight software itself: which boot created each task,
and the cyclic garbage of a reset satellite.

Why apart: structured concurrency across a reset (no task of a stopped satellite may survive
it) is a property of the event loop's tasks, not of the simulated world or the ground; the
runner asks this module which tasks a boot left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import weakref
from collections.abc import Iterator
from typing import Any

# The boot (index into SimulationRun.boots) whose satellite is running in this context.
_CURRENT_BOOT: contextvars.ContextVar[int] = contextvars.ContextVar("flightsw_sim_boot")


class BootTasks:
    """Notes the boot that created every task, so a task a reset satellite left behind is found."""

    def __init__(self) -> None:
        self._task_boot: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = weakref.WeakKeyDictionary()

    def task_factory(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        """The loop's task factory: every task notes the boot that created it (inherited through
        the creating context), whoever created it."""
        context = kwargs.get("context")
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        boot = context.get(_CURRENT_BOOT) if context is not None else _CURRENT_BOOT.get(None)
        if boot is not None:
            self._task_boot[task] = boot
        return task

    @contextlib.contextmanager
    def running(self, boot: int) -> Iterator[None]:
        """Tasks created in this block (and by those tasks) belong to `boot`."""
        token = _CURRENT_BOOT.set(boot)
        try:
            yield
        finally:
            _CURRENT_BOOT.reset(token)

    def left_behind(self, boot: int) -> list[asyncio.Task[Any]]:
        """Tasks of `boot` that are not done (after its satellite stopped: a bug)."""
        return [t for t in asyncio.all_tasks() if not t.done() and self._task_boot.get(t) == boot]


def collect_frozen_garbage() -> None:
    """Each boot froze its heap out of the cyclic collector: thaw, collect and freeze again."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def coroutine_name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return str(getattr(coro, "__qualname__", type(coro).__name__))
