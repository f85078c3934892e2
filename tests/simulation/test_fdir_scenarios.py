"""The fault-protection scenarios on the accelerated simulator: the shipped hot_payload and
frozen_sensor files (watch-point responses fire once each), and the deaf radio over a real pass
(the radio's serial device missing at boot; the critical-service watchdog path brings the link
back)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightsw.config import MissionConfig
from flightsw.sim_runner import SimOptions, SimulationRun, run_scenario
from sim.scenario import builtin_scenario, load_scenario

from .conftest import pass_scenario

DEAF = """
[[faults]]
at = 0
until = "40s"
target = "link"
fault = "uart_missing"
value = true

[[commands]]
at = "3m"
command = "modes.NO_OP"
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("name", "watchpoint", "response"), [
    ("hot_payload", "payload_hot", "MODE"),
    ("frozen_sensor", "mag_frozen", "POWER_CYCLE"),
])
def test_shipped_watchpoint_scenarios_fire_their_response_once(sim_config: MissionConfig, name: str,
                                                                watchpoint: str, response: str) -> None:
    scenario = load_scenario(builtin_scenario(name), [d.name for d in sim_config.devices])
    result = run_scenario(sim_config, scenario, SimOptions())
    assert all(e.passed for e in result.expectations), [e.reason for e in result.expectations if not e.passed]
    fired = [text for _t, _sev, text in result.events if text.startswith("modes.watch_fired")]
    assert len(fired) == 1 and f"Watch-point {watchpoint}:" in fired[0] and f"response {response}" in fired[0]
    at = scenario.start_epoch + 600.0  # both faults start at 10 min
    (when,) = [t for t, _sev, text in result.events if text.startswith("modes.watch_fired")]
    assert at < when < at + 60.0


@pytest.mark.timeout(180)
def test_deaf_radio_recovers_its_link_through_the_critical_service_watchdog(sim_config: MissionConfig,
                                                                            tmp_path: Path) -> None:
    scenario = pass_scenario(duration="10m", extra=DEAF)
    run = SimulationRun(sim_config, scenario, SimOptions())
    result = run.run()
    start = scenario.start_epoch
    assert [(b.boot_count, b.reset_reason) for b in result.boots] == [(1, "FIRST_BOOT"), (2, "CRITICAL_SERVICE")]
    (reset,) = run.resets
    # link.rx FAILED after its back-off (~15 s), 30 s of grace, then the 15 s watchdog
    assert start + 45.0 <= reset <= start + 75.0
    assert result.metrics["critical_service_alarms"] == 1
    assert result.metrics["beacons_after_reset"] >= 5
    assert result.metrics["frames_up"] >= 1 and result.metrics["ground_verdicts_received"] >= 1
    assert any(text.startswith("exec.previous_critical") and "link.rx" in text for _t, _s, text in result.events)
