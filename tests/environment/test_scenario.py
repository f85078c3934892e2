"""Scenario files: the shipped ones load against the mission config; mistakes are named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flightsw.config import load as load_mission
from sim.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    builtin_scenario,
    load_scenario,
    loads_scenario,
    parse_duration,
)

REPO = Path(__file__).resolve().parents[2]
MINIMAL = """
[scenario]
name = "t"
start = 2026-06-01T00:00:00Z
duration = "6h"
"""


def mission_devices() -> list[str]:
    return [d.name for d in load_mission(REPO / "deploy" / "sim.toml").devices]


DAYS = ["nominal_day", "magnetometer_failure_day", "frame_loss_day", "low_battery_day", "store_and_forward_day"]
SHIPPED = [*DAYS, "first_boot", "hot_payload", "frozen_sensor", "deaf_radio", "loss_of_contact", "imaging_targets"]


@pytest.mark.parametrize("name", DAYS)
def test_shipped_scenarios_load_against_the_sim_mission(name: str) -> None:
    scenario = load_scenario(builtin_scenario(name), mission_devices())
    assert scenario.duration_s == 86400.0
    assert scenario.expectations
    # Every shipped day expects a beacon in every usable pass (peak elevation >= 5 deg).
    assert any(e.metric == "usable_contacts_without_beacon" and e.max == 0 for e in scenario.expectations)


def test_shipped_set_is_complete() -> None:
    assert {p.stem for p in SCENARIO_DIR.glob("*.toml")} == set(SHIPPED)
    with pytest.raises(ScenarioError, match="shipped"):
        builtin_scenario("lunar_day")


def test_first_boot_starts_stowed_with_a_scripted_failed_burn() -> None:
    scenario = load_scenario(builtin_scenario("first_boot"), mission_devices())
    assert scenario.launch is not None
    assert scenario.launch.silence_s == 2700.0 and scenario.launch.failed_burns == {"burn_primary": 1}
    assert {e.metric for e in scenario.expectations} >= {"frames_before_silence_end", "antenna_release_attempt",
                                                         "reboots_during_silence", "reboots_after_silence_silent"}


@pytest.mark.parametrize(("launch", "message"), [
    ("stowed = false", "launch.stowed: expected true"),
    ('silence = "2d"', "launch.silence: 172800 s is outside [0, 86400]"),
    ("failed_burns = { burn_x = 1 }", "launch.failed_burns.burn_x: no device 'burn_x' in the mission config"),
    ("failed_burns = { burn_primary = -1 }", "launch.failed_burns.burn_primary: -1 is outside [0, 100]"),
    ("color = 1", "launch: unknown key(s) ['color']"),
])
def test_launch_mistakes_are_named(launch: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        loads_scenario(MINIMAL + "[launch]\n" + launch + "\n", "bad.toml", mission_devices())


def test_fault_timeline_sets_and_clears_in_order() -> None:
    scenario = load_scenario(builtin_scenario("magnetometer_failure_day"), mission_devices())
    timeline = [(t, f.fault, v) for t, f, v in scenario.timeline()]
    assert timeline == [(10800.0, "frozen", True), (32400.0, "frozen", False), (32400.0, "hung", True)]
    loss = load_scenario(builtin_scenario("frame_loss_day"))
    assert [(t, f.target, f.fault, v) for t, f, v in loss.timeline()] == [(0.0, "link", "frame_loss", 0.3)]


def test_scenario_builds_its_world() -> None:
    scenario = loads_scenario(MINIMAL + "seed = 4\n[battery]\ninitial_soc = 0.55\n[orbit]\naltitude_km = 600\n")
    world = scenario.build_world()
    assert world.start == scenario.start_epoch
    assert world.power.battery.soc == 0.55
    assert world.seed == 4
    assert world.config.orbit.semi_major_axis_km == pytest.approx(6978.1, abs=1.0)
    assert [s.name for s in world.config.stations] == ["almaty"]


def test_expectations_pass_fail_and_missing() -> None:
    scenario = loads_scenario(MINIMAL + """
[[expect]]
metric = "contacts"
min = 4
max = 7
[[expect]]
metric = "battery_soc_min"
min = 0.5
[[expect]]
metric = "beacons_received"
min = 1
""")
    results = scenario.evaluate({"contacts": 5.0, "battery_soc_min": 0.3})
    assert [r.passed for r in results] == [True, False, False]
    assert "below the minimum 0.5" in results[1].reason
    assert results[2].reason == "not measured by this run"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("colour = 1\n", "unknown key"),
        ("[battery]\ninitial_soc = 1.5\n", r"battery.initial_soc: 1.5 is outside"),
        ("[[faults]]\nat = '1h'\ntarget = 'mag'\nfault = 'melted'\n", "unknown device fault 'melted'"),
        ("[[faults]]\nat = '1h'\ntarget = 'magnet'\nfault = 'frozen'\n", "no device 'magnet'"),
        ("[[faults]]\nat = '1h'\ntarget = 'mag'\nfault = 'nack_probability'\nvalue = 2.0\n", "probability"),
        ("[[faults]]\nat = '2h'\nuntil = '1h'\ntarget = 'link'\nfault = 'frame_loss'\nvalue = 0.1\n", "not after"),
        ("[[faults]]\nat = '9h'\ntarget = 'link'\nfault = 'frame_loss'\nvalue = 0.1\n", "after the end"),
        ("[[faults]]\nat = '1h'\ntarget = 'link'\nfault = 'jamming'\n", "unknown link fault"),
        ("[[faults]]\nat = '1h'\ntarget = 'mag'\nfault = 'frozen'\nvalue = 0.5\n", "takes true/false"),
        ("[[expect]]\nmetric = 'happiness'\nmin = 1\n", "unknown metric 'happiness'"),
        ("[[expect]]\nmetric = 'contacts_svalbard'\nmin = 1\n", "no station 'svalbard'"),
        ("[[expect]]\nmetric = 'contacts'\nmin = 5\nmax = 4\n", "min 5 is above max 4"),
        ("[[expect]]\nmetric = 'contacts'\n", "give min, max or both"),
        ("[[stations]]\nname = 'x'\nlat_deg = 95\nlon_deg = 0\n", r"stations\[0\].lat_deg"),
        ("[orbit]\ntle = ['1 bad', '2 bad']\n", "orbit: TLE line 1"),
    ],
)
def test_mistakes_are_named(extra: str, message: str) -> None:
    text = MINIMAL + extra if not extra.startswith("colour") else MINIMAL.replace("[scenario]", "[scenario]\n" + extra)
    with pytest.raises(ScenarioError, match=message):
        loads_scenario(text, "bad.toml", mission_devices())


def test_head_mistakes_are_named() -> None:
    with pytest.raises(ScenarioError, match="scenario.start"):
        loads_scenario(MINIMAL.replace("2026-06-01T00:00:00Z", "2026-06-01T00:00:00"))
    with pytest.raises(ScenarioError, match="outside"):
        loads_scenario(MINIMAL.replace('"6h"', '"40d"'))
    with pytest.raises(ScenarioError, match="not valid TOML"):
        loads_scenario("[scenario\n")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario("/nonexistent/x.toml")


def test_durations() -> None:
    assert parse_duration("24h", "x") == 86400.0
    assert parse_duration("1h30m", "x") == 5400.0
    assert parse_duration("1d 2h", "x") == 93600.0
    assert parse_duration(90, "x") == 90.0
    for bad in ("soon", "", "h", True, -5):
        with pytest.raises(ScenarioError):
            parse_duration(bad, "x")


def test_fault_applier_sets_and_clears_on_real_sim_objects() -> None:
    from sim.environment import World, WorldConfig
    from sim.environment.adapters import ContactGate, WorldEnvironment
    from sim.i2c_bus import SimI2CBus
    from sim.parts import ConstantEnvironment, SimLIS2MDL
    from sim.scenario import FaultApplier
    from sim.transceiver import ChannelModel

    scenario = loads_scenario(MINIMAL + """
[[faults]]
at = "1h"
until = "2h"
target = "mag"
fault = "frozen"
[[faults]]
at = "30m"
target = "link"
fault = "frame_loss"
value = 0.3
[[faults]]
at = "3h"
until = "4h"
target = "link"
fault = "blackout"
[[faults]]
at = "5h"
target = "bus"
fault = "nack_probability"
value = 0.05
""", devices=["mag"])
    part = SimLIS2MDL(0x1E, ConstantEnvironment())
    bus = SimI2CBus(1)
    channel = ChannelModel()
    gate = ContactGate(WorldEnvironment(World(WorldConfig(tick_s=10.0)), None), channel)
    applier = FaultApplier({"mag": part}, [bus], channel, gate)
    seen = []
    for at, injection, value in scenario.timeline():
        applier.apply(at, injection, value)
        seen.append((part.faults.frozen, channel.frame_loss, gate.blackout, bus.faults.nack_probability))
    assert seen == [
        (False, 0.3, False, 0.0), (True, 0.3, False, 0.0), (False, 0.3, False, 0.0),
        (False, 0.3, True, 0.0), (False, 0.3, False, 0.0), (False, 0.3, False, 0.05),
    ]
    with pytest.raises(ScenarioError, match="not a simulated part"):
        FaultApplier({}, [bus], channel, gate).apply(0.0, scenario.faults[0], True)


def test_end_of_life_power_option() -> None:
    eol = loads_scenario(MINIMAL + "[power]\nend_of_life = true\nwiring_loss = 0.05\n").world_config().power
    assert eol.array_degradation == 0.10 and eol.wiring_loss == 0.05
    assert eol.battery.capacity_fade == 0.20 and eol.battery.resistance_growth == 1.5
    bol = loads_scenario(MINIMAL).world_config().power
    assert bol.array_degradation == 0.0 and bol.battery.capacity_fade == 0.0
    with pytest.raises(ScenarioError, match="power.array_degradation"):
        loads_scenario(MINIMAL + "[power]\narray_degradation = 0.9\n", "bad.toml")
    with pytest.raises(ScenarioError, match="power.end_of_life"):
        loads_scenario(MINIMAL + "[power]\nend_of_life = 1\n", "bad.toml")
    with pytest.raises(ScenarioError, match="unknown key"):
        loads_scenario(MINIMAL + "[power]\nageing = 1\n", "bad.toml")


def test_ground_table_is_checked() -> None:
    script = loads_scenario(MINIMAL + '[ground]\nplayback = true\ncontact_aware = true\n'
                            'completeness_until = "1h"\ncontact_min_elevation_deg = 8\n').ground
    assert (script.playback, script.contact_aware, script.completeness_until, script.contact_min_elevation_deg) == \
        (True, True, 3600.0, 8.0)
    for bad, message in (('[ground]\nplayback = "yes"\n', "ground.playback: expected true or false"),
                         ('[ground]\ncompleteness_until = "99d"\n', "ground.completeness_until"),
                         ('[ground]\nreplay = true\n', "replay")):
        with pytest.raises(ScenarioError, match=message):
            loads_scenario(MINIMAL + bad)
