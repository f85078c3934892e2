"""The camera interface, the simulated camera and the picamera2 backend's mapping."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from hal.camera import (
    CameraError,
    CameraTimeout,
    CaptureSettings,
    CorruptFrame,
    Picamera2Camera,
    jpeg_size,
)
from sim.camera import FixedScene, SimCamera

SMALL = dict(width=160, height=120)


def _rgb(camera: SimCamera, **settings) -> np.ndarray:
    frame = camera.capture(CaptureSettings(output="rgb", **{**SMALL, **settings}))
    frame.validate()
    return frame.rgb


def _open(scene: FixedScene, seed: int = 5) -> SimCamera:
    camera = SimCamera(scene, seed=seed)
    camera.open()
    return camera


def test_same_place_and_seed_give_the_same_scene_and_other_places_differ() -> None:
    here = _rgb(_open(FixedScene(43.2, 76.9, 45.0)))
    again = _rgb(_open(FixedScene(43.2, 76.9, 45.0)))
    elsewhere = _rgb(_open(FixedScene(-20.0, 10.0, 45.0)))
    # sensor noise differs per frame index only; the scene itself is identical
    assert np.abs(here.astype(int) - again.astype(int)).mean() < 0.5
    assert np.abs(here.astype(int) - elsewhere.astype(int)).mean() > 5


def test_night_is_dark_and_day_is_lit() -> None:
    day = _rgb(_open(FixedScene(10.0, 20.0, 60.0)))
    night = _rgb(_open(FixedScene(10.0, 20.0, -30.0)))
    assert day.mean() > 25
    assert night.mean() < 6


def test_exposure_over_and_under_is_visible() -> None:
    camera = _open(FixedScene(10.0, 20.0, 60.0))
    normal = _rgb(camera, exposure_us=2000)
    under = _rgb(camera, exposure_us=100)
    over = _rgb(camera, exposure_us=40_000, analogue_gain=4.0)
    assert under.mean() < normal.mean() / 5
    assert (over == 255).mean() > 0.5
    assert (normal == 255).mean() < 0.01


def test_jpeg_output_has_the_requested_size_and_metadata() -> None:
    camera = _open(FixedScene(43.2, 76.9, 45.0))
    frame = camera.capture(CaptureSettings(exposure_us=1500, analogue_gain=2.0, **SMALL))
    assert jpeg_size(frame.jpeg) == (160, 120)
    assert frame.metadata["ExposureTime"] == 1500
    assert frame.metadata["AnalogueGain"] == 2.0
    assert frame.metadata["SimScene"]["lat_deg"] == 43.2


def test_injected_failures_timeout_and_corruption() -> None:
    camera = _open(FixedScene(0.0, 0.0, 30.0))
    camera.fail_next("timeout")
    with pytest.raises(CameraTimeout):
        camera.capture(CaptureSettings(**SMALL))
    camera.fail_next("corrupt", count=2)
    with pytest.raises(CorruptFrame):
        camera.capture(CaptureSettings(**SMALL)).validate()
    with pytest.raises(CorruptFrame, match="shape"):
        camera.capture(CaptureSettings(output="rgb", **SMALL)).validate()
    camera.capture(CaptureSettings(**SMALL)).validate()  # healthy again
    with pytest.raises(ValueError, match="unknown camera failure"):
        camera.fail_next("melt")


def test_closed_camera_refuses_to_capture() -> None:
    camera = SimCamera(FixedScene(0.0, 0.0, 30.0))
    with pytest.raises(CameraError, match="not powered"):
        camera.capture(CaptureSettings(**SMALL))


@pytest.mark.parametrize("bad, message", [
    (dict(exposure_us=5), "exposure_us"),
    (dict(analogue_gain=40.0), "analogue_gain"),
    (dict(width=8), "resolution"),
    (dict(jpeg_quality=0), "jpeg_quality"),
    (dict(output="png"), "output"),
])
def test_capture_settings_refuse_bad_values(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CaptureSettings(**bad)


class _FakeRequest:
    def __init__(self, array: np.ndarray, metadata: dict) -> None:
        self.array, self.metadata, self.released = array, metadata, False

    def make_array(self, stream: str) -> np.ndarray:
        assert stream == "main"
        return self.array

    def get_metadata(self) -> dict:
        return self.metadata

    def release(self) -> None:
        self.released = True


class _FakePicamera2:
    """Just enough of picamera2's documented API to check our backend's use of it."""

    instances: list[_FakePicamera2] = []

    def __init__(self, num: int) -> None:
        self.controls: dict = {}
        self.configs: list = []
        self.requests: list[_FakeRequest] = []
        self.hang = False
        _FakePicamera2.instances.append(self)

    def create_still_configuration(self, main: dict) -> dict:
        return {"main": main}

    def configure(self, config: dict) -> None:
        self.configs.append(config)

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...

    def set_controls(self, controls: dict) -> None:
        self.controls.update(controls)

    def capture_request(self, wait: bool | None = None) -> str:
        return "job"

    def wait(self, job: str, timeout: float | None = None) -> _FakeRequest:
        if self.hang:
            raise TimeoutError
        w, h = self.configs[-1]["main"]["size"]
        array = np.zeros((h, w, 3), dtype=np.uint8)
        array[..., 0] = 200  # first byte of each "BGR888" pixel is red
        request = _FakeRequest(array, {"ExposureTime": self.controls["ExposureTime"],
                                       "SensorTemperature": 31.0})
        self.requests.append(request)
        return request


@pytest.fixture
def fake_picamera2(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = _FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    _FakePicamera2.instances.clear()
    return _FakePicamera2


def test_picamera2_backend_sets_manual_exposure_and_keeps_rgb_order(fake_picamera2) -> None:
    camera = Picamera2Camera()
    camera.open()
    frame = camera.capture(CaptureSettings(exposure_us=1234, analogue_gain=3.0, output="rgb",
                                           **SMALL))
    cam = fake_picamera2.instances[0]
    assert cam.controls == {"AeEnable": False, "AwbEnable": False, "ExposureTime": 1234,
                            "AnalogueGain": 3.0}
    assert cam.configs[-1]["main"] == {"size": (160, 120), "format": "BGR888"}
    assert frame.rgb[0, 0].tolist() == [200, 0, 0]  # red stays red: no channel swap
    assert frame.metadata["SensorTemperature"] == 31.0
    assert all(r.released for r in cam.requests)
    jpeg = camera.capture(CaptureSettings(**SMALL))
    assert jpeg_size(jpeg.jpeg) == (160, 120)


def test_picamera2_backend_maps_a_hung_sensor_to_camera_timeout(fake_picamera2) -> None:
    camera = Picamera2Camera()
    camera.open()
    fake_picamera2.instances[0].hang = True
    with pytest.raises(CameraTimeout, match="no frame within"):
        camera.capture(CaptureSettings(**SMALL))


def test_picamera2_missing_gives_an_actionable_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        Picamera2Camera().open()
