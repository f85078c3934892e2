"""The ADCS component: provides the ``ADCS`` port, commands modes, publishes attitude telemetry.

Why a component around the driver: imaging (through the port) and the ground (SET_MODE) share
one unit, every register access goes through the bus's worker thread (the driver's I2CBus), and
the mode, slew status and attitude error are telemetry at the slow rate whoever asked last.
Built by the hardware subsystem from a ``[[devices]]`` entry of kind ``adcs`` (real: the unit on
an I2C bus; sim: ``sim.parts.adcs.SimAdcs`` on the simulated bus), so it shares the bus (and its
worker thread) with the sensors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from flightsw.core.component import Arg, Channel, CommandFailure, Component, Event, command
from flightsw.core.enums import AdcsMode
from flightsw.core.events import Severity
from flightsw.core.ports import ADCS, CAMERA_POINTING
from flightsw.core.types import F32, U8
from hal.drivers.adcs import AdcsStatus, AdcsUnit

if TYPE_CHECKING:
    from flightsw.app import Satellite
    from flightsw.components.hardware import HardwareSet


class AdcsComponent(Component):
    """Attitude control unit: modes (detumble, Sun, nadir, target tracking) and slew status."""

    adcs_mode = Channel(U8, doc="Mode held: 0 detumble, 1 Sun pointing, 2 nadir, 3 target tracking")
    slew_status = Channel(U8, doc="0 settled, 1 slewing, 2 fault")
    attitude_error_deg = Channel(F32, unit="deg", doc="Angle between held and commanded attitude")
    off_nadir_deg = Channel(F32, unit="deg", doc="Camera boresight from the local vertical")

    mode_commanded = Event(Severity.INFO, "ADCS mode {mode} commanded ({target})", throttle=None)
    adcs_error = Event(Severity.WARNING, "ADCS {operation} failed: {error}", throttle=(5, 60.0))

    def __init__(self, name: str, base_id: int, unit: AdcsUnit,
                 on_loop: Callable[[Callable[[], float]], None] | None = None) -> None:
        super().__init__(name, base_id)
        self.unit = unit
        self._on_loop = on_loop  # HardwareSet.bind_loop: simulated parts follow the loop's clock

    def _bind(self) -> None:
        if self._on_loop is not None:
            self._on_loop(asyncio.get_running_loop().time)
            self._on_loop = None

    def setup(self) -> None:
        self.ctx.rate_group("slow").add(f"{self.name}.poll", self._poll)

    async def _poll(self) -> None:
        try:
            await self.status()
        except OSError as exc:
            self.adcs_error.emit(operation="status read", error=str(exc)[:80])

    # ------------------------------------------------------------- the ADCS port
    async def set_mode(self, mode: AdcsMode, lat_deg: float = 0.0, lon_deg: float = 0.0) -> None:
        """Command a mode (bus I/O on the bus worker); OSError when the unit does not answer."""
        self._bind()
        try:
            await self.unit.set_mode(mode, lat_deg, lon_deg)
        except OSError as exc:
            self.adcs_error.emit(operation=f"set {mode.name}", error=str(exc)[:80])
            raise
        target = f"{lat_deg:.3f}, {lon_deg:.3f}" if mode is AdcsMode.TARGET_TRACKING else "-"
        self.mode_commanded.emit(mode=mode.name, target=target)

    async def status(self) -> AdcsStatus:
        self._bind()
        status = await self.unit.status()
        self.adcs_mode.set(int(status.mode))
        self.slew_status.set(int(status.slew))
        self.attitude_error_deg.set(status.error_deg)
        self.off_nadir_deg.set(status.off_nadir_deg)
        return status

    # ------------------------------------------------------------- commands
    @command(args=[Arg("mode", U8, range=(0, 3), doc="0 detumble, 1 Sun pointing, 2 nadir, 3 target tracking"),
                   Arg("lat", F32, range=(-90.0, 90.0), doc="target latitude (mode 3)"),
                   Arg("lon", F32, range=(-180.0, 180.0), doc="target longitude (mode 3)")],
             doc="Command the ADCS mode (a capture over a target commands and restores it itself).",
             name="SET_MODE")
    async def set_adcs_mode(self, mode: int, lat: float, lon: float) -> None:
        try:
            await self.set_mode(AdcsMode(mode), lat, lon)
        except OSError as exc:
            raise CommandFailure(f"ADCS did not answer: {exc}") from exc


def add_adcs(sat: Satellite, hardware: HardwareSet) -> AdcsComponent | None:
    """The ADCS component when the config has one; it provides ``ADCS`` (and, simulated, the
    camera boresight on ``CAMERA_POINTING`` for the simulated camera)."""
    if hardware.adcs is None or hardware.adcs_device is None:
        return None
    opts = hardware.adcs_device.settings()
    adcs = sat.add(AdcsComponent(hardware.adcs_device.name, opts.base_id, hardware.adcs,
                                 on_loop=hardware.bind_loop))
    sat.ports.provide(ADCS, adcs, by=adcs.name)
    if hardware.adcs_part is not None:
        sat.ports.provide(CAMERA_POINTING, hardware.adcs_part.boresight, by=adcs.name)
    return adcs
