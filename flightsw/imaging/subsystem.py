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
entity, when there is one), ``PAYLOAD_GATE`` (the mode manager's verdict, when there is one) and
``STORED_COMMANDS`` (the sequencer: planned captures are stored commands); it provides
``OVERFLIGHTS`` (the next pass over a target, from the uplinked TLE) to the sequencer.

Imaging needs the ``payload`` extra (numpy, sgp4, pillow): it is imported only when the config
has a camera, so a flight computer installed without extras starts with the payload disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flightsw.app import StartupError, Subsystem
from flightsw.config import CAMERA_KIND, DeviceConfig, MissionConfig
from flightsw.core.ports import (
    ADCS,
    CAMERA_POINTING,
    CAMERA_SCENE,
    FILE_DOWNLINK,
    ORBIT_TLE,
    OVERFLIGHTS,
    PAYLOAD_GATE,
    STORED_COMMANDS,
    Ports,
)
from hal.camera import Camera, Picamera2Camera

if TYPE_CHECKING:
    from flightsw.app import Satellite
    from flightsw.imaging.component import ImagingComponent



def find_camera(config: MissionConfig) -> DeviceConfig | None:
    """The camera entry (at most one, checked at load), or None."""
    cameras = config.devices_of(CAMERA_KIND)
    return cameras[0] if cameras else None


def build_camera(dev: DeviceConfig, scene: Any = None, fov_deg: tuple[float, float] | None = None,
                 pointing: Any = None) -> Camera:
    """The configured camera (its options validated with the config: no typo silently defaults);
    ``pointing``: the simulated ADCS's boresight, which the simulated camera then looks along."""
    opts = dev.settings()
    if dev.backend == "real":
        return Picamera2Camera(opts.camera_num)
    try:
        from sim.camera import FixedScene, SimCamera
    except ImportError as exc:
        raise StartupError(f"devices.{dev.name}: the simulated camera needs the sim extra "
                           f"(pip install 'flightsw[sim]'): {exc}") from None

    if scene is None:
        scene = FixedScene(*opts.scene)
    import numpy as np

    from flightsw.imaging.planner import CameraGeometry, camera_view

    if fov_deg is None:
        return SimCamera(scene, seed=opts.seed, swath_km=opts.swath_km)
    geometry = CameraGeometry(*fov_deg)

    def footprint(r_ecef: Any, v_ecef: Any, boresight: Any = None) -> tuple[tuple[float, float], ...]:
        axis = None if boresight is None else np.asarray(boresight, dtype=float)
        return camera_view(r_ecef, v_ecef, geometry, boresight=axis).footprint.corners

    return SimCamera(scene, seed=opts.seed, swath_km=opts.swath_km, footprint=footprint, pointing=pointing)


def build_imaging(sat: Satellite) -> None:
    """Add the imaging component when the config has a camera device."""
    dev = find_camera(sat.config)
    if dev is None:
        return
    section = sat.config.imaging  # validated with the config
    try:
        from flightsw.imaging.component import ImagingComponent
    except ImportError as exc:
        raise StartupError(f"devices.{dev.name}: imaging needs the payload extra "
                           f"(pip install 'flightsw[payload]'): {exc}") from None
    from flightsw.imaging.component import PointingSettings
    from flightsw.imaging.planner import CameraGeometry, PlanLimits

    # the hardware subsystem (built earlier) provides CAMERA_POINTING for a simulated ADCS
    camera = build_camera(dev, sat.ports.get(CAMERA_SCENE), section.fov(), sat.ports.get(CAMERA_POINTING))
    limits = PlanLimits(horizon_s=section.horizon_days * 86400.0,
                        max_tle_age_s=section.max_tle_age_days * 86400.0,
                        footprint_margin_km=section.footprint_margin_km,
                        max_off_nadir_deg=section.max_off_nadir_deg)
    pointing = PointingSettings(section.slew_lead_s, section.settle_timeout_s)
    imaging = sat.add(ImagingComponent("imaging", section.base_id, camera,
                                       quota_bytes=int(section.quota_mb * 1024 * 1024),
                                       camera_geometry=CameraGeometry(*section.fov()), plan_limits=limits,
                                       pointing=pointing))
    connect_imaging(sat.ports, imaging)


def connect_imaging(ports: Ports, imaging: ImagingComponent) -> None:
    """Imaging's place in the topology (also for harnesses that build the component by hand)."""
    ports.connect(FILE_DOWNLINK, imaging.set_downlink, by=imaging.name)
    ports.connect(PAYLOAD_GATE, imaging.set_payload_gate, by=imaging.name)
    ports.connect(ADCS, imaging.use_adcs, by=imaging.name)  # none: nadir-only planning
    ports.connect(STORED_COMMANDS, imaging.use_stored_commands, required=True, by=imaging.name)
    ports.provide(OVERFLIGHTS, imaging, by=imaging.name)
    ports.provide(ORBIT_TLE, imaging, by=imaging.name)  # contact-aware downlink shares the TLE


SUBSYSTEM = Subsystem("imaging", build_imaging, order=40)
