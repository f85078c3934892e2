"""GPS time: a valid GPS fix sets spacecraft UTC (quality GPS) when it differs from it.

The receiver is a ``gps`` device (``[[devices]]``): real (its UART) or simulated (NMEA on a pty
from the simulated time). A fix steps UTC when it differs by more than
``time.gps_step_threshold_s`` or when UTC was not yet confirmed by GPS this boot; a fix that
jumps more than ``time.gps_max_step_s`` away from a ground-set or GPS time is refused (a receiver
that lost its almanac can report a wrong week) and counted. Each step is persisted at once (the
time checkpoint) and reported; step listeners (stored commands) re-plan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from flightsw.app import StartupError, Subsystem
from flightsw.config import GPS_KIND, GpsOptions, MissionConfig
from flightsw.core.component import Channel, Component, Counter, CounterSet, Event
from flightsw.core.enums import TimeQuality
from flightsw.core.events import Severity
from flightsw.core.ports import CAMERA_SCENE, SceneSource
from flightsw.core.timekeeping import STATE_KEY as TIME_STATE_KEY
from flightsw.core.timekeeping import checkpoint_of
from flightsw.core.types import F64, U32
from hal.gps import GpsTimeSource, NmeaGps
from hal.serial_port import AsyncSerialPort

if TYPE_CHECKING:
    from flightsw.app import Satellite

log = logging.getLogger("flightsw.gps")


class GpsTime(Component):
    """Disciplines spacecraft UTC from a GPS receiver's time sentences."""

    fixes = Counter("Valid GPS time fixes received")
    steps = Counter("Times a GPS fix stepped spacecraft UTC")
    refused = Counter("GPS fixes refused for jumping more than gps_max_step_s")
    sentences = Channel(U32, doc="NMEA sentences received", update="on_change")
    bad_sentences = Channel(U32, doc="NMEA sentences dropped (checksum, format)", update="on_change")
    last_fix_utc = Channel(F64, unit="s", doc="UTC of the last valid GPS fix (0: none this boot)")

    time_from_gps = Event(Severity.INFO, "UTC set from GPS {sentence}: step {step} s (was {quality})",
                          throttle=(5, 600.0))
    fix_refused = Event(Severity.WARNING, "GPS fix refused: {step:+.1f} s from confirmed UTC", throttle=(3, 600.0))

    def __init__(self, source: GpsTimeSource, step_threshold_s: float, max_step_s: float,
                 name: str = "gps", base_id: int = 0x0680) -> None:
        super().__init__(name, base_id)
        self.source = source
        self.step_threshold_s = step_threshold_s
        self.max_step_s = max_step_s
        self.stats = CounterSet(self)
        self._last_fix = 0.0

    def setup(self) -> None:
        self.ctx.supervisor.add_service(f"{self.name}.rx", self._rx_loop, critical=False)
        self.ctx.rate_group("slow").add(f"{self.name}.telemetry", self.publish)

    def publish(self) -> None:
        self.stats.publish()
        self.sentences.set(self.source.sentences & 0xFFFFFFFF)
        self.bad_sentences.set(self.source.bad_sentences & 0xFFFFFFFF)
        self.last_fix_utc.set(self._last_fix)

    async def _rx_loop(self) -> None:
        async for fix in self.source.fixes():
            self.stats.inc("fixes")
            self._last_fix = fix.utc
            await self.apply(fix.utc, fix.sentence)

    async def apply(self, utc: float, sentence: str) -> bool:
        """Take one valid fix; True when it stepped UTC."""
        clock = self.ctx.clock
        current, quality = clock.utc(), clock.quality
        step = None if current is None else utc - current
        if step is not None and quality.confirmed and self.max_step_s > 0 and abs(step) > self.max_step_s:
            self.stats.inc("refused")
            self.fix_refused.emit(step=step)
            return False
        if quality is TimeQuality.GPS and step is not None and abs(step) <= self.step_threshold_s:
            return False
        clock.set_utc(utc, TimeQuality.GPS)
        self.ctx.state.set(TIME_STATE_KEY, checkpoint_of(clock.met(), clock.utc(), clock.quality).to_dict())
        await self.ctx.state.save()
        self.stats.inc("steps")
        self.time_from_gps.emit(sentence=sentence, step="?" if step is None else f"{step:+.3f}",
                                quality=quality.value)
        return True

    async def shutdown(self) -> None:
        await self.source.close()


def _scene_position(scene: SceneSource | None) -> Callable[[], tuple[float, float]] | None:
    """The simulated orbit's sub-satellite point (the simulator's scene: ``lat_deg``, ``lon_deg``)."""
    if scene is None:
        return None

    def position() -> tuple[float, float]:
        view = scene()
        return float(view.lat_deg), float(view.lon_deg)

    return position


def build_gps_time(sat: Satellite) -> None:
    """Subsystem builder (``gps`` entry point): a GPS time source when a ``gps`` device exists."""
    config: MissionConfig = sat.config
    devices = config.devices_of(GPS_KIND)
    if not devices:
        return
    dev = devices[0]
    opts: GpsOptions = dev.settings()
    if dev.backend == "sim":
        from sim.gps import SimGps

        path = opts.device if isinstance(opts.device, str) else "gps.tty"
        device = path if path.startswith("/") else str(config.data_dir / path)
        truth = sat.clock.utc_source or time.time  # the simulated World's clock in a scenario
        simulated = SimGps(device, truth, period_s=opts.period_s, offset_s=opts.offset_s,
                           position=_scene_position(sat.ports.get(CAMERA_SCENE)))
        sat.supervisor.add_service("sim.gps", simulated.run, critical=False)
    else:
        if not isinstance(opts.device, str):
            raise StartupError(f"devices.{dev.name}.device: required for a real GPS receiver")
        device = opts.device
    source = NmeaGps(AsyncSerialPort(device, opts.baud))
    sat.add(GpsTime(source, config.time.gps_step_threshold_s, config.time.gps_max_step_s, name=dev.name))


SUBSYSTEM = Subsystem("gps", build_gps_time, order=15)
