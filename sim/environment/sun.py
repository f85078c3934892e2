"""Sun position and Earth shadow (umbra and penumbra) for a satellite.

The sun comes from the low-precision solar theory of the Astronomical Almanac (Vallado, Fundamentals
of Astrodynamics, algorithm 29): about 0.01 degree, a few microseconds per call and no ephemeris
file, so the world can evaluate it every simulated second without caching. The tests compare it
with skyfield and the JPL DE421 ephemeris from skyfield-data over a year.

The shadow is the conical model with the sun's and Earth's apparent disks (Montenbruck & Gill,
Satellite Orbits, 3.4.2): the lit fraction is 1 minus the overlapped share of the solar disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .frames import Vec3, dot, norm, sub
from .timebase import JD_J2000, julian_date

AU_KM = 149597870.7
SUN_RADIUS_KM = 696000.0
EARTH_SHADOW_RADIUS_KM = 6378.137 + 20.0  # solid Earth plus the opaque lower atmosphere
SOLAR_CONSTANT_W_M2 = 1361.0


def sun_position_km(epoch_seconds: float) -> Vec3:
    """Geocentric sun position (km) in the mean-of-date equatorial frame, close to TEME (< 20")."""
    t = (julian_date(epoch_seconds) - JD_J2000) / 36525.0
    mean_longitude = math.radians((280.460 + 36000.771 * t) % 360.0)
    mean_anomaly = math.radians((357.5291092 + 35999.05034 * t) % 360.0)
    ecliptic_longitude = (
        mean_longitude
        + math.radians(1.914666471) * math.sin(mean_anomaly)
        + math.radians(0.019994643) * math.sin(2.0 * mean_anomaly)
    )
    distance_au = (
        1.000140612
        - 0.016708617 * math.cos(mean_anomaly)
        - 0.000139589 * math.cos(2.0 * mean_anomaly)
    )
    obliquity = math.radians(23.439291 - 0.0130042 * t)
    distance = distance_au * AU_KM
    sin_lon = math.sin(ecliptic_longitude)
    return (
        distance * math.cos(ecliptic_longitude),
        distance * math.cos(obliquity) * sin_lon,
        distance * math.sin(obliquity) * sin_lon,
    )


def _disk_overlap_fraction(a: float, b: float, c: float) -> float:
    """Share of a disk of angular radius a hidden by a disk of radius b at centre distance c."""
    if c >= a + b:
        return 0.0
    if c <= b - a:
        return 1.0  # umbra: the sun's disk lies entirely behind the Earth's
    if c <= a - b:
        return (b * b) / (a * a)  # annular: the Earth's disk inside the sun's (not at LEO)
    x = (c * c + a * a - b * b) / (2.0 * c)
    y = math.sqrt(max(a * a - x * x, 0.0))
    area = a * a * math.acos(max(-1.0, min(1.0, x / a))) + b * b * math.acos(
        max(-1.0, min(1.0, (c - x) / b))
    ) - c * y
    return area / (math.pi * a * a)


@dataclass(frozen=True)
class Illumination:
    """Sun as seen from the satellite."""

    sun_direction: Vec3  # unit vector satellite -> sun, inertial frame
    sun_distance_km: float
    lit_fraction: float  # 1 full sun, 0 umbra, between: penumbra

    @property
    def in_umbra(self) -> bool:
        return self.lit_fraction <= 0.0

    @property
    def in_penumbra(self) -> bool:
        return 0.0 < self.lit_fraction < 1.0

    @property
    def irradiance_w_m2(self) -> float:
        """Solar flux on a surface facing the sun (inverse-square scaled)."""
        return SOLAR_CONSTANT_W_M2 * (AU_KM / self.sun_distance_km) ** 2 * self.lit_fraction


def illumination(r_sat_km: Vec3, sun_km: Vec3) -> Illumination:
    """Lit fraction of the solar disk seen from a satellite at r_sat (same frame as sun_km)."""
    to_sun = sub(sun_km, r_sat_km)
    sun_distance = norm(to_sun)
    sat_distance = norm(r_sat_km)
    if sat_distance <= EARTH_SHADOW_RADIUS_KM:
        raise ValueError(f"satellite at {sat_distance:.1f} km from the geocentre is inside the Earth")
    sun_dir = (to_sun[0] / sun_distance, to_sun[1] / sun_distance, to_sun[2] / sun_distance)
    a = math.asin(min(1.0, SUN_RADIUS_KM / sun_distance))
    b = math.asin(EARTH_SHADOW_RADIUS_KM / sat_distance)
    to_earth_centre = (-r_sat_km[0] / sat_distance, -r_sat_km[1] / sat_distance, -r_sat_km[2] / sat_distance)
    c = math.acos(max(-1.0, min(1.0, dot(to_earth_centre, sun_dir))))
    return Illumination(sun_dir, sun_distance, 1.0 - _disk_overlap_fraction(a, b, c))


def beta_angle_deg(r_km: Vec3, v_km_s: Vec3, sun_km: Vec3) -> float:
    """Angle between the orbit plane and the sun direction; it sets how long eclipses last."""
    h = (
        r_km[1] * v_km_s[2] - r_km[2] * v_km_s[1],
        r_km[2] * v_km_s[0] - r_km[0] * v_km_s[2],
        r_km[0] * v_km_s[1] - r_km[1] * v_km_s[0],
    )
    return math.degrees(math.asin(dot(h, sun_km) / (norm(h) * norm(sun_km))))


def cylindrical_eclipse_fraction(altitude_km: float, beta_deg: float, radius_km: float = 6378.137) -> float:
    """Analytic share of a circular orbit spent in a cylindrical shadow (the textbook formula)."""
    r = radius_km + altitude_km
    beta = math.radians(abs(beta_deg))
    beta_star = math.asin(radius_km / r)
    if beta >= beta_star:
        return 0.0
    return math.degrees(math.acos(math.sqrt(altitude_km**2 + 2.0 * radius_km * altitude_km) / (r * math.cos(beta)))) / 180.0
