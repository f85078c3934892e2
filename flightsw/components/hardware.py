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

from dataclasses import dataclass, field
from typing import Any, cast

from flightsw.config import (
    ADCS_KIND,
    GPIO_KINDS,
    ConfigError,
    DeviceConfig,
    MissionConfig,
    signature_keys,
)
from hal.drivers import DRIVERS
from hal.drivers.adcs import AdcsUnit
from hal.drivers.base import I2CDriver
from hal.gpio import GpioBackend, GpioBank, GpioError, InputLine, OutputLine
from hal.i2c import I2CBus, open_linux_bus, pinctrl_scl_pulses

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
    burn_wires: dict[str, Any] = field(default_factory=dict)  # output name -> sim.burn_wire.SimBurnWire
    environment: Any = None  # sim.parts.EnvironmentSource
    sim_clock: Any = None  # sim.parts.base.LoopClock
    adcs: AdcsUnit | None = None  # the attitude control unit (``kind = "adcs"``), on a shared bus
    adcs_device: DeviceConfig | None = None
    adcs_part: Any = None  # sim.parts.adcs.SimAdcs when its backend is "sim"
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


class HardwareBuilder:
    def __init__(self, config: MissionConfig, environment: Any = None, seed: int = 0,
                 scene: Any = None) -> None:
        self.config = config
        self.hw = HardwareSet(environment=environment)
        self.seed = seed
        self.scene = scene  # the orbit simulator's camera scene: where a simulated ADCS is
        self.settings = config.housekeeping

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

            self.hw._real_gpio = GpiodBackend(self.settings.gpio_chip)
        return self.hw._real_gpio

    def _bus(self, number: int, backend: str) -> I2CBus:
        timeout = self.settings.i2c_timeout_s
        retries = self.settings.i2c_retries
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
            scl = self.settings.scl_recovery_gpio.get(str(number))
            hook = pinctrl_scl_pulses(scl) if scl is not None else None
            self.hw.buses[name] = I2CBus(name, open_linux_bus(number), timeout=timeout,
                                         retries=retries, recovery_hook=hook)
        return self.hw.buses[name]

    # -- devices ---------------------------------------------------------------------------------
    def add_gpio(self, dev: DeviceConfig) -> None:
        opts = dev.settings()  # validated with the config (flightsw.config)
        backend = self._gpio_backend(dev.backend)
        try:
            if dev.kind == "gpio_output":
                self.hw.gpio.add(OutputLine(dev.name, backend, opts.line, opts.active_low, opts.initial))
            else:
                self.hw.gpio.add(InputLine(dev.name, backend, opts.line, opts.active_low, opts.pull))
        except GpioError as exc:
            raise ConfigError(f"devices.{dev.name}: {exc}") from exc

    def add_sensor(self, dev: DeviceConfig) -> SensorDevice:
        """The driver (and simulated part) of one sensor entry, its options validated at load."""
        driver_cls = DRIVERS[dev.kind]
        opts = dev.settings()
        driver_keys = signature_keys(driver_cls.__init__, {"self", "bus", "address"})
        address = driver_cls.regmap.addresses[0] if opts.address is None else opts.address
        bus = self._bus(opts.bus, dev.backend)
        driver = driver_cls(bus, address, **{k: v for k, v in dev.options.items() if k in driver_keys})
        part = None
        if dev.backend == "sim":
            sim = self._sim_modules()
            from sim.faults import PartFaults

            sim_cls = sim.parts.SIM_PARTS[dev.kind]
            sim_keys = signature_keys(sim_cls.__init__, {"self", "address", "env", "clock", "faults"})
            try:  # a model's own value rules (e.g. which rail) need the simulated environment
                part = sim_cls(address, self.hw.environment, clock=self.hw.sim_clock,
                               faults=PartFaults.from_options(dict(opts.faults)),
                               **{k: v for k, v in dev.options.items() if k in sim_keys})
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"devices.{dev.name}: {exc}") from exc
            self.hw.sim_buses[opts.bus].attach(part)
        sensor = SensorDevice(dev.name, dev.kind, dev.backend, driver, opts.rate, opts.power_switch,
                              dict(opts.limits), opts.max_failures, opts.base_id, part)
        self.hw.sensors.append(sensor)
        return sensor

    def add_adcs(self, dev: DeviceConfig) -> None:
        """The ADCS driver on its bus (shared with the sensors there) and, in simulation, its part."""
        opts = dev.settings()
        bus = self._bus(opts.bus, dev.backend)
        self.hw.adcs = AdcsUnit(bus, opts.address)
        self.hw.adcs_device = dev
        if dev.backend == "sim":
            self._sim_modules()
            from sim.parts.adcs import SimAdcs

            part = SimAdcs(opts.address, self.hw.environment, clock=self.hw.sim_clock, scene=self.scene,
                           slew_rate_deg_s=opts.slew_rate_deg_s, settle_s=opts.settle_s,
                           settle_error_deg=opts.settle_error_deg, jammed=opts.jammed)
            self.hw.sim_buses[opts.bus].attach(part)
            self.hw.adcs_part = part

    def add_burn_wires(self) -> None:
        """Simulated burn wires on sim outputs (``burn_wire`` option); their current is seen on
        the battery rail by the sensors built after them."""
        for dev in self.config.devices:
            if dev.kind != "gpio_output" or dev.backend != "sim" or dev.settings().burn_wire is None:
                continue
            opts = dev.settings().burn_wire
            self._sim_modules()  # the environment and clock the wire's models use
            from sim.burn_wire import SimBurnWire

            switch = self.hw.gpio.input(opts.switch)
            if switch.backend is not self.hw.sim_gpio:
                raise ConfigError(f"devices.{dev.name}.burn_wire.switch: {opts.switch!r} must be a simulated input")
            self.hw.burn_wires[dev.name] = SimBurnWire(
                cast(Any, self.hw.sim_gpio), self.hw.gpio.output(dev.name), switch, clock=self.hw.sim_clock,
                release_probability=opts.release_probability, fail_first=opts.fail_first,
                release_after_s=opts.release_after_s, current_a=opts.current_a, seed=self.seed + opts.seed)
        if self.hw.burn_wires:
            from sim.burn_wire import BurnLoadEnvironment

            self.hw.environment = BurnLoadEnvironment(self.hw.environment, list(self.hw.burn_wires.values()))

    def build(self) -> HardwareSet:
        devices = self.config.devices
        for dev in devices:  # lines first: sensors refer to their power switches
            if dev.kind in GPIO_KINDS:
                self.add_gpio(dev)
        self.add_burn_wires()
        for dev in devices:
            if dev.kind in DRIVERS:
                sensor = self.add_sensor(dev)
                if sensor.power_switch is not None:  # an output, checked at load
                    self._wire_sim_power(sensor)
            elif dev.kind == ADCS_KIND:  # at most one, checked at load
                self.add_adcs(dev)
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


def build_hardware_set(config: MissionConfig, environment: Any = None, seed: int = 0,
                       scene: Any = None) -> HardwareSet:
    """Buses, GPIO lines, sensors and the ADCS for every `[[devices]]` entry this layer knows."""
    return HardwareBuilder(config, environment, seed, scene).build()
