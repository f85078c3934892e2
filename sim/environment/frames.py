"""Reference frames: TEME (sgp4's inertial output), Earth-fixed (ECEF), geodetic and local horizon.

Plain-float 3-tuples instead of numpy arrays: the world evaluates these once per simulated
second, and for three components Python arithmetic is several times faster than numpy calls.
"""

from __future__ import annotations

import math

from sgp4.propagation import gstime

Vec3 = tuple[float, float, float]

WGS84_A_KM = 6378.137
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
EARTH_MU_KM3_S2 = 398600.4418
EARTH_ROTATION_RAD_S = 7.292115146706979e-5


def dot(a: Vec3, b: Vec3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a: Vec3, b: Vec3) -> Vec3:
    return (
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    )


def norm(a: Vec3) -> float:
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


def scale(a: Vec3, k: float) -> Vec3:
    return (a[0] * k, a[1] * k, a[2] * k)


def sub(a: Vec3, b: Vec3) -> Vec3:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def unit(a: Vec3) -> Vec3:
    length = norm(a)
    if length == 0.0:
        raise ValueError("cannot normalise a zero vector")
    return (a[0] / length, a[1] / length, a[2] / length)


def gmst_rad(jd_ut1: float) -> float:
    """Greenwich mean sidereal angle, the IAU-82 formula sgp4's TEME frame is defined with."""
    return float(gstime(jd_ut1))


def teme_to_ecef(r: Vec3, gmst: float) -> Vec3:
    """Rotate a TEME vector into the Earth-fixed frame (polar motion ignored, < 20 m)."""
    c, s = math.cos(gmst), math.sin(gmst)
    return (c * r[0] + s * r[1], -s * r[0] + c * r[1], r[2])


def ecef_to_teme(r: Vec3, gmst: float) -> Vec3:
    c, s = math.cos(gmst), math.sin(gmst)
    return (c * r[0] - s * r[1], s * r[0] + c * r[1], r[2])


def geodetic_to_ecef(lat_deg: float, lon_deg: float, alt_km: float) -> Vec3:
    """WGS-84 geodetic coordinates to Earth-fixed kilometres."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    sin_lat = math.sin(lat)
    n = WGS84_A_KM / math.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
    return (
        (n + alt_km) * math.cos(lat) * math.cos(lon),
        (n + alt_km) * math.cos(lat) * math.sin(lon),
        (n * (1.0 - WGS84_E2) + alt_km) * sin_lat,
    )


def ecef_to_geodetic(r: Vec3) -> tuple[float, float, float]:
    """Earth-fixed kilometres to WGS-84 (lat deg, lon deg in [-180, 180), alt km); Bowring iteration."""
    x, y, z = r
    p = math.hypot(x, y)
    lon = math.atan2(y, x)
    lat = math.atan2(z, p * (1.0 - WGS84_E2))
    alt = 0.0
    for _ in range(4):  # converges to < 1 mm at LEO altitudes in three rounds
        sin_lat = math.sin(lat)
        n = WGS84_A_KM / math.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
        alt = p / math.cos(lat) - n
        lat = math.atan2(z, p * (1.0 - WGS84_E2 * n / (n + alt)))
    return math.degrees(lat), math.degrees(lon), alt


def local_up(lat_deg: float, lon_deg: float) -> Vec3:
    """Unit normal to the ellipsoid (geodetic zenith) in ECEF."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def enu_basis(lat_deg: float, lon_deg: float) -> tuple[Vec3, Vec3, Vec3]:
    """East, north and up unit vectors (ECEF) at a geodetic location."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    east = (-math.sin(lon), math.cos(lon), 0.0)
    north = (-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat))
    up = (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))
    return east, north, up
