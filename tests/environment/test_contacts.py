"""Ground contacts over Almaty: pass counts, durations, geometry and the link's bit error rate."""

from __future__ import annotations

import pytest

from sim.environment.contacts import (
    ALMATY,
    GroundStation,
    LinkBudget,
    StationGeometry,
    contact_windows,
)
from sim.environment.orbit import Orbit


def test_five_to_six_passes_a_day_over_almaty_on_average() -> None:
    orbit = Orbit.default()
    start = orbit.epoch_seconds
    windows = contact_windows(orbit, ALMATY, start, start + 4 * 86400.0)
    per_day = len(windows) / 4.0
    assert 4.5 <= per_day <= 6.5
    assert all(0 < w.duration_s < 14 * 60 for w in windows)
    assert max(w.duration_s for w in windows) > 10 * 60  # overhead passes last ~12 min
    assert all(w.aos < w.tca < w.los for w in windows)
    masked = contact_windows(orbit, GroundStation("almaty10", 43.2, 76.9, 800.0, 10.0), start, start + 4 * 86400.0)
    assert len(masked) < len(windows)
    assert sum(w.duration_s for w in masked) < 0.6 * sum(w.duration_s for w in windows)


def test_window_edges_are_where_elevation_crosses_the_mask() -> None:
    orbit = Orbit.default()
    geometry = StationGeometry(ALMATY)
    for w in contact_windows(orbit, ALMATY, orbit.epoch_seconds, orbit.epoch_seconds + 86400.0):
        assert geometry.view(orbit.state(w.aos).r_ecef_km).elevation_deg == pytest.approx(0.0, abs=0.01)
        assert geometry.view(orbit.state(w.los).r_ecef_km).elevation_deg == pytest.approx(0.0, abs=0.01)
        peak = geometry.view(orbit.state(w.tca).r_ecef_km)
        assert peak.elevation_deg == pytest.approx(w.max_elevation_deg, abs=1e-6)
        assert peak.in_contact and peak.range_km < 2700.0


def test_bit_error_rate_falls_with_range() -> None:
    link = LinkBudget()
    horizon, mid, overhead = link.bit_error_rate(2650.0), link.bit_error_rate(1500.0), link.bit_error_rate(530.0)
    assert 1e-3 < horizon < 1e-2  # a few hundred-bit frames in ten are lost at the horizon
    assert mid < 1e-5
    assert overhead < 1e-20
    assert link.ebn0_db(530.0) - link.ebn0_db(1060.0) == pytest.approx(6.02, abs=0.01)  # inverse square
    with pytest.raises(ValueError, match="range must be positive"):
        link.ebn0_db(0.0)


def test_out_of_contact_view_reports_no_link() -> None:
    orbit = Orbit.default()
    geometry = StationGeometry(ALMATY)
    views = [geometry.view(orbit.state(orbit.epoch_seconds + k * 60.0).r_ecef_km) for k in range(200)]
    hidden = [v for v in views if not v.in_contact]
    assert hidden and all(v.bit_error_rate == 0.5 and v.elevation_deg < 0 for v in hidden)


def test_bad_station_is_named() -> None:
    with pytest.raises(ValueError, match="latitude"):
        GroundStation("x", 95.0, 0.0)
    with pytest.raises(ValueError, match="elevation mask"):
        GroundStation("x", 0.0, 0.0, 0.0, 90.0)
    with pytest.raises(ValueError, match="not after start"):
        contact_windows(Orbit.default(), ALMATY, 10.0, 5.0)
