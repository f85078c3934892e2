"""Geomagnetic field at the satellite: the full IGRF-14 main field (degree 13), cached along the orbit.

Why the full model: a tilted dipole is 20 % RMS / 72 % max off in magnitude and 10.6 deg RMS /
35 deg max off in direction along a LEO day (worst over the South Atlantic), which is fine for
B-dot but wrong for anything that uses the field's direction (magnetometer attitude, torquer
control, frozen-sensor checks against the expected field).

Coefficients: ``IGRF14.shc`` beside this file is IAGA's published IGRF-14 table (Gauss
coefficients g/h in nT, 1900-2030 in 5-year columns, the last column being 2025 plus five
years of the 2025-2030 secular variation), as distributed in the ``ppigrf`` 2.1.0 package (MIT
licence; the table itself is IAGA Working Group V-MOD's, doi:10.5281/zenodo.14012302). Between
columns the coefficients are linear in time, as the IGRF defines them.

Speed: the expansion is evaluated with numpy for many points at once. ``OrbitFieldCache``
evaluates it at nodes every ``node_s`` seconds of an orbit, a block at a time, and interpolates
linearly in between (the field seen along a 7.6 km/s orbit bends on the scale of the orbital
period; over 10 s the interpolation error is ~1e-4 of the field). The result depends only on
the time, never on the order or rate of reads, so runs stay deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .frames import Vec3, gmst_rad, teme_to_ecef
from .orbit import Orbit
from .timebase import julian_date_split

IGRF_REFERENCE_RADIUS_KM = 6371.2
IGRF_FILE = Path(__file__).with_name("IGRF14.shc")
SECONDS_PER_JULIAN_YEAR = 365.25 * 86400.0
EPOCH_2000_POSIX = 946684800.0  # 2000-01-01T00:00:00Z


def decimal_year(epoch_seconds: float) -> float:
    """Calendar decimal year (2026-06-01 -> 2026.413...), the time argument of the IGRF tables."""
    import datetime as _dt

    moment = _dt.datetime.fromtimestamp(epoch_seconds, tz=_dt.UTC)
    start = _dt.datetime(moment.year, 1, 1, tzinfo=_dt.UTC).timestamp()
    end = _dt.datetime(moment.year + 1, 1, 1, tzinfo=_dt.UTC).timestamp()
    return moment.year + (epoch_seconds - start) / (end - start)


@dataclass(frozen=True)
class GaussCoefficients:
    """g[n, m] and h[n, m] (nT) of one epoch, arrays of shape (N+1, N+1)."""

    g: np.ndarray
    h: np.ndarray

    @property
    def degree(self) -> int:
        return self.g.shape[0] - 1


class IGRF:
    """The IGRF table: Gauss coefficients for any date between its first and last column."""

    def __init__(self, path: Path = IGRF_FILE) -> None:
        rows: list[list[float]] = []
        header: list[str] | None = None
        for line in path.read_text().splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if header is None:
                header = line.split()  # N_min N_max N_times spline_order N_step first last
                continue
            rows.append([float(x) for x in line.split()])
        if header is None or len(rows) < 2:
            raise ValueError(f"{path}: not an SHC coefficient table")
        self.years = np.array(rows[0])
        table = np.array(rows[1:])
        self.degree = int(table[:, 0].max())
        size = self.degree + 1
        self._g = np.zeros((len(self.years), size, size))
        self._h = np.zeros((len(self.years), size, size))
        for row in table:
            n, m = int(row[0]), int(row[1])
            if m >= 0:
                self._g[:, n, m] = row[2:]
            else:
                self._h[:, n, -m] = row[2:]

    def coefficients(self, year: float) -> GaussCoefficients:
        """Coefficients at a decimal year, linear between the table's columns."""
        if not self.years[0] <= year <= self.years[-1]:
            raise ValueError(
                f"date {year:.2f} is outside the IGRF table ({self.years[0]:.0f}-{self.years[-1]:.0f})"
            )
        i = min(int(np.searchsorted(self.years, year, side="right")) - 1, len(self.years) - 2)
        w = (year - self.years[i]) / (self.years[i + 1] - self.years[i])
        return GaussCoefficients(
            (1 - w) * self._g[i] + w * self._g[i + 1], (1 - w) * self._h[i] + w * self._h[i + 1]
        )


@lru_cache(maxsize=1)
def default_igrf() -> IGRF:
    return IGRF()


def field_spherical_nt(
    coefficients: GaussCoefficients, r_km: np.ndarray, theta: np.ndarray, phi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B_r, B_theta, B_phi) in nT at geocentric radius, colatitude and longitude (radians).

    B = -grad V, V = a sum_n (a/r)^(n+1) sum_m (g cos m phi + h sin m phi) P_n^m(cos theta),
    P_n^m Schmidt semi-normalised, computed with the standard recursions (also for dP/dtheta,
    so nothing divides by sin theta except the B_phi term, which is finite off the poles).
    """
    g, h = coefficients.g, coefficients.h
    nmax = coefficients.degree
    ct, st = np.cos(theta), np.sin(theta)
    ratio = IGRF_REFERENCE_RADIUS_KM / r_km
    cos_m = [np.ones_like(phi)] + [np.cos(m * phi) for m in range(1, nmax + 1)]
    sin_m = [np.zeros_like(phi)] + [np.sin(m * phi) for m in range(1, nmax + 1)]
    p: dict[tuple[int, int], np.ndarray] = {(0, 0): np.ones_like(theta)}
    dp: dict[tuple[int, int], np.ndarray] = {(0, 0): np.zeros_like(theta)}
    br = np.zeros_like(theta)
    bt = np.zeros_like(theta)
    bp = np.zeros_like(theta)
    radial = ratio * ratio
    for n in range(1, nmax + 1):
        radial = radial * ratio  # (a/r)^(n+2)
        for m in range(n + 1):
            if n == m:
                k = 1.0 if n == 1 else math.sqrt((2 * n - 1) / (2 * n))
                p[n, n] = k * st * p[n - 1, n - 1]
                dp[n, n] = k * (ct * p[n - 1, n - 1] + st * dp[n - 1, n - 1])
            else:
                root = math.sqrt(n * n - m * m)
                p[n, m] = ((2 * n - 1) * ct * p[n - 1, m]) / root
                dp[n, m] = ((2 * n - 1) * (ct * dp[n - 1, m] - st * p[n - 1, m])) / root
                if n >= 2 and (n - 1) > m:
                    back = math.sqrt((n - 1) * (n - 1) - m * m) / root
                    p[n, m] = p[n, m] - back * p[n - 2, m]
                    dp[n, m] = dp[n, m] - back * dp[n - 2, m]
            gm, hm = g[n, m], h[n, m]
            if gm == 0.0 and hm == 0.0:
                continue
            term = gm * cos_m[m] + hm * sin_m[m]
            br += (n + 1) * radial * term * p[n, m]
            bt -= radial * term * dp[n, m]
            if m:
                bp += radial * m * (gm * sin_m[m] - hm * cos_m[m]) * p[n, m]
    bp = bp / st
    return br, bt, bp


def field_ecef_nt(coefficients: GaussCoefficients, r_ecef_km: np.ndarray) -> np.ndarray:
    """Field vectors (nT, Earth-fixed) at Earth-fixed positions (km), shape (N, 3) -> (N, 3)."""
    r = np.atleast_2d(np.asarray(r_ecef_km, dtype=float))
    x, y, z = r[:, 0], r[:, 1], r[:, 2]
    rho = np.hypot(x, y)
    radius = np.hypot(rho, z)
    theta = np.arctan2(rho, z)
    phi = np.arctan2(y, x)
    br, bt, bp = field_spherical_nt(coefficients, radius, theta, phi)
    ct, st = np.cos(theta), np.sin(theta)
    cp, sp = np.cos(phi), np.sin(phi)
    bx = br * st * cp + bt * ct * cp - bp * sp
    by = br * st * sp + bt * ct * sp + bp * cp
    bz = br * ct - bt * st
    return np.column_stack((bx, by, bz))


class OrbitFieldCache:
    """Earth-fixed field along an orbit: exact IGRF at nodes every node_s, linear in between."""

    def __init__(self, orbit: Orbit, model: IGRF | None = None, node_s: float = 10.0,
                 block_nodes: int = 360) -> None:
        if not 0.0 < node_s <= 60.0:
            raise ValueError(f"node_s {node_s} must be in (0, 60] s")
        self._orbit = orbit
        self._model = model or default_igrf()
        self._node_s = float(node_s)
        self._block = int(block_nodes)
        self._first = -(1 << 62)  # index of the first node held (none yet)
        self._values: list[Vec3] = []

    def _fill(self, first: int) -> None:
        times = (np.arange(first, first + self._block + 1) * self._node_s).astype(float)
        r_teme, _ = self._orbit.teme_array(times)
        r_ecef = np.empty_like(r_teme)
        for i, t in enumerate(times):
            jd, fr = julian_date_split(float(t))
            r_ecef[i] = teme_to_ecef((r_teme[i, 0], r_teme[i, 1], r_teme[i, 2]), gmst_rad(jd + fr))
        mid = float(times[len(times) // 2])
        b = field_ecef_nt(self._model.coefficients(decimal_year(mid)), r_ecef)
        self._values = [(float(v[0]), float(v[1]), float(v[2])) for v in b]
        self._first = first

    def field_ecef_nt(self, t: float) -> Vec3:
        """Field (nT, Earth-fixed) at the satellite's position at POSIX time t."""
        position = t / self._node_s
        index = math.floor(position)
        offset = index - self._first
        if not 0 <= offset < self._block:
            self._fill(index)
            offset = 0
        w = position - index
        a = self._values[offset]
        b = self._values[offset + 1]
        return (a[0] + w * (b[0] - a[0]), a[1] + w * (b[1] - a[1]), a[2] + w * (b[2] - a[2]))
