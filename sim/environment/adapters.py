"""Small adapters that plug the World into the rest of the simulator.

- :class:`WorldEnvironment` is an ``EnvironmentSource`` (``sim.parts.environment``): the simulated
  magnetometer, gyroscope, temperature sensors, INA219s and sun-sensor ADC read the World.
- :class:`ContactGate` drives a transceiver ``ChannelModel``: frames pass only during contact, with
  the bit error rate of the current range.
- :func:`run_world_ticker` keeps the World close to the event loop's (virtual) time and feeds it
  the devices' power states, so no single read has to catch up on many ticks and block the loop.

Time: the World runs on UTC epoch seconds, the loop on its own clock (monotonic or virtual). The
adapter maps one to the other with the epoch the simulation starts at.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .world import World, WorldState

EARTH_ROTATION_RAD_S = 7.292115e-5

Vector3 = tuple[float, float, float]

# the sun-sensor channel names used by the simulated ADS1115 wiring, mapped to body faces
DEFAULT_LIGHT_CHANNELS: dict[str, str] = {
    "css_px": "+X", "css_mx": "-X", "css_py": "+Y", "css_my": "-Y", "css_pz": "+Z", "css_mz": "-Z",
}
NEGLIGIBLE_BER = 1e-12
DEFAULT_LOCATION_ALIASES: dict[str, str] = {"obc": "board", "eps": "board", "panel": "structure",
                                             "payload": "structure"}  # the camera sits on the structure


@dataclass(frozen=True)
class CameraScene:
    """What a simulated camera needs to draw a plausible frame."""

    lat_deg: float
    lon_deg: float
    alt_km: float
    sun_elevation_deg: float  # at the sub-satellite point; below 0 the ground is dark
    r_ecef_km: tuple[float, float, float] | None = None  # the satellite, Earth-fixed
    v_ecef_km_s: tuple[float, float, float] | None = None  # its velocity over the ground

    @property
    def daylight(self) -> bool:
        return self.sun_elevation_deg > 0.0


class WorldEnvironment:
    """Thread-safe view of a World at the current loop time, in the units the parts expect."""

    def __init__(
        self,
        world: World,
        clock: Callable[[], float] | None = None,
        *,
        clock_at_start: float | None = None,
        light_full_scale_v: float = 2.5,
        light_channels: Mapping[str, str] | None = None,
        location_aliases: Mapping[str, str] | None = None,
    ) -> None:
        if light_full_scale_v <= 0:
            raise ValueError(f"light_full_scale_v must be positive, got {light_full_scale_v}")
        self.world = world
        self._clock: Callable[[], float] | None = None
        self._clock_at_start = 0.0
        if clock is not None:
            self.bind_clock(clock, clock_at_start)
        self._light_full_scale_v = light_full_scale_v
        self._light_channels = dict(light_channels or DEFAULT_LIGHT_CHANNELS)
        self._aliases = dict(location_aliases or DEFAULT_LOCATION_ALIASES)
        self._lock = threading.Lock()  # parts read on bus worker threads, the ticker on the loop

    def bind_clock(self, clock: Callable[[], float], clock_at_start: float | None = None) -> None:
        """Follow a loop's clock from now on; `clock_at_start` is the reading that means world.start.

        Hardware is built before the event loop runs, so the clock is usually bound late, in the
        same place as ``HardwareSet.bind_loop``. Without a binding the World stays where it is.
        """
        self._clock = clock
        self._clock_at_start = clock() - (self.world.time - self.world.start) if clock_at_start is None else clock_at_start

    def epoch_now(self) -> float:
        """UTC epoch seconds that the loop clock currently stands for."""
        if self._clock is None:
            return self.world.time
        return self.world.start + (self._clock() - self._clock_at_start)

    def sync(self) -> WorldState:
        """Advance the World to now (never backwards) and return its state."""
        with self._lock:
            now = self.epoch_now()
            world = self.world
            # Most calls (every sensor sample) fall inside the current tick: nothing to step
            # (the margin keeps this side of World.step's own rounding at the tick boundary).
            if now < world.time + world.config.tick_s * (1.0 - 2e-9):
                return world.state
            return world.step(now)

    def set_load_state(self, device: str, state: str) -> None:
        with self._lock:
            self.world.set_load_state(device, state)

    def set_detumbling(self, active: bool) -> None:
        with self._lock:
            self.world.set_detumbling(active)

    # ----- EnvironmentSource ----------------------------------------------------------------
    def magnetic_field(self) -> Vector3:
        b = self.sync().magnetic_field_body_nt
        return (b[0] * 1e-9, b[1] * 1e-9, b[2] * 1e-9)

    def angular_rate(self) -> Vector3:
        return self.sync().body_rates_rad_s

    def acceleration(self) -> Vector3:
        self.sync()
        return (0.0, 0.0, 0.0)  # free fall; drag is ~1e-7 g at 530 km

    def temperature(self, location: str) -> float:
        temps = self.sync().temperatures_c
        node = self._aliases.get(location, location)
        if node not in temps:
            raise KeyError(f"no thermal node {location!r}; known: {sorted(temps) + sorted(self._aliases)}")
        return temps[node]

    def rail(self, name: str) -> tuple[float, float]:
        rails = self.sync().rails
        reading = rails.get(name)
        if reading is None:
            raise KeyError(f"no power rail {name!r}; known: {sorted(rails)}")
        return reading.voltage, reading.current

    def light(self, channel: str) -> float:
        face = self._light_channels.get(channel)
        if face is None:
            raise KeyError(f"no sun-sensor channel {channel!r}; known: {sorted(self._light_channels)}")
        return self.sync().photodiodes[face] * self._light_full_scale_v

    # ----- other consumers ------------------------------------------------------------------
    def camera_scene(self) -> CameraScene:
        state = self.sync()
        o = state.orbit
        c, s = math.cos(o.gmst_rad), math.sin(o.gmst_rad)
        r, v = o.r_ecef_km, o.v_teme_km_s
        v_ecef = (c * v[0] + s * v[1] + EARTH_ROTATION_RAD_S * r[1],
                  -s * v[0] + c * v[1] - EARTH_ROTATION_RAD_S * r[0], v[2])
        return CameraScene(o.lat_deg, o.lon_deg, o.alt_km, state.sun_elevation_at_subpoint_deg,
                           (r[0], r[1], r[2]), v_ecef)


class ContactGate:
    """The transceiver's contact callable: passes frames only while a station sees the satellite.

    Each call also sets the channel's bit error rate to the best station's current value, so the
    frames in flight are corrupted as the range and elevation of the pass dictate.
    """

    def __init__(self, environment: WorldEnvironment, channel: Any, stations: tuple[str, ...] | None = None) -> None:
        known = {s.name for s in environment.world.config.stations}
        chosen = set(stations) if stations is not None else known
        unknown = chosen - known
        if unknown:
            raise ValueError(f"unknown ground station(s) {sorted(unknown)}; configured: {sorted(known)}")
        self._environment = environment
        self._channel = channel
        self._stations = chosen
        self.last_station: str | None = None
        self.blackout = False  # a scenario's link fault: no frame passes even in contact

    def install(self) -> ContactGate:
        self._channel.contact = self
        return self

    def __call__(self) -> bool:
        views = [v for v in self._environment.sync().contacts.values() if v.station in self._stations and v.in_contact]
        if not views or self.blackout:
            self.last_station = None
            return False
        best = min(views, key=lambda v: v.bit_error_rate)
        self.last_station = best.station
        ber = best.bit_error_rate
        # below 1e-12 a frame is never hit; 0 also spares sim.transceiver's log(1 - ber), which
        # divides by zero once 1 - ber rounds to 1
        self._channel.bit_error_rate = min(0.5, ber) if ber >= NEGLIGIBLE_BER else 0.0
        return True


def radio_state_from_transceiver(transceiver: Any, loop_time: Callable[[], float]) -> Callable[[], str]:
    """Power-state feed for the radio: "tx" while the simulated transceiver is sending downlink."""

    def state() -> str:
        return "tx" if transceiver.downlink.busy_until > loop_time() else "rx"

    return state


async def run_world_ticker(
    environment: WorldEnvironment,
    period_s: float = 1.0,
    power_feeds: Mapping[str, Callable[[], str]] | None = None,
) -> None:
    """Step the World every period and copy each device's power state into it (runs forever).

    Sampling the feeds once per period is enough for energy: a radio sending 30 % of the time is
    seen transmitting in about 30 % of the samples.
    """
    if period_s <= 0:
        raise ValueError(f"ticker period must be positive, got {period_s}")
    feeds = dict(power_feeds or {})
    while True:
        for device, feed in feeds.items():
            environment.set_load_state(device, feed())
        environment.sync()
        await asyncio.sleep(period_s)
