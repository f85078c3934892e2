"""Builds the configured I2C sensors and GPIO lines from `[[devices]]`, real or simulated per device.

Why here (above hal/ and sim/): choosing a backend is composition, and `hal/` must never import
the simulator. A bench can mix: `backend = "real"` opens /dev/i2c-N through smbus2, `"sim"` puts
a SimI2CBus with register-level parts under the very same I2CBus and driver classes.

Device entries this module understands (others, e.g. the radio, are left to their subsystems):

    [[devices]]                       [[devices]]
    name = "eps_battery"              name = "sensor_power"
    kind = "ina219"                   kind = "gpio_output"
    backend = "sim"                   backend = "sim"
    bus = 1                           line = 17
    address = 0x40                    active_low = false
    shunt_ohms = 0.1                  initial = true
    max_current_a = 3.2
    rail = "battery"        # sim only: which environment rail the part measures
    power_switch = "sensor_power"     # gpio_output that powers the part (power-cycle on failure)
    rate = "slow"                     # rate group that polls it
    limits = { bus_voltage = [6.0, 6.6, 8.3, 8.45] }   # red_low, yellow_low, yellow_high, red_high
    faults = { nack_probability = 0.05 }               # sim only
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, cast

from flightsw.config import ConfigError, DeviceConfig, MissionConfig
from hal.drivers import DRIVERS
from hal.drivers.base import ConfigError as DriverConfigError
from hal.drivers.base import I2CDriver
from hal.gpio import GpioBackend, GpioBank, GpioError, InputLine, OutputLine
from hal.i2c import I2CBus, open_linux_bus, pinctrl_scl_pulses

GPIO_KINDS = ("gpio_output", "gpio_input")
#: keys every I2C sensor entry may carry besides its driver's and sim part's own options
COMMON_SENSOR_KEYS = {"bus", "address", "rate", "power_switch", "limits", "faults",
                      "max_failures", "base_id"}
RATE_GROUPS = ("fast", "slow", "background")


@dataclass
class SensorDevice:
    """One configured I2C sensor: its driver (the flight code) and housekeeping settings."""

    name: str
    kind: str
    backend: str
    driver: I2CDriver
    rate: str = "slow"
    power_switch: str | None = None
    limits: dict[str, list[float]] = field(default_factory=dict)
    max_failures: int = 3
    base_id: int | None = None
    sim_part: Any = None  # sim.parts.SimPart when backend == "sim"

    @property
    def where(self) -> str:
        return f"{self.driver.bus.name}@{self.driver.address:#04x}"


@dataclass
class HardwareSet:
    """Everything built from the config: buses, GPIO lines, sensors, and the sim side if any."""

    buses: dict[str, I2CBus] = field(default_factory=dict)
    gpio: GpioBank = field(default_factory=GpioBank)
    sensors: list[SensorDevice] = field(default_factory=list)
    sim_buses: dict[int, Any] = field(default_factory=dict)  # bus number -> SimI2CBus
    sim_gpio: Any = None  # SimGpioBackend
    environment: Any = None  # sim.parts.EnvironmentSource
    sim_clock: Any = None  # sim.parts.base.LoopClock
    _real_gpio: GpioBackend | None = None
    # Power cycles per switch: cycling a switch resets every part it feeds, not only the one
    # whose failure caused it, so each part's monitor compares this with the count it last
    # configured its part at. Switches being cycled right now: their parts are unpowered.
    power_cycles: dict[str, int] = field(default_factory=dict)
    cycling: dict[str, int] = field(default_factory=dict)  # switch -> cycles in progress

    def power_cycle_started(self, switch: str) -> None:
        """The switch goes off now: every part on it loses its configuration."""
        self.cycling[switch] = self.cycling.get(switch, 0) + 1
        self.power_cycles[switch] = self.power_cycles.get(switch, 0) + 1

    def power_cycle_ended(self, switch: str) -> None:
        left = self.cycling.get(switch, 0) - 1
        if left > 0:
            self.cycling[switch] = left
        else:
            self.cycling.pop(switch, None)

    def bind_loop(self, loop_time: Any) -> None:
        """Called from the loop before first use: simulated parts follow the loop's (possibly
        virtual) clock, and GPIO lines are requested (not at build time, so building a flight
        config for its dictionary on a laptop touches no hardware)."""
        if self.sim_clock is not None:
            self.sim_clock.bind(loop_time)
        self.gpio.open()

    async def close(self) -> None:
        for bus in self.buses.values():
            await bus.close()
        if self._real_gpio is not None and self.gpio.opened:
            self._real_gpio.close()


def _params(fn: Any, skip: set[str]) -> set[str]:
    return {p for p in inspect.signature(fn).parameters if p not in skip
            and inspect.signature(fn).parameters[p].kind is not inspect.Parameter.VAR_KEYWORD}


def _int_option(dev: DeviceConfig, key: str, default: int | None = None) -> int:
    value = dev.options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"devices.{dev.name}.{key}: expected an integer, got {value!r}")
    return value


class HardwareBuilder:
    def __init__(self, config: MissionConfig, environment: Any = None, seed: int = 0) -> None:
        self.config = config
        self.hw = HardwareSet(environment=environment)
        self.seed = seed
        self.settings = config.section("housekeeping")

    # -- backends ------------------------------------------------------------------------------
    def _sim_modules(self) -> Any:
        import sim.gpio
        import sim.i2c_bus
        import sim.parts
        import sim.parts.base

        if self.hw.environment is None:
            self.hw.environment = sim.parts.NoisyEnvironment(sim.parts.ConstantEnvironment(),
                                                             seed=self.seed)
        if self.hw.sim_clock is None:
            self.hw.sim_clock = sim.parts.base.LoopClock()
        return sim

    def _gpio_backend(self, backend: str) -> GpioBackend:
        if backend == "sim":
            sim = self._sim_modules()
            if self.hw.sim_gpio is None:
                self.hw.sim_gpio = sim.gpio.SimGpioBackend()
            return self.hw.sim_gpio  # type: ignore[no-any-return]
        if self.hw._real_gpio is None:
            from hal.gpio import GpiodBackend

            self.hw._real_gpio = GpiodBackend(str(self.settings.get("gpio_chip", "/dev/gpiochip0")))
        return self.hw._real_gpio

    def _bus(self, number: int, backend: str) -> I2CBus:
        timeout = float(self.settings.get("i2c_timeout_s", 0.5))
        retries = int(self.settings.get("i2c_retries", 3))
        if backend == "sim":
            sim = self._sim_modules()
            name = f"sim-i2c-{number}"
            if name not in self.hw.buses:
                sim_bus = sim.i2c_bus.SimI2CBus(number, seed=self.seed + number)
                self.hw.sim_buses[number] = sim_bus
                self.hw.buses[name] = I2CBus(name, lambda: sim_bus, timeout=timeout,
                                             retries=retries, recovery_hook=sim_bus.pulse_scl)
            return self.hw.buses[name]
        name = f"i2c-{number}"
        if name not in self.hw.buses:
            scl = self.settings.get("scl_recovery_gpio", {}).get(str(number))
            hook = pinctrl_scl_pulses(int(scl)) if scl is not None else None
            self.hw.buses[name] = I2CBus(name, open_linux_bus(number), timeout=timeout,
                                         retries=retries, recovery_hook=hook)
        return self.hw.buses[name]

    # -- devices ---------------------------------------------------------------------------------
    def add_gpio(self, dev: DeviceConfig) -> None:
        allowed = {"line", "active_low", "initial", "pull"}
        unknown = set(dev.options) - allowed
        if unknown:
            raise ConfigError(f"devices.{dev.name}: unknown key(s) {sorted(unknown)} for {dev.kind}")
        line = _int_option(dev, "line")
        backend = self._gpio_backend(dev.backend)
        others: list[OutputLine | InputLine] = [*self.hw.gpio.outputs.values(),
                                                *self.hw.gpio.inputs.values()]
        for other in others:
            if other.backend is backend and other.line == line:
                raise ConfigError(f"devices.{dev.name}.line: line {line} already used by "
                                  f"{other.name}")
        try:
            if dev.kind == "gpio_output":
                self.hw.gpio.add(OutputLine(dev.name, backend, line,
                                            bool(dev.options.get("active_low", False)),
                                            bool(dev.options.get("initial", False))))
            else:
                self.hw.gpio.add(InputLine(dev.name, backend, line,
                                           bool(dev.options.get("active_low", False)),
                                           dev.options.get("pull", "none")))
        except GpioError as exc:
            raise ConfigError(f"devices.{dev.name}: {exc}") from exc

    def add_sensor(self, dev: DeviceConfig) -> SensorDevice:
        driver_cls = DRIVERS[dev.kind]
        driver_keys = _params(driver_cls.__init__, {"self", "bus", "address"})
        # Sim-only keys (rail, location...) are accepted on a real device too, so a bench flips
        # a device between real and simulated by changing one word.
        from sim.parts import SIM_PARTS

        sim_keys = _params(SIM_PARTS[dev.kind].__init__, {"self", "address", "env", "clock"})
        sim_cls = None
        if dev.backend == "sim":
            sim_cls = self._sim_modules().parts.SIM_PARTS[dev.kind]
        unknown = set(dev.options) - driver_keys - sim_keys - COMMON_SENSOR_KEYS
        if unknown:
            raise ConfigError(
                f"devices.{dev.name}: unknown key(s) {sorted(unknown)} for kind {dev.kind} "
                f"(driver options: {sorted(driver_keys)}; sim options: {sorted(sim_keys)})")
        rate = dev.options.get("rate", "slow")
        if rate not in self.config.scheduler.rate_groups:
            raise ConfigError(f"devices.{dev.name}.rate: no rate group {rate!r}")
        number = _int_option(dev, "bus", 1)
        address = _int_option(dev, "address", driver_cls.regmap.addresses[0])
        bus = self._bus(number, dev.backend)
        try:
            driver = driver_cls(bus, address,
                                **{k: v for k, v in dev.options.items() if k in driver_keys})
        except (DriverConfigError, TypeError) as exc:
            raise ConfigError(f"devices.{dev.name}: {exc}") from exc
        part = None
        if sim_cls is not None:
            from sim.faults import PartFaults

            try:
                faults = PartFaults.from_options(dict(dev.options.get("faults", {})))
                part = sim_cls(address, self.hw.environment, clock=self.hw.sim_clock,
                               faults=faults,
                               **{k: v for k, v in dev.options.items() if k in sim_keys})
                self.hw.sim_buses[number].attach(part)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"devices.{dev.name}: {exc}") from exc
        limits = dev.options.get("limits", {})
        for channel, bounds in limits.items():
            if channel not in driver.units:
                raise ConfigError(f"devices.{dev.name}.limits.{channel}: no such channel "
                                  f"(have {sorted(driver.units)})")
            if not isinstance(bounds, list) or len(bounds) != 4:
                raise ConfigError(f"devices.{dev.name}.limits.{channel}: expected "
                                  "[red_low, yellow_low, yellow_high, red_high]")
        sensor = SensorDevice(dev.name, dev.kind, dev.backend, driver, rate,
                              dev.options.get("power_switch"), dict(limits),
                              _int_option(dev, "max_failures", 3),
                              dev.options.get("base_id"), part)
        self.hw.sensors.append(sensor)
        return sensor

    def build(self) -> HardwareSet:
        devices = self.config.devices
        for dev in devices:  # lines first: sensors refer to their power switches
            if dev.kind in GPIO_KINDS:
                self.add_gpio(dev)
        for dev in devices:
            if dev.kind in DRIVERS:
                sensor = self.add_sensor(dev)
                if sensor.power_switch is not None:
                    if sensor.power_switch not in self.hw.gpio.outputs:
                        raise ConfigError(f"devices.{dev.name}.power_switch: no gpio_output named "
                                          f"{sensor.power_switch!r}")
                    self._wire_sim_power(sensor)
        return self.hw

    def _wire_sim_power(self, sensor: SensorDevice) -> None:
        """In simulation the switch really feeds the part: off removes it, on resets it."""
        out = self.hw.gpio.output(sensor.power_switch or "")
        if sensor.sim_part is None or self.hw.sim_gpio is None:
            return
        if out.backend is not self.hw.sim_gpio:
            return  # a real switch cannot power a simulated part
        part = sensor.sim_part
        cast(Any, self.hw.sim_gpio).on_change(out.line, lambda level: part.power(level != out.active_low))


def build_hardware_set(config: MissionConfig, environment: Any = None, seed: int = 0) -> HardwareSet:
    """Buses, GPIO lines and sensors for every `[[devices]]` entry this layer knows."""
    return HardwareBuilder(config, environment, seed).build()
