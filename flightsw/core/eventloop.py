"""The event loop the flight process runs on: asyncio's selector loop on select(2).

Why not the default: on Linux asyncio's default selector is epoll, whose ``epoll_wait`` takes
its timeout in whole milliseconds and ``selectors.EpollSelector`` rounds it up, so every
rate-group wake-up is up to 1 ms late before the kernel adds its own latency (an idle bare loop
measured ~1.3 ms at p99 on the shared bench machine, against ~0.4 ms on select(2); see
docs/performance.md). select(2) takes microsecond timeouts. Its limit is descriptors numbered
below ``FD_SETSIZE`` (1024): the flight process holds a few dozen (the pty, I2C and GPIO
devices, sockets, the record log), and ``check_descriptors`` says so if that ever changes.
"""

from __future__ import annotations

import asyncio
import os
import selectors

FD_SETSIZE = 1024


def flight_loop() -> asyncio.AbstractEventLoop:
    """A new event loop on select(2) (a loop factory for ``asyncio.Runner``)."""
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


def highest_descriptor() -> int:
    """The highest file descriptor this process holds now (-1 if /proc cannot tell)."""
    try:
        return max((int(name) for name in os.listdir("/proc/self/fd")), default=-1)
    except OSError:
        return -1


def check_descriptors(margin: int = 256) -> None:
    """Raise if the process's descriptors come within ``margin`` of select(2)'s limit."""
    highest = highest_descriptor()
    if highest >= FD_SETSIZE - margin:
        raise RuntimeError(f"file descriptor {highest} is near select(2)'s limit of {FD_SETSIZE}")


__all__ = ["FD_SETSIZE", "check_descriptors", "flight_loop", "highest_descriptor"]
