"""Pointing: the ADCS driver against its simulated twin, and off-nadir planning against skyfield."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest

from flightsw.core.enums import AdcsMode, SlewStatus
from flightsw.imaging.planner import (
    CameraGeometry,
    NoCapture,
    OrbitPredictor,
    PlanLimits,
    Target,
    camera_view,
    geodetic_to_ecef,
)
from hal.drivers.adcs import AdcsUnit
from hal.i2c import I2CBus
from sim.camera import FixedScene
from sim.environment.orbit import default_tle
from sim.i2c_bus import SimI2CBus
from sim.parts.adcs import SimAdcs


@pytest.fixture
def sim_bus() -> SimI2CBus:
    return SimI2CBus(1, seed=21)


@pytest.fixture
def make_bus(sim_bus: SimI2CBus) -> Callable[[], I2CBus]:
    """The flying I2CBus over the simulated adapter (tests/i2c_fixtures.py does the same)."""
    return lambda: I2CBus("sim-1", lambda: sim_bus, recovery_hook=sim_bus.pulse_scl, backoff=0.0005)

CAMERA = CameraGeometry(6.5, 4.9)
POINTED = PlanLimits(min_sun_elevation_deg=10.0, horizon_s=2 * 86400.0, max_off_nadir_deg=30.0)
NADIR = PlanLimits(min_sun_elevation_deg=10.0, horizon_s=2 * 86400.0)


def _scene_over(lat: float, lon: float, alt_km: float = 530.0) -> FixedScene:
    """A satellite above (lat, lon) flying north at 7.1 km/s."""
    r = geodetic_to_ecef(lat, lon, alt_km)
    north = np.array([-math.sin(math.radians(lat)) * math.cos(math.radians(lon)),
                      -math.sin(math.radians(lat)) * math.sin(math.radians(lon)), math.cos(math.radians(lat))])
    v = 7.1 * north
    return FixedScene(lat, lon, 45.0, (float(r[0]), float(r[1]), float(r[2])),
                      (float(v[0]), float(v[1]), float(v[2])))


async def test_the_driver_slews_the_simulated_unit_and_reads_it_settle(
        sim_bus: SimI2CBus, make_bus: Callable[..., I2CBus]) -> None:
    now = [0.0]
    scene = _scene_over(43.2, 76.9)
    part = sim_bus.attach(SimAdcs(0x2A, None, clock=lambda: now[0], scene=scene, slew_rate_deg_s=2.0,
                                  settle_s=5.0))
    bus = make_bus()
    try:
        unit = AdcsUnit(bus)
        assert "0xad" in await unit.probe()
        first = await unit.status()
        assert first.mode is AdcsMode.SUN_POINTING and first.off_nadir_deg == pytest.approx(180.0, abs=0.01)
        target = (43.2, 79.5)  # ~210 km east of the track
        sight = geodetic_to_ecef(*target) - np.asarray(scene.r_ecef_km)
        sight /= np.linalg.norm(sight)
        lat, lon = math.radians(43.2), math.radians(76.9)
        down = -np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
        off_nadir = math.degrees(math.acos(float(np.dot(sight, down))))
        await unit.set_mode(AdcsMode.TARGET_TRACKING, *target)
        now[0] = 10.0  # 20 deg of a ~160 deg slew from the zenith
        moving = await unit.status()
        assert moving.mode is AdcsMode.TARGET_TRACKING and moving.slew is SlewStatus.SLEWING
        assert moving.error_deg == pytest.approx(180.0 - off_nadir - 20.0, abs=0.05)
        now[0] = 100.0  # there; settled only after settle_s more
        assert (await unit.status()).slew is SlewStatus.SLEWING
        now[0] = 105.0
        held = await unit.status()
        assert held.slew is SlewStatus.SETTLED and held.error_deg < 0.01
        assert np.allclose(part.boresight(), sight, atol=1e-4)
        assert held.off_nadir_deg == pytest.approx(off_nadir, abs=0.01)
        await unit.set_mode(AdcsMode.NADIR)
        now[0] = 120.0
        nadir = await unit.status()
        assert nadir.mode is AdcsMode.NADIR and nadir.off_nadir_deg < 0.01 and nadir.slew is SlewStatus.SLEWING
        part.jam()
        now[0] = 200.0
        assert (await unit.status()).slew is SlewStatus.FAULT
        with pytest.raises(ValueError, match="outside"):
            await unit.set_mode(AdcsMode.TARGET_TRACKING, 95.0, 0.0)
    finally:
        await bus.close()


def _off_track_target(predictor: OrbitPredictor, after_days: float, km: float) -> tuple[float, float, float]:
    """A daylit point ``km`` to the side of the ground track (and the UTC it is abeam)."""
    times = predictor.epoch_utc + after_days * 86400.0 + np.arange(0.0, 86400.0, 10.0)
    r, v = predictor.ecef(times)
    lat, lon, _ = predictor.subpoints(times)
    from flightsw.imaging.planner import sun_elevation_deg

    lit = np.nonzero((sun_elevation_deg(lat, lon, times) > 35.0) & (np.abs(lat) < 50.0))[0]
    i = int(lit[len(lit) // 2])
    side = np.cross(v[i], r[i])
    side /= np.linalg.norm(side)
    ground = geodetic_to_ecef(float(lat[i]), float(lon[i])) + km * side
    p = np.hypot(ground[0], ground[1])
    return float(np.degrees(np.arctan2(ground[2], p))), float(np.degrees(np.arctan2(ground[1], ground[0]))), float(times[i])


def test_off_nadir_planning_points_the_camera_at_the_target_checked_with_skyfield() -> None:
    warnings.simplefilter("ignore", RuntimeWarning)  # skyfield-data's IERS "expired" notice
    import skyfield_data  # noqa: F401  (the offline data skyfield needs)
    from skyfield.api import EarthSatellite, load, wgs84
    from skyfield.framelib import itrs

    predictor = OrbitPredictor(*default_tle())
    ts = load.timescale(builtin=True)
    sat = EarthSatellite(*predictor.lines, ts=ts)
    assert skyfield_data is not None and os.path.isdir(skyfield_data.get_skyfield_data_path())
    for km in (150.0, -220.0):
        lat, lon, abeam = _off_track_target(predictor, 0.3, km)
        target = Target(lat, lon, 2000.0)
        start = abeam - 600.0
        nadir = predictor.plan_capture(target, start, CAMERA, NADIR)
        chance = predictor.plan_capture(target, start, CAMERA, POINTED).opportunity
        assert chance is not None and chance.pointed and abs(chance.utc - abeam) < 30.0
        # nadir only, this pass does not frame it (a later pass might)
        assert nadir.opportunity is None or nadir.opportunity.utc > abeam + 3600.0
        t = ts.from_datetime(datetime.fromtimestamp(chance.utc, tz=UTC))
        position = sat.at(t)
        r = position.frame_xyz_and_velocity(itrs)[0].km
        sub = wgs84.geographic_position_of(position)
        phi, lam = sub.latitude.radians, sub.longitude.radians
        nadir_dir = -np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)])
        sight = wgs84.latlon(lat, lon).itrs_xyz.km - r
        sight /= np.linalg.norm(sight)
        off_nadir = math.degrees(math.acos(float(np.dot(sight, nadir_dir))))
        assert off_nadir == pytest.approx(chance.off_nadir_deg, abs=0.05)
        assert 10.0 < off_nadir <= POINTED.max_off_nadir_deg
        centre = wgs84.latlon(*chance.view.footprint.centre).itrs_xyz.km - r
        centre /= np.linalg.norm(centre)
        assert math.degrees(math.acos(min(1.0, float(np.dot(centre, sight))))) < 0.05  # centred on it
        # the target inside the footprint polygon, each corner's ray from skyfield's position
        corners = [wgs84.latlon(a, b).itrs_xyz.km - r for a, b in chance.view.footprint.corners]
        normals = [np.cross(corners[i], corners[(i + 1) % 4]) for i in range(4)]
        signs = {bool(np.dot(n, sight) > 0) for n in normals}
        assert len(signs) == 1, "target outside the pointed footprint"
        assert abs(chance.view.along_deg) < 0.01 and abs(chance.view.across_deg) < 0.01


def test_the_pointed_footprint_leans_toward_the_target_and_the_limit_refuses() -> None:
    predictor = OrbitPredictor(*default_tle())
    lat, lon, abeam = _off_track_target(predictor, 0.3, 500.0)  # ~43 deg off nadir
    plan = predictor.plan_capture(Target(lat, lon, 2000.0), abeam - 600.0, CAMERA,
                                  PlanLimits(min_sun_elevation_deg=10.0, horizon_s=1800.0, max_off_nadir_deg=30.0))
    assert plan.opportunity is None and plan.reason is NoCapture.NEVER_IN_FRAME
    assert "pointed up to 30 deg" in plan.detail
    r, v = predictor.ecef(np.array([abeam]))
    nadir = camera_view(r[0], v[0], CAMERA)
    sight = geodetic_to_ecef(lat, lon) - r[0]
    pointed = camera_view(r[0], v[0], CAMERA, (lat, lon), sight)
    assert pointed.off_nadir_deg > 40.0 and abs(pointed.across_deg) < 1e-6
    assert nadir.footprint.centre != pointed.footprint.centre
    with pytest.raises(ValueError, match="max_off_nadir_deg"):
        PlanLimits(max_off_nadir_deg=75.0)
