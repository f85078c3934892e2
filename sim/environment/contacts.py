"""Ground stations: visibility above an elevation mask, range, and a range-dependent bit error rate.

The link budget is the usual one (free-space loss at the range, fixed gains and losses, noise
density), turned into a bit error rate for non-coherent FSK, which is what a G3RUH 9600 baud
modem behaves like. It decides which frames the simulated transceiver corrupts: a pass starts and
ends noisy at low elevation and is clean overhead, like a real UHF pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .frames import Vec3, enu_basis, geodetic_to_ecef
from .orbit import Orbit
from .timebase import julian_date

SPEED_OF_LIGHT_M_S = 299792458.0
BOLTZMANN_DBW_K_HZ = -228.6


@dataclass(frozen=True)
class LinkBudget:
    """Fixed terms of the UHF link; defaults give ~10 dB Eb/N0 at the horizon, ~24 dB overhead."""

    frequency_hz: float = 437.0e6
    tx_power_dbw: float = 0.0  # 1 W
    tx_antenna_gain_dbi: float = 0.0
    rx_antenna_gain_dbi: float = 14.0
    system_noise_temperature_k: float = 800.0
    bit_rate: float = 9600.0
    fixed_losses_db: float = 10.0  # polarisation, pointing, cables, atmosphere, implementation

    def __post_init__(self) -> None:
        if self.frequency_hz <= 0 or self.bit_rate <= 0 or self.system_noise_temperature_k <= 0:
            raise ValueError("frequency, bit rate and noise temperature must be positive")

    def ebn0_db(self, range_km: float) -> float:
        if range_km <= 0:
            raise ValueError(f"range must be positive, got {range_km} km")
        path_loss = 20.0 * math.log10(4.0 * math.pi * range_km * 1000.0 * self.frequency_hz / SPEED_OF_LIGHT_M_S)
        return (
            self.tx_power_dbw + self.tx_antenna_gain_dbi - path_loss - self.fixed_losses_db
            + self.rx_antenna_gain_dbi - 10.0 * math.log10(self.system_noise_temperature_k)
            - BOLTZMANN_DBW_K_HZ - 10.0 * math.log10(self.bit_rate)
        )

    def bit_error_rate(self, range_km: float) -> float:
        """Non-coherent binary FSK: BER = exp(-Eb/N0 / 2) / 2."""
        ebn0 = 10.0 ** (self.ebn0_db(range_km) / 10.0)
        return 0.5 * math.exp(-ebn0 / 2.0)


@dataclass(frozen=True)
class GroundStation:
    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_elevation_deg: float = 0.0
    link: LinkBudget = LinkBudget()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("ground station needs a name")
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ValueError(f"station {self.name}: latitude {self.lat_deg} outside [-90, 90]")
        if not -180.0 <= self.lon_deg <= 360.0:
            raise ValueError(f"station {self.name}: longitude {self.lon_deg} outside [-180, 360]")
        if not -500.0 <= self.alt_m <= 9000.0:
            raise ValueError(f"station {self.name}: altitude {self.alt_m} m outside [-500, 9000]")
        if not -5.0 <= self.min_elevation_deg < 90.0:
            raise ValueError(f"station {self.name}: elevation mask {self.min_elevation_deg} outside [-5, 90)")


ALMATY = GroundStation("almaty", 43.2, 76.9, 800.0)


@dataclass(frozen=True)
class StationView:
    """The satellite seen from one station at one instant."""

    station: str
    elevation_deg: float
    azimuth_deg: float
    range_km: float
    in_contact: bool
    bit_error_rate: float  # 0.5 (nothing decodes) when out of contact


@dataclass(frozen=True)
class ContactWindow:
    station: str
    aos: float  # POSIX seconds
    los: float
    max_elevation_deg: float
    tca: float  # time of maximum elevation

    @property
    def duration_s(self) -> float:
        return self.los - self.aos


class StationGeometry:
    """Precomputed station position and horizon frame, for per-tick views."""

    def __init__(self, station: GroundStation) -> None:
        self.station = station
        self.position_ecef: Vec3 = geodetic_to_ecef(station.lat_deg, station.lon_deg, station.alt_m / 1000.0)
        self.east, self.north, self.up = enu_basis(station.lat_deg, station.lon_deg)

    def view(self, r_ecef_km: Vec3) -> StationView:
        p = self.position_ecef
        dx, dy, dz = r_ecef_km[0] - p[0], r_ecef_km[1] - p[1], r_ecef_km[2] - p[2]
        rng = math.sqrt(dx * dx + dy * dy + dz * dz)
        e, n, u = self.east, self.north, self.up
        up_component = dx * u[0] + dy * u[1] + dz * u[2]
        elevation = math.degrees(math.asin(up_component / rng))
        azimuth = math.degrees(math.atan2(dx * e[0] + dy * e[1] + dz * e[2], dx * n[0] + dy * n[1] + dz * n[2])) % 360.0
        visible = elevation >= self.station.min_elevation_deg
        ber = self.station.link.bit_error_rate(rng) if visible else 0.5
        return StationView(self.station.name, elevation, azimuth, rng, visible, ber)

    def elevations_deg(self, r_ecef_km: np.ndarray) -> np.ndarray:
        rel = r_ecef_km - np.asarray(self.position_ecef)
        up_component = rel @ np.asarray(self.up)
        return np.degrees(np.arcsin(up_component / np.linalg.norm(rel, axis=1)))


def _ecef_positions(orbit: Orbit, times: np.ndarray) -> np.ndarray:
    r_teme, _ = orbit.teme_array(times)
    gmst = _gmst_array(julian_date(0.0) + times / 86400.0)
    c, s = np.cos(gmst), np.sin(gmst)
    x = c * r_teme[:, 0] + s * r_teme[:, 1]
    y = -s * r_teme[:, 0] + c * r_teme[:, 1]
    return np.column_stack((x, y, r_teme[:, 2]))


def _gmst_array(jd_ut1: np.ndarray) -> np.ndarray:
    """Vectorised IAU-82 GMST, the same expression as sgp4.propagation.gstime."""
    tut1 = (jd_ut1 - 2451545.0) / 36525.0
    seconds = (
        -6.2e-6 * tut1**3 + 0.093104 * tut1**2 + (876600.0 * 3600 + 8640184.812866) * tut1 + 67310.54841
    )
    return np.mod(np.radians(seconds / 240.0), 2.0 * math.pi)


def contact_windows(
    orbit: Orbit, station: GroundStation, start: float, end: float, coarse_step_s: float = 20.0
) -> list[ContactWindow]:
    """Passes above the station's mask between start and end (POSIX s), edges refined to ~10 ms."""
    if end <= start:
        raise ValueError(f"window search end {end} is not after start {start}")
    geometry = StationGeometry(station)
    mask = station.min_elevation_deg
    times = np.arange(start, end + coarse_step_s, coarse_step_s)
    times[-1] = min(times[-1], end)
    elevations = geometry.elevations_deg(_ecef_positions(orbit, times))
    above = elevations >= mask

    def elevation_at(t: float) -> float:
        return float(geometry.elevations_deg(_ecef_positions(orbit, np.array([t])))[0])

    def crossing(t_lo: float, t_hi: float, rising: bool) -> float:
        for _ in range(12):  # 20 s / 2^12 ~ 5 ms
            mid = (t_lo + t_hi) / 2.0
            if (elevation_at(mid) >= mask) == rising:
                t_hi = mid
            else:
                t_lo = mid
        return (t_lo + t_hi) / 2.0

    windows: list[ContactWindow] = []
    i = 0
    n = len(times)
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and above[j + 1]:
            j += 1
        aos = float(times[i]) if i == 0 else crossing(float(times[i - 1]), float(times[i]), True)
        los = float(times[j]) if j == n - 1 else crossing(float(times[j]), float(times[j + 1]), False)
        fine = np.linspace(aos, los, max(3, int((los - aos) / 2.0)))
        fine_el = geometry.elevations_deg(_ecef_positions(orbit, fine))
        k = int(np.argmax(fine_el))
        windows.append(ContactWindow(station.name, aos, los, float(fine_el[k]), float(fine[k])))
        i = j + 1
    return windows
