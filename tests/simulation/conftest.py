"""Shared pieces: the laptop mission config and a short scenario around one real pass over Almaty."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightsw.config import MissionConfig, load
from flightsw.sim_runner import SimOptions, SimResult, run_scenario
from sim.scenario import Scenario, loads_scenario

ROOT = Path(__file__).resolve().parents[2]
SIM_CONFIG = ROOT / "deploy" / "sim.toml"

# The reference orbit (epoch 2026-06-01T00:00Z) passes over Almaty from 05:16:22 to 05:28:05 UTC,
# peaking well above 5 deg. Starting at 05:15 gives a quiet minute, then the first 6.6 minutes of
# the pass up to its culmination (the run stays short enough for the suite).
PASS_SCENARIO = """
[scenario]
name = "one-pass"
start = {start}
duration = "{duration}"
seed = {seed}

[orbit]
epoch = 2026-06-01T00:00:00Z

[battery]
initial_soc = 0.8

{extra}
"""


def pass_scenario(duration: str = "8m", seed: int = 5, extra: str = "",
                  start: str = "2026-06-01T05:15:00Z") -> Scenario:
    config = load(SIM_CONFIG)
    text = PASS_SCENARIO.format(duration=duration, seed=seed, extra=extra, start=start)
    return loads_scenario(text, "one_pass.toml", [d.name for d in config.devices])


@pytest.fixture
def sim_config() -> MissionConfig:
    return load(SIM_CONFIG)


@pytest.fixture(scope="session")
def one_pass_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimResult, SimResult, Path]:
    """The pass scenario run twice with the same seed (the second writes a report)."""
    config = load(SIM_CONFIG)
    scenario = pass_scenario(extra='[[expect]]\nmetric = "usable_contacts_without_beacon"\nmax = 0\n')
    first = run_scenario(config, scenario, SimOptions())
    report = tmp_path_factory.mktemp("report")
    second = run_scenario(config, scenario, SimOptions(report_dir=report))
    return first, second, report
