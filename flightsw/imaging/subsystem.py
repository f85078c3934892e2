"""Builds the imaging component from the mission config (a ``[[devices]]`` camera + ``[imaging]``).

Why here: choosing the picamera2 or the simulated camera is composition. ``hal`` never imports
the simulator; this module imports ``sim.camera`` only when the camera's backend is "sim".

    [[devices]]
    name = "camera"
    kind = "camera"
    backend = "sim"           # "real": picamera2 on the board
    camera_num = 0            # real only
    seed = 7                  # sim only: which synthetic Earth
    scene = [43.2, 76.9, 45.0]  # sim only, when no orbit simulator drives the scene:
                                # lat, lon, sun elevation (deg)

    [imaging]
    quota_mb = 64             # image products on the SD card
    base_id = 0x0500          # dictionary ids of the component

Ports: the simulator drives the scene by providing ``CAMERA_SCENE`` (a callable returning lat/lon/
sun elevation) before the subsystems are built; imaging uses ``FILE_DOWNLINK`` (the link's CFDP
entity, when there is one) and ``PAYLOAD_GATE`` (the mode manager's verdict, when there is one).

Imaging needs the ``payload`` extra (numpy, sgp4, pillow): it is imported only when the config
has a camera, so a flight computer installed without extras starts with the payload disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flightsw.app import StartupError, Subsystem
from flightsw.config import ConfigError, DeviceConfig, MissionConfig
from flightsw.core.ports import CAMERA_SCENE, FILE_DOWNLINK, PAYLOAD_GATE
from hal.camera import Camera, Picamera2Camera

if TYPE_CHECKING:
    from flightsw.app import Satellite

CAMERA_KIND = "camera"
REAL_KEYS = {"camera_num"}
SIM_KEYS = {"seed", "scene", "swath_km"}


def find_camera(config: MissionConfig) -> DeviceConfig | None:
    cameras = [d for d in config.devices if d.kind == CAMERA_KIND]
    if len(cameras) > 1:
        raise ConfigError(f"devices: only one camera is supported, found {[d.name for d in cameras]}")
    return cameras[0] if cameras else None


def build_camera(dev: DeviceConfig, scene: Any = None) -> Camera:
    """The configured camera; unknown keys are refused so a typo does not silently default."""
    allowed = REAL_KEYS if dev.backend == "real" else SIM_KEYS
    unknown = set(dev.options) - allowed
    if unknown:
        raise ConfigError(
            f"devices.{dev.name}: unknown key(s) {sorted(unknown)} for a {dev.backend} camera "
            f"(allowed: {sorted(allowed)})")
    if dev.backend == "real":
        return Picamera2Camera(int(dev.options.get("camera_num", 0)))
    try:
        from sim.camera import FixedScene, SimCamera
    except ImportError as exc:
        raise StartupError(f"devices.{dev.name}: the simulated camera needs the sim extra "
                           f"(pip install 'flightsw[sim]'): {exc}") from None

    if scene is None:
        raw = dev.options.get("scene", [43.2, 76.9, 45.0])
        if not (isinstance(raw, list) and len(raw) == 3):
            raise ConfigError(f"devices.{dev.name}.scene: expected [lat, lon, sun_elevation]")
        scene = FixedScene(float(raw[0]), float(raw[1]), float(raw[2]))
    return SimCamera(scene, seed=int(dev.options.get("seed", 1)),
                     swath_km=float(dev.options.get("swath_km", 60.0)))


def build_imaging(sat: Satellite) -> None:
    """Add the imaging component when the config has a camera device."""
    dev = find_camera(sat.config)
    if dev is None:
        return
    section = sat.config.section("imaging")
    unknown = set(section) - {"quota_mb", "base_id"}
    if unknown:
        raise ConfigError(f"imaging: unknown key(s) {sorted(unknown)} (allowed: base_id, quota_mb)")
    quota_mb = float(section.get("quota_mb", 64))
    if not 0.1 <= quota_mb <= 1_000_000:
        raise ConfigError(f"imaging.quota_mb: {quota_mb} outside [0.1, 1000000]")
    try:
        from flightsw.imaging.component import ImagingComponent
    except ImportError as exc:
        raise StartupError(f"devices.{dev.name}: imaging needs the payload extra "
                           f"(pip install 'flightsw[payload]'): {exc}") from None
    camera = build_camera(dev, sat.ports.get(CAMERA_SCENE))
    imaging = sat.add(ImagingComponent("imaging", int(section.get("base_id", 0x0500)), camera,
                                       quota_bytes=int(quota_mb * 1024 * 1024)))
    sat.ports.connect(FILE_DOWNLINK, imaging.set_downlink, by=imaging.name)
    sat.ports.connect(PAYLOAD_GATE, imaging.set_payload_gate, by=imaging.name)


SUBSYSTEM = Subsystem("imaging", build_imaging, order=40)
