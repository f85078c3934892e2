"""Health gates the watchdog: it is petted only while every critical task shows progress.

A task registers a heartbeat with a deadline and beats it whenever it makes progress. If any
heartbeat is older than its deadline, the monitor stops petting, so a hung loop or a stuck
service ends in a watchdog reset instead of a zombie satellite.

Critical services also have a **health ping**: a probe the monitor calls every check that says
what is wrong with the service, if anything (the satellite adds one per critical supervised
service: failed, or crashing and restarting; a service may add its own with ``add_ping``). A ping failing for its grace time stops the pets like a stale
heartbeat; the ``on_critical`` hook runs first (the satellite records the reset reason
CRITICAL_SERVICE, so the next boot says why), and again with an empty list if the service
recovers before the watchdog bit. Why a grace time: a service restarting after one crash, or
a serial adapter re-enumerating, must not reset the satellite; one that stays dead must.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
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


@dataclass
class Ping:
    """A critical service's health ping: ``probe()`` returns what is wrong, or None."""

    name: str
    probe: Callable[[], str | None]
    grace: float
    failing_since: float | None = None
    problem: str = ""

    def poll(self, now: float) -> bool:
        """Ask the service; True when it has been failing for its grace time."""
        problem = self.probe()
        if problem is None:
            self.failing_since, self.problem = None, ""
            return False
        if self.failing_since is None:
            self.failing_since = now
        self.problem = problem
        return now - self.failing_since >= self.grace


class HealthMonitor:
    def __init__(
        self,
        watchdog: Watchdog,
        clock: Callable[[], float],
        period: float = 1.0,
        on_stale: Callable[[list[Heartbeat]], None] | None = None,
        on_critical: Callable[[list[Ping]], Awaitable[None]] | None = None,
        grace: float = 30.0,
    ) -> None:
        self.watchdog = watchdog
        self.clock = clock
        self.period = period
        self.on_stale = on_stale
        self.on_critical = on_critical
        self.grace = grace
        self.heartbeats: dict[str, Heartbeat] = {}
        self.pings: dict[str, Ping] = {}
        self.critical: list[Ping] = []  # pings failing past their grace at the last check
        self.pets = 0
        self.withheld = 0
        self._was_healthy = True
        self._reported_critical: list[str] = []

    def add_ping(self, name: str, probe: Callable[[], str | None], grace: float | None = None) -> Ping:
        """A health ping for critical service ``name`` (grace: the monitor's default when None)."""
        if name in self.pings:
            raise ValueError(f"duplicate health ping {name}")
        ping = Ping(name, probe, self.grace if grace is None else grace)
        self.pings[name] = ping
        return ping

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
        """One health decision: pet the watchdog if all heartbeats are fresh and no health
        ping has been failing for its grace time."""
        now = self.clock()
        self.critical = [p for p in self.pings.values() if p.poll(now)]
        stale = self.stale()
        if self.critical:
            if self._was_healthy:
                log.error("withholding watchdog: critical %s",
                          ", ".join(f"{p.name} ({p.problem})" for p in self.critical))
            self.withheld += 1
            self._was_healthy = False
            return False
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
            names = [p.name for p in self.critical]
            if names != self._reported_critical and self.on_critical is not None:
                # recorded (persisted) before the watchdog can bite: the next boot says why
                await self.on_critical(list(self.critical))
            self._reported_critical = names
            await asyncio.sleep(self.period)
