"""Watchdog resets inside a scenario run, the hang fault that causes one, the mode manager's SAFE
entries and detumbling, images downlinked to the simulated ground, timed ground commands."""

from __future__ import annotations

import json
import math
import weakref
from pathlib import Path

import pytest

import flightsw.app
import flightsw.sim_runner.runner
from flightsw.config import MissionConfig
from flightsw.sim_runner import SimOptions, SimulationError, SimulationRun
from sim.environment import World
from sim.scenario import ScenarioError, loads_scenario

from .conftest import pass_scenario

HANG = """
[[faults]]
at = "1m"
{until}
target = "rategroup.slow"
fault = "hang"
value = true
"""


def test_a_hung_rate_group_resets_the_board_once_and_the_satellite_flies_on(
        sim_config: MissionConfig, tmp_path: Path) -> None:
    scenario = pass_scenario(duration="6m", extra=HANG.format(until="") + """
[[expect]]
metric = "reboots"
min = 1
max = 1

[[expect]]
metric = "reboots"
max = 0
""")
    run = SimulationRun(sim_config, scenario, SimOptions(report_dir=tmp_path / "report"))
    first = weakref.ref(run.build())
    result = run.run()
    assert first() is None  # the reset satellite was freed (its heap had been frozen at boot)
    start = scenario.start_epoch
    # slow group stalls at 60 s; its heartbeat (10 s) goes stale, pets stop, the watchdog (15 s)
    # bites at the next 1 s check: one reset, then the board boots again after the boot delay
    assert result.metrics["reboots"] == 1
    (reset,) = run.resets
    assert start + 84.0 <= reset <= start + 88.0
    assert [(b.boot_count, b.reset_reason) for b in result.boots] == [(1, "FIRST_BOOT"), (2, "UNEXPECTED")]
    assert result.boots[1].epoch == pytest.approx(reset + SimOptions().boot_delay_s)
    assert run.leaked_tasks == []  # nothing of the first satellite outlived its reset
    # the second boot's software is not hung (the hang belonged to the process that hung)
    assert run.applier is not None and run.applier.hangs is not None
    assert run.ground is not None and run.ground.beacon_times
    assert min(run.ground.beacon_times) > result.boots[1].epoch  # the pass starts after the reset
    assert result.metrics["beacons_received"] >= 3 and result.metrics["frames_up"] >= 1
    stale = [t for t, sev, text in result.events if text.startswith("exec.health_stale")]
    assert stale and start + 69.0 <= stale[0] <= start + 72.0
    # the expectations on `reboots` see the measured value
    ok, too_many = result.expectations
    assert ok.passed and ok.value == 1
    assert not too_many.passed and too_many.reason == "1 is above the maximum 0"
    # the report marks the reset in the event list and on the plots
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    assert len(summary["resets"]) == 1 and summary["passed"] is False
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<tr class=reset>" in page and "1 watchdog reset(s)" in page
    assert (tmp_path / "report" / "modes.png").stat().st_size > 1000


def test_a_stall_shorter_than_the_heartbeat_deadline_resets_nothing(sim_config: MissionConfig) -> None:
    scenario = pass_scenario(duration="3m", extra=HANG.format(until='until = "1m5s"'))
    run = SimulationRun(sim_config, scenario)
    result = run.run()
    assert result.metrics["reboots"] == 0 and len(result.boots) == 1
    assert run.applier is not None and run.applier.hangs is not None
    assert run.applier.hangs.hung_cycles == {"slow": 1}  # it did hang, once, and was released
    assert not any(text.startswith("exec.health_stale") for _, _, text in result.events)


def test_modes_images_and_detumbling_are_measured(sim_config: MissionConfig) -> None:
    # seed 6: no scheduled command's uplink frame is corrupted by the channel (a lost command is not
    # resent by the scripted ground, only its no-op is)
    scenario = pass_scenario(duration="8m", seed=6, extra="""
[[commands]]
at = "0s"
command = "modes.SET_MODE"
args = ["NOMINAL"]

[[commands]]
at = "0s"
command = "imaging.CAPTURE_NOW"

[[commands]]
at = "3m"
command = "modes.SET_MODE"
args = ["DETUMBLE"]

[[commands]]
at = "3m"
command = "modes.FORCE_MODE"
args = ["SAFE"]

[[expect]]
metric = "images_downlinked"
min = 1

[[expect]]
metric = "safe_mode_entries"
min = 1
max = 1
""")
    run = SimulationRun(sim_config, scenario)
    result = run.run()
    start = scenario.start_epoch
    assert run.ground is not None
    sent = [name for _, name in run.ground.commands_log]
    # the scheduled commands in order; then at most the ground's no-op retry, as a verdict frame
    # near the horizon may be lost (with this seed the FORCE_MODE verdict is)
    assert sent[:4] == ["modes.SET_MODE", "imaging.CAPTURE_NOW", "modes.SET_MODE", "modes.FORCE_MODE"]
    assert set(sent[4:]) <= {"exec.NO_OP"}
    assert result.metrics["commands_rejected"] == 0
    # the thumbnail came down through CFDP class 2 and the ground entity received it whole
    assert run.ground.files is not None
    assert [name for _, name, _ in run.ground.files.files] == ["img000001_thumbnail.jpg"]
    assert result.metrics["images_downlinked"] == 1 == result.metrics["files_downlinked"]
    # mode changes at the instants the commands executed (not on a 60 s sampling grid); the
    # first boot comes up in the mission config's first-boot mode (SAFE or NOMINAL)
    modes = [m for _, m in result.modes]
    assert modes[0] in ("SAFE", "NOMINAL") and modes[-3:] == ["NOMINAL", "DETUMBLE", "SAFE"]
    sent_at = [t for t, _ in run.ground.commands_log]
    detumble_start, detumble_end = result.modes[-2][0], result.modes[-1][0]
    assert detumble_start == pytest.approx(sent_at[2], abs=2.0) and (detumble_start - start) % 60.0 != 0.0
    assert detumble_end == pytest.approx(sent_at[3], abs=2.0)
    assert result.metrics["safe_mode_entries"] == 1
    # the World detumbled only while the mode was DETUMBLE
    # (the free tumble keeps the size of its angular momentum; the rate itself nutates, so the
    # decay shows in |H|: exp(-t/1800 s) over the time spent in DETUMBLE, the residual aside)
    initial = World(run.world.config, start=run.world.start, seed=run.world.seed).attitude
    ratio = math.dist((0, 0, 0), run.world.attitude.angular_momentum) / math.dist((0, 0, 0), initial.angular_momentum)
    assert ratio == pytest.approx(math.exp(-(detumble_end - detumble_start) / 1800.0), abs=0.01)
    assert ratio < 0.999
    assert not run.world.attitude.detumbling
    assert result.passed, result.expectations


def test_without_a_mode_manager_safe_mode_entries_is_not_measured(sim_config: MissionConfig,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    registered = flightsw.app.load_subsystems()
    monkeypatch.setattr(flightsw.sim_runner.runner, "load_subsystems", lambda: [s for s in registered if s.name != "modes"])
    scenario = pass_scenario(duration="1m", extra='[[expect]]\nmetric = "safe_mode_entries"\nmax = 0\n')
    result = SimulationRun(sim_config, scenario).run()
    assert "safe_mode_entries" not in result.metrics
    (check,) = result.expectations
    assert not check.passed and check.reason == "not measured by this run"


def _one_hour(section: str) -> str:
    """A one-hour scenario with one more section (the bad input under test)."""
    return f"""
[scenario]
name = "bad"
start = 2026-06-01T00:00:00Z
duration = "1h"

{section}
"""


@pytest.mark.parametrize(("fault", "message"), [
    ('target = "mag"\nfault = "hang"', "faults[0].fault: hang is a software fault: its target is a rate group"),
    ('target = "rategroup.warp"\nfault = "hang"', "faults[0].target: no rate group 'warp' in the mission config"),
    ('target = "rategroup.slow"\nfault = "melt"', "faults[0].fault: unknown software fault 'melt'; known: ['hang']"),
    ('target = "rategroup.slow"\nfault = "hang"\nvalue = false', "faults[0].value: hang takes true"),
    ('target = "rategroup.slow"\nfault = "hang"\nvalue = 3', "faults[0].value: hang takes true"),
])
def test_bad_hang_faults_are_refused_naming_the_key(fault: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        loads_scenario(_one_hour(f'[[faults]]\nat = "1m"\n{fault}'), "bad.toml", ["mag"],
                       ["fast", "slow", "background"])
    assert str(info.value).startswith("bad.toml: ") and message in str(info.value)


@pytest.mark.parametrize(("command", "message"), [
    ('at = "1m"\ncommand = "capture"', "commands[0].command: 'capture' is not a command name"),
    ('at = "1m"\ncommand = "imaging.CAPTURE_NOW"\nargs = 5', "commands[0].args: expected an array"),
    ('at = "2h"\ncommand = "imaging.CAPTURE_NOW"', "commands[0].at: 7200 s is after the end"),
    ('command = "imaging.CAPTURE_NOW"', "commands[0].at: missing"),
    ('at = "1m"\ncommand = "imaging.CAPTURE_NOW"\nwhen = 1', "commands[0]: unknown key(s) ['when']"),
])
def test_bad_ground_commands_are_refused_naming_the_key(command: str, message: str) -> None:
    with pytest.raises(ScenarioError, match="bad.toml: ") as info:
        loads_scenario(_one_hour(f"[[commands]]\n{command}"), "bad.toml")
    assert message in str(info.value)


def test_the_runner_checks_commands_and_rate_groups_against_the_satellite(sim_config: MissionConfig) -> None:
    unknown_command = pass_scenario(extra='[[commands]]\nat = "0s"\ncommand = "imaging.MELT"\n')
    with pytest.raises(SimulationError, match=r"commands\[0\].command: no command 'imaging.MELT'"):
        SimulationRun(sim_config, unknown_command).build()
    # parsed without the mission config's rate groups: the runner still refuses an unknown one
    unknown_group = loads_scenario("""
[scenario]
name = "bad"
start = 2026-06-01T00:00:00Z
duration = "1h"

[[faults]]
at = "1m"
target = "rategroup.warp"
fault = "hang"
""", "bad.toml")
    with pytest.raises(SimulationError, match=r"faults\[0\].target: no rate group 'warp'"):
        SimulationRun(sim_config, unknown_group).build()


LAUNCH = """
[launch]
stowed = true
silence = "6m"
failed_burns = { burn_primary = 1 }

[[faults]]
at = "3m"
target = "rategroup.slow"
fault = "hang"
value = true

[[faults]]
at = "9m"
target = "rategroup.slow"
fault = "hang"
value = true
"""


def test_launch_silence_across_a_reset_then_deployment_then_beacons(sim_config: MissionConfig) -> None:
    """The first_boot scenario in short: separation at 05:05, 6 min of silence with a watchdog
    reset in it, the primary wire released on its second attempt, a reset after it, then the
    05:16 pass over Almaty brings beacons down."""
    scenario = pass_scenario(duration="20m", start="2026-06-01T05:05:00Z", extra=LAUNCH)
    run = SimulationRun(sim_config, scenario, SimOptions())
    booked: list[tuple[float, str]] = []
    set_load_state = run.world.set_load_state

    def record(device: str, state: str) -> None:
        if device == "burn_wire":
            booked.append((run.world.time - run.world.start, state))
        set_load_state(device, state)

    run.world.set_load_state = record  # type: ignore[method-assign]
    result = run.run()
    m = result.metrics
    # the World's power budget booked both burns, each from the instant the wire switched
    on = [t for t, state in booked if state == "on"]
    assert len(on) == 2 and on[1] - on[0] >= 60.0  # the cool-down between the attempts
    assert m["reboots"] == 2 and m["reboots_during_silence"] == 1 and m["reboots_after_silence"] == 1
    assert m["frames_before_silence_end"] == 0
    # the silence ended after 360 s of running time: later than 360 s of run time by the boot's
    # downtime, and the first frame no earlier
    assert 360.0 + SimOptions().boot_delay_s <= m["silence_end_s"] <= m["first_frame_s"]
    assert m["antennas_released"] == 1 and m["antenna_release_circuit"] == 0
    assert m["antenna_release_attempt"] == 2 and m["burn_attempts"] == 2 and m["deployment_deployed"] == 1
    assert m["reboots_after_silence_silent"] == 0 and m["beacons_received"] >= 3
    assert [(b.boot_count, b.reset_reason) for b in result.boots] == [
        (1, "FIRST_BOOT"), (2, "UNEXPECTED"), (3, "UNEXPECTED")]
    texts = [text for _, _, text in result.events]
    resumed = [t for t in texts if t.startswith("deploy.silence_resumed")]
    assert len(resumed) == 1  # only the reset during the silence resumes it; the later one does not
    assert [t.split(":")[0] for t in texts if t.startswith(("deploy.burn_started", "deploy.deployed"))] == [
        "deploy.burn_started", "deploy.burn_started", "deploy.deployed"]


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_loss_of_contact_scenario_climbs_the_ladder_and_the_ground_gets_back_in(
        sim_config: MissionConfig) -> None:
    """The shipped scenario: a day without uplink -> radio reset, reboot, safe defaults; the
    ground's first default-key command afterwards executes."""
    from flightsw.sim_runner import run_scenario
    from sim.scenario import builtin_scenario, load_scenario

    scenario = load_scenario(builtin_scenario("loss_of_contact"), [d.name for d in sim_config.devices])
    result = run_scenario(sim_config, scenario, SimOptions())
    failed = [f"{e.expectation.metric}: {e.reason}" for e in result.expectations if not e.passed]
    assert not failed, failed
    # one reboot, the ladder's own: the second boot reads its reason
    assert [(b.boot_count, b.reset_reason) for b in result.boots] == [(1, "FIRST_BOOT"), (2, "LOSS_OF_CONTACT")]
    m = result.metrics
    assert m["loss_of_contact_radio_resets"] == m["loss_of_contact_reboots"] == m["loss_of_contact_safe_defaults"] == 1
    assert m["ground_commands_executed_after"] >= 1
    # it alternated between the keys through the blackout and ended on the default key
    assert m["ground_key_returns"] == m["ground_key_fallbacks"] - 1
