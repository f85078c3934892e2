"""Store and forward on the accelerated simulator: twenty minutes recorded out of contact comes
down in the next pass, merged in the ground archive; out of the predicted pass only beacons go."""

from __future__ import annotations

import json
from pathlib import Path

from flightsw.config import load
from flightsw.sim_runner import SimOptions, run_scenario

from .conftest import SIM_CONFIG, pass_scenario

GROUND = """
[ground]
playback = true
contact_aware = true
contact_min_elevation_deg = 8.0
completeness_until = "20m"
"""


def test_recorded_twenty_minutes_reach_the_archive_and_out_of_contact_only_beacons(tmp_path: Path) -> None:
    # 04:55-05:30 UTC: 21 minutes out of contact, then the 05:16-05:28 pass over Almaty
    scenario = pass_scenario(duration="35m", start="2026-06-01T04:55:00Z", extra=GROUND)
    result = run_scenario(load(SIM_CONFIG), scenario, SimOptions(report_dir=tmp_path / "report"))
    m = result.metrics
    assert m["hk_archive_completeness"] >= 95.0, m
    assert m["archive_duplicates"] == 0
    assert m["bytes_down_stored"] > 0 and m["bytes_recorded"] > m["bytes_down_stored"] / 4
    # out of the predicted pass: nothing but beacons, and the withheld traffic is counted
    assert m["frames_sent_out_of_contact"] > 0
    assert m["frames_sent_out_of_contact_other"] == 0
    assert m["airtime_saved_s"] > 0 and m["energy_saved_wh"] > 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert any(p["stored_bytes"] > 0 for p in report["pass_goodput"])
    assert (tmp_path / "report" / "data_budget.png").stat().st_size > 0
    assert "Data budget" in (tmp_path / "report" / "index.html").read_text()


def test_without_contact_awareness_everything_is_sent_as_before_and_the_ground_asks() -> None:
    scenario = pass_scenario(duration="8m", start="2026-06-01T05:15:00Z", extra="[ground]\nplayback = true\n")
    m = run_scenario(load(SIM_CONFIG), scenario, SimOptions()).metrics
    assert m["frames_sent_out_of_contact"] == 0  # no prediction: nothing is "out of contact"
    assert m["airtime_saved_s"] == 0
    assert m["bytes_down_housekeeping"] > 0  # real-time housekeeping still flows when a station hears
    assert m["bytes_down_stored"] > 0  # no automatic playback: the ground asked for the new records
