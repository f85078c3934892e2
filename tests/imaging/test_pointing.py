"""Pointing: the ADCS driver against its simulated twin, and off-nadir planning against skyfield."""

from __future__ import annotations

import asyncio
import math
import os
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flightsw.app import Satellite
from flightsw.components.housekeeping import build_hardware
from flightsw.config import ConfigError
from flightsw.core.commands import Completion
from flightsw.core.enums import AdcsMode, SlewStatus
from flightsw.core.ports import CAMERA_SCENE, Ports
from flightsw.imaging.component import ImagingComponent
from flightsw.imaging.planner import (
    CameraGeometry,
    NoCapture,
    OrbitPredictor,
    PlanLimits,
    Target,
    camera_view,
    geodetic_to_ecef,
    great_circle_km,
)
from flightsw.imaging.subsystem import build_imaging, connect_imaging
from flightsw.testing import ResponseLog, make_satellite, mission_config
from hal.camera import CaptureSettings
from hal.drivers.adcs import AdcsUnit, to_centideg
from hal.i2c import I2CBus
from sim.camera import FixedScene, SimCamera
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


ADCS_TOML = """
[imaging]
slew_lead_s = 120.0
settle_timeout_s = 110.0
max_off_nadir_deg = 30.0

[[devices]]
name = "camera"
kind = "camera"
backend = "sim"

[[devices]]
name = "adcs"
kind = "adcs"
backend = "sim"
slew_rate_deg_s = 2.0
settle_s = 5.0
"""


async def _run(sat: Any, log: ResponseLog, name: str, *args: Any, timeout: float = 60.0) -> Any:
    verdict = sat.commands.submit(sat.dictionary.command(name).id, list(args))
    assert verdict.accepted, verdict
    seq = max(r.seq for r in log.items if r.name.endswith(name.split(".")[1]))
    return await log.wait_completion(seq, timeout)


@pytest.mark.virtual_time
async def test_a_capture_over_an_off_track_target_slews_settles_captures_and_returns(
        tmp_path: Path, sat_runner: Any) -> None:
    predictor = OrbitPredictor(*default_tle())
    lat, lon, abeam = _off_track_target(predictor, 0.3, 150.0)
    lat, lon = round(lat, 3), round(lon, 3)
    loop = asyncio.get_running_loop()
    t0 = abeam - 1200.0 - loop.time()

    def scene() -> FixedScene:  # the orbit under the simulated ADCS and camera: the TLE's
        utc = t0 + loop.time()
        r, v = predictor.ecef(np.array([utc]))
        below = predictor.subpoint(utc)
        return FixedScene(below.lat_deg, below.lon_deg, 45.0, tuple(r[0]), tuple(v[0]))

    ports = Ports()
    ports.provide(CAMERA_SCENE, scene, by="test")
    sat = Satellite(mission_config(tmp_path, ADCS_TOML), subsystems=[build_hardware, build_imaging],
                    utc_source=lambda: t0 + loop.time(), ports=ports)
    sat = await sat_runner.start(sat)
    imaging = sat.component("imaging")
    assert isinstance(imaging, ImagingComponent)
    part = sat.component("hw").hardware.adcs_part  # type: ignore[attr-defined]
    log = ResponseLog(sat)
    events: list[Any] = []
    sat.events.add_sink(events.append)
    await asyncio.wait_for(imaging._ready.wait(), 10)
    assert (await _run(sat, log, "imaging.SET_TLE", *predictor.lines)).completion is Completion.SUCCESS
    await _run(sat, log, "imaging.SET_CAMERA", 2000, 1.0, 64, 48, 80)
    done = await _run(sat, log, "imaging.CAPTURE_OVER_TARGET", lat, lon, 500.0)
    assert done.completion is Completion.SUCCESS, done.detail
    planned = next(e for e in events if e.name == "imaging.capture_planned")
    assert 10.0 < float(planned.args["off_nadir_deg"]) < 30.0
    [plan] = imaging.planned()
    assert plan["target"] == pytest.approx((lat, lon), abs=1e-4)
    while imaging.channel("captures").value != 1 and loop.time() < 1500.0:
        await asyncio.sleep(5.0)
    assert imaging.channel("captures").value == 1
    settled = next(e for e in events if e.name == "imaging.pointing_settled")
    assert 5.0 <= float(settled.args["settle_s"]) < 110.0  # ~150 deg from the zenith at 2 deg/s
    modes = [e.args["mode"] for e in events if e.name == "adcs.mode_commanded"]
    assert modes == ["TARGET_TRACKING", "SUN_POINTING"]  # slewed to the target, then back
    assert imaging._catalog is not None
    record = await imaging._db(imaging._catalog.get, 1)
    assert abs(record.utc - plan["utc"]) < 2.0
    pointed = predictor.view(record.utc, CAMERA, Target(lat, lon, 2000.0), pointed=True)
    assert record.footprint["centre"] == pytest.approx(list(pointed.footprint.centre), abs=1e-3)
    assert great_circle_km(*record.footprint["centre"], lat, lon) < 0.5  # the target in the middle
    # the simulated camera looked along the simulated ADCS's boresight: the same ground
    seen = imaging.camera.last_footprint  # type: ignore[attr-defined]
    assert seen is not None
    for got, want in zip(seen, record.footprint["corners"], strict=True):
        assert great_circle_km(*got, *want) < 2.0

    # a jammed unit: refused with the reason, no image, the ADCS back in its previous mode (here
    # tracking another point, which it resumes)
    assert (await _run(sat, log, "adcs.SET_MODE", 3, 10.0, 20.0)).completion is Completion.SUCCESS
    part.jam()
    now = t0 + loop.time()
    done = await _run(sat, log, "imaging.CAPTURE_TRACKED", now + 60.0, lat, lon, "jammed")
    assert done.completion is Completion.FAILURE and done.detail.startswith("adcs_fault:"), done.detail
    last = [e for e in events if e.name == "adcs.mode_commanded"][-1]
    assert (last.args["mode"], last.args["target"]) == ("TARGET_TRACKING", "10.000, 20.000")
    # a unit too slow to settle: refused after settle_timeout_s
    part.jam(False)
    part.slew_rate_deg_s = 0.01
    await _run(sat, log, "adcs.SET_MODE", 1, 0.0, 0.0)
    done = await _run(sat, log, "imaging.CAPTURE_TRACKED", t0 + loop.time() + 60.0, lat, lon, "slow", timeout=300.0)
    assert done.completion is Completion.FAILURE and done.detail.startswith("adcs_not_settled:"), done.detail
    assert imaging.channel("captures").value == 1
    refused = [e.args["reason"] for e in events if e.name == "imaging.pointing_failed"]
    assert refused == ["adcs_fault", "adcs_not_settled"]
    assert [e.args["mode"] for e in events if e.name == "adcs.mode_commanded"][-1] == "SUN_POINTING"


async def test_without_an_adcs_planning_stays_nadir_only_and_a_tracked_capture_is_refused(
        tmp_path: Path, sat_runner: Any) -> None:
    predictor = OrbitPredictor(*default_tle())
    lat, lon, abeam = _off_track_target(predictor, 0.3, 150.0)
    clock = {"utc": abeam - 1200.0}
    imaging = ImagingComponent("imaging", 0x0500, SimCamera(FixedScene(lat, lon, 45.0)), camera_geometry=CAMERA,
                               plan_limits=PlanLimits(horizon_s=1800.0, max_off_nadir_deg=30.0))
    sat = await sat_runner.start(make_satellite(tmp_path / "sat", [imaging], utc_source=lambda: clock["utc"]))
    connect_imaging(sat.ports, imaging)
    log = ResponseLog(sat)
    await asyncio.wait_for(imaging._ready.wait(), 10)
    assert (await _run(sat, log, "imaging.SET_TLE", *predictor.lines)).completion is Completion.SUCCESS
    done = await _run(sat, log, "imaging.CAPTURE_OVER_TARGET", lat, lon, 500.0)
    assert done.completion is Completion.FAILURE and done.detail.startswith("never_in_frame:"), done.detail
    assert "pointed" not in done.detail
    done = await _run(sat, log, "imaging.CAPTURE_TRACKED", clock["utc"] + 60.0, lat, lon, "x")
    assert done.completion is Completion.FAILURE and done.detail.startswith("adcs_absent:"), done.detail


def test_the_simulated_camera_looks_where_the_simulated_adcs_points() -> None:
    now = [0.0]
    scene = _scene_over(43.2, 76.9)
    part = SimAdcs(0x2A, None, clock=lambda: now[0], scene=scene, slew_rate_deg_s=3.0, settle_s=0.0)
    target = (43.5, 78.9)
    part.write(0x02, to_centideg(target[0]).to_bytes(2, "big"))
    part.write(0x04, to_centideg(target[1]).to_bytes(2, "big"))
    part.write(0x01, bytes([int(AdcsMode.TARGET_TRACKING)]))
    now[0] = 120.0

    def footprint(r: Any, v: Any, boresight: Any = None) -> Any:
        axis = None if boresight is None else np.asarray(boresight)
        return camera_view(r, v, CAMERA, boresight=axis).footprint.corners

    camera = SimCamera(scene, seed=3, footprint=footprint, pointing=part.boresight)
    camera.open()
    frame = camera.capture(CaptureSettings(width=64, height=48))
    corners = frame.metadata["SimScene"]["footprint"]
    centre_lat = sum(c[0] for c in corners) / 4
    centre_lon = sum(c[1] for c in corners) / 4
    assert great_circle_km(centre_lat, centre_lon, *target) < 1.0
    assert great_circle_km(centre_lat, centre_lon, 43.2, 76.9) > 150.0  # not below the satellite


@pytest.mark.parametrize(("extra", "message"), [
    ('[[devices]]\nname = "adcs"\nkind = "adcs"\nslew_rate = 2.0\n', "devices[0].slew_rate: unknown key"),
    ('[[devices]]\nname = "adcs"\nkind = "adcs"\naddress = 0x40\n', "devices[0].address: 64 outside [42, 43]"),
    ('[[devices]]\nname = "a"\nkind = "adcs"\n[[devices]]\nname = "b"\nkind = "adcs"\naddress = 0x2B\n',
     "devices: only one adcs is supported"),
    ("[imaging]\nmax_off_nadir_deg = 75.0\n", "imaging.max_off_nadir_deg: 75.0 outside [0, 60]"),
])
def test_adcs_config_mistakes_are_named_in_one_line(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        mission_config(tmp_path, extra)
    assert message in str(err.value) and "\n" not in str(err.value)


async def test_a_corrupted_mode_code_reads_as_a_bus_error(sim_bus: SimI2CBus, make_bus: Callable[[], I2CBus]) -> None:
    part = sim_bus.attach(SimAdcs(0x2A, None, clock=lambda: 0.0))
    bus = make_bus()
    try:
        unit = AdcsUnit(bus)
        part.advance = lambda now: part.put("STATUS", 7 << 2)  # type: ignore[method-assign]
        with pytest.raises(OSError, match="STATUS.MODE 7 is no mode"):
            await unit.status()
    finally:
        await bus.close()
