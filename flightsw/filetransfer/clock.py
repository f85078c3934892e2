"""Timers for cfdp-py that run on the caller's clock instead of the wall clock.

cfdp-py 0.7 builds its ACK, NAK and check timers from ``spacepackets.countdown.Countdown``,
which reads ``time.time()``: a clock step (NTP, a ground time fix, a Pi booting at 1970) fires
or freezes every running timer, and a virtual simulation clock cannot drive them at all.
``ClockedCountdown`` reads a "now" that the entity sets around each handler call (the event
loop's monotonic or virtual time) and is installed in place of ``Countdown`` inside cfdp-py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import cfdppy.handler.dest as _cfdp_dest
import cfdppy.handler.source as _cfdp_source
from cfdppy.mib import CheckTimerProvider, EntityType
from spacepackets.countdown import Countdown
from spacepackets.util import UnsignedByteField

_current = threading.local()


def _monotonic_ms() -> int:
    """Fallback when a timer is read outside an entity step: monotonic, never the wall clock."""
    return round(time.monotonic() * 1000)


def current_time_ms() -> int:
    """The time of the handler step in progress on this thread (ms), else the monotonic clock."""
    now: float | None = getattr(_current, "now", None)
    if now is None:
        return _monotonic_ms()
    return round(now * 1000)


@contextmanager
def handler_time(now: float) -> Iterator[None]:
    """Make every cfdp-py timer created or read inside this block see ``now`` (seconds)."""
    previous = getattr(_current, "now", None)
    _current.now = now
    try:
        yield
    finally:
        _current.now = previous


class ClockedCountdown(Countdown):
    """A ``Countdown`` driven by ``current_time_ms`` (monotonic or virtual), not ``time.time``."""

    def __init__(self, init_timeout: timedelta | None):
        super().__init__(init_timeout)
        if init_timeout is not None:
            self._start_time_ms = current_time_ms()

    def timed_out(self) -> bool:
        return current_time_ms() - self._start_time_ms >= self._timeout_ms

    def start(self) -> None:
        self._start_time_ms = current_time_ms()

    def time_out(self) -> None:
        self._start_time_ms = current_time_ms() - self._timeout_ms

    def remaining_time(self) -> timedelta:
        remaining = self._start_time_ms + self._timeout_ms - current_time_ms()
        return timedelta(milliseconds=max(0, remaining))


def install_clocked_timers() -> None:
    """Replace the ``Countdown`` name inside cfdp-py's handler modules (idempotent)."""
    _cfdp_source.Countdown = ClockedCountdown  # type: ignore[misc]
    _cfdp_dest.Countdown = ClockedCountdown  # type: ignore[misc]


class ClockedCheckTimerProvider(CheckTimerProvider):
    """Check-limit timers (class 1 only in practice) on the same clock as the other timers."""

    def __init__(self, check_interval_s: float) -> None:
        self.check_interval_s = check_interval_s

    def provide_check_timer(
        self,
        local_entity_id: UnsignedByteField,
        remote_entity_id: UnsignedByteField,
        entity_type: EntityType,
    ) -> Countdown:
        return ClockedCountdown.from_seconds(self.check_interval_s)


ClockSource = Callable[[], float]

install_clocked_timers()
