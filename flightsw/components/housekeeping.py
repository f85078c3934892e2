"""Housekeeping: polls each configured sensor on its rate group and publishes its readings.

Failure handling, per sensor (the rest of the satellite keeps running):
- a failed transaction or probe marks the sensor stale and is reported once (one event, not one
  per poll); the part is re-probed and re-configured on every following poll (retry);
- after `max_failures` consecutive failures the part is power-cycled through its GPIO switch
  (which clears latched-up parts), then retried again; recovery is reported once as well;
- a power cycle resets every part on that switch: all their monitors re-probe and re-configure
  their parts afterwards, and none of them polls (or counts a failure) while the switch is off.

Each sensor polls in a supervised service of its own (``<name>.poll``) on the absolute deadlines
of its rate group's period (or of its period in the current mode, ``[modes] poll_s``: SAFE polls
what it does not need often more slowly, to save CPU and bus energy), so a slow or hung part never delays the other sensors or the rate
group's members, every poll task lives in the supervisor's TaskGroup (cancelled with it, restarted
with back-off if it crashes), and deadlines missed while a poll was still running are counted as
skipped polls (``polls_skipped``) instead of piling up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from flightsw.app import Subsystem
from flightsw.components.adcs import add_adcs
from flightsw.components.hardware import HardwareSet, SensorDevice, build_hardware_set
from flightsw.config import ConfigError
from flightsw.core.component import Channel, CommandFailure, Component, Event, Limits, command
from flightsw.core.events import Severity
from flightsw.core.ports import CAMERA_SCENE, INPUTS, MODES, OUTPUTS, ModeSource
from flightsw.core.types import BOOL, F32, U8, U16, U32
from hal.drivers.base import DeviceNotFound

if TYPE_CHECKING:
    from flightsw.app import Satellite

log = logging.getLogger("flightsw.housekeeping")

HW_BASE_ID = 0x0100
POWER_OFF_S = 0.5  # long enough for the part's supply capacitors to drain
POWER_ON_SETTLE_S = 0.05  # boot time of the slowest part (LSM6DSOX ~10 ms) with margin
#: default limits for channels whose physics is the same whatever the mission
DEFAULT_LIMITS = {
    "temperature": Limits(red_low=-40.0, yellow_low=-20.0, yellow_high=60.0, red_high=85.0),
}


def _resolve(future: asyncio.Future[bool]) -> None:
    """A poll loop's deadline came (False: not woken by a mode change)."""
    if not future.done():
        future.set_result(False)


class SensorMonitor(Component):
    """Common part of every sensor component; subclasses get one channel per reading."""

    # Status and health are written after every poll (9 a second) and change rarely: on change.
    valid = Channel(BOOL, doc="Last reading was flagged valid by the part", update="on_change")
    stale = Channel(BOOL, doc="Readings are not being updated (part failing)", update="on_change")
    i2c_errors = Channel(U32, doc="Failed I2C attempts to this part, retried ones included",
                         update="on_change")
    i2c_retries = Channel(U32, doc="I2C retries to this part", update="on_change")
    consecutive_failures = Channel(U16, doc="Polls failed in a row", update="on_change")
    polls_skipped = Channel(U32, doc="Poll deadlines missed because the previous poll still ran",
                            update="on_change")
    power_cycles = Channel(U16, doc="Power cycles through the part's switch", update="on_change")
    failed = Event(Severity.WARNING, "{device} at {where} failed: {reason}", throttle=(3, 60.0))
    recovered = Event(Severity.INFO, "{device} recovered after {failures} failed polls",
                      throttle=(3, 60.0))
    power_cycled = Event(Severity.WARNING, "{device} power-cycled after {failures} failures",
                         throttle=(3, 60.0))
    reading_invalid = Event(Severity.WARNING, "{device} reading invalid: {reason}",
                            throttle=(2, 300.0))
    self_test_done = Event(Severity.INFO, "{device} self-test {result}: {detail}", throttle=None)

    def __init__(self, device: SensorDevice, hardware: HardwareSet, base_id: int) -> None:
        super().__init__(device.name, base_id)
        self.device = device
        self.hardware = hardware
        self.needs_init = True
        self.reported = False
        self.failures = 0
        self.cycles = 0
        self.last_reading: Any = None
        self.skipped = 0
        self.configured_at_cycle = 0  # power cycles of our switch when the part was configured
        self.mode_periods: dict[str, float] = {}  # mode -> poll period there ([modes] poll_s)
        self.modes: ModeSource | None = None  # set by the hardware manager (MODES port)
        self._wakeup: asyncio.Future[bool] | None = None

    def setup(self) -> None:
        self._reading_channels = {name: self.channel(name) for name in self.device.driver.units}
        group = self.ctx.rate_group(self.device.rate)  # fails here, naming the group, if unknown
        self.ctx.supervisor.add_service(f"{self.name}.poll", lambda: self.poll_loop(group.period),
                                        critical=False)

    def poll_period(self, default: float) -> float:
        """This sensor's poll period in the current mode (the rate group's unless ``poll_s`` says)."""
        if not self.mode_periods or self.modes is None:
            return default
        return self.mode_periods.get(self.modes.current, default)

    def period_changed(self) -> None:
        """The mode changed: a poll loop waiting for its next deadline recomputes it now."""
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(True)

    async def _sleep_until(self, deadline: float) -> bool:
        """Sleep until ``deadline``; True if ``period_changed`` woke it earlier."""
        loop = asyncio.get_running_loop()
        self._wakeup = future = loop.create_future()
        handle = loop.call_at(deadline, _resolve, future)
        try:
            return await future
        finally:
            handle.cancel()
            self._wakeup = None

    async def poll_loop(self, period: float) -> None:
        """Poll on deadlines ``start + k * period``; a poll that overruns skips deadlines. When the
        mode changes the period, the deadlines start again from the last poll at the new period."""
        loop = asyncio.get_running_loop()
        self.polls_skipped.set(min(self.skipped, 0xFFFFFFFF))
        start = loop.time()
        k = 0
        current = self.poll_period(period)
        while True:
            wanted = self.poll_period(period)
            if wanted != current:
                if k:  # from the last poll on, at the new period (a deadline already past: poll now)
                    last = start + (k - 1) * current
                    start, k = (last, 1) if last + wanted > loop.time() else (loop.time(), 0)
                current = wanted
            deadline = start + k * current
            if deadline > loop.time() and await self._sleep_until(deadline):
                continue  # woken by a mode change: recompute the deadline
            await self.poll()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Python 3.11's wait_for (inside the I2C layer) returns the result instead of
                # raising when the cancellation meets an already finished transaction: honour it.
                raise asyncio.CancelledError
            k += 1
            late = loop.time() - (start + k * current)
            if late > 0:  # the next deadline(s) passed while this poll ran
                missed = int(late // current) + 1
                self.skipped += missed
                self.polls_skipped.set(min(self.skipped, 0xFFFFFFFF))
                k += missed

    async def poll(self) -> None:
        loop = asyncio.get_running_loop()
        self.hardware.bind_loop(loop.time)
        driver = self.device.driver
        switch = self.device.power_switch
        cycles_before = 0
        if switch is not None:
            if switch in self.hardware.cycling:
                self.needs_init = True  # unpowered right now: nothing to read, nothing failed
                return
            cycles_before = self.hardware.power_cycles.get(switch, 0)
            if cycles_before != self.configured_at_cycle:
                self.needs_init = True  # a power cycle (ours or a neighbour's) reset the part
        try:
            if self.needs_init:
                await driver.probe()
                await driver.configure()
                self.needs_init = False
                self.configured_at_cycle = cycles_before
            reading = await driver.read()
        except (OSError, DeviceNotFound, TimeoutError) as exc:
            if switch is not None and self.hardware.power_cycles.get(switch, 0) != cycles_before:
                # a neighbour's power cycle cut the supply under this poll: not the part's fault
                self.needs_init = True
            else:
                await self._on_failure(str(exc))
        else:
            self._on_reading(reading)
        self._publish_health()

    def _on_reading(self, reading: Any) -> None:
        if self.failures and self.reported:
            self.recovered.emit(device=self.name, failures=self.failures)
        self.failures = 0
        self.reported = False
        self.last_reading = reading
        self.valid.set(reading.valid)
        self.stale.set(False)
        if not reading.valid:
            self.reading_invalid.emit(device=self.name, reason=reading.reason[:80])
        channels = self._reading_channels
        for name, value in reading.values.items():
            channels[name].set(float(value))

    async def _on_failure(self, reason: str) -> None:
        self.failures += 1
        self.needs_init = True  # re-probe and re-configure on the next poll
        self.valid.set(False)
        self.stale.set(True)
        if not self.reported:
            self.reported = True
            self.failed.emit(device=self.name, where=self.device.where, reason=reason[:100])
        if self.device.power_switch and self.failures % self.device.max_failures == 0:
            await self.power_cycle_part()
            self.power_cycled.emit(device=self.name, failures=self.failures)

    async def power_cycle_part(self) -> None:
        """Cycle the part's switch; every part on that switch is reset (and re-configured)."""
        name = self.device.power_switch or ""
        switch = self.hardware.gpio.output(name)
        self.hardware.power_cycle_started(name)
        try:
            switch.set(False)
            await asyncio.sleep(POWER_OFF_S)
            switch.set(True)
            await asyncio.sleep(POWER_ON_SETTLE_S)
        finally:
            switch.set(True)  # never leave the parts unpowered, even when cancelled
            self.hardware.power_cycle_ended(name)
        self.cycles += 1
        self.needs_init = True

    def _publish_health(self) -> None:
        stats = self.device.driver.bus.stats(self.device.driver.address)
        self.i2c_errors.set(stats.errors & 0xFFFFFFFF)
        self.i2c_retries.set(stats.retries & 0xFFFFFFFF)
        self.consecutive_failures.set(min(self.failures, 0xFFFF))
        self.power_cycles.set(min(self.cycles, 0xFFFF))

    @command(doc="Run the part's built-in self-test (readings pause meanwhile).", timeout=30.0)
    async def self_test(self) -> None:
        result = await self.device.driver.self_test()
        self.self_test_done.emit(device=self.name, result="passed" if result.passed else "FAILED",
                                 detail=result.detail[:120])
        if not result.passed:
            raise CommandFailure(f"self-test failed: {result.detail}")

    @command(doc="Power-cycle the part through its GPIO switch.", timeout=10.0)
    async def power_cycle(self) -> None:
        if not self.device.power_switch:
            raise CommandFailure(f"{self.name} has no power switch configured")
        await self.power_cycle_part()


def monitor_class(device: SensorDevice) -> type[SensorMonitor]:
    """A SensorMonitor subclass with one channel per value the driver reads, with limits."""
    attrs: dict[str, Any] = {"__doc__": f"Telemetry of the {device.kind} {device.name}."}
    for value_name, unit in device.driver.units.items():
        if value_name in SensorMonitor.declarations:
            raise ValueError(f"{device.name}: reading name {value_name!r} clashes with a built-in")
        bounds = device.limits.get(value_name)
        limits = Limits(*bounds) if bounds else DEFAULT_LIMITS.get(value_name)
        attrs[value_name] = Channel(F32, unit=unit, limits=limits,
                                    doc=f"{device.kind} {value_name}")
    return type(f"{device.kind.upper()}Monitor", (SensorMonitor,), attrs)


class HardwareManager(Component):
    """Owns the buses and lines; reports how many parts are healthy and how often buses recovered."""

    sensors_ok = Channel(U8, doc="Sensors whose last poll succeeded", update="on_change")
    sensors_failed = Channel(U8, doc="Sensors currently failing (stale)", update="on_change")
    bus_recoveries = Channel(U32, doc="I2C bus recoveries (stuck bus) on all buses", update="on_change")

    def __init__(self, hardware: HardwareSet, monitors: list[SensorMonitor],
                 name: str = "hw", base_id: int = HW_BASE_ID) -> None:
        super().__init__(name, base_id)
        self.hardware = hardware
        self.monitors = monitors

    def use_modes(self, modes: ModeSource) -> None:
        """Consumer of the MODES port: the monitors' poll periods follow the mode (``poll_s``)."""
        for mon in self.monitors:
            mon.modes = modes
        modes.add_listener(self._mode_changed)

    def _mode_changed(self, old: str, new: str, reason: str) -> None:
        for mon in self.monitors:
            if mon.mode_periods:
                mon.period_changed()

    def setup(self) -> None:
        self.ctx.rate_group("slow").add(f"{self.name}.summary", self.summarise)
        self.ctx.rate_group("background").add(f"{self.name}.log", self.log_readings)

    def log_readings(self) -> None:
        """One DEBUG line per sensor (`flightsw -v sim` shows live sensor telemetry); readings are
        telemetry, not log lines: at INFO they would flood the journal every 10 s."""
        if not log.isEnabledFor(logging.DEBUG):
            return
        for mon in self.monitors:
            reading = mon.last_reading
            if reading is None and not mon.failures:
                log.debug("%-14s %-8s waiting for the first reading", mon.name, mon.device.kind)
                continue
            if mon.failures or reading is None:
                log.debug("%-14s %-8s STALE (%d failed polls)", mon.name, mon.device.kind,
                         mon.failures)
                continue
            units = mon.device.driver.units
            values = " ".join(f"{k}={v:.4g}{units.get(k, '')}" for k, v in reading.values.items())
            log.debug("%-14s %-8s %s%s", mon.name, mon.device.kind, values,
                     "" if reading.valid else f" INVALID ({reading.reason})")

    def summarise(self) -> None:
        failing = sum(1 for m in self.monitors if m.failures or m.needs_init)
        self.sensors_failed.set(failing)
        self.sensors_ok.set(len(self.monitors) - failing)
        self.bus_recoveries.set(sum(b.bus_stats.recoveries for b in self.hardware.buses.values()))

    async def shutdown(self) -> None:
        # The monitors' poll services were cancelled with the supervisor's TaskGroup before
        # components shut down, so no transaction is in flight when the buses close.
        await self.hardware.close()


def add_hardware(sat: Satellite, hardware: HardwareSet) -> HardwareManager:
    """The sensor monitors and the manager; the GPIO lines are offered on the OUTPUTS and INPUTS ports."""
    monitors: list[SensorMonitor] = []
    poll_s = sat.config.modes.poll_s
    names = {device.name for device in hardware.sensors}
    for mode, periods in poll_s.items():
        unknown = sorted(set(periods) - names)
        if unknown:
            raise ConfigError(f"modes.poll_s.{mode}: no sensor named {', '.join(unknown)}")
    for index, device in enumerate(hardware.sensors):
        base_id = device.base_id if device.base_id is not None else HW_BASE_ID + 1 + index
        monitor = sat.add(monitor_class(device)(device, hardware, base_id))
        monitor.mode_periods = {mode: periods[device.name] for mode, periods in poll_s.items()
                                if device.name in periods}
        monitors.append(monitor)
    manager = sat.add(HardwareManager(hardware, monitors))
    if poll_s:
        # not required: a satellite flown without a mode manager has no mode, so the base periods apply
        sat.ports.connect(MODES, manager.use_modes, required=False, by=manager.name)
    sat.ports.provide(OUTPUTS, hardware.gpio, by=manager.name)
    sat.ports.provide(INPUTS, hardware.gpio, by=manager.name)
    return manager


def build_hardware(sat: Satellite) -> None:
    """Subsystem builder (the ``hardware`` entry point): sensors, lines and the ADCS from `[[devices]]`."""
    hardware = build_hardware_set(sat.config, scene=sat.ports.get(CAMERA_SCENE))
    if hardware.sensors or hardware.gpio.outputs or hardware.gpio.inputs or hardware.adcs:
        add_hardware(sat, hardware)
    add_adcs(sat, hardware)


SUBSYSTEM = Subsystem("hardware", build_hardware, order=20)
