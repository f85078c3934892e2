"""Orbit: the generated default TLE is the reference mission, and SGP4 behaves physically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.environment.orbit import (
    DEFAULT_EPOCH,
    Orbit,
    OrbitError,
    default_tle,
    sso_tle,
    sun_synchronous_inclination_deg,
)


def _ascending_node_times(orbit: Orbit, start: float, duration: float) -> list[float]:
    times = np.arange(start, start + duration, 5.0)
    r, _ = orbit.teme_array(times)
    z = r[:, 2]
    crossings = np.nonzero((z[:-1] < 0) & (z[1:] >= 0))[0]
    # linear interpolation between the 5 s samples is accurate to a few ms here
    return [float(times[i] + 5.0 * (-z[i]) / (z[i + 1] - z[i])) for i in crossings]


def test_period_matches_two_body_value_within_one_percent() -> None:
    orbit = Orbit.default()
    nodes = _ascending_node_times(orbit, orbit.epoch_seconds, 86400.0)
    assert len(nodes) >= 14
    measured = (nodes[-1] - nodes[0]) / (len(nodes) - 1)
    two_body = 2 * math.pi * math.sqrt(orbit.semi_major_axis_km**3 / 398600.4418)
    assert two_body == pytest.approx(orbit.two_body_period_s, rel=1e-9)
    assert measured == pytest.approx(two_body, rel=0.01)
    assert 94.0 * 60 < measured < 96.5 * 60


def test_default_orbit_is_a_530_km_sun_synchronous_orbit() -> None:
    orbit = Orbit.default()
    states = [orbit.state(orbit.epoch_seconds + k * 60.0) for k in range(0, 200)]
    radii = [math.sqrt(sum(c * c for c in s.r_teme_km)) for s in states]
    assert 6895.0 < min(radii) and max(radii) < 6925.0  # near-circular at a = 6908 km
    altitudes = [s.alt_km for s in states]  # geodetic: the ellipsoid adds ~21 km at the poles
    assert 515.0 < min(altitudes) and max(altitudes) < 565.0
    assert orbit.inclination_deg == pytest.approx(97.5, abs=0.1)
    # nodal precession of one turn per year, eastward: what keeps the local time fixed
    node_rate_deg_day = math.degrees(orbit.satrec.nodedot) * 1440.0
    assert node_rate_deg_day == pytest.approx(360.0 / 365.2422, rel=0.01)


def test_descending_node_crosses_at_10_30_local_mean_time() -> None:
    orbit = Orbit.default()
    times = np.arange(orbit.epoch_seconds, orbit.epoch_seconds + 6 * 3600.0, 5.0)
    r, _ = orbit.teme_array(times)
    z = r[:, 2]
    descending = np.nonzero((z[:-1] > 0) & (z[1:] <= 0))[0]
    assert len(descending) >= 3
    for i in descending:
        state = orbit.state(float(times[i]))
        utc_hours = (float(times[i]) % 86400.0) / 3600.0
        local_mean_time = (utc_hours + state.lon_deg / 15.0) % 24.0
        assert local_mean_time == pytest.approx(10.5, abs=0.05)


def test_ltdn_and_altitude_are_parameters() -> None:
    l1, l2 = sso_tle(epoch=DEFAULT_EPOCH, altitude_km=600.0, ltdn_hours=6.0)
    orbit = Orbit.from_tle(l1, l2)
    assert orbit.semi_major_axis_km == pytest.approx(6978.137, abs=0.5)
    assert orbit.inclination_deg == pytest.approx(sun_synchronous_inclination_deg(6978.137, 0.001), abs=0.01)
    assert orbit.tle != default_tle()


def test_bad_tle_is_named() -> None:
    l1, l2 = default_tle()
    corrupted = l2[:20] + ("1" if l2[20] != "1" else "2") + l2[21:]
    with pytest.raises(OrbitError, match="line 2 checksum"):
        Orbit.from_tle(l1, corrupted)
    with pytest.raises(OrbitError, match="must start with '1 '"):
        Orbit.from_tle(l2, l1)
    with pytest.raises(OrbitError, match="69"):
        Orbit.from_tle(l1[:60], l2)
    with pytest.raises(OrbitError, match="altitude"):
        sso_tle(altitude_km=50.0)


def test_sub_satellite_point_round_trips_through_ecef() -> None:
    from sim.environment.frames import ecef_to_geodetic, geodetic_to_ecef

    for lat, lon, alt in [(43.2, 76.9, 0.8), (-89.0, -170.0, 530.0), (0.0, 0.0, 0.0), (60.0, 179.9, 530.0)]:
        back = ecef_to_geodetic(geodetic_to_ecef(lat, lon, alt))
        assert back[0] == pytest.approx(lat, abs=1e-7)
        assert back[1] == pytest.approx(lon, abs=1e-7)
        assert back[2] == pytest.approx(alt, abs=1e-5)
