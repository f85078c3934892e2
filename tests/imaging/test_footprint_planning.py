"""Footprint- and daylight-aware capture planning, checked against skyfield."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flightsw.config import ConfigError
from flightsw.core.commands import Completion
from flightsw.ground.georef import georeference
from flightsw.imaging.component import ImagingComponent
from flightsw.imaging.planner import (
    CameraGeometry,
    NoCapture,
    OrbitPredictor,
    PlanLimits,
    Target,
    camera_view,
    great_circle_km,
    pixel_of,
    sun_elevation_deg,
)
from flightsw.imaging.subsystem import connect_imaging
from flightsw.testing import ResponseLog, make_satellite, mission_config
from hal.camera import CaptureSettings
from sim.camera import FixedScene, SimCamera, surface_at
from sim.environment.orbit import default_tle

CAMERA = CameraGeometry(6.5, 4.9)  # ~60 km x 45 km from 530 km
DAYS = 3
LIMITS = PlanLimits(min_sun_elevation_deg=10.0, horizon_s=DAYS * 86400.0, max_tle_age_s=7 * 86400.0,
                    footprint_margin_km=2.0)


def _predictor() -> OrbitPredictor:
    return OrbitPredictor(*default_tle())


def _offset(lat: float, lon: float, bearing_deg: float, km: float) -> tuple[float, float]:
    """A point ``km`` from (lat, lon) along a bearing (spherical Earth, small distances)."""
    dlat = km * math.cos(math.radians(bearing_deg)) / 111.2
    dlon = km * math.sin(math.radians(bearing_deg)) / (111.2 * max(math.cos(math.radians(lat)), 1e-3))
    lon2 = (lon + dlon + 180.0) % 360.0 - 180.0
    return max(-90.0, min(90.0, lat + dlat)), lon2


def _targets(predictor: OrbitPredictor) -> dict[str, tuple[float, float]]:
    """A dozen targets under the ground track in 3 days, a little off it (cross-track 0-20 km):
    polar, equatorial, southern, both sides of the dateline, a pass around midnight UTC."""
    epoch = predictor.epoch_utc
    times = epoch + np.arange(0.0, DAYS * 86400.0, 10.0)
    lat, lon, _ = predictor.subpoints(times)
    sun = sun_elevation_deg(lat, lon, times)
    lit = sun > 25.0
    day = (times - 86400.0 * np.floor(times / 86400.0))
    picks = {
        "north_polar": np.nonzero(lit & (lat > 78.0))[0],
        "south_high": np.nonzero((sun > 14.0) & (lat < -45.0))[0],  # June: the far south is dark
        "equator_a": np.nonzero(lit & (np.abs(lat) < 0.3))[0],
        "equator_b": np.nonzero(lit & (np.abs(lat) < 0.3))[0][::-1],
        "south_mid": np.nonzero(lit & (lat < -30.0) & (lat > -40.0))[0],
        "south_africa": np.nonzero(lit & (np.abs(lat + 33.9) < 0.2) & (np.abs(lon - 18.4) < 15.0))[0],
        "dateline_east": np.nonzero(lit & (lon > 179.7))[0],
        "dateline_west": np.nonzero(lit & (lon < -179.7))[0],
        "midnight_utc": np.nonzero(lit & (day > 60.0) & (day < 600.0) & (times > epoch + 3600.0))[0],
        "north_mid": np.nonzero(lit & (np.abs(lat - 43.2) < 0.3))[0],
        "day3": np.nonzero(lit & (times > epoch + 2.5 * 86400) & (lat > 50.0))[0],
        "tropic": np.nonzero(lit & (np.abs(lat - 23.4) < 0.3))[0][::-1],
    }
    rng = np.random.default_rng(21)
    targets = {}
    for name, idx in picks.items():
        assert len(idx), name
        i = int(idx[len(idx) // 3])
        j = min(i + 1, len(times) - 1)
        heading = math.degrees(math.atan2(math.radians(lon[j] - lon[i]) * math.cos(math.radians(lat[i])),
                                          math.radians(lat[j] - lat[i])))
        targets[name] = _offset(float(lat[i]), float(lon[i]), heading + 90.0, float(rng.uniform(-20.0, 20.0)))
    return targets


def _all_captures(predictor: OrbitPredictor, target: Target, start: float) -> list:
    plans = []
    end = start + DAYS * 86400.0
    while start < end:
        limits = PlanLimits(LIMITS.min_sun_elevation_deg, end - start, LIMITS.max_tle_age_s,
                            LIMITS.footprint_margin_km)
        plan = predictor.plan_capture(target, start, CAMERA, limits)
        if plan.opportunity is None:
            break
        plans.append(plan.opportunity)
        start = plan.opportunity.utc + 60.0
    return plans


def test_every_planned_capture_frames_its_target_in_daylight_checked_with_skyfield() -> None:
    warnings.simplefilter("ignore", RuntimeWarning)  # skyfield-data's IERS "expired" notice
    import skyfield_data
    from skyfield.api import EarthSatellite, load, load_file, wgs84
    from skyfield.framelib import itrs

    began = time.perf_counter()
    predictor = _predictor()
    ts = load.timescale(builtin=True)
    eph = load_file(os.path.join(skyfield_data.get_skyfield_data_path(), "de421.bsp"))
    sat = EarthSatellite(*predictor.lines, ts=ts)
    targets = _targets(predictor)
    assert len(targets) == 12
    captures = 0
    worst_subpoint_km = worst_off_track_km = worst_sun = 0.0
    worst_edge = -1.0  # largest |angle| / half field of view
    for name, (lat, lon) in targets.items():
        target = Target(lat, lon, 100.0)
        planned = _all_captures(predictor, target, predictor.epoch_utc)
        assert planned, f"{name} ({lat:.3f}, {lon:.3f}) got no capture"
        for chance in planned:
            captures += 1
            t = ts.from_datetime(datetime.fromtimestamp(chance.utc, tz=UTC))
            position = sat.at(t)
            r, v = position.frame_xyz_and_velocity(itrs)
            r_km, v_kms = r.km, v.km_per_s
            sub = wgs84.geographic_position_of(position)
            # the camera frame, built independently of the planner: geodetic nadir, ground track
            phi, lam = sub.latitude.radians, sub.longitude.radians
            z = -np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)])
            x = v_kms - np.dot(v_kms, z) * z
            x /= np.linalg.norm(x)
            y = np.cross(z, x)
            d = wgs84.latlon(lat, lon).itrs_xyz.km - r_km
            along = math.degrees(math.atan2(np.dot(d, x), np.dot(d, z)))
            across = math.degrees(math.atan2(np.dot(d, y), np.dot(d, z)))
            worst_edge = max(worst_edge, abs(along) / (CAMERA.fov_along_deg / 2),
                             abs(across) / (CAMERA.fov_across_deg / 2))
            assert abs(along) <= CAMERA.fov_along_deg / 2, (name, along)
            assert abs(across) <= CAMERA.fov_across_deg / 2, (name, across)
            alt, _az, _d = (eph["earth"] + wgs84.latlon(lat, lon)).at(t).observe(eph["sun"]).apparent().altaz(
                temperature_C=None, pressure_mbar=0)
            assert alt.degrees >= LIMITS.min_sun_elevation_deg - 0.05, (name, alt.degrees)
            worst_sun = max(worst_sun, abs(alt.degrees - chance.sun_elevation_deg))
            worst_subpoint_km = max(worst_subpoint_km, float(great_circle_km(
                sub.latitude.degrees, sub.longitude.degrees, chance.view.subpoint.lat_deg,
                chance.view.subpoint.lon_deg)))
            off_track = float(great_circle_km(sub.latitude.degrees, sub.longitude.degrees, lat, lon))
            worst_off_track_km = max(worst_off_track_km, abs(off_track - chance.off_track_km))
            assert chance.off_nadir_deg <= math.hypot(CAMERA.fov_across_deg, CAMERA.fov_along_deg) / 2
    # a planning window that starts before midnight UTC and finds the pass just after it
    lat, lon = targets["midnight_utc"]
    first = _all_captures(predictor, Target(lat, lon, 100.0), predictor.epoch_utc + 3600.0)
    after_midnight = next(c for c in first if 0.0 < c.utc % 86400.0 < 900.0)
    start = after_midnight.utc - after_midnight.utc % 86400.0 - 600.0  # 23:50 the day before
    plan = predictor.plan_capture(Target(lat, lon, 100.0), start, CAMERA, LIMITS)
    assert plan.opportunity is not None and abs(plan.opportunity.utc - after_midnight.utc) < 0.5
    assert datetime.fromtimestamp(start, UTC).date() != datetime.fromtimestamp(plan.opportunity.utc, UTC).date()
    print(f"\n{captures} captures of {len(targets)} targets over {DAYS} d: worst |angle|/half-FOV "
          f"{worst_edge:.3f}, sub-satellite point within {1000 * worst_subpoint_km:.0f} m, off-track within "
          f"{1000 * worst_off_track_km:.0f} m, Sun within {worst_sun:.3f} deg of skyfield")
    assert captures >= 12
    assert worst_subpoint_km < 0.1 and worst_off_track_km < 0.1 and worst_sun < 0.05
    assert time.perf_counter() - began < 20.0


def test_a_pass_a_few_seconds_after_the_start_is_not_skipped() -> None:
    predictor = _predictor()
    epoch = predictor.epoch_utc
    ahead = predictor.subpoint(epoch + 5000.0)
    target = Target(ahead.lat_deg, ahead.lon_deg, 50.0)
    reference = predictor.next_overflight(target, epoch + 4000.0, horizon_s=3000.0)
    assert reference is not None and abs(reference.utc - (epoch + 5000.0)) < 1.0
    for lead in (0.0, 2.0, 5.0, 9.0, 15.0, 19.0):
        found = predictor.next_overflight(target, reference.utc - lead, horizon_s=600.0)
        assert found is not None and abs(found.utc - reference.utc) < 0.5, lead


def test_no_capture_gives_one_clear_reason() -> None:
    predictor = _predictor()
    epoch = predictor.epoch_utc
    times = epoch + np.arange(0.0, 86400.0, 10.0)
    lat, lon, _ = predictor.subpoints(times)
    sun = sun_elevation_deg(lat, lon, times)
    limits = PlanLimits(min_sun_elevation_deg=5.0, horizon_s=86400.0, max_tle_age_s=7 * 86400.0)

    # in the picture only at night (the descending node is at 10:30, so ascending passes are dark)
    i = int(np.nonzero(sun < -30.0)[0][0])
    dark = Target(float(lat[i]), float(lon[i]), 100.0)
    plan = predictor.plan_capture(dark, epoch, CAMERA, limits)
    assert plan.opportunity is None and plan.reason is NoCapture.ONLY_AT_NIGHT, plan.detail

    # between two tracks: never in frame (though within the old 300-600 km advice)
    i = int(np.nonzero(sun > 30.0)[0][0])
    gap = Target(*_offset(float(lat[i]), float(lon[i]), 90.0, 300.0), 600.0)
    plan = predictor.plan_capture(gap, epoch, CAMERA, PlanLimits(horizon_s=6 * 3600.0))
    assert plan.opportunity is None and plan.reason is NoCapture.NEVER_IN_FRAME, plan.detail

    # an old TLE plans nothing: now, or when it grows too old before the first usable pass
    lit = Target(float(lat[i]), float(lon[i]), 100.0)
    assert predictor.plan_capture(lit, epoch, CAMERA, limits).opportunity is not None
    plan = predictor.plan_capture(lit, epoch + 10 * 86400.0, CAMERA, limits)
    assert plan.reason is NoCapture.TLE_TOO_OLD and "10.0 d old" in plan.detail
    plan = predictor.plan_capture(lit, epoch, CAMERA, PlanLimits(max_tle_age_s=0.5 * (times[i] - epoch)))
    assert plan.reason is NoCapture.TLE_TOO_OLD, plan.detail


def test_radius_is_limited_to_the_horizon() -> None:
    assert Target(0.0, 0.0, 2500.0).radius_km == 2500.0
    with pytest.raises(ValueError, match="outside"):
        Target(0.0, 0.0, 2600.0)


def test_camera_field_of_view_from_config(tmp_path: Path) -> None:
    assert mission_config(tmp_path).imaging.fov() == (6.5, 4.9)
    config = mission_config(tmp_path, "[imaging]\nsensor_mm = [6.287, 4.712]\nfocal_length_mm = 50.0\n")
    across, along = config.imaging.fov()
    assert CameraGeometry.from_sensor(6.287, 4.712, 50.0) == CameraGeometry(across, along)
    assert 7.19 < across < 7.20
    with pytest.raises(ConfigError, match=r"imaging\.fov_deg"):
        mission_config(tmp_path, "[imaging]\nfov_deg = [6.0, 4.0]\nfocal_length_mm = 50.0\nsensor_mm = [6.0, 4.0]\n")
    with pytest.raises(ConfigError, match=r"imaging\.focal_length_mm"):
        mission_config(tmp_path, "[imaging]\nsensor_mm = [6.0, 4.0]\n")
    with pytest.raises(ConfigError, match=r"imaging\.max_tle_age_days"):
        mission_config(tmp_path, "[imaging]\nmax_tle_age_days = 0\n")


def test_the_simulated_camera_draws_the_ground_where_the_footprint_says() -> None:
    predictor = _predictor()
    seed, width, height = 5, 320, 240
    rng = np.random.default_rng(3)
    chosen = None
    for t in predictor.epoch_utc + np.arange(600.0, 86400.0, 120.0):
        sub = predictor.subpoint(float(t))
        if sun_elevation_deg(sub.lat_deg, sub.lon_deg, float(t)) < 30.0:
            continue
        view = predictor.view(float(t), CAMERA)
        ref = float(np.mean([c[0] for c in view.footprint.corners]))
        lats = sub.lat_deg + rng.uniform(-0.15, 0.15, 60)
        lons = sub.lon_deg + rng.uniform(-0.15, 0.15, 60) / max(math.cos(math.radians(sub.lat_deg)), 0.1)
        land, cloud = surface_at(lats, lons, ref, seed)
        clear = cloud == 0.0
        if clear.sum() >= 30 and 0.3 < land[clear].mean() < 0.7:  # a clear coast in the frame
            chosen = (float(t), view, lats[clear], lons[clear], land[clear])
            break
    assert chosen is not None
    t, view, lats, lons, land = chosen
    r, v = predictor.ecef(np.array([t]))
    scene = FixedScene(view.subpoint.lat_deg, view.subpoint.lon_deg, 45.0, tuple(r[0]), tuple(v[0]))
    camera = SimCamera(scene, seed=seed,
                       footprint=lambda r, v: camera_view(r, v, CAMERA).footprint.corners)
    camera.open()
    frame = camera.capture(CaptureSettings(width=width, height=height, output="rgb"))
    assert frame.rgb is not None
    assert frame.metadata["SimScene"]["footprint"] == view.footprint.corners  # the flight's function
    rgb = frame.rgb.astype(float)

    def agreement(mirror: bool) -> float:
        hits = 0
        inside = 0
        for lat, lon, is_land in zip(lats, lons, land, strict=True):
            target_view = predictor.view(t, CAMERA, Target(float(lat), float(lon), 100.0))
            column, row = pixel_of(target_view, CAMERA, width, height)
            if not (2 <= column < width - 2 and 2 <= row < height - 2):
                continue
            col = int(width - 1 - column) if mirror else int(column)
            line = int(height - 1 - row) if mirror else int(row)
            patch = rgb[line - 1:line + 2, col - 1:col + 2]
            looks_like_sea = float(np.mean(patch[..., 2] - patch[..., 0])) > 6.0
            inside += 1
            hits += looks_like_sea != bool(is_land)
        assert inside >= 25
        return hits / inside

    right, mirrored = agreement(mirror=False), agreement(mirror=True)
    print(f"\nland/sea where the metadata says: {right:.0%}; turned half a turn: {mirrored:.0%}")
    assert right >= 0.9
    assert mirrored < 0.75  # the orientation matters: top is ahead, left is left


class SlowCamera(SimCamera):
    """A camera whose capture takes two seconds of onboard UTC."""

    def __init__(self, clock: dict[str, float], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def capture(self, settings: CaptureSettings) -> Any:
        self.clock["utc"] += 2.0
        return super().capture(settings)


async def _run(sat: Any, log: ResponseLog, name: str, *args: Any) -> Any:
    verdict = sat.commands.submit(sat.dictionary.command(f"imaging.{name}").id, list(args))
    assert verdict.accepted, verdict
    seq = max(r.seq for r in log.items if r.name.endswith(name))
    return await log.wait_completion(seq, 30.0)


async def test_capture_stamps_the_exposure_and_catalogs_its_footprint_and_the_ground_georeferences_it(
        tmp_path: Path, sat_runner: Any) -> None:
    predictor = _predictor()
    times = predictor.epoch_utc + np.arange(0.0, 86400.0, 30.0)
    lat, lon, _ = predictor.subpoints(times)
    sun = sun_elevation_deg(lat, lon, times)
    lit = int(np.nonzero(sun > 30.0)[0][0])
    clock = {"utc": float(times[lit])}
    camera = SlowCamera(clock, FixedScene(float(lat[lit]), float(lon[lit]), 45.0), seed=1)
    imaging = ImagingComponent("imaging", 0x0500, camera, camera_geometry=CAMERA,
                               plan_limits=PlanLimits(horizon_s=4 * 3600.0))
    sat = await sat_runner.start(make_satellite(tmp_path / "sat", [imaging], utc_source=lambda: clock["utc"]))
    connect_imaging(sat.ports, imaging)
    log = ResponseLog(sat)
    events: list[Any] = []
    sat.events.add_sink(events.append)
    await asyncio.wait_for(imaging._ready.wait(), 10)
    assert (await _run(sat, log, "SET_TLE", *predictor.lines)).completion is Completion.SUCCESS
    await _run(sat, log, "SET_CAMERA", 2000, 1.0, 64, 48, 80)

    started = clock["utc"]
    assert (await _run(sat, log, "CAPTURE_NOW")).completion is Completion.SUCCESS
    assert imaging._catalog is not None
    record = await imaging._db(imaging._catalog.get, 1)
    assert record.utc == pytest.approx(started + 1.0)  # the middle of the camera call, not its start
    expected = predictor.view(record.utc, CAMERA).footprint
    assert record.footprint == expected.to_json()
    below = predictor.subpoint(record.utc)
    assert (record.lat, record.lon) == pytest.approx((below.lat_deg, below.lon_deg))

    # the ground: catalog and thumbnail downloaded -> GeoJSON and world file beside the image
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "catalog.json").write_bytes(imaging._export_catalog().read_bytes())
    thumbnail = downloads / "img000001_thumbnail.jpg"
    thumbnail.write_bytes(imaging._store.path(1, "thumbnail").read_bytes())
    written = georeference(downloads)
    assert sorted(p.name for p in written) == ["img000001_thumbnail.geojson", "img000001_thumbnail.jgw"]
    feature = json.loads((downloads / "img000001_thumbnail.geojson").read_text())
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    assert [[round(b, 6), round(a, 6)] for a, b in expected.corners] == ring[:4]
    a, d, b, e, c, f = (float(x) for x in (downloads / "img000001_thumbnail.jgw").read_text().split())
    from PIL import Image
    width, height = Image.open(thumbnail).size
    # affine: exact at the top-left, top-right and bottom-left corners; the fourth (bottom-right)
    # within a few per cent of the footprint's size (the track is near 80 deg N here)
    def world(column: float, row: float) -> tuple[float, float]:
        x, y = column - 0.5, row - 0.5  # from pixel centres to pixel edges
        return f + d * x + e * y, c + a * x + b * y

    for corner, (column, row) in zip(expected.corners, ((0, 0), (width, 0), (width, height), (0, height)),
                                     strict=True):
        tolerance = 0.03 * float(great_circle_km(*expected.corners[0], *expected.corners[2]))
        assert great_circle_km(*world(column, row), *corner) < (tolerance if column and row else 0.01)
    assert georeference(downloads) == []  # written once

    # a target right under a daylight pass: planned, with the figures in the event
    ahead = int(np.nonzero((times > clock["utc"] + 3000.0) & (sun > 30.0))[0][0])
    done = await _run(sat, log, "CAPTURE_OVER_TARGET", round(float(lat[ahead]), 3), round(float(lon[ahead]), 3), 50.0)
    assert done.completion is Completion.SUCCESS, done.detail
    planned = next(e for e in events if e.name == "imaging.capture_planned")
    assert abs(float(planned.args["utc"]) - times[ahead]) < 30.0
    assert float(planned.args["off_track_km"]) < 5.0 and float(planned.args["off_nadir_deg"]) < 1.0
    assert float(planned.args["sun_deg"]) > 25.0

    # between two tracks: refused with the one reason
    gap = _offset(float(lat[ahead]), float(lon[ahead]), 90.0, 400.0)
    done = await _run(sat, log, "CAPTURE_OVER_TARGET", round(gap[0], 3), round(gap[1], 3), 600.0)
    assert done.completion is Completion.FAILURE and done.detail.startswith("never_in_frame:"), done.detail
    assert any(e.name == "imaging.capture_refused" and e.args["reason"] == "never_in_frame" for e in events)

    # eight days later the TLE is too old for either planner (default limit 7 days)
    clock["utc"] = predictor.epoch_utc + 8 * 86400.0
    done = await _run(sat, log, "CAPTURE_OVER_TARGET", round(float(lat[ahead]), 3), round(float(lon[ahead]), 3), 50.0)
    assert done.completion is Completion.FAILURE and done.detail.startswith("tle_too_old: TLE is 8.0 d old"), done.detail
    with pytest.raises(ValueError, match="TLE older than 7 d"):
        await imaging.next_overflight(float(lat[ahead]), float(lon[ahead]), 50.0, clock["utc"])
    await sat_runner.stop(sat)


def test_a_footprint_across_the_antimeridian_stays_one_polygon(tmp_path: Path) -> None:
    from PIL import Image

    corners = [[10.2, 179.9], [10.0, -179.7], [9.6, -179.8], [9.8, 179.8]]
    entry = {"id": 7, "utc": 1.0, "lat": 9.9, "lon": 179.95,
             "footprint": {"corners": corners, "centre": [9.9, 179.95]}}
    (tmp_path / "catalog.json").write_text(json.dumps({"images": [entry]}))
    Image.new("RGB", (40, 30)).save(tmp_path / "img000007_preview.jpg")
    (tmp_path / "img000008_preview.jpg").write_bytes(b"not in the catalog")
    assert len(georeference(tmp_path)) == 2
    ring = json.loads((tmp_path / "img000007_preview.geojson").read_text())["geometry"]["coordinates"][0]
    assert [round(p[0], 6) for p in ring] == [179.9, 180.3, 180.2, 179.8, 179.9]
    a, _d, _b, _e, c, _f = (float(x) for x in (tmp_path / "img000007_preview.jgw").read_text().split())
    assert a == pytest.approx(0.4 / 40) and 179.8 < c < 180.0
