"""Onboard triage: cloud and exposure scores order synthetic captures as a person would; the catalog
sorts and downlinks by score; captures in darkness are refused with their reason."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flightsw.core.commands import Completion
from flightsw.imaging.catalog import ImageCatalog, ImageRecord
from flightsw.imaging.component import ImagingComponent, TargetInDarkness
from flightsw.imaging.planner import OrbitPredictor, sun_elevation_deg
from flightsw.imaging.products import make_products
from flightsw.imaging.triage import TriageScores, score_jpeg
from flightsw.testing import ResponseLog, make_satellite
from hal.camera import CaptureSettings
from sim.camera import FixedScene, SimCamera
from sim.environment.orbit import Orbit, default_tle

# Places of the synthetic Earth (seed 1): found by scanning its cloud and land fields.
CLEAR_LAND = (-48.7, -35.6)   # all land, no cloud
CLOUDY_SEA = (46.6, -146.9)   # the cloudiest scene (~65 % cloud field)
SCENES = {  # name: (lat, lon, sun elevation, exposure_us)
    "clear": (*CLEAR_LAND, 45.0, 2000),
    "cloudy": (*CLOUDY_SEA, 45.0, 2000),
    "overexposed": (*CLEAR_LAND, 45.0, 40_000),
    "underexposed": (*CLEAR_LAND, 45.0, 60),
}


def _capture_scores(lat: float, lon: float, sun: float, exposure_us: int) -> TriageScores:
    camera = SimCamera(FixedScene(lat, lon, sun), seed=1)
    camera.open()
    frame = camera.capture(CaptureSettings(exposure_us=exposure_us, analogue_gain=1.0, width=640, height=480,
                                           jpeg_quality=90))
    products = make_products(frame, 60, 320, 96)
    return score_jpeg(products.preview, exposure_us, 1.0, sun)


def test_scores_order_clear_cloudy_over_and_under_exposed_captures() -> None:
    s = {name: _capture_scores(*scene) for name, scene in SCENES.items()}
    assert s["clear"].cloud < 0.05 < 0.5 < s["cloudy"].cloud
    for good in ("clear", "cloudy"):
        for bad in ("overexposed", "underexposed"):
            assert s[good].exposure > 0.7 > 0.2 > s[bad].exposure, (good, bad, s[good], s[bad])
    assert s["overexposed"].clipped_high > 0.9 and s["underexposed"].clipped_low > 0.9
    # under-exposure is not taken for cloud: too dark to tell, the exposure score says why
    assert s["underexposed"].cloud < 0.05


def test_low_sun_is_judged_by_the_light_there() -> None:
    """At 15 deg the clouds are dimmer; knowing the sun elevation keeps them clouds."""
    low = _capture_scores(*CLOUDY_SEA, 15.0, 2000)
    assert low.cloud > 0.5
    clear = _capture_scores(*CLEAR_LAND, 15.0, 2000)
    assert clear.cloud < 0.05


def test_sun_elevation_agrees_with_skyfield_de421() -> None:
    warnings.simplefilter("ignore", RuntimeWarning)  # skyfield-data's IERS "expired" notice
    import skyfield_data
    from skyfield.api import load, load_file, wgs84

    ts = load.timescale(builtin=True)
    eph = load_file(os.path.join(skyfield_data.get_skyfield_data_path(), "de421.bsp"))
    rng = np.random.default_rng(5)
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    worst = 0.0
    for _ in range(40):
        lat, lon = float(rng.uniform(-80, 80)), float(rng.uniform(-180, 180))
        utc = start + float(rng.uniform(0, 2 * 365 * 86400))
        where = eph["earth"] + wgs84.latlon(lat, lon)
        alt, _az, _d = where.at(ts.from_datetime(datetime.fromtimestamp(utc, tz=UTC))).observe(
            eph["sun"]).apparent().altaz(temperature_C=None, pressure_mbar=0)  # geometric: no refraction
        worst = max(worst, abs(float(sun_elevation_deg(lat, lon, utc)) - alt.degrees))
    assert worst < 0.05


def test_catalog_sorts_by_score_and_an_old_catalog_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    old = sqlite3.connect(path)  # a catalog written before triage existed
    old.executescript(
        "CREATE TABLE images (id INTEGER PRIMARY KEY, boot INTEGER NOT NULL, since_boot REAL NOT NULL, utc REAL,"
        " lat REAL, lon REAL, exposure_us INTEGER NOT NULL, analogue_gain REAL NOT NULL, width INTEGER NOT NULL,"
        " height INTEGER NOT NULL, temperatures TEXT NOT NULL, sha256 TEXT NOT NULL, full_bytes INTEGER NOT NULL,"
        " preview_bytes INTEGER NOT NULL, thumbnail_bytes INTEGER NOT NULL, pinned INTEGER NOT NULL DEFAULT 0,"
        " reason TEXT NOT NULL DEFAULT '');"
        "INSERT INTO images VALUES (1, 1, 0, NULL, NULL, NULL, 2000, 1.0, 8, 8, '{}', 'x', 1, 1, 1, 0, 'old');")
    old.commit()
    old.close()
    catalog = ImageCatalog(path, synchronous=False)
    try:
        for image_id, cloud, exposure in ((2, 0.6, 0.9), (3, 0.01, 0.8), (4, 0.01, 0.95), (5, 0.0, 0.1)):
            catalog.add(ImageRecord(image_id, 1, 0.0, None, None, None, 2000, 1.0, 8, 8, "x", 1, 1, 1,
                                    cloud=cloud, exposure=exposure))
        assert catalog.get(1) is not None and catalog.get(1).cloud is None  # type: ignore[union-attr]
        assert [r.id for r in catalog.by_score(10)] == [5, 4, 3, 2]  # unscored image 1 left out
        assert [r.id for r in catalog.by_score(10, max_cloud=0.5, min_exposure=0.5)] == [4, 3]
        assert [r.id for r in catalog.by_score(1, min_exposure=0.5)] == [4]
    finally:
        catalog.close()


class RecordingDownlink:
    def __init__(self) -> None:
        self.names: list[str] = []

    async def put(self, source: Path, dest_name: str, priority: int = 5) -> int:
        self.names.append(dest_name)
        return len(self.names)


class SwitchableScene:
    def __init__(self) -> None:
        self.scene = FixedScene(*CLEAR_LAND, 45.0)

    def __call__(self) -> FixedScene:
        return self.scene


async def _run(sat: Any, log: ResponseLog, name: str, *args: Any) -> Any:
    verdict = sat.commands.submit(sat.dictionary.command(f"imaging.{name}").id, list(args))
    assert verdict.accepted, verdict
    seq = max(r.seq for r in log.items if r.name.endswith(name))
    return await log.wait_completion(seq, 30.0)


async def test_captures_are_scored_on_board_and_the_best_go_down_first(tmp_path: Path, sat_runner: Any) -> None:
    scene = SwitchableScene()
    downlink = RecordingDownlink()
    imaging = ImagingComponent("imaging", 0x0500, SimCamera(scene, seed=1), downlink=downlink)
    sat = await sat_runner.start(make_satellite(tmp_path / "sat", [imaging]))
    log = ResponseLog(sat)
    await asyncio.wait_for(imaging._ready.wait(), 10)
    assert (await _run(sat, log, "SET_AUTO_THUMBNAILS", False)).completion is Completion.SUCCESS
    for name in ("cloudy", "overexposed", "clear", "underexposed"):
        lat, lon, sun, exposure = SCENES[name]
        scene.scene = FixedScene(lat, lon, sun)
        done = await _run(sat, log, "SET_CAMERA", exposure, 1.0, 320, 240, 85)
        assert done.completion is Completion.SUCCESS
        done = await _run(sat, log, "CAPTURE_NOW")
        assert done.completion is Completion.SUCCESS, done.detail
    records = {r.id: r for r in await imaging._db(imaging._catalog.list, 0, 10)}
    assert all(r.cloud is not None and r.exposure is not None for r in records.values())
    assert records[3].cloud < 0.05 < 0.5 < records[1].cloud  # clear (3) vs cloudy (1)
    assert imaging.last_exposure_pct.value < 20  # the last one was under-exposed

    done = await _run(sat, log, "DOWNLINK_BEST", 1, 5, 100, 50)  # previews, well exposed, any cloud
    assert done.completion is Completion.SUCCESS, done.detail
    assert downlink.names == ["img000003_preview.jpg", "img000001_preview.jpg"]  # clearest first
    done = await _run(sat, log, "DOWNLINK_BEST", 2, 5, 10, 50)
    assert downlink.names[2:] == ["img000003_full.jpg"]
    done = await _run(sat, log, "DOWNLINK_BEST", 2, 5, 0, 99)
    assert done.completion is Completion.FAILURE and "no scored image" in done.detail


async def test_captures_in_darkness_are_refused_with_the_reason(tmp_path: Path, sat_runner: Any) -> None:
    line1, line2 = default_tle()
    epoch = Orbit.from_tle(line1, line2).epoch_seconds
    predictor = OrbitPredictor(line1, line2)

    def sun_below(t: float) -> float:
        point = predictor.subpoint(epoch + t)
        return float(sun_elevation_deg(point.lat_deg, point.lon_deg, epoch + t))

    night_s = next(t for t in range(0, 6000, 30) if sun_below(t) < -20.0)
    clock = {"utc": epoch + night_s}
    imaging = ImagingComponent("imaging", 0x0500, SimCamera(FixedScene(0.0, 0.0, -30.0)))
    sat = await sat_runner.start(make_satellite(tmp_path / "sat", [imaging], utc_source=lambda: clock["utc"]))
    log = ResponseLog(sat)
    events: list[Any] = []
    sat.events.add_sink(events.append)
    await asyncio.wait_for(imaging._ready.wait(), 10)
    assert (await _run(sat, log, "SET_TLE", line1, line2)).completion is Completion.SUCCESS

    done = await _run(sat, log, "CAPTURE_NOW")
    assert done.completion is Completion.FAILURE
    assert done.detail.startswith(TargetInDarkness.reason + ": Sun -")
    assert any(e.name == "imaging.capture_refused" and "target_in_darkness" in e.args["why"] for e in events)
    assert await imaging._db(imaging._catalog.count) == 0
    assert imaging.camera.frames_taken == 0  # refused before the camera was used

    # a target on the night side whose only pass within 40 km in the next day is at night
    dark_s = next(t for t in range(night_s + 600, night_s + 6000, 30) if sun_below(t) < -10.0)
    below = predictor.subpoint(epoch + dark_s)
    done = await _run(sat, log, "CAPTURE_OVER_TARGET", round(below.lat_deg, 3), round(below.lon_deg, 3), 40.0)
    assert done.completion is Completion.FAILURE and done.detail.startswith("target_in_darkness:"), done.detail
    assert imaging.planned() == []

    # the operator may lower the limit (e.g. city lights): then the capture goes ahead
    assert (await _run(sat, log, "SET_MIN_SUN_ELEVATION_DEG", -90.0)).completion is Completion.SUCCESS
    done = await _run(sat, log, "CAPTURE_NOW")
    assert done.completion is Completion.SUCCESS, done.detail


@pytest.mark.parametrize("name", list(SCENES))
def test_scoring_a_preview_takes_milliseconds(name: str) -> None:
    import time

    lat, lon, sun, exposure = SCENES[name]
    camera = SimCamera(FixedScene(lat, lon, sun), seed=1)
    camera.open()
    frame = camera.capture(CaptureSettings(exposure_us=exposure, analogue_gain=1.0, width=640, height=480,
                                           jpeg_quality=90))
    preview = make_products(frame, 60, 320, 96).preview
    score_jpeg(preview)  # warm up the decoder
    start = time.perf_counter()
    for _ in range(10):
        score_jpeg(preview, exposure, 1.0, sun)
    assert (time.perf_counter() - start) / 10 < 0.03  # x86 laptop figure; ~10x on a Pi Zero 2, still off the loop
