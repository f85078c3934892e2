"""Supervised services: long-running coroutines in one structured task group.

A service that raises is reported (event) and restarted after an exponential back-off. When it
fails ``max_failures`` times within ``window`` seconds it is marked failed, a fault hook is called
(FDIR decides what to do: safe mode, power cycle, reboot) and the other services keep running.
Nothing is fire-and-forget: every task lives in the supervisor's TaskGroup and is cancelled with it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("flightsw.supervisor")


class ServiceState(enum.IntEnum):
    PENDING = 0
    RUNNING = 1
    BACKOFF = 2
    FAILED = 3
    STOPPED = 4  # returned normally


@dataclass
class Service:
    name: str
    factory: Callable[[], Awaitable[object]]
    critical: bool = True
    max_failures: int = 5
    window: float = 600.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    state: ServiceState = ServiceState.PENDING
    restarts: int = 0
    failures: deque[float] = field(default_factory=deque)
    last_error: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)


ServiceHook = Callable[[Service, BaseException], None]


class Supervisor:
    def __init__(
        self,
        on_crash: ServiceHook | None = None,
        on_failed: ServiceHook | None = None,
    ) -> None:
        self.services: dict[str, Service] = {}
        self.on_crash = on_crash
        self.on_failed = on_failed
        self._group: asyncio.TaskGroup | None = None

    def add_service(
        self,
        name: str,
        factory: Callable[[], Awaitable[object]],
        critical: bool = True,
        max_failures: int = 5,
        window: float = 600.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> Service:
        if name in self.services:
            raise ValueError(f"duplicate service {name}")
        svc = Service(name, factory, critical, max_failures, window, backoff_initial, backoff_max)
        self.services[name] = svc
        if self._group is not None:  # added while running: start it in the same group
            svc.task = self._group.create_task(self._supervise(svc), name=name)
        return svc

    def restart(self, name: str) -> ServiceState:
        """Start service ``name`` afresh (FDIR's restart response): a running one is cancelled
        first, a failed one gets a clean failure history. Returns the state it was in."""
        svc = self.services.get(name)
        if svc is None:
            raise KeyError(f"no service {name!r}")
        if self._group is None:
            raise RuntimeError("services are not running")
        was = svc.state
        if svc.task is not None and not svc.task.done():
            svc.task.cancel()
        svc.failures.clear()
        svc.restarts += 1
        svc.state = ServiceState.PENDING
        svc.task = self._group.create_task(self._supervise(svc), name=name)
        return was

    async def run(self) -> None:
        """Run every service until cancelled."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            for svc in list(self.services.values()):
                svc.task = group.create_task(self._supervise(svc), name=svc.name)
        self._group = None

    async def _supervise(self, svc: Service) -> None:
        loop = asyncio.get_running_loop()
        delay = svc.backoff_initial
        while True:
            svc.state = ServiceState.RUNNING
            try:
                await svc.factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = loop.time()
                svc.failures.append(now)
                while svc.failures and now - svc.failures[0] > svc.window:
                    svc.failures.popleft()
                svc.last_error = f"{type(exc).__name__}: {exc}"[:120]
                if len(svc.failures) >= svc.max_failures:
                    svc.state = ServiceState.FAILED
                    log.error("service %s failed permanently: %s", svc.name, svc.last_error)
                    if self.on_failed is not None:
                        self.on_failed(svc, exc)
                    return
                log.warning("service %s crashed (%s); restart in %.1f s", svc.name, svc.last_error, delay)
                if self.on_crash is not None:
                    self.on_crash(svc, exc)
                svc.state = ServiceState.BACKOFF
                await asyncio.sleep(delay)
                delay = min(delay * 2, svc.backoff_max)
                svc.restarts += 1
                continue
            svc.state = ServiceState.STOPPED
            return
