"""The mode manager in a real Satellite on virtual time: the battery is a simulated INA219 read by
the real driver and housekeeping monitor; the voltage is scripted through the part's environment."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flightsw.app import Satellite, Subsystem
from flightsw.components.hardware import HardwareBuilder
from flightsw.components.housekeeping import add_hardware
from flightsw.components.modes import ModeManager, build_modes, parse_settings
from flightsw.config import ConfigError, load, loads
from flightsw.core.commands import Completion, Reason
from flightsw.imaging.subsystem import build_imaging
from flightsw.testing import ResponseLog
from sim.parts import ConstantEnvironment

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.virtual_time  # async tests: minutes of battery behaviour in milliseconds

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
name = "eps_battery"
kind = "ina219"
backend = "sim"
address = 0x40
shunt_ohms = 0.1
max_current_a = 3.2
rail = "battery"

[[devices]]
name = "camera"
kind = "camera"
backend = "sim"
seed = 3

[modes]
dwell_s = 30
recover_dwell_s = 60
boot_loop_window_s = 60
detumble_timeout_s = 120
safe_off_outputs = ["payload_power"]
{modes}
"""

Script = Callable[[Satellite], Awaitable[Any]]


class Rig:
    """One satellite's data directory and battery; each ``boot`` is a new process on the same disk."""

    def __init__(self, tmp_path: Path, modes: str = "", imaging: bool = False) -> None:
        self.data = tmp_path / "data"
        self.modes = modes
        self.imaging = imaging
        self.env = ConstantEnvironment()
        self.volts(7.9)

    def volts(self, value: float) -> None:
        self.env.rails["battery"] = (value, 0.3)

    def _hardware(self, sat: Satellite) -> None:
        hw = HardwareBuilder(sat.config, environment=self.env).build()
        add_hardware(sat, hw)

    def boot(self) -> Satellite:
        config = loads(CONFIG.format(data=self.data, modes=self.modes))
        hardware: Subsystem = self._hardware
        subsystems = [hardware, *([build_imaging] if self.imaging else []), build_modes]
        return Satellite(config, subsystems=subsystems)

    async def run(self, script: Script, hard_reset: bool = False,
                  prepare: Callable[[Satellite], None] | None = None,
                  sat: Satellite | None = None) -> tuple[Satellite, Any]:
        """Boot (or run the given satellite), run ``script`` on the test's loop (virtual time), then
        stop cleanly or reset like a watchdog bite; the satellite is stopped even if ``script`` fails."""
        if sat is None:
            sat = self.boot()
        if prepare is not None:
            prepare(sat)
        runner = asyncio.create_task(sat.run())
        await sat.started.wait()
        await asyncio.sleep(0)
        try:
            return sat, await script(sat)
        finally:
            sat.watchdog_reset = hard_reset
            sat.stop_event.set()
            await runner


def modes_of(sat: Satellite) -> ModeManager:
    comp = sat.component("modes")
    assert isinstance(comp, ModeManager)
    return comp


def hardware(sat: Satellite) -> Any:
    """The HardwareSet of the satellite's hardware manager (GPIO lines, simulated parts)."""
    return getattr(sat.component("hw"), "hardware")  # noqa: B009 - Component declares no such attribute


def value(sat: Satellite, name: str) -> Any:
    assert sat.dictionary is not None
    sample = sat.telemetry.latest(sat.dictionary.by_name[name].id)
    return None if sample is None else sample.value


def changes(sat: Satellite) -> list[tuple[str, str, str]]:
    return [(e.args["old"], e.args["new"], e.args["reason"]) for e in sat.events.recent
            if e.name == "modes.mode_changed"]


async def command(sat: Satellite, name: str, *args: Any) -> tuple[Any, Any]:
    """Submit; returns (verdict, completion or None when rejected)."""
    assert sat.dictionary is not None
    log = ResponseLog(sat)
    verdict = sat.commands.submit(sat.dictionary.command(name).id, list(args))
    if not verdict.accepted:
        return verdict, None
    done = await log.wait_completion(log.items[0].seq, limit=60.0)
    return verdict, done


async def until_battery_seen(sat: Satellite) -> None:
    for _ in range(20):
        if value(sat, "modes.battery_usable"):
            return
        await asyncio.sleep(1.0)
    raise AssertionError("FDIR never saw a usable battery reading")


async def to_nominal(sat: Satellite) -> None:
    await until_battery_seen(sat)
    verdict, done = await command(sat, "modes.SET_MODE", "nominal")
    assert verdict.accepted and done.completion == Completion.SUCCESS, (verdict, done)
    assert sat.state.get("mode") == "NOMINAL"


async def test_mode_persists_across_restart_and_an_unexpected_reset_boots_safe(tmp_path: Path) -> None:
    rig = Rig(tmp_path, modes="auto_recover = true")
    sat, _ = await rig.run(to_nominal)
    assert changes(sat) == [("SAFE", "NOMINAL", "commanded")]

    async def nominal_after_restart(sat: Satellite) -> None:
        await asyncio.sleep(5.0)
        assert sat.state.get("mode") == "NOMINAL"
        assert value(sat, "modes.mode") == "NOMINAL"

    sat, _ = await rig.run(nominal_after_restart, hard_reset=True)  # the watchdog bites: no clean stop
    assert changes(sat) == []
    assert [e.args["reason"] for e in sat.events.recent if e.name == "modes.boot_mode"] == ["restored after COMMANDED"]

    async def after_crash(sat: Satellite) -> None:
        await asyncio.sleep(200.0)  # well above recover_dwell_s with a full battery

    sat, _ = await rig.run(after_crash)
    assert sat.state.get("reset_reason") == "UNEXPECTED"
    assert changes(sat) == [("NOMINAL", "SAFE", "UNEXPECTED reset")]
    # auto_recover is on, but a reset SAFE is the operators' to clear
    assert sat.state.get("mode") == "SAFE" and sat.state.get("modes.safe_cause") == "reset"
    assert value(sat, "modes.safe_entries") == 1


async def test_first_boot_mode_from_config_then_detumble_times_out_to_safe(tmp_path: Path) -> None:
    rig = Rig(tmp_path, modes='first_boot_mode = "DETUMBLE"')
    sat, _ = await rig.run(lambda sat: asyncio.sleep(5.0))
    assert changes(sat) == [("SAFE", "DETUMBLE", "first boot")]
    sat, _ = await rig.run(lambda sat: asyncio.sleep(130.0))  # restored, with a fresh timeout
    assert changes(sat)[0][:2] == ("DETUMBLE", "SAFE")  # no earlier mode: SAFE after deployment
    assert changes(sat)[0][2].startswith("detumble timeout after 12")


async def test_boot_loop_trips_safe_latched_until_commanded(tmp_path: Path) -> None:
    rig = Rig(tmp_path, modes="auto_recover = true")
    await rig.run(to_nominal)
    for _ in range(3):
        rig.boot()  # each process dies during start-up: the boot is counted, nothing else happens

    async def looped(sat: Satellite) -> None:
        await until_battery_seen(sat)
        assert sat.state.get("mode") == "SAFE"
        assert sat.state.get("modes.safe_cause") == "boot_loop"
        assert value(sat, "modes.unproven_boots") == 4
        await asyncio.sleep(120.0)  # past boot_loop_window_s: this boot proved itself
        assert value(sat, "modes.unproven_boots") == 0
        assert sat.state.get("mode") == "SAFE"  # latched: no automatic recovery
        verdict, done = await command(sat, "modes.SET_MODE", "NOMINAL")
        assert done.completion == Completion.SUCCESS

    sat, _ = await rig.run(looped)
    assert [e.args["boots"] for e in sat.events.recent if e.name == "modes.boot_loop"] == [4]
    assert changes(sat)[0] == ("NOMINAL", "SAFE", "boot loop: 4 boots without 60 s up")
    assert changes(sat)[-1] == ("SAFE", "NOMINAL", "commanded")
    assert sat.state.get("modes.last_good_boot") == sat.state.boot_count

    # fewer unexpected boots than the threshold: SAFE for the reset, not a boot loop
    rig.boot()
    sat, _ = await rig.run(lambda sat: asyncio.sleep(3.0))
    assert sat.state.get("modes.safe_cause") == "reset"
    assert not [e for e in sat.events.recent if e.name == "modes.boot_loop"]


async def test_sag_shorter_than_dwell_changes_nothing_longer_enters_safe_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)

    async def script(sat: Satellite) -> None:
        await to_nominal(sat)
        assert hardware(sat).gpio.output("payload_power").is_on
        rig.volts(7.0)
        await asyncio.sleep(20.0)  # below safe_enter_v for less than dwell_s
        assert value(sat, "modes.low_for_s") > 10.0
        rig.volts(7.4)
        await asyncio.sleep(5.0)
        assert sat.state.get("mode") == "NOMINAL" and value(sat, "modes.low_for_s") == 0.0
        rig.volts(7.0)
        await asyncio.sleep(45.0)
        assert sat.state.get("mode") == "SAFE"
        await asyncio.sleep(100.0)  # staying low: no repeated entries

    sat, _ = await rig.run(script)
    safe = [c for c in changes(sat) if c[1] == "SAFE"]
    assert len(safe) == 1 and safe[0][0] == "NOMINAL"
    assert safe[0][2].startswith("battery 7.00 V < 7.20 V for 3")
    assert value(sat, "modes.safe_entries") == 1
    assert value(sat, "modes.safe_cause") == "battery"
    assert value(sat, "modes.battery_v") == pytest.approx(7.0, abs=0.01)
    assert not hardware(sat).gpio.output("payload_power").is_on  # non-essential load off


async def test_voltage_oscillating_between_thresholds_never_flaps(tmp_path: Path) -> None:
    rig = Rig(tmp_path, modes="auto_recover = true")

    async def script(sat: Satellite) -> None:
        await to_nominal(sat)
        # eclipse/sun-like swings that each stay short of the dwell, or inside the hysteresis band
        for _ in range(12):
            rig.volts(7.1)
            await asyncio.sleep(25.0)
            rig.volts(7.5)
            await asyncio.sleep(5.0)
        assert changes(sat) == [("SAFE", "NOMINAL", "commanded")]
        rig.volts(7.1)
        await asyncio.sleep(40.0)
        assert sat.state.get("mode") == "SAFE"
        # recovering battery: above exit for less than recover_dwell_s, then back in the band
        for _ in range(12):
            rig.volts(7.7)
            await asyncio.sleep(50.0)
            rig.volts(7.5)
            await asyncio.sleep(5.0)
        assert sat.state.get("mode") == "SAFE"

    sat, _ = await rig.run(script)
    assert [c[:2] for c in changes(sat)] == [("SAFE", "NOMINAL"), ("NOMINAL", "SAFE")]


@pytest.mark.parametrize("auto_recover", [True, False])
async def test_auto_recover_only_when_enabled(tmp_path: Path, auto_recover: bool) -> None:
    rig = Rig(tmp_path, modes=f"auto_recover = {str(auto_recover).lower()}")

    async def script(sat: Satellite) -> None:
        await to_nominal(sat)
        rig.volts(6.9)
        await asyncio.sleep(40.0)
        assert sat.state.get("mode") == "SAFE"
        rig.volts(7.8)
        await asyncio.sleep(90.0)

    sat, _ = await rig.run(script)
    if auto_recover:
        assert changes(sat)[-1][:2] == ("SAFE", "NOMINAL")
        assert changes(sat)[-1][2].startswith("battery 7.80 V > 7.60 V for 6")
        assert hardware(sat).gpio.output("payload_power").is_on  # back to its initial level
    else:
        assert sat.state.get("mode") == "SAFE"
        assert value(sat, "modes.auto_recover") is False


async def test_set_mode_refusals_name_the_reason_and_stale_readings_change_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    heard: list[tuple[str, str, str]] = []

    async def script(sat: Satellite) -> None:
        await until_battery_seen(sat)
        rig.volts(7.4)
        await asyncio.sleep(3.0)
        verdict, _ = await command(sat, "modes.SET_MODE", "NOMINAL")
        assert verdict.reason == Reason.NOT_ALLOWED
        assert verdict.detail == "battery 7.40 V below safe_exit_v 7.60 V"
        verdict, _ = await command(sat, "modes.SET_MODE", "PAYLOAD")
        assert verdict.reason == Reason.NOT_ALLOWED and "unknown mode 'PAYLOAD'" in verdict.detail
        # DETUMBLE needs only safe_enter_v (it is how a tumbling satellite gets its power back)
        verdict, done = await command(sat, "modes.SET_MODE", "detumble")
        assert done.completion == Completion.SUCCESS
        await asyncio.sleep(130.0)  # detumble_timeout_s: back to where it came from
        assert sat.state.get("mode") == "SAFE"

        # the battery sensor dies while the voltage sags: FDIR must not act on stale data
        verdict, done = await command(sat, "modes.FORCE_MODE", "NOMINAL")
        assert done.completion == Completion.SUCCESS
        part = next(s.sim_part for s in hardware(sat).sensors if s.name == "eps_battery")
        rig.volts(6.5)
        await asyncio.sleep(20.0)  # low, but for less than dwell_s
        part.faults.absent = True
        await asyncio.sleep(120.0)
        assert sat.state.get("mode") == "NOMINAL"
        assert value(sat, "modes.battery_usable") is False
        verdict, _ = await command(sat, "modes.SET_MODE", "NOMINAL")
        assert verdict.detail.startswith("no usable battery reading")
        part.faults.absent = False  # it comes back: the low voltage counts again, from the start
        await asyncio.sleep(15.0)
        assert sat.state.get("mode") == "NOMINAL"
        await asyncio.sleep(30.0)
        assert sat.state.get("mode") == "SAFE"

    def listen(sat: Satellite) -> None:  # as the simulator does, before the satellite runs
        modes_of(sat).add_listener(lambda old, new, why: heard.append((old, new, why)))

    sat, _ = await rig.run(script, prepare=listen)
    assert heard[0] == ("BOOT", "SAFE", "first boot")
    assert heard[1:3] == [("SAFE", "DETUMBLE", "commanded"), ("DETUMBLE", "SAFE", heard[2][2])]
    assert heard[2][2].startswith("detumble timeout after 12")
    assert heard[3] == ("SAFE", "NOMINAL", "forced by command")
    assert heard[4][:2] == ("NOMINAL", "SAFE") and heard[4][2].startswith("battery 6.50 V")
    assert [e for e in sat.events.recent if e.name == "modes.battery_unusable"]


@pytest.fixture
def imaging_rig(tmp_path: Path) -> Iterator[tuple[Rig, Satellite]]:
    """The rig with the imaging payload, booted before the loop runs (the payload's imports and
    start-up would hold the loop); its workers end with the test."""
    rig = Rig(tmp_path, imaging=True)
    sat = rig.boot()
    yield rig, sat
    sat.workers.shutdown()


async def test_imaging_capture_refused_in_safe_allowed_in_nominal(imaging_rig: tuple[Rig, Satellite]) -> None:
    rig, booted = imaging_rig

    async def script(sat: Satellite) -> None:
        await until_battery_seen(sat)
        verdict, _ = await command(sat, "imaging.CAPTURE_NOW")
        assert verdict.reason == Reason.NOT_ALLOWED
        assert verdict.detail == "payload not allowed: mode SAFE"
        await to_nominal(sat)
        verdict, done = await command(sat, "imaging.CAPTURE_NOW")
        assert verdict.accepted and done.completion == Completion.SUCCESS, done

    sat, _ = await rig.run(script, sat=booted)
    assert value(sat, "imaging.captures") == 1


@pytest.mark.parametrize("modes_toml, message", [
    ("safe_enter_v = 7.6\nsafe_exit_v = 7.2", "modes.safe_enter_v: 7.6 V must be below safe_exit_v"),
    ("safe_enter_V = 7.0", "modes.safe_enter_V: unknown key"),
    ("max_reading_age_s = \"10\"", "modes.max_reading_age_s: expected a number, got '10'"),
    ("max_reading_age_s = 0", "modes.max_reading_age_s: 0 outside [1, 600]"),
    ("boot_loop_count = 2.5", "modes.boot_loop_count: expected an integer"),
    ("auto_recover = 1", "modes.auto_recover: expected true or false"),
    ("safe_exit_v = 12.0", "modes.safe_exit_v: 12.0 V outside plausible_v [5.0, 9.0]"),
    ("plausible_v = [9.0, 5.0]", "modes.plausible_v: expected [low, high]"),
    ("first_boot_mode = \"PAYLOAD\"", "modes.first_boot_mode: expected one of SAFE, NOMINAL, DETUMBLE"),
    ("battery_channel = \"eps_battery\"", "modes.battery_channel: expected \"component.channel\""),
], ids=lambda v: v if len(v) < 24 else None)
def test_bad_config_is_a_clear_error(tmp_path: Path, modes_toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Rig(tmp_path, modes=modes_toml).boot()
    assert message in str(err.value)


def test_bad_outputs_and_channel_are_clear_errors(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    text = CONFIG.format(data=rig.data, modes="").replace('safe_off_outputs = ["payload_power"]',
                                                          'safe_off_outputs = ["radio_power"]')
    with pytest.raises(ConfigError, match=r"modes.safe_off_outputs\[0\]: no gpio_output device named 'radio_power'"):
        parse_settings(loads(text))
    powered = text.replace('safe_off_outputs = ["radio_power"]', 'safe_off_outputs = ["payload_power"]').replace(
        'rail = "battery"', 'rail = "battery"\npower_switch = "payload_power"')
    with pytest.raises(ConfigError, match=r"'payload_power' powers \['eps_battery'\]"):
        parse_settings(loads(powered))
    sat = Rig(tmp_path, modes='battery_channel = "eps_main.bus_voltage"').boot()
    with pytest.raises(ConfigError, match="modes.battery_channel: no telemetry channel named 'eps_main.bus_voltage'"):
        sat.finalize()


@pytest.mark.parametrize("name", ["sim", "flight", "bench"])
def test_deploy_configs_have_valid_modes_sections(name: str) -> None:
    config = load(ROOT / "deploy" / f"{name}.toml")
    assert config.modes.safe_off_outputs == ["payload_power"]
    settings = parse_settings(config)
    assert settings.safe_enter_v < settings.safe_exit_v
    assert settings.battery_channel_name == "eps_battery.bus_voltage"


@pytest.fixture
def built_before_the_loop(tmp_path: Path) -> tuple[Rig, Satellite]:
    """A satellite built and set up before the test's loop exists, as the scenario runner does."""
    rig = Rig(tmp_path)
    sat = rig.boot()
    sat.finalize()
    return rig, sat


async def test_time_in_mode_counts_on_the_loop_clock_for_a_satellite_built_before_its_loop(
        built_before_the_loop: tuple[Rig, Satellite]) -> None:
    rig, sat = built_before_the_loop

    async def script(sat: Satellite) -> float:
        await asyncio.sleep(20.5)
        return float(value(sat, "modes.time_in_mode"))

    _, seconds = await rig.run(script, sat=sat)
    assert 19.0 <= seconds <= 20.5


async def test_a_software_error_stop_boots_safe_and_is_not_a_good_boot(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.run(to_nominal)

    def crash_after_a_while(sat: Satellite) -> None:
        async def broken() -> None:
            await asyncio.sleep(3.0)
            raise RuntimeError("framework bug")

        sat.supervisor.run = broken  # type: ignore[method-assign]

    with pytest.raises(RuntimeError, match="framework bug"):
        await rig.run(lambda sat: asyncio.sleep(10.0), prepare=crash_after_a_while)
    async def last_good_boot(sat: Satellite) -> Any:
        await asyncio.sleep(2.0)
        return sat.state.get("modes.last_good_boot")

    sat, good = await rig.run(last_good_boot)
    assert sat.state.get("reset_reason") == "SOFTWARE_ERROR"
    assert changes(sat) == [("NOMINAL", "SAFE", "SOFTWARE_ERROR reset")]
    assert good == 1  # the crashed boot 2 did not count as good: only boot 1's commanded stop did


async def test_a_pack_that_sags_under_load_latches_automatic_recovery_off(tmp_path: Path) -> None:
    """Recovers at rest, sags in NOMINAL: after max_auto_recoveries it stays SAFE until commanded."""
    rig = Rig(tmp_path, modes="auto_recover = true\nmax_auto_recoveries = 2\nrecovery_window_s = 3600")

    async def script(sat: Satellite) -> list[str]:
        await to_nominal(sat)
        for _ in range(3):
            rig.volts(6.9)  # under load
            await asyncio.sleep(40.0)
            rig.volts(7.8)  # at rest in SAFE
            await asyncio.sleep(90.0)
        return [new for _, new, _ in changes(sat)]

    sat, modes = await rig.run(script)
    assert modes == ["NOMINAL", "SAFE", "NOMINAL", "SAFE", "NOMINAL", "SAFE"]  # third recovery refused
    assert sat.state.get("mode") == "SAFE"
    assert [e.args["recoveries"] for e in sat.events.recent if e.name == "modes.auto_recover_latched"] == [2]
    assert value(sat, "modes.auto_recover") is False


async def test_flying_blind_on_power_is_itself_a_reason_for_safe(tmp_path: Path) -> None:
    rig = Rig(tmp_path, modes="safe_without_battery_s = 120")

    async def script(sat: Satellite) -> tuple[str, float]:
        await to_nominal(sat)
        hardware(sat).sensors[0].sim_part.faults.absent = True  # the battery monitor is gone
        await asyncio.sleep(100.0)
        mode_at_100 = str(sat.state.get("mode"))
        await asyncio.sleep(40.0)
        return mode_at_100, 0.0

    sat, (mode_at_100, _) = await rig.run(script)
    assert mode_at_100 == "NOMINAL"
    (change,) = [c for c in changes(sat) if c[1] == "SAFE"]
    assert change[2].startswith("no usable battery reading for 12")
    assert sat.state.get("modes.safe_cause") == "battery"
