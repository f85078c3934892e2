"""A simulated still camera that photographs a synthetic, deterministic Earth.

Why: imaging, quota, planning and downlink must be testable on a laptop, and a test must be able
to tell *what* was photographed. The scene under the satellite comes from a callable (the orbit
simulator's ``camera_scene``: sub-satellite lat/lon and sun elevation), so an image taken over
the sea at night looks different from one over land by day, and the same place with the same seed
always looks the same. Exposure time and gain scale the signal: too long saturates (white),
too short is dark. Failures are injected on demand: a timeout or a corrupted frame.

When the scene also gives the satellite's Earth-fixed position and ground velocity and the camera
was given a footprint function (the imaging subsystem passes the flight's own
``flightsw.imaging.planner.camera_view``), the frame is rendered over that ground footprint: image top = direction of flight,
left = the footprint's left corners, so the footprint in an image's catalog entry is where its
pixels come from.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from hal.camera import CameraError, CameraTimeout, CaptureSettings, Frame, encode_jpeg

KM_PER_DEG_LAT = 110.57
KM_PER_DEG_LON_EQ = 111.32
# DN = 255 * radiance * exposure_us * gain / FULL_WELL_SCALE: a bright cloud at 60 deg sun
# elevation sits at ~220 DN with the default 2 ms, gain 1.
FULL_WELL_SCALE = 1600.0

SEA = np.array([0.03, 0.06, 0.12])
LAND = np.array([0.16, 0.13, 0.08])
VEGETATION = np.array([0.06, 0.11, 0.04])
CLOUD = np.array([0.80, 0.80, 0.82])
CITY_LIGHT = np.array([0.030, 0.020, 0.008])


class SceneLike(Protocol):
    """What the camera needs from the orbit simulator (``sim.environment`` ``CameraScene``)."""

    lat_deg: float
    lon_deg: float
    sun_elevation_deg: float
    # the satellite, Earth-fixed (km, km/s ground-relative); None: render north-up at the point
    r_ecef_km: tuple[float, float, float] | None
    v_ecef_km_s: tuple[float, float, float] | None


class FixedScene:
    """A scene that does not move: for tests and bench use without the orbit simulator."""

    def __init__(self, lat_deg: float, lon_deg: float, sun_elevation_deg: float,
                 r_ecef_km: tuple[float, float, float] | None = None,
                 v_ecef_km_s: tuple[float, float, float] | None = None) -> None:
        self.lat_deg = lat_deg
        self.lon_deg = lon_deg
        self.sun_elevation_deg = sun_elevation_deg
        self.r_ecef_km = r_ecef_km
        self.v_ecef_km_s = v_ecef_km_s

    def __call__(self) -> FixedScene:
        return self


def _hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer lattice point."""
    mask = np.uint64(0xFFFFFFFF)
    h = (ix.astype(np.int64).astype(np.uint64) * np.uint64(374761393)
         + iy.astype(np.int64).astype(np.uint64) * np.uint64(668265263)
         + np.uint64((seed * 2246822519) & 0xFFFFFFFF)) & mask
    h = ((h ^ (h >> np.uint64(13))) * np.uint64(1274126177)) & mask
    h = h ^ (h >> np.uint64(16))
    return h.astype(np.float64) / 4294967296.0


def _value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    ix, iy = np.floor(x), np.floor(y)
    fx, fy = x - ix, y - iy
    sx, sy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a = _hash01(ix, iy, seed)
    b = _hash01(ix + 1, iy, seed)
    c = _hash01(ix, iy + 1, seed)
    d = _hash01(ix + 1, iy + 1, seed)
    return (a + (b - a) * sx) + ((c + (d - c) * sx) - (a + (b - a) * sx)) * sy


def fractal_noise(x_km: np.ndarray, y_km: np.ndarray, base_km: float, octaves: int,
                  seed: int) -> np.ndarray:
    """Sum of value-noise octaves, normalised to [0, 1]; features of size ``base_km`` and finer."""
    total = np.zeros_like(x_km)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        scale = (2**octave) / base_km
        total += amplitude * _value_noise(x_km * scale, y_km * scale, seed + 101 * octave)
        norm += amplitude
        amplitude *= 0.5
    return total / norm


def _upsample(field: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float field (noise is smooth, so rendering it coarse loses nothing)."""
    from PIL import Image

    image = Image.fromarray(field.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64)


def render_radiance(lat_deg: float, lon_deg: float, sun_elevation_deg: float, width: int,
                    height: int, seed: int, swath_km: float = 60.0) -> np.ndarray:
    """Scene radiance (H x W x 3, arbitrary units ~ reflectance x illumination) under a nadir view
    (north up, ``swath_km`` wide).

    Noise fields are evaluated on a grid 4x coarser than the image and interpolated; thresholds
    (coastlines, city lights) are applied at full resolution so edges stay sharp.
    """
    coarse_w, coarse_h = max(8, width // 4), max(8, height // 4)
    along_km = swath_km * height / width
    xs = np.linspace(-swath_km / 2, swath_km / 2, coarse_w)
    ys = np.linspace(along_km / 2, -along_km / 2, coarse_h)
    gx, gy = np.meshgrid(xs, ys)
    cos_lat = max(0.05, math.cos(math.radians(lat_deg)))
    world_x = lon_deg * KM_PER_DEG_LON_EQ * cos_lat + gx
    world_y = lat_deg * KM_PER_DEG_LAT + gy
    return _radiance(world_x, world_y, sun_elevation_deg, width, height, seed)


def footprint_grid(corners: tuple[tuple[float, float], ...], columns: int,
                   rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude (rows x columns) across a footprint whose corners (lat, lon) are
    top-left, top-right, bottom-right, bottom-left; bilinear between them (the field of view
    is small), longitudes unwrapped across the dateline."""
    lats = np.array([c[0] for c in corners])
    lons = np.array([c[1] for c in corners])
    lons = lons[0] + (lons - lons[0] + 180.0) % 360.0 - 180.0
    u = np.linspace(0.0, 1.0, columns)[None, :]
    v = np.linspace(0.0, 1.0, rows)[:, None]
    w = ((1 - u) * (1 - v), u * (1 - v), u * v, (1 - u) * v)
    lat = sum(wi * li for wi, li in zip(w, lats, strict=True))
    lon = sum(wi * li for wi, li in zip(w, lons, strict=True))
    return np.asarray(lat), np.asarray(lon)


def world_km(lat_deg: np.ndarray, lon_deg: np.ndarray, lat_ref_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic Earth's plane coordinates (km) of points, for a view around ``lat_ref_deg``."""
    cos_lat = max(0.05, math.cos(math.radians(lat_ref_deg)))
    lon = (np.asarray(lon_deg) + 180.0) % 360.0 - 180.0
    return lon * KM_PER_DEG_LON_EQ * cos_lat, np.asarray(lat_deg) * KM_PER_DEG_LAT


def surface_at(lat_deg: np.ndarray, lon_deg: np.ndarray, lat_ref_deg: float,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Land (bool) and cloud cover (0..1) of the synthetic Earth at points, evaluated exactly."""
    x, y = world_km(lat_deg, lon_deg, lat_ref_deg)
    land = fractal_noise(x, y, 150.0, 6, seed) > 0.52
    cloud = np.clip((fractal_noise(x, y, 25.0, 4, seed + 13) - 0.55) * 4.0, 0.0, 1.0)
    return land, cloud


def render_footprint(corners: tuple[tuple[float, float], ...], sun_elevation_deg: float, width: int,
                     height: int, seed: int) -> np.ndarray:
    """Scene radiance over a footprint (corners as in :func:`footprint_grid`)."""
    lat, lon = footprint_grid(corners, max(8, width // 4), max(8, height // 4))
    world_x, world_y = world_km(lat, lon, float(np.mean([c[0] for c in corners])))
    return _radiance(world_x, world_y, sun_elevation_deg, width, height, seed)


def _radiance(world_x: np.ndarray, world_y: np.ndarray, sun_elevation_deg: float, width: int,
              height: int, seed: int) -> np.ndarray:
    def field(base_km: float, octaves: int, salt: int) -> np.ndarray:
        return _upsample(fractal_noise(world_x, world_y, base_km, octaves, seed + salt), width, height)

    land = field(150.0, 6, 0) > 0.52
    vegetation = field(8.0, 3, 7)[..., None]
    cloud = np.clip((field(25.0, 4, 13) - 0.55) * 4.0, 0.0, 1.0)
    surface = np.where(land[..., None], LAND * (1 - vegetation) + VEGETATION * vegetation, SEA)
    reflectance = surface * (1 - cloud[..., None]) + CLOUD * cloud[..., None]
    if sun_elevation_deg > 0:
        return reflectance * math.sin(math.radians(sun_elevation_deg))
    lights = (field(2.0, 2, 29) > 0.75) & land
    return np.where(lights[..., None], CITY_LIGHT, 0.0) * (1 - cloud[..., None] * 0.7)


#: (Earth-fixed position km, ground velocity km/s[, boresight]) -> footprint corners (lat, lon):
#: front-left, front-right, back-right, back-left; the boresight (Earth-fixed unit vector) is
#: passed only to a camera given ``pointing``
FootprintOf = Callable[..., tuple[tuple[float, float], ...]]
#: the simulated ADCS's boresight now (Earth-fixed unit vector)
PointingOf = Callable[[], "tuple[float, float, float] | None"]


class SimCamera:
    """A ``hal.camera.Camera`` that renders the synthetic Earth below the simulated satellite."""

    def __init__(
        self,
        scene: Callable[[], SceneLike],
        seed: int = 1,
        swath_km: float = 60.0,
        sensor_temperature: Callable[[], float] | None = None,
        footprint: FootprintOf | None = None,
        pointing: PointingOf | None = None,
    ) -> None:
        self._scene = scene
        # the flight's own footprint function, given by the builder (the simulator imports no
        # flight code): the ground is rendered where the catalog will say it is
        self.footprint_of = footprint
        # the simulated ADCS's boresight: the camera looks where the satellite is pointed
        self.pointing = pointing
        self.seed = seed
        self.swath_km = swath_km
        self._temperature = sensor_temperature
        self._lock = threading.Lock()
        self._pending_failures: list[str] = []
        self.is_open = False
        self.frames_taken = 0
        self.last_footprint: tuple[tuple[float, float], ...] | None = None  # of the last frame

    def _footprint(self, scene: SceneLike) -> tuple[tuple[float, float], ...] | None:
        r, v = scene.r_ecef_km, scene.v_ecef_km_s
        if self.footprint_of is None or r is None or v is None:
            return None
        if self.pointing is None:
            return self.footprint_of(np.asarray(r, dtype=float), np.asarray(v, dtype=float))
        return self.footprint_of(np.asarray(r, dtype=float), np.asarray(v, dtype=float), self.pointing())

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` captures fail with ``kind``: "timeout", "corrupt" or "error"."""
        if kind not in ("timeout", "corrupt", "error"):
            raise ValueError(f"unknown camera failure {kind!r}: use timeout, corrupt or error")
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        with self._lock:
            self._pending_failures.extend([kind] * count)

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def capture(self, settings: CaptureSettings) -> Frame:
        if not self.is_open:
            raise CameraError("camera is not powered/open")
        with self._lock:
            failure = self._pending_failures.pop(0) if self._pending_failures else None
        if failure == "timeout":
            raise CameraTimeout(f"no frame within {settings.timeout_s} s (injected)")
        if failure == "error":
            raise CameraError("sensor I/O error (injected)")
        scene = self._scene()
        self.frames_taken += 1
        frame_index = self.frames_taken
        footprint = self._footprint(scene)
        self.last_footprint = footprint
        if footprint is None:
            radiance = render_radiance(scene.lat_deg, scene.lon_deg, scene.sun_elevation_deg,
                                       settings.width, settings.height, self.seed, self.swath_km)
        else:
            radiance = render_footprint(footprint, scene.sun_elevation_deg, settings.width,
                                        settings.height, self.seed)
        signal = 255.0 * radiance * settings.exposure_us * settings.analogue_gain / FULL_WELL_SCALE
        rng = np.random.default_rng([self.seed, frame_index])
        noise = rng.normal(0.0, 1.5 * settings.analogue_gain, signal.shape)
        rgb = np.clip(signal + noise + 2.0, 0, 255).astype(np.uint8)
        metadata: dict[str, Any] = {
            "ExposureTime": settings.exposure_us,
            "AnalogueGain": settings.analogue_gain,
            "SensorTemperature": self._temperature() if self._temperature else 20.0,
            "FrameIndex": frame_index,
            "SimScene": {"lat_deg": scene.lat_deg, "lon_deg": scene.lon_deg,
                         "sun_elevation_deg": scene.sun_elevation_deg,
                         "footprint": footprint},
        }
        if settings.output == "rgb":
            if failure == "corrupt":
                rgb = rgb[: settings.height // 2]  # a short frame: lines lost on the bus
            return Frame("rgb", settings.width, settings.height, rgb=rgb, metadata=metadata)
        jpeg = encode_jpeg(rgb, settings.jpeg_quality)
        if failure == "corrupt":
            damaged = bytearray(jpeg[: len(jpeg) * 3 // 5])
            for i in range(200, len(damaged), 97):
                damaged[i] ^= 0x5A
            jpeg = bytes(damaged)
        return Frame("jpeg", settings.width, settings.height, jpeg=jpeg, metadata=metadata)
