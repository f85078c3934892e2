"""Orbit propagation with SGP4, and the reference mission's default orbit built from elements.

The default TLE is generated (not copied from a catalogue) so its meaning is explicit: a
sun-synchronous circular orbit at a chosen altitude whose descending node crosses at a chosen
local mean solar time. Any real TLE can replace it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sgp4.api import SGP4_ERRORS, WGS72, Satrec
from sgp4.exporter import export_tle

from .frames import (
    EARTH_MU_KM3_S2,
    Vec3,
    ecef_to_geodetic,
    gmst_rad,
    teme_to_ecef,
)
from .timebase import JD_UNIX_EPOCH, TimeLike, julian_date_split, to_epoch_seconds

J2 = 1.08262668e-3
EARTH_EQUATORIAL_RADIUS_KM = 6378.137
TROPICAL_YEAR_S = 365.2421897 * 86400.0
SGP4_EPOCH_JD = 2433281.5  # 1949-12-31T00:00:00Z, the origin sgp4init counts epoch days from

DEFAULT_EPOCH = datetime(2026, 6, 1, 0, 0, 0, tzinfo=UTC)
DEFAULT_ALTITUDE_KM = 530.0
DEFAULT_LTDN_HOURS = 10.5


class OrbitError(ValueError):
    """A TLE that cannot be parsed or a propagation that SGP4 refuses (decayed, bad elements)."""


@dataclass(frozen=True)
class OrbitState:
    """Where the satellite is at one instant, in every frame a model needs."""

    t: float  # POSIX seconds
    r_teme_km: Vec3
    v_teme_km_s: Vec3
    r_ecef_km: Vec3
    gmst_rad: float
    lat_deg: float
    lon_deg: float
    alt_km: float


def sun_synchronous_inclination_deg(semi_major_axis_km: float, eccentricity: float = 0.0) -> float:
    """Inclination whose J2 nodal precession follows the mean sun (one turn per tropical year)."""
    n = math.sqrt(EARTH_MU_KM3_S2 / semi_major_axis_km**3)
    p = semi_major_axis_km * (1.0 - eccentricity**2)
    required_rate = 2.0 * math.pi / TROPICAL_YEAR_S
    cos_i = -required_rate / (1.5 * J2 * (EARTH_EQUATORIAL_RADIUS_KM / p) ** 2 * n)
    if not -1.0 <= cos_i <= 1.0:
        raise OrbitError(f"no sun-synchronous inclination exists for a = {semi_major_axis_km} km")
    return math.degrees(math.acos(cos_i))


def mean_sun_right_ascension_deg(epoch_seconds: float) -> float:
    """Right ascension of the fictitious mean sun, the reference for local mean solar time."""
    days = (epoch_seconds / 86400.0 + JD_UNIX_EPOCH) - 2451545.0
    return (280.46061837 + 0.98564736629 * days) % 360.0


def sso_satrec(
    epoch: TimeLike = DEFAULT_EPOCH,
    altitude_km: float = DEFAULT_ALTITUDE_KM,
    ltdn_hours: float = DEFAULT_LTDN_HOURS,
    eccentricity: float = 0.001,
    arg_perigee_deg: float = 0.0,
    mean_anomaly_deg: float = 0.0,
    bstar: float = 2.0e-5,
    catalog_number: int = 99999,
) -> Satrec:
    """Build an SGP4 record for a sun-synchronous orbit with a given local time of descending node."""
    if not 150.0 <= altitude_km <= 2000.0:
        raise OrbitError(f"altitude {altitude_km} km is outside the LEO range 150-2000 km")
    if not 0.0 <= ltdn_hours < 24.0:
        raise OrbitError(f"local time of descending node {ltdn_hours} h must be in [0, 24)")
    if not 0.0 <= eccentricity < 0.1:
        raise OrbitError(f"eccentricity {eccentricity} must be in [0, 0.1) for a LEO imager")
    t0 = to_epoch_seconds(epoch)
    semi_major_axis = EARTH_EQUATORIAL_RADIUS_KM + altitude_km
    inclination = sun_synchronous_inclination_deg(semi_major_axis, eccentricity)
    ltan_hours = (ltdn_hours + 12.0) % 24.0
    raan = (mean_sun_right_ascension_deg(t0) + (ltan_hours - 12.0) * 15.0) % 360.0
    mean_motion_rad_min = math.sqrt(EARTH_MU_KM3_S2 / semi_major_axis**3) * 60.0
    satrec = Satrec()
    satrec.sgp4init(
        WGS72,
        "i",
        catalog_number,
        (t0 / 86400.0 + JD_UNIX_EPOCH) - SGP4_EPOCH_JD,
        bstar,
        0.0,
        0.0,
        eccentricity,
        math.radians(arg_perigee_deg),
        math.radians(inclination),
        math.radians(mean_anomaly_deg),
        mean_motion_rad_min,
        math.radians(raan),
    )
    satrec.classification = "U"
    satrec.intldesg = "26001A"
    return satrec


def sso_tle(**elements: float | TimeLike) -> tuple[str, str]:
    """Two-line element set for :func:`sso_satrec` (same keyword arguments)."""
    return export_tle(sso_satrec(**elements))  # type: ignore[arg-type]


def default_tle() -> tuple[str, str]:
    """The reference mission: 530 km SSO, 10:30 LTDN, epoch 2026-06-01."""
    return sso_tle()


def _tle_checksum(line: str) -> int:
    return sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68]) % 10


def parse_tle(line1: str, line2: str) -> Satrec:
    """Parse a TLE, checking line numbers, lengths and checksums so a typo is named, not propagated."""
    for number, line in ((1, line1), (2, line2)):
        stripped = line.rstrip()
        if not stripped.startswith(f"{number} "):
            raise OrbitError(f"TLE line {number} must start with '{number} ': {stripped[:20]!r}")
        if len(stripped) != 69:
            raise OrbitError(f"TLE line {number} has {len(stripped)} characters, expected 69")
        if not stripped[68].isdigit() or int(stripped[68]) != _tle_checksum(stripped):
            raise OrbitError(
                f"TLE line {number} checksum is {stripped[68]!r}, computed {_tle_checksum(stripped)}"
            )
    satrec = Satrec.twoline2rv(line1.rstrip(), line2.rstrip())
    if satrec.error:
        raise OrbitError(f"TLE rejected by SGP4: {SGP4_ERRORS.get(satrec.error, satrec.error)}")
    return satrec


class Orbit:
    """SGP4 propagation returning TEME and Earth-fixed positions plus the sub-satellite point."""

    def __init__(self, satrec: Satrec) -> None:
        self._satrec = satrec

    @classmethod
    def from_tle(cls, line1: str, line2: str) -> Orbit:
        return cls(parse_tle(line1, line2))

    @classmethod
    def default(cls) -> Orbit:
        return cls.from_tle(*default_tle())

    @property
    def satrec(self) -> Satrec:
        return self._satrec

    @property
    def tle(self) -> tuple[str, str]:
        return export_tle(self._satrec)

    @property
    def mean_motion_rad_s(self) -> float:
        """Kozai mean motion from the TLE."""
        return float(self._satrec.no_kozai) / 60.0

    @property
    def semi_major_axis_km(self) -> float:
        """Two-body semi-major axis for the TLE's mean motion."""
        return (EARTH_MU_KM3_S2 / self.mean_motion_rad_s**2) ** (1.0 / 3.0)

    @property
    def two_body_period_s(self) -> float:
        return 2.0 * math.pi / self.mean_motion_rad_s

    @property
    def inclination_deg(self) -> float:
        return math.degrees(self._satrec.inclo)

    @property
    def epoch_seconds(self) -> float:
        return (self._satrec.jdsatepoch + self._satrec.jdsatepochF - JD_UNIX_EPOCH) * 86400.0

    def teme(self, t: TimeLike) -> tuple[Vec3, Vec3]:
        """TEME position (km) and velocity (km/s) at time t."""
        jd, fr = julian_date_split(to_epoch_seconds(t))
        error, r, v = self._satrec.sgp4(jd, fr)
        if error:
            raise OrbitError(f"SGP4 failed at t={t}: {SGP4_ERRORS.get(error, error)}")
        return (r[0], r[1], r[2]), (v[0], v[1], v[2])

    def state(self, t: TimeLike) -> OrbitState:
        epoch_seconds = to_epoch_seconds(t)
        r, v = self.teme(epoch_seconds)
        jd, fr = julian_date_split(epoch_seconds)
        gmst = gmst_rad(jd + fr)
        r_ecef = teme_to_ecef(r, gmst)
        lat, lon, alt = ecef_to_geodetic(r_ecef)
        return OrbitState(epoch_seconds, r, v, r_ecef, gmst, lat, lon, alt)

    def teme_array(self, epoch_seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised TEME positions and velocities, shape (N, 3), for window searches."""
        days = np.asarray(epoch_seconds, dtype=float) / 86400.0
        whole = np.floor(days)
        error, r, v = self._satrec.sgp4_array(JD_UNIX_EPOCH + whole, days - whole)
        if np.any(error):
            first = int(error[np.nonzero(error)[0][0]])
            raise OrbitError(f"SGP4 failed in a batch: {SGP4_ERRORS.get(first, first)}")
        return r, v
