"""Onboard pass prediction: when is a ground station above its elevation mask?

The uplinked TLE is propagated with SGP4 (the ``sgp4`` package, imported only here, and this
module only when ``[contact]`` is configured, so the minimal install needs no sgp4), TEME
positions are rotated to Earth-fixed by Greenwich mean sidereal time, and the elevation seen from
each station (WGS-84 geodetic) is scanned on a coarse grid, then AOS and LOS are refined by
bisection to a second. Plain floats, no numpy: a day for one station is ~3000 SGP4 calls, tens of
milliseconds, run in an executor a few times per day, never per cycle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sgp4.api import SGP4_ERRORS, Satrec
from sgp4.propagation import gstime

WGS84_A_KM = 6378.137
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)
UNIX_EPOCH_JD = 2440587.5


class TleError(ValueError):
    """A TLE that cannot be propagated (format, checksum, or SGP4 refuses it)."""


@dataclass(frozen=True)
class Station:
    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_elevation_deg: float = 5.0


@dataclass(frozen=True)
class Pass:
    station: str
    aos: float  # UTC (POSIX seconds) the satellite rises above the station's mask
    los: float
    max_elevation_deg: float


def check_tle(line1: str, line2: str) -> tuple[str, str]:
    """The stripped lines, or TleError naming the problem (format and checksum, as on the ground)."""
    line1, line2 = line1.strip(), line2.strip()
    if not (line1.startswith("1 ") and line2.startswith("2 ")):
        raise TleError("invalid TLE: line 1 must start with '1 ' and line 2 with '2 '")
    for number, line in ((1, line1), (2, line2)):
        if len(line) != 69:
            raise TleError(f"invalid TLE: line {number} has {len(line)} characters, not 69")
        digits = sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68])
        if str(digits % 10) != line[68]:
            raise TleError(f"invalid TLE: line {number} checksum mismatch")
    return line1, line2


class PassPredictor:
    """Passes of one TLE over a set of stations."""

    def __init__(self, line1: str, line2: str) -> None:
        self.lines = check_tle(line1, line2)
        self.satrec = Satrec.twoline2rv(*self.lines)
        if self.satrec.error:
            raise TleError(f"invalid TLE: {SGP4_ERRORS.get(self.satrec.error, 'sgp4 error')}")

    @property
    def epoch(self) -> float:
        """The TLE's epoch (UTC, POSIX seconds)."""
        return (self.satrec.jdsatepoch + self.satrec.jdsatepochF - UNIX_EPOCH_JD) * 86400.0

    def _ecef(self, utc: float) -> tuple[float, float, float]:
        days = utc / 86400.0
        whole = math.floor(days)
        jd, fr = UNIX_EPOCH_JD + whole, days - whole
        err, r, _ = self.satrec.sgp4(jd, fr)
        if err:
            raise TleError(f"SGP4 propagation failed: {SGP4_ERRORS.get(err, err)}")
        theta = gstime(jd + fr)
        c, s = math.cos(theta), math.sin(theta)
        return c * r[0] + s * r[1], -s * r[0] + c * r[1], r[2]

    def elevation_deg(self, station: Station, utc: float) -> float:
        x, y, z = self._ecef(utc)
        sx, sy, sz, up = _station_frame(station)
        dx, dy, dz = x - sx, y - sy, z - sz
        rng = math.sqrt(dx * dx + dy * dy + dz * dz)
        return math.degrees(math.asin((dx * up[0] + dy * up[1] + dz * up[2]) / rng))

    def passes(self, stations: Sequence[Station], start: float, horizon_s: float,
               step_s: float = 30.0) -> list[Pass]:
        """Every pass of every station overlapping [start, start + horizon_s], by AOS."""
        found: list[Pass] = []
        steps = int(horizon_s // step_s) + 1
        for station in stations:
            mask = station.min_elevation_deg
            previous_t = start
            previous = self.elevation_deg(station, start) - mask
            aos = start if previous >= 0 else None
            peak = previous + mask
            for i in range(1, steps + 1):
                t = start + i * step_s
                value = self.elevation_deg(station, t) - mask
                if aos is not None:
                    peak = max(peak, value + mask)
                if previous < 0 <= value:
                    aos, peak = self._crossing(station, previous_t, t), value + mask
                elif previous >= 0 > value and aos is not None:
                    found.append(Pass(station.name, aos, self._crossing(station, previous_t, t), peak))
                    aos = None
                previous_t, previous = t, value
            if aos is not None:
                found.append(Pass(station.name, aos, previous_t, peak))
        return sorted(found, key=lambda p: p.aos)

    def _crossing(self, station: Station, lo: float, hi: float) -> float:
        """Time the elevation crosses the mask within [lo, hi] (bisection to 1 s)."""
        mask = station.min_elevation_deg
        lo_above = self.elevation_deg(station, lo) >= mask
        while hi - lo > 1.0:
            mid = (lo + hi) / 2
            if (self.elevation_deg(station, mid) >= mask) == lo_above:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2


def _station_frame(station: Station) -> tuple[float, float, float, tuple[float, float, float]]:
    lat, lon = math.radians(station.lat_deg), math.radians(station.lon_deg)
    n = WGS84_A_KM / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
    h = station.alt_m / 1000.0
    x = (n + h) * math.cos(lat) * math.cos(lon)
    y = (n + h) * math.cos(lat) * math.sin(lon)
    z = (n * (1 - WGS84_E2) + h) * math.sin(lat)
    up = (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))
    return x, y, z, up
