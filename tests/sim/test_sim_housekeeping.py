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


POLL_CONFIG = """
[storage]
data_dir = "{data}"
fsync = false
[scheduler]
rate_groups = {{ fast = 10.0, slow = 1.0, background = 0.1 }}
[modes]
first_boot_mode = "NOMINAL"
safe_enter_v = 7.0
safe_exit_v = 7.4  # the simulated battery reads 7.6 V
poll_s = {{ SAFE = {{ temp_radio = 5.0 }} }}

[[devices]]
name = "eps_battery"
kind = "ina219"
backend = "sim"
address = 0x40
rail = "battery"

[[devices]]
name = "temp_radio"
kind = "mcp9808"
backend = "sim"
address = 0x1A
location = "radio"
"""


@pytest.mark.virtual_time
async def test_safe_polls_the_sensors_poll_s_names_at_their_slower_period(tmp_path: Path) -> None:
    """``[modes] poll_s``: in SAFE the thermometer polls every 5 s instead of every second, the
    battery monitor (not named) keeps its rate group's 1 s; back in NOMINAL the 1 s period
    applies from the mode change on, not after the slow period's pending deadline."""
    from flightsw.components.modes import build_modes
    from flightsw.testing import ResponseLog

    config = loads(POLL_CONFIG.format(data=tmp_path / "data"))
    sat = Satellite(config, subsystems=[build_hardware, build_modes])
    loop = asyncio.get_running_loop()
    polls: dict[str, list[float]] = {"eps_battery": [], "temp_radio": []}
    for name, times in polls.items():
        monitor = sat.component(name)
        original = monitor.poll

        async def counted(original: Any = original, times: list[float] = times) -> None:
            times.append(loop.time())
            await original()

        monitor.poll = counted  # type: ignore[method-assign]
    runner = asyncio.create_task(sat.run())
    try:
        await sat.started.wait()
        responses = ResponseLog(sat)
        assert sat.dictionary is not None
        set_mode = sat.dictionary.command("modes.SET_MODE").id

        async def mode(name: str, seq: int) -> float:
            sat.commands.submit(set_mode, [name], seq=seq)
            await responses.wait_completion(seq)
            return loop.time()

        await asyncio.sleep(5.0)
        safe_at = await mode("SAFE", 1)
        await asyncio.sleep(22.5)  # off the 5 s grid: NOMINAL comes 2.5 s after a SAFE poll
        nominal_at = await mode("NOMINAL", 2)
        await asyncio.sleep(5.0)
    finally:
        sat.stop_event.set()
        await runner

    def count(name: str, since: float, until: float) -> int:
        return sum(1 for t in polls[name] if since < t <= until)

    assert count("temp_radio", safe_at + 1.0, nominal_at) in (4, 5)  # every 5 s over 21.5 s
    assert count("eps_battery", safe_at + 1.0, nominal_at) in (21, 22)  # unchanged: every second
    # NOMINAL again: the thermometer polls at once (its last poll is > 1 s old), then every second
    first = min(t for t in polls["temp_radio"] if t >= nominal_at)
    assert first - nominal_at < 0.1
    assert count("temp_radio", nominal_at - 0.1, nominal_at + 4.9) == 5
    assert sat.component("temp_radio").skipped == 0  # a mode change is not a missed deadline


def test_poll_s_names_only_modes_and_configured_sensors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="poll_s.PAYLOAD"):
        loads(POLL_CONFIG.format(data=tmp_path).replace("SAFE = {", "PAYLOAD = {"))
    config = loads(POLL_CONFIG.format(data=tmp_path).replace("temp_radio = 5.0", "temp_payload = 5.0"))
    with pytest.raises(ConfigError, match="no sensor named temp_payload"):
        Satellite(config, subsystems=[build_hardware])
