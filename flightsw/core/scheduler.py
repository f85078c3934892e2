"""Rate groups: periodic work on absolute deadlines.

Deadlines are ``start + k * period`` on the loop's monotonic clock, so the group never drifts no
matter how long members take. Each member's execution time is measured. A cycle that ends after
its next deadline is an overrun; deadlines skipped entirely are cycle slips. Both are counted for
telemetry, and the group re-aligns to the next future deadline instead of bursting to catch up.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("flightsw.scheduler")

Member = Callable[[], Any | Awaitable[Any]]


@dataclass
class MemberStats:
    name: str
    fn: Member
    last_time: float = 0.0
    max_time: float = 0.0
    errors: int = 0


@dataclass
class RateGroupStats:
    cycles: int = 0
    overruns: int = 0
    slips: int = 0
    max_cycle_time: float = 0.0
    last_cycle_time: float = 0.0
    start_lateness_max: float = 0.0


@dataclass
class RateGroup:
    name: str
    rate_hz: float
    members: list[MemberStats] = field(default_factory=list)
    stats: RateGroupStats = field(default_factory=RateGroupStats)
    on_overrun: Callable[[RateGroup, float], None] | None = None
    on_member_error: Callable[[RateGroup, MemberStats, BaseException], None] | None = None
    # Each cycle's start lateness (s after its deadline), for a lateness distribution (bench/).
    on_cycle_start: Callable[[RateGroup, float], None] | None = None
    start_time: float | None = None

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate group {self.name}: rate must be > 0 Hz")

    @property
    def period(self) -> float:
        return 1.0 / self.rate_hz

    def add(self, name: str, fn: Member) -> None:
        """Add a member (sync or async callable), run in insertion order every cycle."""
        if any(m.name == name for m in self.members):
            raise ValueError(f"rate group {self.name}: duplicate member {name}")
        self.members.append(MemberStats(name, fn))

    def _member_failed(self, member: MemberStats, exc: Exception) -> None:
        member.errors += 1
        if self.on_member_error is not None:
            self.on_member_error(self, member, exc)
        else:
            log.exception("rate group %s member %s failed", self.name, member.name)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.period
        start = loop.time() if self.start_time is None else self.start_time
        k = 0
        while True:
            deadline = start + k * period
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            cycle_start = loop.time()
            stats = self.stats
            lateness = cycle_start - deadline
            if lateness > stats.start_lateness_max:
                stats.start_lateness_max = lateness
            if self.on_cycle_start is not None:
                self.on_cycle_start(self, lateness)
            # Members run inline (no coroutine per member): the 10 Hz group runs this ~36 000
            # times an hour, and most members are plain functions.
            for member in list(self.members):
                t0 = loop.time()
                try:
                    result = member.fn()
                    if result is not None and inspect.isawaitable(result):
                        await result
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._member_failed(member, exc)
                dt = loop.time() - t0
                member.last_time = dt
                if dt > member.max_time:
                    member.max_time = dt
            end = loop.time()
            cycle = end - cycle_start
            stats.cycles += 1
            stats.last_cycle_time = cycle
            if cycle > stats.max_cycle_time:
                stats.max_cycle_time = cycle
            next_deadline = start + (k + 1) * period
            if end > next_deadline:
                stats.overruns += 1
                missed = int((end - next_deadline) // period) + 1  # deadlines already passed
                stats.slips += missed
                k += missed
                if self.on_overrun is not None:
                    self.on_overrun(self, cycle)
            k += 1
