"""The beacon's time fields (layout version 3): mission elapsed time and UTC quality."""

from __future__ import annotations

from pathlib import Path

from flightsw.core.enums import TimeQuality
from flightsw.link import beacon

from .harness import build_satellite, link_of


def test_the_beacon_carries_met_and_time_quality(tmp_path: Path) -> None:
    sat, _probe = build_satellite(tmp_path)
    try:
        sat.finalize()
        sat.clock.met_at_boot = 86400.0
        sat.clock.set_utc(1_780_000_000.0, TimeQuality.GPS)
        decoded = beacon.decode_payload(beacon.encode_payload("UN0SAT", link_of(sat).beacon_values()))
        assert decoded["version"] == 3
        met = decoded["met"]
        assert isinstance(met, float | int) and 86400 <= met < 86500
        assert decoded["time_quality_name"] == "GPS"
    finally:
        sat.workers.shutdown()
