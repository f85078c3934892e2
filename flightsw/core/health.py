"""Health gates the watchdog: it is petted only while every critical task shows progress.

A task registers a heartbeat with a deadline and beats it whenever it makes progress. If any
heartbeat is older than its deadline, the monitor stops petting, so a hung loop or a stuck
service ends in a watchdog reset instead of a zombie satellite.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("flightsw.health")


class Watchdog(Protocol):
    """What health needs of a watchdog; implemented by ``hal.watchdog`` and ``sim.watchdog``.

    Declared here, not imported from ``hal``: the core depends on no hardware layer."""

    def ready(self) -> None: ...
    def pet(self) -> None: ...
    def status(self, text: str) -> None: ...
    def stopping(self) -> None: ...


@dataclass
class Heartbeat:
    name: str
    deadline: float
    _clock: Callable[[], float]
    last: float

    def beat(self) -> None:
        self.last = self._clock()

    def age(self) -> float:
        return self._clock() - self.last

    def stale(self) -> bool:
        return self.age() > self.deadline


class HealthMonitor:
    def __init__(
        self,
        watchdog: Watchdog,
        clock: Callable[[], float],
        period: float = 1.0,
        on_stale: Callable[[list[Heartbeat]], None] | None = None,
    ) -> None:
        self.watchdog = watchdog
        self.clock = clock
        self.period = period
        self.on_stale = on_stale
        self.heartbeats: dict[str, Heartbeat] = {}
        self.pets = 0
        self.withheld = 0
        self._was_healthy = True

    def register(self, name: str, deadline: float) -> Heartbeat:
        if name in self.heartbeats:
            raise ValueError(f"duplicate heartbeat {name}")
        hb = Heartbeat(name, deadline, self.clock, self.clock())
        self.heartbeats[name] = hb
        return hb

    def unregister(self, name: str) -> None:
        self.heartbeats.pop(name, None)

    def stale(self) -> list[Heartbeat]:
        return [hb for hb in self.heartbeats.values() if hb.stale()]

    def check(self) -> bool:
        """One health decision: pet the watchdog if all heartbeats are fresh."""
        stale = self.stale()
        if not stale:
            self.watchdog.pet()
            self.pets += 1
            self._was_healthy = True
            return True
        self.withheld += 1
        if self._was_healthy:  # report the transition once, not every period
            log.error("withholding watchdog: stale %s", ", ".join(hb.name for hb in stale))
            if self.on_stale is not None:
                self.on_stale(stale)
        self._was_healthy = False
        return False

    async def run(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(self.period)
