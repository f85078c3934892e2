"""Where simulated sensors get their physical inputs.

Why a protocol: today the values are constant or noisy; the orbit simulator (later issue) will
implement the same methods from an SGP4 orbit, a field model, eclipse and thermal/power models,
and every simulated part picks that up without change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sim.faults import FaultDice

Vector3 = tuple[float, float, float]


class EnvironmentSource(Protocol):
    def magnetic_field(self) -> Vector3:
        """Magnetic flux density in the body frame, tesla."""

    def angular_rate(self) -> Vector3:
        """Body rates, rad/s."""

    def acceleration(self) -> Vector3:
        """Specific force in the body frame, m/s^2 (about zero in orbit)."""

    def temperature(self, location: str) -> float:
        """Temperature of a named location (board, battery, radio, ...), degC."""

    def rail(self, name: str) -> tuple[float, float]:
        """(bus voltage V, current A) of a named power rail (battery, 3v3, 5v, ...)."""

    def light(self, channel: str) -> float:
        """Voltage at an ADC input for a named photodiode/analog channel, V."""


@dataclass
class ConstantEnvironment:
    """Fixed values, editable by tests; unknown names fall back to the `default` entries."""

    mag_t: Vector3 = (20e-6, -5e-6, 35e-6)
    rates_rad_s: Vector3 = (0.01, -0.02, 0.005)
    accel_m_s2: Vector3 = (0.0, 0.0, 0.0)
    temperatures_c: dict[str, float] = field(
        default_factory=lambda: {"default": 20.0, "battery": 15.0, "radio": 28.0, "board": 22.0})
    rails: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {"default": (3.3, 0.1), "battery": (7.6, 0.45),
                                 "3v3": (3.3, 0.21), "5v": (5.02, 0.35)})
    lights_v: dict[str, float] = field(
        default_factory=lambda: {"default": 0.5, "css_px": 2.1, "css_mx": 0.02,
                                 "css_py": 0.9, "css_my": 0.05})

    def magnetic_field(self) -> Vector3:
        return self.mag_t

    def angular_rate(self) -> Vector3:
        return self.rates_rad_s

    def acceleration(self) -> Vector3:
        return self.accel_m_s2

    def temperature(self, location: str) -> float:
        return self.temperatures_c.get(location, self.temperatures_c["default"])

    def rail(self, name: str) -> tuple[float, float]:
        return self.rails.get(name, self.rails["default"])

    def light(self, channel: str) -> float:
        return self.lights_v.get(channel, self.lights_v["default"])


@dataclass
class NoisyEnvironment:
    """Another source plus white Gaussian noise, so frozen-sensor detection has something
    to detect and the ground sees plausible-looking traces."""

    base: EnvironmentSource
    seed: int | None = None
    mag_sigma_t: float = 0.2e-6
    rate_sigma_rad_s: float = 0.001
    accel_sigma_m_s2: float = 0.01
    temp_sigma_c: float = 0.05
    volt_sigma_v: float = 0.005
    current_sigma_a: float = 0.002
    light_sigma_v: float = 0.005
    _dice: FaultDice = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._dice = FaultDice(self.seed)

    def _vec(self, v: Vector3, sigma: float) -> Vector3:
        return (v[0] + self._dice.gauss(sigma), v[1] + self._dice.gauss(sigma),
                v[2] + self._dice.gauss(sigma))

    def magnetic_field(self) -> Vector3:
        return self._vec(self.base.magnetic_field(), self.mag_sigma_t)

    def angular_rate(self) -> Vector3:
        return self._vec(self.base.angular_rate(), self.rate_sigma_rad_s)

    def acceleration(self) -> Vector3:
        return self._vec(self.base.acceleration(), self.accel_sigma_m_s2)

    def temperature(self, location: str) -> float:
        return self.base.temperature(location) + self._dice.gauss(self.temp_sigma_c)

    def rail(self, name: str) -> tuple[float, float]:
        volts, amps = self.base.rail(name)
        return volts + self._dice.gauss(self.volt_sigma_v), amps + self._dice.gauss(
            self.current_sigma_a)

    def light(self, channel: str) -> float:
        return max(0.0, self.base.light(channel) + self._dice.gauss(self.light_sigma_v))
