"""Building the imaging component and the file-transfer settings from a mission config."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightsw.config import ConfigError
from flightsw.filetransfer.settings import entity_config_from
from flightsw.imaging.component import ImagingComponent
from flightsw.imaging.subsystem import build_imaging
from flightsw.testing import make_satellite, mission_config
from sim.camera import SimCamera

CAMERA = """
[[devices]]
name = "camera"
kind = "camera"
backend = "sim"
seed = 4
scene = [10.0, 20.0, 60.0]
[imaging]
quota_mb = 2
"""


def test_sim_camera_device_builds_the_imaging_component(tmp_path: Path) -> None:
    sat = make_satellite(tmp_path, extra_toml=CAMERA)
    build_imaging(sat)
    imaging = next(c for c in sat.components if isinstance(c, ImagingComponent))
    assert isinstance(imaging.camera, SimCamera)
    assert imaging.camera.seed == 4
    assert imaging.quota_bytes == 2 * 1024 * 1024


def test_no_camera_no_component(tmp_path: Path) -> None:
    sat = make_satellite(tmp_path)
    build_imaging(sat)
    assert not any(isinstance(c, ImagingComponent) for c in sat.components)


@pytest.mark.parametrize("extra, message", [
    (CAMERA.replace("seed = 4", "sede = 4"), r"devices\[0\]\.sede: unknown key for sim camera"),
    (CAMERA.replace("quota_mb = 2", "quota = 2"), r"imaging\.quota: unknown key \(allowed: base_id, focal_length_mm, footprint_margin_km, fov_deg, horizon_days, max_off_nadir_deg, max_tle_age_days, quota_mb, sensor_mm, settle_timeout_s, slew_lead_s\)"),
    (CAMERA.replace("scene = [10.0, 20.0, 60.0]", "scene = [10.0]"),
     r"devices\[0\]\.scene: expected a list of 3 values, got \[10\.0\]"),
])
def test_config_mistakes_are_named(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mission_config(tmp_path, extra)


def test_filetransfer_settings(tmp_path: Path) -> None:
    config = mission_config(tmp_path, "[filetransfer]\nlocal_id = 2\nremote_id = 1\nmax_pdu_len = 200\n")
    entity = entity_config_from(config)
    assert entity is not None and entity.max_pdu_len == 200
    assert entity.work_dir == tmp_path / "cfdp"
    assert entity_config_from(mission_config(tmp_path)) is None
    with pytest.raises(ConfigError, match="remote_id"):
        entity_config_from(mission_config(tmp_path, "[filetransfer]\nlocal_id = 2\n"))
    with pytest.raises(ConfigError, match="must differ"):
        entity_config_from(mission_config(tmp_path, "[filetransfer]\nlocal_id = 2\nremote_id = 2\n"))
