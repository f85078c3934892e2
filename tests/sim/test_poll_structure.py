"""Sensor polling is structured, and a power cycle re-configures every part on the switch.

Runs a real Satellite on simulated parts in the virtual-time loop, so "a poll takes 0.35 s" and
"the switch is off for 0.5 s" are exact and nothing depends on how loaded the machine is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from flightsw.app import Satellite
from flightsw.components.housekeeping import POWER_OFF_S, build_hardware
from flightsw.config import loads

CONFIG = """
[storage]
data_dir = "{data}"
fsync = false
[scheduler]
rate_groups = {{ fast = 10.0, slow = 1.0, background = 0.1 }}

[[devices]]
name = "adcs_power"
kind = "gpio_output"
backend = "sim"
line = 17
initial = true

[[devices]]
name = "eps_battery"
kind = "ina219"
backend = "sim"
address = 0x40
rail = "battery"
rate = "fast"

[[devices]]
name = "mag"
kind = "lis2mdl"
backend = "sim"
bus = 2
odr_hz = 50.0
power_switch = "adcs_power"
max_failures = 3
rate = "fast"

[[devices]]
name = "imu"
kind = "lsm6dsox"
backend = "sim"
bus = 2
power_switch = "adcs_power"
rate = "slow"
"""


def make_satellite(tmp_path: Path) -> Satellite:
    return Satellite(loads(CONFIG.format(data=tmp_path / "data")), subsystems=[build_hardware])


def value(sat: Satellite, name: str) -> Any:
    assert sat.dictionary is not None
    sample = sat.telemetry.latest(sat.dictionary.by_name[name].id)
    return None if sample is None else sample.value


def events_named(sat: Satellite, name: str) -> list[Any]:
    return [e for e in sat.events.recent if e.name == name]


def count_calls(driver: Any, method: str = "read", delay_s: float = 0.0) -> list[float]:
    """Wrap a driver (or other) method: record when each call started, optionally make it slow."""
    starts: list[float] = []
    original = getattr(driver, method)
    if not asyncio.iscoroutinefunction(original):
        def plain(*args: Any) -> Any:
            starts.append(asyncio.get_running_loop().time())
            return original(*args)

        setattr(driver, method, plain)
        return starts

    async def wrapped() -> Any:
        starts.append(asyncio.get_running_loop().time())
        if delay_s:
            await asyncio.sleep(delay_s)
        return await original()

    setattr(driver, method, wrapped)
    return starts


async def wait_until(predicate: Any, limit: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.05)


async def flying_with_imu_and_mag_valid(sat: Satellite) -> tuple[asyncio.Task[Any], Any, dict[str, Any], Any]:
    """Start the satellite; once the IMU and magnetometer read valid: the run task, the hardware
    component, the simulated parts by name and the IMU's sensor entry."""
    runner = asyncio.create_task(sat.run())
    await wait_until(lambda: sat.dictionary is not None
                     and value(sat, "imu.valid") is True and value(sat, "mag.valid") is True)
    hw = sat.component("hw")
    parts = {s.name: s.sim_part for s in hw.hardware.sensors}
    imu = next(s for s in hw.hardware.sensors if s.name == "imu")
    return runner, hw, parts, imu


@pytest.mark.virtual_time(start=100.0, debug=True)
async def test_a_slow_part_delays_no_other_sensor_and_its_missed_polls_are_counted(tmp_path: Path) -> None:
    sat = make_satellite(tmp_path)

    runner = asyncio.create_task(sat.run())
    await wait_until(lambda: sat.dictionary is not None)
    hw = sat.component("hw")
    drivers = {s.name: s.driver for s in hw.hardware.sensors}
    battery_reads = count_calls(drivers["eps_battery"])
    mag_reads = count_calls(drivers["mag"], delay_s=0.35)  # 3.5 periods of the fast group
    await asyncio.sleep(4.0)
    # the battery kept its 10 Hz while the magnetometer took 0.35 s per poll
    assert len(battery_reads) >= 39
    gaps = [b - a for a, b in zip(battery_reads, battery_reads[1:], strict=False)]
    assert max(gaps) < 0.1 + 1e-6
    # the magnetometer polls on the next free deadline: every 0.4 s, 3 deadlines skipped each
    assert 9 <= len(mag_reads) <= 11
    assert value(sat, "mag.polls_skipped") >= 3 * (len(mag_reads) - 1)
    assert value(sat, "eps_battery.polls_skipped") == 0
    # every poll lives in the supervisor's task group: stopping the satellite ends them all
    sat.stop_event.set()
    await runner
    polls = [t for t in asyncio.all_tasks() if t.get_name().endswith(".poll")]
    assert polls == []
    reads_at_stop = len(mag_reads)
    await asyncio.sleep(2.0)
    assert len(mag_reads) == reads_at_stop


@pytest.mark.virtual_time(start=100.0, debug=True)
async def test_a_power_cycle_reconfigures_every_part_on_the_switch(tmp_path: Path) -> None:
    """The magnetometer's power cycle also resets the IMU: the IMU must be set up again."""
    sat = make_satellite(tmp_path)

    runner, hw, parts, imu = await flying_with_imu_and_mag_valid(sat)
    imu_reads = count_calls(imu.driver)
    imu_configures = count_calls(imu.driver, "configure")
    parts["mag"].faults.hung = True
    await wait_until(lambda: value(sat, "mag.power_cycles") == 1)
    cycled_at = asyncio.get_running_loop().time()
    await wait_until(lambda: value(sat, "mag.stale") is False)
    assert parts["imu"].power_cycles == 1  # the IMU was reset with it
    await asyncio.sleep(2.0)
    assert len(imu_configures) == 1 and imu_configures[0] >= cycled_at
    # the IMU was re-configured and delivers fresh data, it never reported "no new data"
    assert imu_reads[-1] > cycled_at + 1.0
    assert value(sat, "imu.valid") is True and value(sat, "imu.stale") is False
    assert events_named(sat, "imu.reading_invalid") == []
    # while the switch was off the IMU was not polled, so no failure was counted or reported
    off = [t for t in imu_reads if cycled_at - POWER_OFF_S - 0.06 < t < cycled_at - 0.06]
    assert off == []
    assert events_named(sat, "imu.failed") == []
    assert value(sat, "imu.power_cycles") == 0  # the IMU itself never cycled the switch
    sat.stop_event.set()
    await runner


@pytest.mark.virtual_time(start=100.0, debug=True)
async def test_a_poll_caught_by_a_neighbours_power_cycle_is_not_a_failure(tmp_path: Path) -> None:
    """The IMU is mid-poll when the magnetometer's cycle cuts their shared switch: the IMU did
    nothing wrong, so it is set up again on its next poll and no failure is reported."""
    sat = make_satellite(tmp_path)

    runner, hw, parts, imu = await flying_with_imu_and_mag_valid(sat)
    # each IMU read starts 0.5 s late, so the one in flight meets the switch off (0.5 s)
    imu_reads = count_calls(imu.driver, delay_s=0.5)
    switched_off = count_calls(hw.hardware, "power_cycle_started")
    await wait_until(lambda: len(imu_reads) == 1)  # an IMU poll has just begun
    parts["mag"].faults.hung = True
    await wait_until(lambda: value(sat, "mag.power_cycles") == 1)
    await asyncio.sleep(4.0)
    (off_at,) = switched_off
    caught = [t for t in imu_reads if t < off_at < t + 0.5 < off_at + POWER_OFF_S]
    assert caught, "no IMU poll was in flight when the switch went off"
    assert events_named(sat, "imu.failed") == []
    assert value(sat, "imu.consecutive_failures") == 0
    assert value(sat, "imu.valid") is True and value(sat, "imu.stale") is False
    sat.stop_event.set()
    await runner
