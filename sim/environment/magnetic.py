"""Geomagnetic field at the satellite: the tilted dipole of IGRF-14 (degree 1, with secular drift).

A dipole is within ~10-20 % of the full IGRF in LEO, enough for a magnetometer and B-dot
detumbling to behave realistically, and it costs about a microsecond (the full model costs
~25 ms per call in the available Python packages, far over the simulator's budget).
"""

from __future__ import annotations

from .frames import Vec3

IGRF_REFERENCE_RADIUS_KM = 6371.2
IGRF_EPOCH_YEAR = 2025.0
# IGRF-14 main field 2025.0 (nT) and secular variation 2025-2030 (nT/year), degree 1.
G10, G11, H11 = -29350.0, -1410.3, 4545.5
G10_SV, G11_SV, H11_SV = 12.6, 10.0, -21.5
SECONDS_PER_JULIAN_YEAR = 365.25 * 86400.0
EPOCH_2025_POSIX = 1735689600.0  # 2025-01-01T00:00:00Z


def dipole_coefficients(epoch_seconds: float) -> Vec3:
    """(g11, h11, g10) in nT at a date, linearly extrapolated with the secular variation."""
    years = (epoch_seconds - EPOCH_2025_POSIX) / SECONDS_PER_JULIAN_YEAR
    if not -10.0 <= years <= 15.0:
        raise ValueError(f"date is {years:+.1f} years from 2025; the dipole coefficients are only valid 2015-2040")
    return (G11 + G11_SV * years, H11 + H11_SV * years, G10 + G10_SV * years)


def dipole_field_ecef_nt(r_ecef_km: Vec3, coefficients: Vec3) -> Vec3:
    """Field vector (nT, Earth-fixed) of the degree-1 potential V = a^3 (g.r)/r^3, B = -grad V."""
    x, y, z = r_ecef_km
    r2 = x * x + y * y + z * z
    r = r2**0.5
    g = coefficients
    k = (IGRF_REFERENCE_RADIUS_KM / r) ** 3
    g_dot_rhat = (g[0] * x + g[1] * y + g[2] * z) / r
    return (
        k * (3.0 * g_dot_rhat * x / r - g[0]),
        k * (3.0 * g_dot_rhat * y / r - g[1]),
        k * (3.0 * g_dot_rhat * z / r - g[2]),
    )
