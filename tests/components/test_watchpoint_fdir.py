"""Watch-point FDIR in a real Satellite on virtual time: simulated MCP9808 and LIS2MDL parts read by
the real drivers and housekeeping monitors, the mode manager carrying out the responses through the
GPIO outputs, the table changed through the table service's commands and persisted across boots."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from flightsw.app import Satellite, Subsystem
from flightsw.components.hardware import HardwareBuilder
from flightsw.components.housekeeping import add_hardware
from flightsw.components.modes import build_modes
from flightsw.config import ConfigError, loads
from flightsw.core.commands import Completion
from flightsw.testing import ResponseLog
from sim.parts import ConstantEnvironment, NoisyEnvironment

pytestmark = pytest.mark.virtual_time

CONFIG = """
[storage]
data_dir = "{data}"
fsync = false
[watchdog]
backend = "sim"

[[devices]]
name = "payload_power"
kind = "gpio_output"
backend = "sim"
line = 22
initial = true

[[devices]]
name = "adcs_sensor_power"
kind = "gpio_output"
backend = "sim"
line = 17
initial = true

[[devices]]
name = "temp_payload"
kind = "mcp9808"
backend = "sim"
address = 0x1B
location = "payload"

[[devices]]
name = "mag"
kind = "lis2mdl"
backend = "sim"
address = 0x1E
power_switch = "adcs_sensor_power"

[modes]
battery_channel = ""
first_boot_mode = "NOMINAL"
safe_off_outputs = ["payload_power"]

[[modes.watchpoints]]
name = "payload_hot"
channel = "temp_payload.temperature"
yellow_high = 45.0
red_high = 60.0
persistence = 5
response = "MODE"

[[modes.watchpoints]]
name = "mag_frozen"
channel = "mag.mag_x"
check = "FROZEN"
samples = 5
persistence = 1
response = "POWER_CYCLE"
output = "adcs_sensor_power"
isolate_after = 3
{extra}
"""

Script = Callable[[Satellite], Awaitable[Any]]


class Rig:
    """One satellite's disk and simulated parts; each ``run`` is a new boot of the flight software."""

    def __init__(self, tmp_path: Path, extra: str = "") -> None:
        self.data = tmp_path / "data"
        self.extra = extra
        # sensor noise as in flight: a healthy magnetometer never repeats a sample exactly
        self.env = NoisyEnvironment(ConstantEnvironment(), seed=4)
        self.faults: dict[str, dict[str, Any]] = {}  # part faults that survive reboots (the hardware's)

    def _hardware(self, sat: Satellite) -> None:
        hw = HardwareBuilder(sat.config, environment=self.env).build()
        for sensor in hw.sensors:
            for key, val in self.faults.get(sensor.name, {}).items():
                setattr(sensor.sim_part.faults, key, val)
        add_hardware(sat, hw)
        self.hw = hw

    def part(self, name: str) -> Any:
        return next(s.sim_part for s in self.hw.sensors if s.name == name)

    def boot(self) -> Satellite:
        hardware: Subsystem = self._hardware
        return Satellite(loads(CONFIG.format(data=self.data, extra=self.extra)), subsystems=[hardware, build_modes])

    async def run(self, script: Script) -> tuple[Satellite, Any, str]:
        sat = self.boot()
        runner = asyncio.create_task(sat.run())
        await sat.started.wait()
        await asyncio.sleep(0)
        try:
            result = await script(sat)
        finally:
            sat.stop_event.set()
            reason = await runner
        return sat, result, reason


def events(sat: Satellite, name: str) -> list[dict[str, Any]]:
    return [e.args for e in sat.events.recent if e.name == name]


def value(sat: Satellite, name: str) -> Any:
    assert sat.dictionary is not None
    sample = sat.telemetry.latest(sat.dictionary.by_name[name].id)
    return None if sample is None else sample.value


async def command(sat: Satellite, name: str, *args: Any) -> Any:
    assert sat.dictionary is not None
    log = ResponseLog(sat)
    verdict = sat.commands.submit(sat.dictionary.command(name).id, list(args))
    assert verdict.accepted, verdict
    return await log.wait_completion(log.items[0].seq, limit=60.0)


async def test_payload_over_temperature_enters_safe_once_and_switches_the_payload_off(tmp_path: Path) -> None:
    rig = Rig(tmp_path)

    async def overheat(sat: Satellite) -> None:
        await asyncio.sleep(10.0)
        assert sat.state.get("mode") == "NOMINAL"
        rig.part("temp_payload").faults.bias = 50.0  # 20 degC location + 50
        await asyncio.sleep(30.0)
        rig.part("temp_payload").faults.bias = 0.0
        await asyncio.sleep(20.0)

    sat, _, _ = await rig.run(overheat)
    fired = events(sat, "modes.watch_fired")
    assert [(f["name"], f["response"], f["target"]) for f in fired] == [("payload_hot", "MODE", "SAFE")]
    assert fired[0]["level"] == "RED" and "> red_high 60" in fired[0]["detail"]
    assert sat.state.get("mode") == "SAFE" and sat.state.get("modes.safe_cause") == "watchpoint"
    assert rig.hw.gpio.outputs["payload_power"].is_on is False  # SAFE-off output
    assert [e["name"] for e in events(sat, "modes.watch_cleared")] == ["payload_hot"]
    assert value(sat, "modes.watch_firings") == 1


async def test_a_part_that_keeps_freezing_is_power_cycled_then_isolated_across_reboots(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.faults["mag"] = {"frozen": True}  # not cured by a power cycle

    async def watch(sat: Satellite) -> None:
        await asyncio.sleep(60.0)

    sat, _, _ = await rig.run(watch)
    fired = events(sat, "modes.watch_fired")
    assert [f["response"] for f in fired] == ["POWER_CYCLE"] * 3
    assert rig.part("mag").power_cycles == 3  # the GPIO line really switched the part off and on
    (isolated,) = events(sat, "modes.part_isolated")
    assert isolated["target"] == "adcs_sensor_power" and isolated["cures"] == 3
    assert value(sat, "modes.isolated") == "mag_frozen:adcs_sensor_power"
    assert rig.hw.gpio.outputs["adcs_sensor_power"].is_on is True  # the line is left on

    # the next boot remembers the isolation: no more power cycles of the failing part
    sat, _, _ = await rig.run(watch)
    assert events(sat, "modes.watch_fired") == [] and rig.part("mag").power_cycles == 0
    assert value(sat, "modes.watch_isolated") == 1

    async def clear(sat: Satellite) -> None:
        done = await command(sat, "modes.CLEAR_ISOLATION", "mag_frozen")
        assert done.completion == Completion.SUCCESS
        await asyncio.sleep(20.0)

    sat, _, _ = await rig.run(clear)
    assert [e["name"] for e in events(sat, "modes.isolation_cleared")] == ["mag_frozen"]
    assert len(events(sat, "modes.watch_fired")) >= 1  # responses resumed


async def test_the_table_is_changed_by_command_persisted_and_reverted(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    uploads = rig.data / "tables" / "uploads"
    uploads.mkdir(parents=True)
    cool = {"watchpoints": [{"name": "payload_warm", "channel": "temp_payload.temperature", "red_high": 25.0,
                             "persistence": 2, "response": "EVENT"}]}
    (uploads / "cool.json").write_text(json.dumps(cool))
    (uploads / "typo.json").write_text(json.dumps({"watchpoints": [{"name": "x", "channel": "temp_payload.temperature",
                                                                    "red_hgh": 1.0}]}))
    (uploads / "ghost.json").write_text(json.dumps({"watchpoints": [{"name": "x", "channel": "nope.temperature",
                                                                     "red_high": 1.0}]}))

    async def change(sat: Satellite) -> None:
        bad = await command(sat, "tbl.LOAD", "modes.watchpoints", "typo.json")
        assert bad.completion == Completion.FAILURE
        assert "red_hgh" in bad.detail and "\n" not in bad.detail
        ghost = await command(sat, "tbl.LOAD", "modes.watchpoints", "ghost.json")
        assert "no telemetry channel 'nope.temperature'" in ghost.detail
        escape = await command(sat, "tbl.LOAD", "modes.watchpoints", "../state")
        assert escape.completion == Completion.FAILURE and "plain file name" in escape.detail
        assert (await command(sat, "tbl.ACTIVATE", "modes.watchpoints")).completion == Completion.FAILURE
        assert (await command(sat, "tbl.LOAD", "modes.watchpoints", "cool.json")).completion == Completion.SUCCESS
        assert (await command(sat, "tbl.ACTIVATE", "modes.watchpoints")).completion == Completion.SUCCESS
        rig.part("temp_payload").faults.bias = 10.0  # 30 degC: only the new table's limit
        await asyncio.sleep(10.0)

    sat, _, _ = await rig.run(change)
    assert [f["name"] for f in events(sat, "modes.watch_fired")] == ["payload_warm"]
    assert sat.state.get("mode") == "NOMINAL"  # an EVENT response only
    active = rig.data / "tables" / "active" / "modes.watchpoints.json"
    assert json.loads(active.read_text())["watchpoints"][0]["name"] == "payload_warm"

    async def revert(sat: Satellite) -> None:
        assert value(sat, "modes.watch_active") == 1  # the uploaded table survived the reboot
        assert (await command(sat, "tbl.REVERT", "modes.watchpoints")).completion == Completion.SUCCESS
        assert (await command(sat, "tbl.DUMP", "modes.watchpoints", "now.json")).completion == Completion.SUCCESS
        await asyncio.sleep(2.0)

    sat, _, _ = await rig.run(revert)
    assert value(sat, "modes.watch_active") == 2
    dumped = json.loads((rig.data / "tables" / "dumps" / "now.json").read_text())
    assert [w["name"] for w in dumped["watchpoints"]] == ["payload_hot", "mag_frozen"]
    assert [e["table"] for e in events(sat, "tbl.reverted")] == ["modes.watchpoints"]


async def test_a_corrupt_stored_table_is_reported_and_the_default_used(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    active = rig.data / "tables" / "active" / "modes.watchpoints.json"
    active.parent.mkdir(parents=True)
    active.write_bytes(b'{"watchpoints": [{"name": ')  # torn by hand: atomic_write never leaves this
    sat, _, _ = await rig.run(lambda sat: asyncio.sleep(2.0))
    assert value(sat, "modes.watch_active") == 2
    (problem,) = events(sat, "tbl.store_problem")
    assert problem["detail"].startswith("modes.watchpoints: stored active table:")


async def test_reboot_response_stops_with_reset_reason_fdir(tmp_path: Path) -> None:
    rig = Rig(tmp_path, extra="""
[[modes.watchpoints]]
name = "payload_melting"
channel = "temp_payload.temperature"
red_high = 100.0
persistence = 2
response = "REBOOT"
""")

    async def melt(sat: Satellite) -> None:
        rig.part("temp_payload").faults.bias = 90.0
        await asyncio.wait_for(sat.stop_event.wait(), 30.0)

    sat, _, reason = await rig.run(melt)
    assert reason == "FDIR"  # the simulator's runner and systemd start it again
    assert [e["reason"] for e in events(sat, "exec.reboot_requested")] == ["FDIR"]
    assert sat.state.get("shutdown_reason") == "FDIR"
    rig.faults["temp_payload"] = {}
    nxt = rig.boot()
    assert nxt.state.get("reset_reason") == "FDIR"
    nxt.workers.shutdown()


def test_the_default_table_must_name_real_channels(tmp_path: Path) -> None:
    rig = Rig(tmp_path, extra="""
[[modes.watchpoints]]
name = "ghost"
channel = "temp_payload.pressure"
red_high = 1.0
""")
    with pytest.raises(ConfigError, match=r"modes.watchpoints\[2\] \(ghost\): no telemetry channel"):
        rig.boot().finalize()
