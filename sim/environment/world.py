"""One object that steps every environment model on simulated time and serves their values.

The world advances on a fixed tick grid anchored at the start epoch (1 s by default). A read at
any later time first runs the ticks up to it, so the result depends only on the start, the
configuration, the seed and the commanded load/detumble changes, never on how often or at which
instants the simulator happens to read it: two runs with the same seed are identical.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from .attitude import Attitude, AttitudeConfig, Quaternion
from .contacts import ALMATY, GroundStation, StationGeometry, StationView
from .frames import Vec3, ecef_to_teme, local_up, teme_to_ecef
from .magnetic import OrbitFieldCache
from .orbit import Orbit, OrbitState
from .power import PowerConfig, PowerSnapshot, PowerSystem, RailReading
from .sun import AU_KM, SOLAR_CONSTANT_W_M2, illumination, sun_position_km
from .thermal import ThermalConfig, ThermalModel
from .timebase import TimeLike, to_datetime, to_epoch_seconds

FACES: tuple[tuple[str, Vec3], ...] = (
    ("+X", (1.0, 0.0, 0.0)), ("-X", (-1.0, 0.0, 0.0)),
    ("+Y", (0.0, 1.0, 0.0)), ("-Y", (0.0, -1.0, 0.0)),
    ("+Z", (0.0, 0.0, 1.0)), ("-Z", (0.0, 0.0, -1.0)),
)
MAX_EVENTS = 100_000
MAX_SAMPLES = 200_000


@dataclass(frozen=True)
class WorldConfig:
    orbit: Orbit = field(default_factory=Orbit.default)
    stations: tuple[GroundStation, ...] = (ALMATY,)
    power: PowerConfig = PowerConfig()
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    attitude: AttitudeConfig = AttitudeConfig()
    tick_s: float = 1.0
    record_every_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.01 <= self.tick_s <= 30.0:
            raise ValueError(f"tick_s {self.tick_s} must be in [0.01, 30] s for a stable thermal step")
        if self.record_every_s < self.tick_s:
            raise ValueError("record_every_s must be at least one tick")
        names = [s.name for s in self.stations]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate ground station names: {names}")


@dataclass(frozen=True)
class WorldEvent:
    t: float
    kind: str  # "eclipse_entry", "eclipse_exit", "aos", "los", "undervoltage", "power_restored"
    detail: str = ""


@dataclass(frozen=True)
class WorldState:
    """Everything the simulated hardware reads, at one tick."""

    t: float
    orbit: OrbitState
    sun_direction_teme: Vec3
    lit_fraction: float
    sun_body: Vec3
    photodiodes: dict[str, float]  # per face, 0..1 of full normal-incidence sunlight
    magnetic_field_body_nt: Vec3
    magnetic_field_teme_nt: Vec3
    body_rates_rad_s: Vec3
    quaternion: Quaternion
    power: PowerSnapshot
    temperatures_c: dict[str, float]
    contacts: dict[str, StationView]
    sun_elevation_at_subpoint_deg: float

    @property
    def utc(self) -> datetime:
        return to_datetime(self.t)

    @property
    def in_eclipse(self) -> bool:
        return self.lit_fraction < 0.5

    @property
    def rails(self) -> dict[str, RailReading]:
        return self.power.rails

    @property
    def in_contact(self) -> bool:
        return any(view.in_contact for view in self.contacts.values())


@dataclass
class Recording:
    """Samples at a fixed interval for reports; bounded to MAX_SAMPLES rows."""

    columns: dict[str, list[float]] = field(default_factory=dict)

    def append(self, row: dict[str, float]) -> None:
        if self.columns and len(next(iter(self.columns.values()))) >= MAX_SAMPLES:
            raise RuntimeError(f"recording is full ({MAX_SAMPLES} samples); raise record_every_s")
        for key, value in row.items():
            self.columns.setdefault(key, []).append(value)


class World:
    """Orbit, sun, magnetic field, attitude, power, thermal and contacts on one simulated clock."""

    def __init__(self, config: WorldConfig | None = None, start: TimeLike | None = None, seed: int = 0) -> None:
        self.config = config or WorldConfig()
        self.start = to_epoch_seconds(start) if start is not None else self.config.orbit.epoch_seconds
        self.seed = seed
        self._rng = random.Random(seed)
        self.attitude = Attitude(self.config.attitude, self._rng)
        self.power = PowerSystem(self.config.power)
        self.thermal = ThermalModel(self.config.thermal, self.config.power.panels)
        self._stations = [StationGeometry(s) for s in self.config.stations]
        self._field = OrbitFieldCache(self.config.orbit)
        self.events: deque[WorldEvent] = deque(maxlen=MAX_EVENTS)
        self.recording = Recording()
        self.counts: dict[str, int] = {"eclipses": 0, "contacts": 0}
        self.contacts_by_station: dict[str, int] = {s.name: 0 for s in self.config.stations}
        self._ticks = 0
        self._next_record = self.start
        self._cached: WorldState | None = None
        self._evaluate_environment(self.start)
        self._was_eclipsed = self._lit < 0.5
        self._was_in_contact = {v.station: v.in_contact for v in self._views}
        self._was_undervoltage = False
        self._undervoltage_ticks = 0
        self._record()

    # ----- public API -----------------------------------------------------------------------
    @property
    def time(self) -> float:
        """POSIX seconds of the current tick."""
        return self.start + self._ticks * self.config.tick_s

    def step(self, t: TimeLike) -> WorldState:
        """Advance to the last tick at or before t and return the state there."""
        target = to_epoch_seconds(t)
        tick = self.config.tick_s
        if target < self.time - 1e-6:
            raise ValueError(f"the world is at {self.time:.3f}; it cannot step back to {target:.3f}")
        ticks_due = math.floor((target - self.start) / tick + 1e-9)
        while self._ticks < ticks_due:
            self._advance_one_tick()
        return self.state

    at = step

    def advance(self, seconds: float) -> WorldState:
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative duration ({seconds} s)")
        return self.step(self.time + seconds)

    def set_load_state(self, device: str, state: str) -> None:
        """A device changed power state (radio "tx", camera "on"); applies from the next tick."""
        self.power.set_load_state(device, state)

    def set_detumbling(self, active: bool) -> None:
        self.attitude.detumbling = bool(active)

    @property
    def state(self) -> WorldState:
        if self._cached is None:
            self._cached = self._build_state()
        return self._cached

    def metrics(self) -> dict[str, float]:
        """Figures a scenario expectation can test, over the run so far."""
        cols = self.recording.columns
        ledger = self.power.ledger
        result: dict[str, float] = {
            "duration_h": (self.time - self.start) / 3600.0,
            "eclipses": float(self.counts["eclipses"]),
            "contacts": float(self.counts["contacts"]),
            "battery_soc_min": min(cols["battery_soc"]),
            "battery_soc_max": max(cols["battery_soc"]),
            "battery_soc_end": self.power.battery.soc,
            "battery_voltage_min": min(cols["battery_voltage"]),
            "battery_voltage_max": max(cols["battery_voltage"]),
            "undervoltage_s": self._undervoltage_ticks * self.config.tick_s,
            "solar_energy_wh": ledger.solar_used / 3600.0,
            "load_energy_wh": ledger.loads / 3600.0,
            "energy_residual_wh": ledger.residual(self.power.stored_change_j()) / 3600.0,
            "rate_deg_s_end": self.attitude.rate_deg_s,
        }
        for name in self.thermal.temperatures_c:
            result[f"temperature_{name}_min"] = min(cols[f"temp_{name}"])
            result[f"temperature_{name}_max"] = max(cols[f"temp_{name}"])
        for station, count in self.contacts_by_station.items():
            result[f"contacts_{station}"] = float(count)
        return result

    # ----- internals ------------------------------------------------------------------------
    def _evaluate_environment(self, t: float) -> None:
        """Stateless quantities at t: orbit, sun, shadow, field, station geometry."""
        orbit = self.config.orbit.state(t)
        sun = sun_position_km(t)
        light = illumination(orbit.r_teme_km, sun)
        b_ecef = self._field.field_ecef_nt(t)
        self._orbit = orbit
        self._sun_km = sun
        self._sun_dir = light.sun_direction
        self._lit = light.lit_fraction
        self._irradiance = light.irradiance_w_m2
        self._full_irradiance = SOLAR_CONSTANT_W_M2 * (AU_KM / light.sun_distance_km) ** 2
        self._b_teme = ecef_to_teme(b_ecef, orbit.gmst_rad)
        self._views = [g.view(orbit.r_ecef_km) for g in self._stations]

    def _advance_one_tick(self) -> None:
        dt = self.config.tick_s
        self._ticks += 1
        t = self.time
        self._cached = None
        self._evaluate_environment(t)
        self.attitude.advance(dt)
        sun_body = self.attitude.to_body(self._sun_dir)
        temps = self.thermal.temperatures_c
        solar_w = self.power.solar_power_w(sun_body, self._irradiance, temps["structure"])
        self.power.advance(dt, solar_w, temps.get("battery", temps["structure"]))
        r = self._orbit.r_teme_km
        r_norm = math.sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2])
        sun_unit_from_earth = _unit(self._sun_km)
        albedo_cos = (r[0] * sun_unit_from_earth[0] + r[1] * sun_unit_from_earth[1] + r[2] * sun_unit_from_earth[2]) / r_norm
        earth_ir_w, albedo_w = self.thermal.earth_heat_w(r_norm, albedo_cos, self._full_irradiance)
        self.thermal.advance(
            dt,
            self.thermal.absorbed_solar_w(sun_body, self._irradiance),
            earth_ir_w + albedo_w,
            self.power.heat_by_node,
            self.power.array_drawn_w,
        )
        self._detect_transitions(t)
        if t >= self._next_record - 1e-9:
            self._record()

    def _detect_transitions(self, t: float) -> None:
        eclipsed = self._lit < 0.5
        if eclipsed != self._was_eclipsed:
            if eclipsed:
                self.counts["eclipses"] += 1
            self.events.append(WorldEvent(t, "eclipse_entry" if eclipsed else "eclipse_exit"))
            self._was_eclipsed = eclipsed
        for view in self._views:
            if view.in_contact != self._was_in_contact[view.station]:
                if view.in_contact:
                    self.counts["contacts"] += 1
                    self.contacts_by_station[view.station] += 1
                self.events.append(WorldEvent(t, "aos" if view.in_contact else "los", view.station))
                self._was_in_contact[view.station] = view.in_contact
        undervoltage = self.power.undervoltage
        self._undervoltage_ticks += undervoltage
        if undervoltage != self._was_undervoltage:
            self.events.append(WorldEvent(t, "undervoltage" if undervoltage else "power_restored"))
            self._was_undervoltage = undervoltage

    def _record(self) -> None:
        p = self.power.snapshot
        row = {
            "t": self.time,
            "battery_soc": self.power.battery.soc,
            "battery_voltage": p.battery_voltage,
            "battery_current": p.battery_current,
            "solar_w": p.solar_used_w,
            "load_w": p.load_power_w,
            "lit_fraction": self._lit,
            "rate_deg_s": self.attitude.rate_deg_s,
            "undervoltage": 1.0 if self.power.undervoltage else 0.0,
            "lat_deg": self._orbit.lat_deg,
            "lon_deg": self._orbit.lon_deg,
        }
        for name, value in self.thermal.temperatures_c.items():
            row[f"temp_{name}"] = value
        for view in self._views:
            row[f"elevation_{view.station}"] = view.elevation_deg
        self.recording.append(row)
        self._next_record += self.config.record_every_s

    def _build_state(self) -> WorldState:
        sun_body = self.attitude.to_body(self._sun_dir)
        lit = self._lit
        photodiodes = {
            name: max(0.0, n[0] * sun_body[0] + n[1] * sun_body[1] + n[2] * sun_body[2]) * lit
            for name, n in FACES
        }
        orbit = self._orbit
        sun_ecef = _unit(teme_to_ecef(self._sun_km, orbit.gmst_rad))
        up = local_up(orbit.lat_deg, orbit.lon_deg)
        sun_elevation = math.degrees(math.asin(max(-1.0, min(1.0, sun_ecef[0] * up[0] + sun_ecef[1] * up[1] + sun_ecef[2] * up[2]))))
        return WorldState(
            t=self.time,
            orbit=orbit,
            sun_direction_teme=self._sun_dir,
            lit_fraction=lit,
            sun_body=sun_body,
            photodiodes=photodiodes,
            magnetic_field_body_nt=self.attitude.to_body(self._b_teme),
            magnetic_field_teme_nt=self._b_teme,
            body_rates_rad_s=self.attitude.rates_rad_s,
            quaternion=self.attitude.quaternion,
            power=self.power.snapshot,
            temperatures_c=dict(self.thermal.temperatures_c),
            contacts={v.station: v for v in self._views},
            sun_elevation_at_subpoint_deg=sun_elevation,
        )


def _unit(v: Vec3) -> Vec3:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return (v[0] / n, v[1] / n, v[2] / n)
