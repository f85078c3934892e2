"""Keep blocking work off the event loop.

Bus and file I/O run on one worker thread per resource (which also serialises access to that
resource, e.g. one I2C bus); CPU-heavy work (image encoding, checksums of large files) runs in a
shared executor. Both go through ``loop.run_in_executor`` so a virtual-time loop can see the work
in flight and hold its clock until it completes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Workers:
    def __init__(self, cpu_workers: int = 2) -> None:
        self._resources: dict[str, ThreadPoolExecutor] = {}
        self._cpu = ThreadPoolExecutor(max_workers=cpu_workers, thread_name_prefix="cpu")

    def executor_for(self, resource: str) -> ThreadPoolExecutor:
        ex = self._resources.get(resource)
        if ex is None:
            ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"io-{resource}")
            self._resources[resource] = ex
        return ex

    async def run_io(self, resource: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking I/O on ``resource``'s own thread; calls on one resource never overlap."""
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs) if kwargs else functools.partial(fn, *args)
        return await loop.run_in_executor(self.executor_for(resource), call)

    async def run_cpu(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        return await loop.run_in_executor(self._cpu, call)

    def shutdown(self) -> None:
        for ex in self._resources.values():
            ex.shutdown(wait=True)
        self._cpu.shutdown(wait=True)
