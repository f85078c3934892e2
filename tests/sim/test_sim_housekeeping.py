"""Housekeeping components in a real Satellite on simulated hardware: telemetry, stale marking,
report-once, retry, power cycle through the GPIO switch, the rest keeps running."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from flightsw.app import Satellite
from flightsw.components.housekeeping import build_hardware
from flightsw.config import ConfigError, loads

CONFIG = """
[storage]
data_dir = "{data}"
fsync = false
[scheduler]
rate_groups = {{ fast = 1.0, slow = 10.0, background = 1.0 }}

[[devices]]
name = "sensor_power"
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
limits = {{ bus_voltage = [6.0, 6.6, 8.3, 8.45] }}

[[devices]]
name = "temp_radio"
kind = "mcp9808"
backend = "sim"
address = 0x1A
location = "radio"
resolution = 0

[[devices]]
name = "mag"
kind = "lis2mdl"
backend = "sim"
odr_hz = 50.0
power_switch = "sensor_power"
max_failures = 3

[[devices]]
name = "ghost"
kind = "mcp9808"
backend = "sim"
address = 0x1F
faults = {{ absent = true }}
"""


def make_satellite(tmp_path: Path) -> Satellite:
    config = loads(CONFIG.format(data=tmp_path / "data"))
    return Satellite(config, subsystems=[build_hardware])


def value(sat: Satellite, name: str) -> Any:
    assert sat.dictionary is not None
    sample = sat.telemetry.latest(sat.dictionary.by_name[name].id)
    return None if sample is None else sample.value


def events_named(sat: Satellite, name: str) -> list[Any]:
    return [e for e in sat.events.recent if e.name == name]


async def wait_until(predicate, limit: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.02)


@pytest.mark.virtual_time
async def test_sensors_publish_and_a_hung_part_is_power_cycled(tmp_path) -> None:
    sat = make_satellite(tmp_path)

    runner = asyncio.create_task(sat.run())
    await wait_until(lambda: sat.dictionary is not None
                     and value(sat, "eps_battery.bus_voltage") is not None
                     and value(sat, "mag.mag_z") is not None
                     and value(sat, "temp_radio.temperature") is not None)
    assert value(sat, "eps_battery.bus_voltage") == pytest.approx(7.6, abs=0.05)
    assert value(sat, "temp_radio.temperature") == pytest.approx(28.0, abs=0.6)
    assert value(sat, "mag.mag_z") == pytest.approx(35e-6, abs=2e-6)
    # the absent part: reported exactly once, stale, while the others keep updating
    await wait_until(lambda: (value(sat, "ghost.consecutive_failures") or 0) >= 5)
    assert value(sat, "ghost.stale") is True
    assert len(events_named(sat, "ghost.failed")) == 1

    # the magnetometer latches up: NACKs everything until its supply is cycled
    hw = sat.component("hw")
    part = next(s.sim_part for s in hw.hardware.sensors if s.name == "mag")
    part.faults.hung = True
    await wait_until(lambda: value(sat, "mag.stale") is True)
    await wait_until(lambda: value(sat, "mag.power_cycles") == 1)
    await wait_until(lambda: value(sat, "mag.stale") is False)
    assert part.power_cycles == 1 and not part.faults.hung
    assert len(events_named(sat, "mag.failed")) == 1
    assert len(events_named(sat, "mag.power_cycled")) == 1
    assert len(events_named(sat, "mag.recovered")) == 1
    battery_before = sat.telemetry.latest(sat.dictionary.by_name["eps_battery.bus_voltage"].id)
    await wait_until(lambda: sat.telemetry.latest(
        sat.dictionary.by_name["eps_battery.bus_voltage"].id).stamp != battery_before.stamp)
    assert (value(sat, "mag.i2c_errors") or 0) > 0
    await wait_until(lambda: value(sat, "hw.sensors_failed") == 1)  # only the ghost
    sat.stop_event.set()
    await runner


def test_dictionary_has_units_and_limits(tmp_path, new_satellite) -> None:
    sat = new_satellite(config=loads(CONFIG.format(data=tmp_path / "data")), subsystems=[build_hardware])
    d = sat.finalize()
    item = d.by_name["eps_battery.bus_voltage"]
    assert item.decl.unit == "V"
    assert item.decl.limits.red_low == 6.0 and item.decl.limits.red_high == 8.45
    assert d.by_name["mag.mag_x"].decl.unit == "T"
    assert d.by_name["temp_radio.temperature"].decl.limits.red_high == 85.0
    assert "mag.SELF_TEST" in d.by_name and "mag.POWER_CYCLE" in d.by_name


@pytest.mark.parametrize("entry, message", [
    ('name = "x"\nkind = "ina219"\nshunt_ohm = 0.1', r"devices\[0\]\.shunt_ohm: unknown key for kind ina219"),
    ('name = "x"\nkind = "ina219"\naddress = 0x20', r"devices\[0\]\.address: INA219: address 0x20 is not one of"),
    ('name = "x"\nkind = "ina219"\npower_switch = "nope"', r"devices\[0\]\.power_switch: no gpio_output named 'nope'"),
    ('name = "x"\nkind = "mcp9808"\nlimits = { humidity = [1, 2, 3, 4] }',
     r"devices\[0\]\.limits\.humidity: no such channel"),
    ('name = "x"\nkind = "ads1115"\nfull_scale_v = 3.3', r"devices\[0\]\.full_scale_v: ads1115 full_scale_v must be"),
    ('name = "x"\nkind = "mcp9808"\nfaults = { nack = 1 }', r"devices\[0\]\.faults: unknown part fault"),
])
def test_bad_device_entries_are_named(tmp_path, entry: str, message: str) -> None:
    """Found when the config is loaded, before a satellite is built or a boot counted."""
    with pytest.raises(ConfigError, match=message):
        loads(f'[storage]\ndata_dir = "{tmp_path}"\n[[devices]]\n{entry}\n')
    assert not any(tmp_path.iterdir())
