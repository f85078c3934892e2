"""NMEA 0183 time sentences (RMC, ZDA) from a GPS receiver: framing, checksum, parsing.

Why our own and not pynmea2: only two sentences are needed, pynmea2's last release is from
2023, and bytes from a device on a satellite's UART must be handled without surprises: every
sentence is length-bounded, its checksum is required and verified, and any malformed field gives
a ``NmeaError`` naming the problem, never another exception. Talker ids are any two letters
(GP, GN, GL, GA, BD...).

A sentence: ``$<talker><type>,<fields>*<hh>\\r\\n``, at most 82 characters (NMEA 0183 4.x).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_SENTENCE = 82  # characters from '$' to the end of line, per NMEA 0183
_SENTENCE = re.compile(rb"\$([A-Z]{2})([A-Z]{3}),([\x20-\x7e]*)\*([0-9A-Fa-f]{2})")
_TIME = re.compile(r"(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?")


class NmeaError(ValueError):
    """A sentence that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class TimeFix:
    """UTC from one sentence (Unix seconds) and whether the receiver marked it valid."""

    sentence: str  # "RMC" or "ZDA"
    talker: str
    utc: float
    valid: bool


def checksum(body: bytes) -> int:
    """XOR of the bytes between '$' and '*'."""
    value = 0
    for b in body:
        value ^= b
    return value


def sentence(talker: str, kind: str, fields: list[str]) -> bytes:
    """Build one sentence with its checksum and CRLF (the simulated receiver's output)."""
    body = f"{talker}{kind},{','.join(fields)}".encode("ascii")
    return b"$" + body + f"*{checksum(body):02X}\r\n".encode("ascii")


def _time_of_day(text: str) -> float:
    match = _TIME.fullmatch(text)
    if match is None:
        raise NmeaError(f"time {text!r} is not hhmmss[.sss]")
    hh, mm, ss, frac = match.groups()
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:  # 60: a leap second
        raise NmeaError(f"time {text!r} out of range")
    return int(hh) * 3600 + int(mm) * 60 + int(ss) + (int(frac) / 10 ** len(frac) if frac else 0.0)


def _epoch(year: int, month: int, day: int, seconds: float) -> float:
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise NmeaError(f"date {year:04d}-{month:02d}-{day:02d} does not exist")
    return calendar.timegm((year, month, day, 0, 0, 0)) + seconds


def _digits(text: str, what: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise NmeaError(f"{what} {text!r} is not a number")
    return int(text)


def parse(line: bytes) -> TimeFix | None:
    """One sentence (with or without CR/LF) as a time fix; None for a valid sentence of another
    type. Raises NmeaError for a bad frame, checksum or field."""
    line = line.strip(b"\r\n")
    if len(line) > MAX_SENTENCE - 2:
        raise NmeaError(f"sentence of {len(line)} characters is longer than NMEA allows")
    match = _SENTENCE.fullmatch(line)
    if match is None:
        raise NmeaError("not a '$ttsss,...*hh' sentence")
    talker, kind, body, given = (g.decode("ascii") for g in match.groups())
    expected = checksum(line[1:line.rindex(b"*")])
    if int(given, 16) != expected:
        raise NmeaError(f"checksum {given.upper()} does not match {expected:02X}")
    fields = body.split(",")
    if kind == "RMC":
        return _rmc(talker, fields)
    if kind == "ZDA":
        return _zda(talker, fields)
    return None


def _rmc(talker: str, fields: list[str]) -> TimeFix:
    # hhmmss.ss,A|V,lat,N,lon,E,speed,course,ddmmyy,magvar,E[,mode[,nav status]]
    if len(fields) < 9:
        raise NmeaError(f"RMC has {len(fields)} fields, at least 9 expected")
    if fields[1] not in ("A", "V"):
        raise NmeaError(f"RMC status {fields[1]!r} is neither A nor V")
    if len(fields[8]) != 6:
        raise NmeaError(f"RMC date {fields[8]!r} is not ddmmyy")
    date = _digits(fields[8], "RMC date")
    day, month, yy = date // 10000, date // 100 % 100, date % 100
    # two-digit year: receivers of this era report 20yy (1980..2079 by the GPS convention)
    year = 2000 + yy if yy < 80 else 1900 + yy
    utc = _epoch(year, month, day, _time_of_day(fields[0]))
    valid = fields[1] == "A" and (len(fields) < 12 or fields[11] not in ("N",))
    return TimeFix("RMC", talker, utc, valid)


def _zda(talker: str, fields: list[str]) -> TimeFix:
    # hhmmss.ss,dd,mm,yyyy,zone hours,zone minutes
    if len(fields) < 4:
        raise NmeaError(f"ZDA has {len(fields)} fields, at least 4 expected")
    if not fields[0]:
        return TimeFix("ZDA", talker, 0.0, False)  # receiver without time yet
    day = _digits(fields[1], "ZDA day")
    month = _digits(fields[2], "ZDA month")
    year = _digits(fields[3], "ZDA year")
    if len(fields[3]) != 4:
        raise NmeaError(f"ZDA year {fields[3]!r} is not four digits")
    return TimeFix("ZDA", talker, _epoch(year, month, day, _time_of_day(fields[0])), True)


class SentenceSplitter:
    """Cuts a byte stream into sentences: from each '$' to the end of line, bounded in length,
    so a receiver that babbles (no line ends, binary noise) cannot grow a buffer."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.overlong = 0  # fragments dropped for having no line end within MAX_SENTENCE

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = self._buffer
        buf.extend(data)
        while True:
            start = buf.find(b"$")
            if start < 0:
                buf.clear()
                return
            if start:
                del buf[:start]
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_SENTENCE:
                    self.overlong += 1
                    next_start = buf.find(b"$", 1)
                    del buf[:next_start if next_start > 0 else len(buf)]
                    continue
                return
            line = bytes(buf[:end + 1])
            del buf[:end + 1]
            yield line
