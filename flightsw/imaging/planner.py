"""Onboard overflight prediction: when will the satellite pass over a target?

The ground uplinks a TLE and a target (lat, lon, radius); the satellite propagates the TLE with
SGP4 itself, finds the next closest approach to the target that falls within the radius, and the
imaging component schedules the capture there, powering the camera up a lead time earlier. Doing
it onboard means one uplink covers days of passes, without a contact before each one.

A scan over a day is ~4000 SGP4 evaluations (vectorised, a few ms); callers still run it through
``workers.run_cpu`` so the loop never waits on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sgp4.api import SGP4_ERRORS, Satrec
from sgp4.propagation import gstime

EARTH_RADIUS_KM = 6371.0
WGS84_A_KM = 6378.137
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)
UNIX_EPOCH_JD = 2440587.5


@dataclass(frozen=True)
class Target:
    """A place to photograph: the sub-satellite point must come within ``radius_km``."""

    lat_deg: float
    lon_deg: float
    radius_km: float

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ValueError(f"target latitude {self.lat_deg} outside [-90, 90]")
        if not -180.0 <= self.lon_deg <= 180.0:
            raise ValueError(f"target longitude {self.lon_deg} outside [-180, 180]")
        if not 0.0 < self.radius_km <= 5000.0:
            raise ValueError(f"target radius {self.radius_km} km outside (0, 5000]")


@dataclass(frozen=True)
class SubPoint:
    lat_deg: float
    lon_deg: float
    alt_km: float


@dataclass(frozen=True)
class Overflight:
    """Closest approach of the sub-satellite point to a target."""

    utc: float
    distance_km: float
    subpoint: SubPoint


def _jd(utc: np.ndarray | float) -> tuple[np.ndarray | float, np.ndarray | float]:
    days = np.asarray(utc, dtype=np.float64) / 86400.0
    whole = np.floor(days)
    return UNIX_EPOCH_JD + whole, days - whole


def _geodetic(r_ecef: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS-84 latitude/longitude (deg) and altitude (km) of Earth-fixed positions (N x 3)."""
    x, y, z = r_ecef[..., 0], r_ecef[..., 1], r_ecef[..., 2]
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    lat = np.arctan2(z, p * (1 - WGS84_E2))
    for _ in range(4):
        n = WGS84_A_KM / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
        lat = np.arctan2(z + WGS84_E2 * n * np.sin(lat), p)
    n = WGS84_A_KM / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    alt = p / np.cos(lat) - n
    return np.degrees(lat), np.degrees(lon), alt


def great_circle_km(lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: float,
                    lon2: float) -> np.ndarray:
    """Haversine distance on a spherical Earth (good to ~0.5 % for targeting)."""
    p1, p2 = np.radians(lat1), math.radians(lat2)
    dlat = p2 - p1
    dlon = math.radians(lon2) - np.radians(lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * math.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def sun_elevation_deg(lat_deg: np.ndarray | float, lon_deg: np.ndarray | float,
                      utc: np.ndarray | float) -> np.ndarray:
    """Geometric elevation of the Sun's centre above the horizon at a point on Earth (degrees).

    The Astronomical Almanac's low-precision solar coordinates (good to ~0.01 deg in 1950-2050)
    with Greenwich mean sidereal time: the flight payload has sgp4 and numpy but no ephemeris
    library, and deciding day or night at a target needs nothing finer. Checked against skyfield
    in the tests.
    """
    n = np.asarray(utc, dtype=np.float64) / 86400.0 + UNIX_EPOCH_JD - 2451545.0
    mean_lon = np.radians((280.460 + 0.9856474 * n) % 360.0)
    anomaly = np.radians((357.528 + 0.9856003 * n) % 360.0)
    ecl_lon = mean_lon + np.radians(1.915 * np.sin(anomaly) + 0.020 * np.sin(2 * anomaly))
    obliquity = np.radians(23.439 - 0.0000004 * n)
    ra = np.arctan2(np.cos(obliquity) * np.sin(ecl_lon), np.cos(ecl_lon))
    dec = np.arcsin(np.sin(obliquity) * np.sin(ecl_lon))
    gmst = np.radians((280.46061837 + 360.98564736629 * n) % 360.0)
    hour_angle = gmst + np.radians(lon_deg) - ra
    lat = np.radians(lat_deg)
    sin_el = np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(hour_angle)
    return np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0)))


class OrbitPredictor:
    """SGP4 propagation of an uplinked TLE to sub-satellite points and target overflights."""

    def __init__(self, line1: str, line2: str) -> None:
        line1, line2 = line1.strip(), line2.strip()
        if not (line1.startswith("1 ") and line2.startswith("2 ")):
            raise ValueError("invalid TLE: line 1 must start with '1 ' and line 2 with '2 '")
        for number, line in ((1, line1), (2, line2)):
            if len(line) != 69:
                raise ValueError(f"invalid TLE: line {number} has {len(line)} characters, not 69")
            digits = sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68])
            if str(digits % 10) != line[68]:
                raise ValueError(f"invalid TLE: line {number} checksum mismatch")
        self.satrec = Satrec.twoline2rv(line1, line2)
        if self.satrec.error:
            raise ValueError(f"invalid TLE: {SGP4_ERRORS.get(self.satrec.error, 'sgp4 error')}")
        self.lines = (line1, line2)

    def subpoints(self, utc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        jd, fr = _jd(utc)
        err, r, _ = self.satrec.sgp4_array(np.atleast_1d(jd), np.atleast_1d(fr))
        if np.any(err):
            code = int(err[np.nonzero(err)[0][0]])
            raise ValueError(f"SGP4 propagation failed: {SGP4_ERRORS.get(code, code)}")
        theta = np.array([gstime(j + f) for j, f in zip(np.atleast_1d(jd), np.atleast_1d(fr),
                                                         strict=True)])
        c, s = np.cos(theta), np.sin(theta)
        ecef = np.stack([c * r[:, 0] + s * r[:, 1], -s * r[:, 0] + c * r[:, 1], r[:, 2]], axis=-1)
        return _geodetic(ecef)

    def subpoint(self, utc: float) -> SubPoint:
        lat, lon, alt = self.subpoints(np.array([utc]))
        return SubPoint(float(lat[0]), float(lon[0]), float(alt[0]))

    def _distance(self, utc: float, target: Target) -> float:
        lat, lon, _ = self.subpoints(np.array([utc]))
        return float(great_circle_km(lat, lon, target.lat_deg, target.lon_deg)[0])

    def next_overflight(self, target: Target, start_utc: float, horizon_s: float = 86400.0,
                        step_s: float = 20.0) -> Overflight | None:
        """First closest approach after ``start_utc`` within ``target.radius_km``, or None."""
        return next(self.overflights(target, start_utc, horizon_s, step_s), None)

    def overflights(self, target: Target, start_utc: float, horizon_s: float = 86400.0,
                    step_s: float = 20.0) -> Iterator[Overflight]:
        """Every closest approach within ``target.radius_km`` in the horizon, earliest first."""
        if horizon_s <= 0 or step_s <= 0:
            raise ValueError("horizon_s and step_s must be positive")
        times = start_utc + np.arange(0.0, horizon_s + step_s, step_s)
        lat, lon, _ = self.subpoints(times)
        distance = great_circle_km(lat, lon, target.lat_deg, target.lon_deg)
        for i in range(1, len(times) - 1):
            if distance[i] <= distance[i - 1] and distance[i] <= distance[i + 1]:
                if distance[i] > target.radius_km + 8.0 * step_s:  # 8 km/s ground speed bound
                    continue
                best = self._refine(times[i - 1], times[i + 1], target)
                if best.distance_km <= target.radius_km and best.utc >= start_utc:
                    yield best

    def next_sunlit_overflight(self, target: Target, start_utc: float, min_sun_elevation_deg: float,
                               horizon_s: float = 86400.0) -> tuple[Overflight | None, list[float]]:
        """The first overflight with the Sun at least ``min_sun_elevation_deg`` above the target's
        horizon, and the sun elevations of the dark ones skipped before it (or of all, if none)."""
        dark: list[float] = []
        for overflight in self.overflights(target, start_utc, horizon_s):
            elevation = float(sun_elevation_deg(target.lat_deg, target.lon_deg, overflight.utc))
            if elevation >= min_sun_elevation_deg:
                return overflight, dark
            dark.append(elevation)
        return None, dark

    def _refine(self, lo: float, hi: float, target: Target) -> Overflight:
        """Golden-section search for the closest approach in [lo, hi] (to ~0.05 s)."""
        ratio = (math.sqrt(5) - 1) / 2
        a, b = lo, hi
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        fc, fd = self._distance(c, target), self._distance(d, target)
        while b - a > 0.05:
            if fc < fd:
                b, d, fd = d, c, fc
                c = b - ratio * (b - a)
                fc = self._distance(c, target)
            else:
                a, c, fc = c, d, fd
                d = a + ratio * (b - a)
                fd = self._distance(d, target)
        utc = float((a + b) / 2)
        return Overflight(utc, self._distance(utc, target), self.subpoint(utc))
