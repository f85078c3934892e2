"""Simulated watchdog: records pets and 'bites' when not petted within its timeout.

Tests use it to see what the health monitor did; the simulator uses the bite to reboot the
simulated satellite, as the hardware watchdog would reset the board.
"""

from __future__ import annotations

from collections.abc import Callable

from flightsw.core.clock import loop_time


class SimWatchdog:
    def __init__(self, timeout: float = 15.0, clock: Callable[[], float] = loop_time) -> None:
        self.timeout = timeout
        self.clock = clock
        self.pets: list[float] = []  # recent pet times (bounded)
        self.pet_count = 0
        self.statuses: list[str] = []
        self.is_ready = False
        self.stopped = False
        self.bites = 0
        self._last = clock()

    def ready(self) -> None:
        self.is_ready = True
        self._last = self.clock()

    def pet(self) -> None:
        now = self.clock()
        self.pet_count += 1
        self.pets.append(now)
        if len(self.pets) > 10_000:
            del self.pets[:5_000]
        self._last = now

    def status(self, text: str) -> None:
        self.statuses.append(text)
        del self.statuses[:-100]

    def stopping(self) -> None:
        self.stopped = True

    def expired(self) -> bool:
        """True when the timeout passed without a pet (the board would be reset now)."""
        if self.is_ready and not self.stopped and self.clock() - self._last > self.timeout:
            self.bites += 1
            self._last = self.clock()
            return True
        return False
