"""The shipped imaging_targets scenario, fast: its planning and pointing checked around each capture.

The whole 40-hour run takes minutes (``flightsw sim --scenario imaging_targets``); here each
target is planned from the time its command goes up, as the satellite will, and the slew target's
capture is flown in a few minutes of model time: the simulated ADCS (the flying driver's register
map) settles before the capture and the simulated camera's footprint then holds the target.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flightsw.config import load
from flightsw.core.enums import AdcsMode, SlewStatus
from flightsw.imaging.planner import (
    CameraGeometry,
    NoCapture,
    OrbitPredictor,
    PlanLimits,
    Target,
    camera_view,
)
from flightsw.sim_runner.imaging import ImagingLog, inside
from hal.camera import CaptureSettings
from hal.drivers.adcs import to_centideg
from sim.camera import FixedScene, SimCamera
from sim.parts.adcs import SimAdcs
from sim.report import CaptureShot, capture_map
from sim.scenario import ScenarioError, builtin_scenario, load_scenario, loads_scenario

ROOT = Path(__file__).resolve().parents[2]


def _setup() -> tuple[object, OrbitPredictor, CameraGeometry, PlanLimits, dict[tuple[float, float], float]]:
    config = load(ROOT / "deploy" / "sim.toml")
    scenario = load_scenario(builtin_scenario("imaging_targets"), [d.name for d in config.devices])
    tle = next(c for c in scenario.commands if c.command == "imaging.SET_TLE").args
    predictor = OrbitPredictor(*tle)
    section = config.imaging
    limits = PlanLimits(min_sun_elevation_deg=5.0, horizon_s=section.horizon_days * 86400.0,
                        max_tle_age_s=section.max_tle_age_days * 86400.0,
                        footprint_margin_km=section.footprint_margin_km, max_off_nadir_deg=section.max_off_nadir_deg)
    asked = {(c.args[0], c.args[1]): scenario.start_epoch + c.at for c in scenario.commands
             if c.command == "imaging.CAPTURE_OVER_TARGET"}
    return scenario, predictor, CameraGeometry(*section.fov()), limits, asked


def test_the_scenario_plans_one_target_at_nadir_one_by_a_slew_and_refuses_one_at_night() -> None:
    scenario, predictor, camera, limits, asked = _setup()
    assert scenario.adcs is not None and len(asked) == 3  # type: ignore[attr-defined]
    nadir_only = PlanLimits(**{**limits.__dict__, "max_off_nadir_deg": 0.0})
    plans = {}
    for (lat, lon), at in asked.items():
        target = Target(lat, lon, 500.0)
        plans[(lat, lon)] = (predictor.plan_capture(target, at + 60.0, camera, limits),
                             predictor.plan_capture(target, at + 60.0, camera, nadir_only))
    nadir, nadir_alone = plans[(24.173, 31.459)]
    assert nadir.opportunity is not None and nadir.opportunity.off_nadir_deg < 1.0
    assert nadir_alone.opportunity is not None and abs(nadir_alone.opportunity.utc - nadir.opportunity.utc) < 1.0
    slew, slew_alone = plans[(24.644, 8.496)]
    assert slew.opportunity is not None and 10.0 < slew.opportunity.off_nadir_deg <= 30.0
    assert slew_alone.reason is NoCapture.NEVER_IN_FRAME
    # inside the run: the capture and the thumbnail's next pass fall before the end
    assert slew.opportunity.utc < scenario.end_epoch - 3 * 3600  # type: ignore[attr-defined]
    dark, dark_alone = plans[(78.223, 15.647)]
    assert dark.reason is NoCapture.ONLY_AT_NIGHT and "Sun at most -1" in dark.detail
    assert dark_alone.opportunity is None


def test_the_slew_target_is_tracked_settled_and_in_the_simulated_picture() -> None:
    _scenario, predictor, camera, limits, asked = _setup()
    at = asked[(24.644, 8.496)]
    chance = predictor.plan_capture(Target(24.644, 8.496, 500.0), at + 60.0, camera, limits).opportunity
    assert chance is not None
    now = [chance.utc - 120.0]  # [imaging] slew_lead_s: the slew starts here, from Sun pointing

    def scene() -> FixedScene:
        r, v = predictor.ecef(np.array([now[0]]))
        return FixedScene(0.0, 0.0, 45.0, tuple(r[0]), tuple(v[0]))

    part = SimAdcs(0x2A, None, clock=lambda: now[0], scene=scene, slew_rate_deg_s=2.0, settle_s=5.0)
    part.write(0x02, to_centideg(24.644).to_bytes(2, "big"))
    part.write(0x04, to_centideg(8.496).to_bytes(2, "big"))
    part.write(0x01, bytes([int(AdcsMode.TARGET_TRACKING)]))
    settled_at = None
    while now[0] < chance.utc:
        now[0] += 1.0
        status = part.read(0x06, 1)[0] & 0x3
        if settled_at is None and status == SlewStatus.SETTLED:
            settled_at = now[0]
    assert settled_at is not None and settled_at - (chance.utc - 120.0) < 110.0  # within settle_timeout_s

    def footprint(r: object, v: object, boresight: object = None) -> object:
        return camera_view(r, v, camera, boresight=None if boresight is None else np.asarray(boresight)).footprint.corners  # type: ignore[arg-type]

    cam = SimCamera(scene, seed=2, footprint=footprint, pointing=part.boresight)
    cam.open()
    frame = cam.capture(CaptureSettings(width=64, height=48))
    corners = tuple(tuple(c) for c in frame.metadata["SimScene"]["footprint"])
    assert inside(corners, 24.644, 8.496)  # type: ignore[arg-type]
    assert not inside(predictor.view(now[0], camera).footprint.corners, 24.644, 8.496)  # not at nadir


def test_the_report_draws_a_capture_in_its_footprint_with_the_target_marked() -> None:
    corners = ((24.9, 8.2), (24.8, 8.8), (24.4, 8.7), (24.5, 8.1))
    thumb = Image.new("RGB", (96, 72), (0, 200, 0))
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG")
    image = capture_map(CaptureShot(buffer.getvalue(), corners, (24.644, 8.496), 1.8e9, 19.0, 71.0, True))
    pixels = np.asarray(image)
    assert pixels.shape == (440, 1000, 3)
    green = (pixels[..., 1] > 150) & (pixels[..., 0] < 80)
    assert green[:, 460:].sum() > 1000  # the thumbnail drawn in its footprint on the map
    assert green[:, :420].sum() > 1000  # and as taken, beside it
    assert ((pixels[..., 0] > 200) & (pixels[..., 1] < 80)).sum() > 20  # the target's red marks
    assert inside(corners, 24.644, 8.496) and not inside(corners, 25.5, 8.496)
    assert math.isclose(ImagingLog().metrics()["targets_planned"], 0.0)


def test_an_adcs_table_with_a_mistake_is_named() -> None:
    text = '[scenario]\nname = "t"\nstart = 2026-12-06T00:00:00Z\nduration = "1h"\n[adcs]\nslew_rate_deg_s = 99\n'
    with pytest.raises(ScenarioError, match=r"adcs.slew_rate_deg_s: 99 is outside \[0.1, 30.0\]"):
        loads_scenario(text, "t.toml")
    with pytest.raises(ScenarioError, match=r"adcs: unknown key\(s\) \[.rate.\]"):
        loads_scenario(text.replace("slew_rate_deg_s = 99", "rate = 2"), "t.toml")
