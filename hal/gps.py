"""GPS receiver as a time source: NMEA sentences from a serial port (pyserial, non-blocking).

The flight side reads RMC and ZDA for UTC; position is not used here. ``GpsTimeSource`` is the
interface the time component needs; ``NmeaGps`` implements it on any serial device, the real
receiver's UART or the simulated receiver's pseudo-terminal (sim/gps.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Protocol

from hal.nmea import NmeaError, SentenceSplitter, TimeFix, parse
from hal.serial_port import AsyncSerialPort

log = logging.getLogger(__name__)


class GpsTimeSource(Protocol):
    """Valid time fixes as they arrive, and the counts of what could not be used."""

    sentences: int
    bad_sentences: int

    def fixes(self) -> AsyncIterator[TimeFix]: ...

    async def close(self) -> None: ...


class NmeaGps:
    """NMEA over a serial port: every valid time fix, in arrival order; bad sentences counted."""

    def __init__(self, port: AsyncSerialPort) -> None:
        self.port = port
        self.sentences = 0
        self.bad_sentences = 0
        self.last_error = ""
        self._splitter = SentenceSplitter()

    async def fixes(self) -> AsyncIterator[TimeFix]:
        while True:
            data = await self.port.read()
            for line in self._splitter.feed(data):
                self.sentences += 1
                try:
                    fix = parse(line)
                except NmeaError as exc:
                    self.bad_sentences += 1
                    self.last_error = str(exc)[:80]
                    log.debug("GPS sentence dropped: %s", exc)
                    continue
                if fix is not None and fix.valid:
                    yield fix

    async def close(self) -> None:
        await self.port.close()
