"""The flight Satellite flown through the simulated world: passes, beacons, faults, determinism, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flightsw.cli_run import parse_speed
from flightsw.config import MissionConfig
from flightsw.sim_runner import (
    HOST_METRICS,
    SimOptions,
    SimResult,
    SimulationError,
    SimulationRun,
    first_difference,
    run_scenario,
)

from .conftest import ROOT, SIM_CONFIG, pass_scenario


def scenario_start(result: SimResult) -> float:
    return result.scenario.start_epoch


@pytest.mark.timeout(180)  # its session fixture flies the pass twice
def test_a_pass_brings_beacons_down_and_carries_a_command_up(one_pass_runs: tuple[SimResult, SimResult, Path]) -> None:
    result, _, _ = one_pass_runs
    m = result.metrics
    assert m["contacts"] == 1 and m["usable_contacts"] == 1
    (tally,) = result.contacts
    assert tally.station == "almaty" and tally.max_elevation_deg > 5.0
    assert tally.aos == scenario_start(result) + 82.0  # AOS 05:16:22 UTC
    assert tally.los == scenario_start(result) + 480.0  # cut at the end of the run
    # beacon period 30 s: 13 beacons fit in these 6.6 minutes; the noisy rise loses some
    assert tally.beacons >= 5 and m["beacons_received"] == tally.beacons
    assert m["contacts_without_beacon"] == 0
    # nothing reaches the ground outside the pass, although the flight side kept transmitting
    assert tally.frames == m["frames_down"] > tally.beacons
    assert m["frames_out_of_contact"] > 0
    # the ground's no-op (sent on the first beacon, near the noisy horizon, and again a minute
    # later while no verdict comes back) went up through the same channel and was executed
    assert 1 <= m["frames_up"] <= m["ground_commands_sent"] <= 4 and m["bytes_up"] > 0
    assert m["commands_rejected"] == 0
    assert m["bytes_down"] > 10_000
    assert 0.0 <= m["frame_loss_ratio"] < 0.5
    assert m["battery_voltage_min"] > 7.0 and m["undervoltage_s"] == 0
    assert result.passed


def test_same_scenario_and_seed_give_identical_results(one_pass_runs: tuple[SimResult, SimResult, Path]) -> None:
    first, second, _ = one_pass_runs
    a = {k: v for k, v in first.metrics.items() if k not in HOST_METRICS}
    b = {k: v for k, v in second.metrics.items() if k not in HOST_METRICS}
    assert a == b
    assert first.contacts == second.contacts
    assert first.events == second.events
    # everything else too: boots, modes, World samples, and every radio frame with its time
    assert first.frames_digest and first_difference(first, second) is None


def test_report_shows_the_pass_the_verdict_and_the_plots(one_pass_runs: tuple[SimResult, SimResult, Path]) -> None:
    _, result, report = one_pass_runs
    assert result.report_index == report / "index.html"
    summary = json.loads((report / "report.json").read_text())
    assert summary["passed"] is True
    assert [c["station"] for c in summary["contacts"]] == ["almaty"]
    assert summary["metrics"]["beacons_received"] == result.metrics["beacons_received"]
    page = (report / "index.html").read_text()
    assert "PASSED" in page and "usable_contacts_without_beacon" in page
    for png in ("battery_soc.png", "temperatures.png", "contacts.png", "data_volume.png", "events.png"):
        assert (report / png).stat().st_size > 1000


def test_fault_timeline_hangs_the_magnetometer_and_the_flight_software_reports_it(sim_config: MissionConfig) -> None:
    scenario = pass_scenario(duration="4m", extra="""
[[faults]]
at = "2m"
target = "mag"
fault = "hung"
value = true

[[expect]]
metric = "events_warning"
min = 1
""")
    run = SimulationRun(sim_config, scenario)
    result = run.run()
    assert run.applier is not None and run.applier.applied == [(120.0, "mag", "hung", True)]
    texts = [text for _, severity, text in result.events if severity == "WARNING"]
    assert any(text.startswith("mag.failed") for text in texts), texts
    assert any(text.startswith("mag.power_cycled") for text in texts), texts  # which clears the latch-up
    start = scenario.start_epoch
    assert all(t >= start + 120.0 for t, _, text in result.events if text.startswith("mag."))
    assert result.passed


def test_link_blackout_keeps_a_pass_silent(sim_config: MissionConfig) -> None:
    scenario = pass_scenario(duration="4m", extra="""
[[faults]]
at = "0s"
target = "link"
fault = "blackout"
value = true
""")
    result = run_scenario(sim_config, scenario, SimOptions())
    assert result.metrics["contacts"] == 1
    assert result.metrics["beacons_received"] == 0 and result.metrics["frames_down"] == 0
    assert result.metrics["contacts_without_beacon"] == 1


def test_cli_exits_nonzero_when_an_expectation_fails(tmp_path: Path) -> None:
    scenario = tmp_path / "quiet.toml"
    scenario.write_text("""
[scenario]
name = "quiet"
start = 2026-06-01T00:00:00Z
duration = "2m"
seed = 1

[[expect]]
metric = "contacts"
min = 1

[[expect]]
metric = "battery_soc_min"
min = 0.5
""")
    cmd = [sys.executable, "-m", "flightsw.cli", "sim", "--config", str(SIM_CONFIG), "--scenario", str(scenario),
           "--speed", "max", "--report", str(tmp_path / "report")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "FAIL contacts" in proc.stdout and "ok   battery_soc_min" in proc.stdout
    assert json.loads((tmp_path / "report" / "report.json").read_text())["passed"] is False

    bad = subprocess.run([*cmd[:-4], "--speed", "warp"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--speed must be a positive number or 'max'" in bad.stderr


@pytest.mark.parametrize("text", ["0", "-3", "nan", "inf", "fast", ""])
def test_speed_must_be_positive_or_max(text: str) -> None:
    with pytest.raises(ValueError, match="--speed"):
        parse_speed(text)


def test_speed_values() -> None:
    assert parse_speed("max") is None and parse_speed("MAX") is None
    assert parse_speed("1") == 1.0 and parse_speed("250") == 250.0


def test_bad_runs_are_refused_with_the_reason(sim_config: MissionConfig, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="speed must be positive"):
        SimOptions(speed=0)
    with pytest.raises(ValueError, match="ticker period"):
        SimOptions(ticker_period_s=0.0)
    used = tmp_path / "used"
    used.mkdir()
    (used / "state.a").write_text("x")
    with pytest.raises(SimulationError, match="not empty"):
        SimulationRun(sim_config, pass_scenario(), SimOptions(data_dir=used)).build()
    sim_config.devices[0].backend = "real"
    with pytest.raises(SimulationError, match=f"devices.{sim_config.devices[0].name}: backend 'real'"):
        SimulationRun(sim_config, pass_scenario()).build()
