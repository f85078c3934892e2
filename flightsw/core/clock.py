"""Spacecraft time.

Timers and schedules use the event loop's monotonic clock (virtual in accelerated simulation).
Records are stamped with (boot count, seconds since boot), which is always known, plus UTC when a
correlation is known: set by ground command or GPS during this boot, or carried over a reset from
the persisted state (quality DEGRADED until confirmed, see ``flightsw.core.timekeeping``), or from
the system clock / the simulator. The Pi has no RTC, so the wall clock is never trusted by
default, and a wall-clock step can never disturb a timer.

Mission elapsed time (MET) counts the seconds the flight software has run, across boots: the
persisted MET of the last checkpoint plus this boot's uptime. It never steps, so it (with the
record sequence number) is what consumers order by; UTC may step forward or backward when the
ground or GPS corrects it, and listeners registered with ``add_step_listener`` are told.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flightsw.core.enums import TimeQuality

#: called as ``listener(old_utc, new_utc, quality)`` when UTC is set (old is None when unknown)
StepListener = Callable[[float | None, float, TimeQuality], None]

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
    quality: TimeQuality = TimeQuality.GROUND_SET

    def to_dict(self) -> dict[str, Any]:
        return {"boot": self.boot, "seconds_at_ref": self.seconds_at_ref, "utc_at_ref": self.utc_at_ref,
                "quality": self.quality.value}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TimeCorrelation:
        quality = raw.get("quality", TimeQuality.GROUND_SET.value)  # stores written before quality
        return cls(int(raw["boot"]), float(raw["seconds_at_ref"]), float(raw["utc_at_ref"]),
                   TimeQuality(quality))

    def utc_at(self, seconds_since_boot: float) -> float:
        return self.utc_at_ref + (seconds_since_boot - self.seconds_at_ref)


class SpacecraftClock:
    def __init__(
        self,
        boot_count: int,
        monotonic: Callable[[], float] = loop_time,
        utc_source: Callable[[], float] | None = None,
        correlation: TimeCorrelation | None = None,
        met_at_boot: float = 0.0,
        utc_source_quality: TimeQuality = TimeQuality.SYSTEM,
    ) -> None:
        """``correlation``: of this boot (a DEGRADED one carried over a reset, or a confirmed
        one); one of another boot is ignored. ``met_at_boot``: the MET this boot starts from."""
        self.boot_count = boot_count
        self.monotonic = monotonic
        self._follows_running_loop = monotonic is loop_time
        self._t0 = monotonic()
        self.utc_source = utc_source
        self.utc_source_quality = utc_source_quality
        self.correlation = correlation
        self.met_at_boot = met_at_boot
        self._step_listeners: list[StepListener] = []

    def restart_epoch(self) -> None:
        """Make 'seconds since boot' start now (called once the event loop is running)."""
        if self._follows_running_loop:
            # read that loop's clock directly from now on: every telemetry write reads it
            with contextlib.suppress(RuntimeError):
                self.monotonic = asyncio.get_running_loop().time
        self._t0 = self.monotonic()

    def seconds_since_boot(self) -> float:
        return self.monotonic() - self._t0

    def met(self) -> float:
        """Mission elapsed time: seconds the flight software has run since its first boot."""
        return self.met_at_boot + self.seconds_since_boot()

    def raise_met_floor(self, met: float) -> None:
        """Never let MET run below one already recorded (a crash after the last checkpoint)."""
        if met > self.met():
            self.met_at_boot += met - self.met()

    def _active_correlation(self) -> TimeCorrelation | None:
        """This boot's correlation, unless it is a DEGRADED one and a UTC source is configured."""
        corr = self.correlation
        if corr is None or corr.boot != self.boot_count:
            return None
        if corr.quality is TimeQuality.DEGRADED and self.utc_source is not None:
            return None
        return corr

    def utc(self) -> float | None:
        corr = self._active_correlation()
        if corr is not None:
            return corr.utc_at(self.seconds_since_boot())
        if self.utc_source is not None:
            return self.utc_source()
        return None

    @property
    def quality(self) -> TimeQuality:
        corr = self._active_correlation()
        if corr is not None:
            return corr.quality
        if self.utc_source is not None:
            return self.utc_source_quality
        return TimeQuality.UNKNOWN

    def add_step_listener(self, listener: StepListener) -> None:
        """Be told when UTC is set (a step of any size and sign): re-plan UTC-timed work."""
        self._step_listeners.append(listener)

    def set_utc(self, utc: float, quality: TimeQuality = TimeQuality.GROUND_SET) -> TimeCorrelation:
        """Correlate now with a UTC value (ground command or GPS); the caller persists it.

        MET, seconds since boot and the loop's clock do not move: only UTC steps."""
        old = self.utc()
        self.correlation = TimeCorrelation(self.boot_count, self.seconds_since_boot(), utc, quality)
        for listener in list(self._step_listeners):
            listener(old, utc, quality)
        return self.correlation

    def now(self) -> Stamp:
        return Stamp(self.boot_count, self.seconds_since_boot(), self.utc())

    def stamp_at(self, monotonic: float) -> Stamp:
        """The stamp of an earlier instant given by its monotonic time (lets hot paths store a float)."""
        seconds = monotonic - self._t0
        corr = self._active_correlation()
        if corr is not None:
            utc: float | None = corr.utc_at(seconds)
        elif self.utc_source is not None:
            utc = self.utc_source() - (self.monotonic() - monotonic)
        else:
            utc = None
        return Stamp(self.boot_count, seconds, utc)
