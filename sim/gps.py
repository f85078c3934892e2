"""Simulated GPS receiver: NMEA RMC and ZDA on a real pseudo-terminal, from the simulated time.

Why a pty: the flight side's serial code (pyserial, non-blocking reads, the sentence splitter and
parser) is the code that flies; only the far end is simulated, as for the radio. The time comes
from the simulated World's clock (or any ``utc()`` callable), the position, when a
``position()`` callable is given, from its orbit's sub-satellite point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import tty
from collections.abc import Callable
from pathlib import Path

from hal.nmea import sentence
from sim.transceiver import readable_bytes

log = logging.getLogger(__name__)

TALKER = "GP"


def _angle(value: float, degree_digits: int) -> tuple[str, bool]:
    """ddmm.mmmm / dddmm.mmmm and whether the value is negative."""
    negative = value < 0
    value = abs(value)
    degrees = int(value)
    minutes = (value - degrees) * 60.0
    return f"{degrees:0{degree_digits}d}{minutes:07.4f}", negative


def rmc(utc: float, position: tuple[float, float] | None = None, valid: bool = True) -> bytes:
    t = time.gmtime(utc)
    hundredths = int(round((utc % 1.0) * 100)) % 100
    stamp = f"{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}.{hundredths:02d}"
    date = f"{t.tm_mday:02d}{t.tm_mon:02d}{t.tm_year % 100:02d}"
    lat = lon = ""
    ns, ew = "N", "E"
    if position is not None:
        lat, south = _angle(position[0], 2)
        lon, west = _angle(position[1], 3)
        ns, ew = ("S" if south else "N"), ("W" if west else "E")
    return sentence(TALKER, "RMC", [stamp, "A" if valid else "V", lat, ns, lon, ew, "0.0", "0.0", date, "", "",
                                    "A" if valid else "N"])


def zda(utc: float) -> bytes:
    t = time.gmtime(utc)
    hundredths = int(round((utc % 1.0) * 100)) % 100
    stamp = f"{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}.{hundredths:02d}"
    return sentence(TALKER, "ZDA", [stamp, f"{t.tm_mday:02d}", f"{t.tm_mon:02d}", f"{t.tm_year:04d}", "00", "00"])


class SimGps:
    """Writes one RMC and one ZDA every ``period_s`` to a pty whose slave end is ``link_path``."""

    def __init__(self, link_path: str | os.PathLike[str], utc: Callable[[], float], *,
                 period_s: float = 1.0, offset_s: float = 0.0,
                 position: Callable[[], tuple[float, float] | None] | None = None) -> None:
        self.link_path = Path(link_path)
        self.utc = utc
        self.period_s = period_s
        self.offset_s = offset_s  # a receiver error injected by tests and scenarios
        self.position = position
        self.sentences_written = 0
        self.bytes_written = 0
        self.bytes_dropped = 0  # nobody reading and the pty buffer full: a real UART drops too
        self._master: int | None = None
        self._slave: int | None = None

    @property
    def device(self) -> str:
        return str(self.link_path)

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        tmp = self.link_path.with_name(self.link_path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.link_path)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    def emit(self) -> None:
        """Write this second's sentences now."""
        assert self._master is not None
        now = self.utc() + self.offset_s
        data = rmc(now, self.position() if self.position is not None else None) + zda(now)
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        self.bytes_dropped += len(data) - written
        self.bytes_written += written
        self.sentences_written += 2

    def readable(self) -> int:
        """Bytes written that the reader's end can read now (FIONREAD on the device side): with
        the reader's count, what a virtual-time loop waits for (``add_io_arrival_check``)."""
        return readable_bytes(self._slave) if self._slave is not None else 0

    async def run(self) -> None:
        """Service: open the pty, then send the sentences every period until cancelled."""
        self._open_pty()
        log.info("sim GPS: NMEA on %s", self.link_path)
        try:
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while True:
                self.emit()
                next_at += self.period_s
                await asyncio.sleep(max(0.0, next_at - loop.time()))
        finally:
            self._close_pty()
