"""Onboard overflight prediction: when will the satellite pass over a target?

The ground uplinks a TLE and a target (lat, lon, radius); the satellite propagates the TLE with
SGP4 itself and plans a capture at the first closest approach where the target lies inside the
camera's ground footprint (a nadir-pointing pinhole camera of a configured field of view, from
the satellite's altitude then), with the Sun above a minimum elevation at the target, within a
search horizon and while the TLE is young enough to trust. The imaging component schedules the
capture there, powering the camera up a lead time earlier. Doing it onboard means one uplink
covers days of passes, without a contact before each one.

A scan over a day is ~4000 SGP4 evaluations (vectorised, a few ms); callers still run it through
``workers.run_cpu`` so the loop never waits on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from sgp4.api import SGP4_ERRORS, Satrec

EARTH_RADIUS_KM = 6371.0
WGS84_A_KM = 6378.137
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)
UNIX_EPOCH_JD = 2440587.5
EARTH_ROTATION_RAD_S = 7.292115e-5
MAX_TARGET_RADIUS_KM = 2500.0  # about the horizon seen from a 530 km orbit (~2520 km)


@dataclass(frozen=True)
class Target:
    """A place to photograph; ``radius_km`` is the largest off-track distance (sub-satellite
    point to target at closest approach) the operator accepts. The camera footprint decides
    whether the target is in the picture; the radius only narrows that choice."""

    lat_deg: float
    lon_deg: float
    radius_km: float

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ValueError(f"target latitude {self.lat_deg} outside [-90, 90]")
        if not -180.0 <= self.lon_deg <= 180.0:
            raise ValueError(f"target longitude {self.lon_deg} outside [-180, 180]")
        if not 0.0 < self.radius_km <= MAX_TARGET_RADIUS_KM:
            raise ValueError(f"target radius {self.radius_km} km outside (0, {MAX_TARGET_RADIUS_KM:g}]")


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


class NoCapture(StrEnum):
    """Why a target gets no capture opportunity (one reason, the most useful to the operator)."""

    NEVER_IN_FRAME = "never_in_frame"  # no pass puts the target inside the camera footprint
    ONLY_AT_NIGHT = "target_in_darkness"  # passes frame it, but the Sun is too low at each
    TLE_TOO_OLD = "tle_too_old"  # the TLE is (or becomes, before any usable pass) too old


@dataclass(frozen=True)
class CameraGeometry:
    """A pinhole camera looking along the geodetic nadir: full angular field of view across
    and along the ground track (degrees)."""

    fov_across_deg: float
    fov_along_deg: float

    def __post_init__(self) -> None:
        for name in ("fov_across_deg", "fov_along_deg"):
            value = getattr(self, name)
            if not 0.0 < value < 120.0:
                raise ValueError(f"{name} {value} outside (0, 120)")

    @classmethod
    def from_sensor(cls, width_mm: float, height_mm: float, focal_length_mm: float) -> CameraGeometry:
        """Sensor width (across track) and height (along track) behind a lens of a focal length."""
        return cls(math.degrees(2 * math.atan(width_mm / 2 / focal_length_mm)),
                   math.degrees(2 * math.atan(height_mm / 2 / focal_length_mm)))


@dataclass(frozen=True)
class PlanLimits:
    """What a capture opportunity must satisfy besides the target being in frame."""

    min_sun_elevation_deg: float = 5.0
    horizon_s: float = 86400.0
    max_tle_age_s: float = 7 * 86400.0
    footprint_margin_km: float = 2.0  # the target this far inside the footprint's edge
    #: with an ADCS: how far from the vertical the camera may be pointed at a target (0: nadir only)
    max_off_nadir_deg: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_off_nadir_deg <= 60.0:
            raise ValueError(f"max_off_nadir_deg {self.max_off_nadir_deg} outside [0, 60]")


@dataclass(frozen=True)
class Footprint:
    """The ground seen by the camera: corners (lat, lon) in the order front-left, front-right,
    back-right, back-left (front: direction of flight, left: port side), and the centre."""

    corners: tuple[tuple[float, float], ...]
    centre: tuple[float, float]

    def to_json(self) -> dict[str, list[list[float]] | list[float]]:
        return {"corners": [[round(a, 6), round(b, 6)] for a, b in self.corners],
                "centre": [round(self.centre[0], 6), round(self.centre[1], 6)]}


@dataclass(frozen=True)
class View:
    """The camera geometry at one instant: where it looks and where a target appears."""

    subpoint: SubPoint
    footprint: Footprint
    along_deg: float  # target's angle from the optical axis along track (+ ahead)
    across_deg: float  # ... across track (+ to the left)
    off_nadir_deg: float  # angle between nadir and the line of sight to the target
    slant_km: float  # distance satellite to target along the line of sight


@dataclass(frozen=True)
class CaptureOpportunity:
    utc: float
    off_track_km: float  # sub-satellite point to target at the capture
    off_nadir_deg: float  # nadir to the line of sight to the target
    sun_elevation_deg: float  # at the target
    view: View  # of the camera as it will look: nadir, or pointed at the target when ``pointed``
    pointed: bool = False  # the capture needs the ADCS to track the target


@dataclass(frozen=True)
class CapturePlan:
    """Either an opportunity or the one reason there is none (with a line of detail)."""

    opportunity: CaptureOpportunity | None
    reason: NoCapture | None = None
    detail: str = ""


def geodetic_to_ecef(lat_deg: float, lon_deg: float, alt_km: float = 0.0) -> np.ndarray:
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    n = WGS84_A_KM / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
    return np.array([(n + alt_km) * math.cos(lat) * math.cos(lon),
                     (n + alt_km) * math.cos(lat) * math.sin(lon),
                     (n * (1 - WGS84_E2) + alt_km) * math.sin(lat)])


def _nadir(sub: SubPoint) -> np.ndarray:
    lat, lon = math.radians(sub.lat_deg), math.radians(sub.lon_deg)
    return -np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])


def _camera_axes(r_ecef: np.ndarray, v_ecef: np.ndarray, sub: SubPoint,
                 boresight: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Unit vectors: optical axis (``boresight``, or the geodetic nadir), along track (ground
    velocity, made square to the axis), left. A pointed camera keeps its image top toward the
    direction of flight (the ADCS rolls about the boresight to keep it so)."""
    z = _nadir(sub) if boresight is None else boresight / np.linalg.norm(boresight)
    x = v_ecef - np.dot(v_ecef, z) * z
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)  # z down, x forward: y = z x x points left
    return z, x, y


def _ray_to_ground(origin: np.ndarray, direction: np.ndarray) -> tuple[float, float]:
    """Where a ray meets the WGS-84 ellipsoid (lat, lon); the horizon point when it misses."""
    b = WGS84_A_KM * (1 - WGS84_F)
    scale = np.array([WGS84_A_KM, WGS84_A_KM, b])
    o, d = origin / scale, direction / scale
    qa, qb, qc = float(np.dot(d, d)), 2 * float(np.dot(o, d)), float(np.dot(o, o)) - 1.0
    disc = qb * qb - 4 * qa * qc
    t = (-qb - math.sqrt(disc)) / (2 * qa) if disc >= 0 else -qb / (2 * qa)
    lat, lon, _ = _geodetic((origin + t * direction)[None, :])
    return float(lat[0]), float(lon[0])


def camera_view(r_ecef: np.ndarray, v_ecef: np.ndarray, camera: CameraGeometry,
                target: tuple[float, float] | None = None,
                boresight: np.ndarray | None = None) -> View:
    """The camera's footprint from an Earth-fixed position and ground velocity (km, km/s), looking
    along ``boresight`` (Earth-fixed unit vector; None: the geodetic nadir), and the target's
    angles in the camera frame (zero when no target is given; ``off_nadir_deg`` is always from
    the vertical)."""
    lat, lon, alt = _geodetic(r_ecef[None, :])
    sub = SubPoint(float(lat[0]), float(lon[0]), float(alt[0]))
    z, x, y = _camera_axes(r_ecef, v_ecef, sub, boresight)
    ta = math.tan(math.radians(camera.fov_along_deg / 2))
    tc = math.tan(math.radians(camera.fov_across_deg / 2))
    corners = tuple(_ray_to_ground(r_ecef, z + fa * ta * x + fc * tc * y)
                    for fa, fc in ((1, 1), (1, -1), (-1, -1), (-1, 1)))
    footprint = Footprint(corners, _ray_to_ground(r_ecef, z))
    along = across = off_nadir = 0.0
    slant = sub.alt_km
    if target is not None:
        d = geodetic_to_ecef(*target) - r_ecef
        dz = float(np.dot(d, z))
        along = math.degrees(math.atan2(float(np.dot(d, x)), dz))
        across = math.degrees(math.atan2(float(np.dot(d, y)), dz))
        slant = float(np.linalg.norm(d))
        off_nadir = math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(d, _nadir(sub))) / slant))))
    return View(sub, footprint, along, across, off_nadir, slant)


def pixel_of(view: View, camera: CameraGeometry, width: int, height: int) -> tuple[float, float]:
    """Where the target of ``view`` appears in a ``width`` x ``height`` image: (column, row),
    the image's top towards the direction of flight and its left to the left of the track."""
    tc = math.tan(math.radians(camera.fov_across_deg / 2))
    ta = math.tan(math.radians(camera.fov_along_deg / 2))
    column = (0.5 - math.tan(math.radians(view.across_deg)) / (2 * tc)) * width
    row = (0.5 - math.tan(math.radians(view.along_deg)) / (2 * ta)) * height
    return column, row


def in_frame(view: View, camera: CameraGeometry, margin_km: float = 0.0) -> bool:
    """The target of ``view`` is inside the footprint, ``margin_km`` from its edges."""
    margin = math.degrees(margin_km / view.slant_km)
    return (view.off_nadir_deg < 90.0
            and abs(view.along_deg) <= camera.fov_along_deg / 2 - margin
            and abs(view.across_deg) <= camera.fov_across_deg / 2 - margin)


def _ground_reach_km(alt_km: float, off_nadir_deg: float) -> float:
    """Great-circle distance from the sub-satellite point to where a line of sight ``off_nadir_deg``
    from the vertical meets a spherical Earth (the horizon if it misses)."""
    ratio = (EARTH_RADIUS_KM + alt_km) / EARTH_RADIUS_KM * math.sin(math.radians(off_nadir_deg))
    if ratio >= 1.0:
        return EARTH_RADIUS_KM * math.acos(EARTH_RADIUS_KM / (EARTH_RADIUS_KM + alt_km))
    return EARTH_RADIUS_KM * (math.asin(ratio) - math.radians(off_nadir_deg))


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


def _gmst(jd_ut1: np.ndarray) -> np.ndarray:
    """Greenwich mean sidereal angle (rad), IAU-82 as in sgp4's ``gstime``, for arrays."""
    tut1 = (jd_ut1 - 2451545.0) / 36525.0
    seconds = (-6.2e-6 * tut1 ** 3 + 0.093104 * tut1 ** 2
               + (876600.0 * 3600 + 8640184.812866) * tut1 + 67310.54841)
    return np.mod(np.radians(seconds / 240.0), 2 * math.pi)


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

    @property
    def epoch_utc(self) -> float:
        """UNIX time of the TLE's epoch."""
        return float((self.satrec.jdsatepoch - UNIX_EPOCH_JD + self.satrec.jdsatepochF) * 86400.0)

    def ecef(self, utc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Earth-fixed positions (km) and ground-relative velocities (km/s), N x 3 (TEME rotated
        by Greenwich mean sidereal time; polar motion neglected)."""
        jd, fr = _jd(np.atleast_1d(utc))
        jd, fr = np.atleast_1d(jd), np.atleast_1d(fr)
        err, r, v = self.satrec.sgp4_array(jd, fr)
        if np.any(err):
            code = int(err[np.nonzero(err)[0][0]])
            raise ValueError(f"SGP4 propagation failed: {SGP4_ERRORS.get(code, code)}")
        theta = _gmst(jd + fr)
        c, s = np.cos(theta), np.sin(theta)
        ecef = np.stack([c * r[:, 0] + s * r[:, 1], -s * r[:, 0] + c * r[:, 1], r[:, 2]], axis=-1)
        vel = np.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1], v[:, 2]], axis=-1)
        vel = vel - EARTH_ROTATION_RAD_S * np.stack([-ecef[:, 1], ecef[:, 0], np.zeros(len(ecef))], axis=-1)
        return ecef, vel

    def subpoints(self, utc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _geodetic(self.ecef(utc)[0])

    def view(self, utc: float, camera: CameraGeometry, target: Target | None = None,
             pointed: bool = False) -> View:
        """The camera's footprint at ``utc`` and where ``target`` appears in it: nadir, or with
        the boresight on the target when ``pointed`` (target tracking)."""
        r, v = self.ecef(np.array([utc]))
        place = None if target is None else (target.lat_deg, target.lon_deg)
        boresight = None
        if pointed:
            if place is None:
                raise ValueError("a pointed view needs a target")
            boresight = geodetic_to_ecef(*place) - r[0]
        return camera_view(r[0], v[0], camera, place, boresight)

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
        """Every closest approach within ``target.radius_km`` in the horizon, earliest first
        (one at ``start_utc`` itself or a few seconds after it included)."""
        if horizon_s <= 0 or step_s <= 0:
            raise ValueError("horizon_s and step_s must be positive")
        # one sample before the start: a closest approach just after it is then a local minimum
        times = start_utc + np.arange(-step_s, horizon_s + step_s, step_s)
        lat, lon, _ = self.subpoints(times)
        distance = great_circle_km(lat, lon, target.lat_deg, target.lon_deg)
        for i in range(1, len(times) - 1):
            if distance[i] <= distance[i - 1] and distance[i] <= distance[i + 1]:
                if distance[i] > target.radius_km + 8.0 * step_s:  # 8 km/s ground speed bound
                    continue
                best = self._refine(max(times[i - 1], start_utc), times[i + 1], target)
                if best.distance_km <= target.radius_km and best.utc >= start_utc:
                    yield best

    def plan_capture(self, target: Target, start_utc: float, camera: CameraGeometry,
                     limits: PlanLimits) -> CapturePlan:
        """The first closest approach after ``start_utc`` with the target inside the footprint
        (``limits.footprint_margin_km`` from its edges), the Sun at least
        ``limits.min_sun_elevation_deg`` above the target's horizon, within the search horizon
        and before the TLE is older than ``limits.max_tle_age_s``; otherwise the one reason."""
        age_days = (start_utc - self.epoch_utc) / 86400.0
        if start_utc - self.epoch_utc > limits.max_tle_age_s:
            return CapturePlan(None, NoCapture.TLE_TOO_OLD,
                               f"TLE is {age_days:.1f} d old, limit {limits.max_tle_age_s / 86400:g} d")
        end = min(start_utc + limits.horizon_s, self.epoch_utc + limits.max_tle_age_s)
        expires = end < start_utc + limits.horizon_s
        # coarse pre-filter: no nadir footprint reaches further than this from the track
        alt = float(self.subpoint(start_utc).alt_km)
        half_diag = math.hypot(camera.fov_across_deg, camera.fov_along_deg) / 2
        reach = (alt + 300.0) * math.tan(math.radians(half_diag)) + 20.0
        if limits.max_off_nadir_deg > 0:  # pointed: the line of sight may lean this far
            reach = max(reach, _ground_reach_km(alt + 300.0, limits.max_off_nadir_deg) + 20.0)
        search = Target(target.lat_deg, target.lon_deg, min(target.radius_km, reach))
        dark: list[float] = []
        framed = 0
        place = f"({target.lat_deg:.2f}, {target.lon_deg:.2f})"
        if end > start_utc:
            for overflight in self.overflights(search, start_utc, end - start_utc):
                pointed = limits.max_off_nadir_deg > 0
                view = self.view(overflight.utc, camera, target, pointed)
                if pointed and view.off_nadir_deg > limits.max_off_nadir_deg:
                    continue
                if not in_frame(view, camera, limits.footprint_margin_km):
                    continue
                framed += 1
                sun = float(sun_elevation_deg(target.lat_deg, target.lon_deg, overflight.utc))
                if sun < limits.min_sun_elevation_deg:
                    dark.append(sun)
                    continue
                return CapturePlan(CaptureOpportunity(overflight.utc, overflight.distance_km,
                                                      view.off_nadir_deg, sun, view, pointed))
        span = f"{(end - start_utc) / 86400:.1f} d"
        if dark:
            return CapturePlan(None, NoCapture.ONLY_AT_NIGHT,
                               f"{len(dark)} pass(es) frame {place} in {span}, Sun at most "
                               f"{max(dark):.1f} deg (min {limits.min_sun_elevation_deg:g})")
        if expires:
            return CapturePlan(None, NoCapture.TLE_TOO_OLD,
                               f"no pass frames {place} before the TLE is "
                               f"{limits.max_tle_age_s / 86400:g} d old ({span})")
        pointing = (f" (pointed up to {limits.max_off_nadir_deg:g} deg off nadir)"
                    if limits.max_off_nadir_deg > 0 else "")
        return CapturePlan(None, NoCapture.NEVER_IN_FRAME,
                           f"no pass puts {place} in the footprint{pointing} within "
                           f"{target.radius_km:.0f} km of the track in {span}")

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
