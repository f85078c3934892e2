"""Spacecraft time.

Timers and schedules use the event loop's monotonic clock (virtual in accelerated simulation).
Records are stamped with (boot count, seconds since boot), which is always known, plus UTC when a
correlation is known: set by ground command (persisted, valid for the boot it was set in) or from a
disciplined source such as GPS or the simulator. The Pi has no RTC, so the wall clock is never
trusted by default, and a wall-clock step can never disturb a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def loop_time() -> float:
    """The running loop's clock (monotonic, or virtual in simulation); time.monotonic otherwise."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


@dataclass(frozen=True)
class Stamp:
    boot: int
    seconds: float
    utc: float | None = None

    def to_wire(self) -> tuple[int, float, float | None]:
        return (self.boot, round(self.seconds, 3), None if self.utc is None else round(self.utc, 3))

    def __str__(self) -> str:
        utc = "" if self.utc is None else time.strftime(" %Y-%m-%dT%H:%M:%SZ", time.gmtime(self.utc))
        return f"[{self.boot}:{self.seconds:.3f}{utc}]"


@dataclass(frozen=True)
class TimeCorrelation:
    """UTC = utc_at_ref + (seconds_since_boot - seconds_at_ref), valid during ``boot``."""

    boot: int
    seconds_at_ref: float
    utc_at_ref: float

    def to_dict(self) -> dict[str, Any]:
        return {"boot": self.boot, "seconds_at_ref": self.seconds_at_ref, "utc_at_ref": self.utc_at_ref}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TimeCorrelation:
        return cls(int(raw["boot"]), float(raw["seconds_at_ref"]), float(raw["utc_at_ref"]))


class SpacecraftClock:
    def __init__(
        self,
        boot_count: int,
        monotonic: Callable[[], float] = loop_time,
        utc_source: Callable[[], float] | None = None,
        correlation: TimeCorrelation | None = None,
    ) -> None:
        self.boot_count = boot_count
        self.monotonic = monotonic
        self._follows_running_loop = monotonic is loop_time
        self._t0 = monotonic()
        self.utc_source = utc_source
        self.correlation = correlation

    def restart_epoch(self) -> None:
        """Make 'seconds since boot' start now (called once the event loop is running)."""
        if self._follows_running_loop:
            # read that loop's clock directly from now on: every telemetry write reads it
            with contextlib.suppress(RuntimeError):
                self.monotonic = asyncio.get_running_loop().time
        self._t0 = self.monotonic()

    def seconds_since_boot(self) -> float:
        return self.monotonic() - self._t0

    def utc(self) -> float | None:
        corr = self.correlation
        if corr is not None and corr.boot == self.boot_count:
            return corr.utc_at_ref + (self.seconds_since_boot() - corr.seconds_at_ref)
        if self.utc_source is not None:
            return self.utc_source()
        return None

    def set_utc(self, utc: float) -> TimeCorrelation:
        """Correlate now with a UTC value (ground command or GPS); the caller persists it."""
        self.correlation = TimeCorrelation(self.boot_count, self.seconds_since_boot(), utc)
        return self.correlation

    def now(self) -> Stamp:
        return Stamp(self.boot_count, self.seconds_since_boot(), self.utc())

    def stamp_at(self, monotonic: float) -> Stamp:
        """The stamp of an earlier instant given by its monotonic time (lets hot paths store a float)."""
        seconds = monotonic - self._t0
        corr = self.correlation
        if corr is not None and corr.boot == self.boot_count:
            utc: float | None = corr.utc_at_ref + (seconds - corr.seconds_at_ref)
        elif self.utc_source is not None:
            utc = self.utc_source() - (self.monotonic() - monotonic)
        else:
            utc = None
        return Stamp(self.boot_count, seconds, utc)
