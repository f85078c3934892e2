"""Sun and shadow: compared with skyfield/DE421 and with the analytic cylindrical shadow."""

from __future__ import annotations

import math
import os
import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from sim.environment.frames import dot, norm
from sim.environment.orbit import Orbit
from sim.environment.sun import (
    EARTH_SHADOW_RADIUS_KM,
    beta_angle_deg,
    cylindrical_eclipse_fraction,
    illumination,
    sun_position_km,
)


@pytest.fixture(scope="module")
def skyfield_sun():  # type: ignore[no-untyped-def]
    warnings.simplefilter("ignore", RuntimeWarning)  # skyfield-data's IERS file "expired" notice
    import skyfield_data
    from skyfield.api import load, load_file
    from skyfield.sgp4lib import TEME

    ts = load.timescale(builtin=True)
    eph = load_file(os.path.join(skyfield_data.get_skyfield_data_path(), "de421.bsp"))

    def sun_teme_km(when: datetime) -> np.ndarray:
        t = ts.from_datetime(when)
        return (eph["sun"] - eph["earth"]).at(t).frame_xyz(TEME).km

    return sun_teme_km, ts


def test_sun_position_agrees_with_de421_within_a_hundredth_of_a_degree(skyfield_sun) -> None:  # type: ignore[no-untyped-def]
    sun_teme_km, _ = skyfield_sun
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(0, 365, 23):
        when = start + timedelta(days=day, hours=day % 24)
        ours = sun_position_km(when.timestamp())
        ref = sun_teme_km(when)
        angle = math.degrees(math.acos(min(1.0, dot(ours, tuple(ref)) / (norm(ours) * float(np.linalg.norm(ref))))))
        assert angle < 0.012, f"{when}: {angle:.4f} deg"
        assert norm(ours) == pytest.approx(float(np.linalg.norm(ref)), rel=2e-4)


def test_shadow_states() -> None:
    sun = sun_position_km(1780272000.0)
    s = np.array(sun) / np.linalg.norm(sun)
    day_side = tuple(s * 6908.0)
    night_side = tuple(-s * 6908.0)
    assert illumination(day_side, sun).lit_fraction == 1.0
    assert illumination(night_side, sun).in_umbra
    # walk across the terminator: the lit fraction falls monotonically through a penumbra
    perpendicular = np.cross(s, [0.0, 0.0, 1.0])
    perpendicular /= np.linalg.norm(perpendicular)
    fractions = []
    for angle in np.linspace(math.radians(105), math.radians(125), 400):
        r = 6908.0 * (math.cos(angle) * s + math.sin(angle) * perpendicular)
        fractions.append(illumination(tuple(r), sun).lit_fraction)
    assert fractions[0] == 1.0 and fractions[-1] == 0.0
    assert all(b <= a + 1e-12 for a, b in zip(fractions, fractions[1:], strict=False))
    assert any(0.0 < f < 1.0 for f in fractions)
    with pytest.raises(ValueError, match="inside the Earth"):
        illumination((100.0, 0.0, 0.0), sun)


def test_eclipse_fraction_matches_cylindrical_formula_for_the_beta_angle() -> None:
    orbit = Orbit.default()
    for start in (orbit.epoch_seconds, orbit.epoch_seconds + 90 * 86400.0):
        period = orbit.two_body_period_s
        times = np.arange(start, start + 3 * period, 2.0)
        shadowed = 0
        altitudes = []
        for t in times:
            st = orbit.state(float(t))
            altitudes.append(norm(st.r_teme_km) - EARTH_SHADOW_RADIUS_KM)
            shadowed += illumination(st.r_teme_km, sun_position_km(float(t))).lit_fraction < 0.5
        st = orbit.state(start)
        beta = beta_angle_deg(st.r_teme_km, st.v_teme_km_s, sun_position_km(start))
        expected = cylindrical_eclipse_fraction(float(np.mean(altitudes)), beta, EARTH_SHADOW_RADIUS_KM)
        assert 0.30 < expected < 0.40
        assert shadowed / len(times) == pytest.approx(expected, abs=0.01)


def test_shadow_agrees_with_skyfield_is_sunlit(skyfield_sun) -> None:  # type: ignore[no-untyped-def]
    """An independent implementation (skyfield, point sun, Earth radius 6378 km) over one orbit."""
    import skyfield_data
    from skyfield.api import EarthSatellite, load_file

    _, ts = skyfield_sun
    eph = load_file(os.path.join(skyfield_data.get_skyfield_data_path(), "de421.bsp"))
    orbit = Orbit.default()
    sat = EarthSatellite(*orbit.tle, ts=ts)
    start = orbit.epoch_seconds
    seconds = np.arange(0.0, orbit.two_body_period_s, 10.0)
    t = ts.from_datetimes([datetime.fromtimestamp(start + s, tz=UTC) for s in seconds])
    theirs = sat.at(t).is_sunlit(eph)
    ours = np.array([illumination(orbit.state(start + s).r_teme_km, sun_position_km(start + s)).lit_fraction >= 0.5 for s in seconds])
    # the 20 km opaque-atmosphere margin moves each shadow edge by a few seconds only
    assert np.count_nonzero(theirs != ours) <= 2
    assert 0.3 < 1 - ours.mean() < 0.4
