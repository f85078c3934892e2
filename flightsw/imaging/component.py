"""The imaging component: captures (now, at a UTC time, over a target), products, catalog,
quota, and automatic thumbnail downlink.

Why it is built this way:

* the camera blocks, so every camera call runs on the "camera" worker thread; products are
  encoded in the CPU executor; catalog and files go through the "imaging" worker thread — the
  loop only sequences them;
* whether the payload may run (mode, power) is not imaging's decision: ``set_payload_gate``
  installs a predicate (the ``PAYLOAD_GATE`` port, the modes logic drives it) that is checked when a capture command is
  submitted (rejected verdict with the reason) and again when a scheduled capture fires;
* planned captures are stored commands of the sequencer (``STORED_COMMANDS`` port): CAPTURE_AT
  and CAPTURE_OVER_TARGET store a ``CAPTURE_TIMED`` due a camera warm-up before the capture time,
  so a reboot between the command and the overflight keeps them and there is one scheduler on
  board; the uplinked TLE is kept in the state store;
* new images' thumbnails are queued for downlink automatically through the ``FileDownlink``
  interface; previews and full images go on request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flightsw.core.atomic import atomic_write
from flightsw.core.clock import Stamp
from flightsw.core.component import (
    Arg,
    Channel,
    CommandFailure,
    Component,
    Event,
    Limits,
    Parameter,
    command,
)
from flightsw.core.enums import AdcsMode, LatePolicy, PointingFault, SlewStatus
from flightsw.core.events import Severity
from flightsw.core.ports import AttitudeControl, AttitudeState, PayloadGate, StoredCommands
from flightsw.core.types import BOOL, F32, F64, STRING, U8, U16, U32
from flightsw.imaging.catalog import ImageCatalog, ImageRecord
from flightsw.imaging.downlink import (
    CATALOG_PRIORITY,
    FULL_PRIORITY,
    PREVIEW_PRIORITY,
    THUMBNAIL_PRIORITY,
    FileDownlink,
)
from flightsw.imaging.planner import (
    MAX_TARGET_RADIUS_KM,
    CameraGeometry,
    NoCapture,
    OrbitPredictor,
    PlanLimits,
    Target,
    sun_elevation_deg,
)
from flightsw.imaging.products import ProductSet, make_products
from flightsw.imaging.storage import ImageStore, QuotaReport, StorageFull
from flightsw.imaging.triage import TriageScores, score_jpeg
from hal.camera import Camera, CameraError, CaptureSettings, Frame

_LOG = logging.getLogger(__name__)

PRODUCTS = ("thumbnail", "preview", "full")
PRODUCT_PRIORITY = {"thumbnail": THUMBNAIL_PRIORITY, "preview": PREVIEW_PRIORITY,
                    "full": FULL_PRIORITY}
CAPTURE_COMMANDS = {"CAPTURE_NOW", "CAPTURE_AT", "CAPTURE_OVER_TARGET", "CAPTURE_TIMED", "CAPTURE_TRACKED"}
PLAN_KEY = "imaging.plan"  # where versions before the sequencer kept planned captures
TLE_KEY = "imaging.tle"
MAX_PLANNED = 32
MAX_LEAD_S = 300.0  # longest camera power-up lead (power_up_lead_s)
MISSED_AFTER_S = 60.0  # a planned capture this late (rebooted through it) is not taken
MAX_SLEW_LEAD_S = 600.0  # longest slew lead ([imaging] slew_lead_s)
SETTLE_POLL_S = 1.0  # how often the slew status is read while waiting for it to settle


@dataclasses.dataclass(frozen=True)
class PointingSettings:
    """How a capture that needs the ADCS is sequenced ([imaging] with an ADCS device)."""

    slew_lead_s: float = 120.0  # the slew is commanded this long before the capture
    settle_timeout_s: float = 110.0  # no settled attitude by then: the capture is refused


def _allow_always() -> str | None:
    return None


class CaptureRefused(CommandFailure):
    """A capture not taken for a reason of the scene or the plan; ``reason`` goes down with it."""

    reason = "refused"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class TargetInDarkness(CaptureRefused):
    """The Sun is below ``min_sun_elevation_deg`` at the target (or the point below) then."""

    reason = NoCapture.ONLY_AT_NIGHT.value


class TargetNotInFrame(CaptureRefused):
    """No pass within the horizon puts the target inside the camera footprint."""

    reason = NoCapture.NEVER_IN_FRAME.value


class TleTooOld(CaptureRefused):
    """The TLE is older than ``max_tle_age_days`` (now, or before any usable pass)."""

    reason = NoCapture.TLE_TOO_OLD.value


class PointingFailed(CaptureRefused):
    """The capture needed the ADCS on the target and did not get it (``fault`` says why)."""

    def __init__(self, fault: PointingFault, detail: str) -> None:
        self.reason = fault.value
        self.fault = fault
        super().__init__(detail)


REFUSALS: dict[NoCapture, type[CaptureRefused]] = {
    NoCapture.ONLY_AT_NIGHT: TargetInDarkness, NoCapture.NEVER_IN_FRAME: TargetNotInFrame,
    NoCapture.TLE_TOO_OLD: TleTooOld}
DEFAULT_CAMERA = CameraGeometry(6.5, 4.9)


class ImagingComponent(Component):
    """Earth imaging payload: capture, catalog, quota, planning and downlink requests."""

    images_stored = Channel(U32, doc="Images in the catalog")
    storage_used_kb = Channel(U32, unit="KiB", doc="Bytes used by image products")
    storage_free_pct = Channel(F32, unit="%", limits=Limits(red_low=5.0, yellow_low=20.0),
                               doc="Free share of the image quota")
    captures = Channel(U32, doc="Successful captures since boot")
    capture_failures = Channel(U32, doc="Captures that failed (camera, corrupt frame, storage)")
    captures_planned = Channel(U16, doc="Scheduled captures waiting for their time")
    camera_powered = Channel(BOOL, doc="Camera opened (powered) now")

    image_captured = Event(Severity.INFO,
                           "Image {image_id} captured ({reason}): {width}x{height}, {full_bytes} B, "
                           "lat {lat} lon {lon}, cloud {cloud_pct} %, exposure {exposure_pct} %", throttle=None)
    capture_failed = Event(Severity.WARNING, "Capture failed ({reason}): {error}", throttle=(5, 60.0))
    capture_refused = Event(Severity.WARNING, "Capture refused ({reason}): {why}", throttle=(5, 60.0))
    capture_scheduled = Event(Severity.INFO, "Capture scheduled at UTC {utc} ({reason})",
                              throttle=None)
    capture_planned = Event(Severity.INFO,
                            "Target ({lat}, {lon}) planned at UTC {utc}: off-track {off_track_km} km, "
                            "off-nadir {off_nadir_deg} deg, Sun {sun_deg} deg", throttle=None)
    pointing_settled = Event(Severity.INFO,
                             "Pointed at ({lat}, {lon}): settled in {settle_s} s, off-nadir {off_nadir_deg} deg, "
                             "error {error_deg} deg", throttle=None)
    pointing_failed = Event(Severity.WARNING, "Pointing at ({lat}, {lon}) failed ({reason}): {why}",
                            throttle=(5, 60.0))
    storage_low = Event(Severity.WARNING, "Image storage low: {used_kb} of {quota_kb} KiB used",
                        throttle=(1, 600.0))
    image_evicted = Event(Severity.INFO, "Image {image_id} evicted to make room", throttle=(10, 60.0))
    image_info = Event(Severity.INFO,
                       "Image {image_id}: utc {utc} lat {lat} lon {lon} exp {exposure_us} us "
                       "gain {gain} {full_bytes} B pinned {pinned}", throttle=None)
    downlink_queued = Event(Severity.INFO, "Image {image_id} {product} queued for downlink "
                            "(transfer {transfer_id})", throttle=(20, 60.0))
    downlink_failed = Event(Severity.WARNING, "Downlink of image {image_id} {product} not queued: "
                            "{error}", throttle=(5, 60.0))
    tle_accepted = Event(Severity.INFO, "TLE accepted for onboard propagation: {line1}", throttle=None)
    image_scored = Event(Severity.INFO, "Image {image_id}: cloud {cloud_pct} %, exposure {exposure_pct} %",
                         throttle=None)
    last_cloud_pct = Channel(U8, unit="%", doc="Cloud score of the last capture (0 clear, 100 overcast)")
    last_exposure_pct = Channel(U8, unit="%", doc="Exposure score of the last capture (100 good)")

    exposure_us = Parameter(U32, default=2000, range=(10, 1_000_000), doc="Exposure time (us)")
    analogue_gain = Parameter(F32, default=1.0, range=(1.0, 16.0), doc="Sensor analogue gain")
    width = Parameter(U16, default=640, range=(16, 4056), doc="Capture width (px)")
    height = Parameter(U16, default=480, range=(16, 3040), doc="Capture height (px)")
    jpeg_quality = Parameter(U8, default=90, range=(1, 100), doc="JPEG quality of the full image")
    preview_quality = Parameter(U8, default=60, range=(5, 95), doc="JPEG quality of the preview")
    thumbnail_px = Parameter(U16, default=96, range=(32, 320), doc="Longest side of thumbnails")
    power_up_lead_s = Parameter(F32, default=10.0, range=(0.0, MAX_LEAD_S),
                                doc="Camera power-up time before a scheduled capture")
    low_space_pct = Parameter(F32, default=20.0, range=(1.0, 90.0),
                              doc="Free share of the quota below which STORAGE_LOW is raised")
    auto_thumbnails = Parameter(BOOL, default=True, doc="Queue each new thumbnail for downlink")
    min_sun_elevation_deg = Parameter(F32, default=5.0, range=(-90.0, 90.0),
                                      doc="Captures need the Sun this high at the target (-90: never refuse)")

    def __init__(
        self,
        name: str,
        base_id: int,
        camera: Camera,
        *,
        quota_bytes: int = 64 * 1024 * 1024,
        storage_dir: Path | None = None,
        downlink: FileDownlink | None = None,
        temperatures: Callable[[], dict[str, float]] | None = None,
        camera_geometry: CameraGeometry = DEFAULT_CAMERA,
        plan_limits: PlanLimits | None = None,
        pointing: PointingSettings | None = None,
    ) -> None:
        super().__init__(name, base_id)
        self.camera = camera
        self.quota_bytes = quota_bytes
        self.storage_dir = storage_dir
        self.downlink = downlink
        self.temperatures = temperatures
        self.camera_geometry = camera_geometry
        # its min_sun_elevation_deg: the parameter's; its max_off_nadir_deg: used only with an ADCS
        self.plan_limits = plan_limits or PlanLimits()
        self.pointing = pointing or PointingSettings()
        self._adcs: AttitudeControl | None = None
        self._gate: PayloadGate = _allow_always
        self._catalog: ImageCatalog | None = None
        self._store: ImageStore | None = None
        self._predictor: OrbitPredictor | None = None
        self._tle_listeners: list[Callable[[tuple[str, str]], None]] = []
        self._ready = asyncio.Event()
        self._stored: StoredCommands | None = None
        self._capture_lock = asyncio.Lock()
        self._camera_open = False
        self._captures = 0
        self._failures = 0

    # ----------------------------------------------------------------- wiring

    def set_payload_gate(self, gate: PayloadGate) -> None:
        """Install the predicate that says why the payload may not run now (None: it may)."""
        self._gate = gate

    # ORBIT_TLE provider: one TLE upload serves every onboard propagation
    def tle(self) -> tuple[str, str] | None:
        return self._predictor.lines if self._predictor is not None else None

    def add_tle_listener(self, listener: Callable[[tuple[str, str]], None]) -> None:
        self._tle_listeners.append(listener)

    def set_downlink(self, downlink: FileDownlink) -> None:
        self.downlink = downlink

    def use_adcs(self, adcs: AttitudeControl) -> None:
        """Consumer of the ADCS port: targets off the ground track become reachable."""
        self._adcs = adcs

    def use_stored_commands(self, stored: StoredCommands) -> None:
        """Consumer of the STORED_COMMANDS port: planned captures are stored commands."""
        self._stored = stored
        stored.add_change_listener(self._plans_changed)

    def setup(self) -> None:
        self.ctx.supervisor.add_service(f"{self.name}.storage", self._storage_service)
        tle = self.ctx.state.get(TLE_KEY)
        if tle:
            try:
                self._predictor = OrbitPredictor(*tle)
            except ValueError as exc:
                _LOG.warning("stored TLE unusable: %s", exc)

    def check_command(self, name: str, args: list[Any]) -> str | None:
        if name in CAPTURE_COMMANDS:
            why = self._gate()
            if why:
                return f"payload not allowed: {why}"
        if name not in ("NO_OP", "RESET_COUNTERS") and not self._ready.is_set():
            return "image storage not ready yet"
        return None

    async def shutdown(self) -> None:
        if self._camera_open:
            await self._close_camera()

    # ----------------------------------------------------------------- storage on the worker

    def _open_storage(self) -> tuple[int, int, list[int], list[int]]:
        root = self.storage_dir or (self.ctx.config.data_dir / "images")
        fsync = self.ctx.config.storage.fsync
        self._catalog = ImageCatalog(root / "catalog.sqlite", synchronous=fsync)
        self._store = ImageStore(root / "products", self.quota_bytes, fsync=fsync)
        orphans, dangling = self._store.reconcile(self._catalog)
        return self._catalog.count(), self._catalog.total_bytes(), orphans, dangling

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.ctx.workers.run_io("imaging", fn, *args)

    def _publish_storage(self, count: int, used: int) -> None:
        self.images_stored.set(count)
        self.storage_used_kb.set(used // 1024)
        free_pct = 100.0 * max(0.0, 1.0 - used / self.quota_bytes)
        self.storage_free_pct.set(free_pct)
        if free_pct < self.low_space_pct.value:
            self.storage_low.emit(used_kb=used // 1024, quota_kb=self.quota_bytes // 1024)

    # ----------------------------------------------------------------- commands

    @command(doc="Take an image now (camera powered up at once, no lead time).", timeout=60.0)
    async def capture_now(self) -> None:
        await self._capture("command")

    @command(args=[Arg("utc", U32, doc="UNIX time (s) of the capture")],
             doc="Schedule a capture at a UTC time (a stored command; needs onboard UTC).")
    async def capture_at(self, utc: int) -> None:
        now = self._utc_now()
        if utc <= now:
            raise CommandFailure(f"UTC {utc} is in the past (now {now:.0f})")
        await self._add_plan(float(utc), "timed")

    @command(args=[Arg("lat", F32, range=(-90.0, 90.0), doc="target latitude (deg)"),
                   Arg("lon", F32, range=(-180.0, 180.0), doc="target longitude (deg)"),
                   Arg("radius_km", F32, range=(1.0, MAX_TARGET_RADIUS_KM),
                       doc="largest off-track distance accepted (the footprint decides first)")],
             doc="Plan a capture at the next pass that puts the target inside the camera footprint "
                 "in daylight (from the TLE) and schedule it.",
             timeout=30.0)
    async def capture_over_target(self, lat: float, lon: float, radius_km: float) -> None:
        now = self._utc_now()
        predictor = self._predictor
        if predictor is None:
            raise CommandFailure("no TLE: uplink one with SET_TLE first")
        target = Target(lat, lon, radius_km)
        start = now + self.power_up_lead_s.value
        limits = self._limits()
        plan = await self.ctx.workers.run_cpu(predictor.plan_capture, target, start,
                                              self.camera_geometry, limits)
        chance = plan.opportunity
        if chance is None:
            assert plan.reason is not None
            refusal = REFUSALS[plan.reason](plan.detail)
            self.capture_refused.emit(reason=plan.reason.value, why=plan.detail[:80])
            raise refusal
        self.capture_planned.emit(lat=f"{lat:.3f}", lon=f"{lon:.3f}", utc=f"{chance.utc:.1f}",
                                  off_track_km=f"{chance.off_track_km:.1f}",
                                  off_nadir_deg=f"{chance.off_nadir_deg:.2f}",
                                  sun_deg=f"{chance.sun_elevation_deg:.1f}")
        reason = f"target {lat:.2f},{lon:.2f} at {chance.off_track_km:.1f} km"
        if chance.pointed:
            await self._add_plan(chance.utc, f"{reason}, {chance.off_nadir_deg:.1f} deg", (lat, lon))
        else:
            await self._add_plan(chance.utc, reason)

    def _limits(self) -> PlanLimits:
        """The planning limits now: nadir only unless an ADCS is wired."""
        return dataclasses.replace(
            self.plan_limits, min_sun_elevation_deg=float(self.min_sun_elevation_deg.value),
            max_off_nadir_deg=self.plan_limits.max_off_nadir_deg if self._adcs is not None else 0.0)

    @command(args=[Arg("utc", F64, doc="UNIX time (s) of the capture"),
                   Arg("reason", STRING(40), doc="why (reported with the image)")],
             doc="Power the camera up now and capture at a UTC time within the lead time: what "
                 "CAPTURE_AT and CAPTURE_OVER_TARGET store in the sequencer.",
             timeout=MAX_LEAD_S + 120.0)
    async def capture_timed(self, utc: float, reason: str) -> None:
        now = self._utc_now()
        if now - utc > MISSED_AFTER_S:
            raise self._fail(reason, "missed its time")
        if utc - now > MAX_LEAD_S + 5.0:
            raise CommandFailure(f"UTC {utc:.0f} is more than {MAX_LEAD_S:.0f} s ahead: store it instead")
        await self._open_camera()
        await self._sleep_until(utc)
        await self._capture(reason)

    @command(args=[Arg("utc", F64, doc="UNIX time (s) of the capture"),
                   Arg("lat", F32, range=(-90.0, 90.0), doc="target latitude (deg)"),
                   Arg("lon", F32, range=(-180.0, 180.0), doc="target longitude (deg)"),
                   Arg("reason", STRING(40), doc="why (reported with the image)")],
             doc="Slew the ADCS to track a target, wait for it to settle, capture at a UTC time, "
                 "and return the ADCS to its previous mode: what CAPTURE_OVER_TARGET stores when "
                 "the target needs pointing.",
             timeout=MAX_LEAD_S + MAX_SLEW_LEAD_S + 180.0)
    async def capture_tracked(self, utc: float, lat: float, lon: float, reason: str) -> None:
        now = self._utc_now()
        if now - utc > MISSED_AFTER_S:
            raise self._fail(reason, "missed its time")
        if utc - now > MAX_LEAD_S + MAX_SLEW_LEAD_S + 5.0:
            raise CommandFailure(f"UTC {utc:.0f} is more than {MAX_LEAD_S + MAX_SLEW_LEAD_S:.0f} s ahead: "
                                 "store it instead")
        adcs = self._adcs
        if adcs is None:
            raise self._pointing_failed(lat, lon, PointingFault.ADCS_ABSENT, "no ADCS wired")
        try:
            before = await adcs.status()
            await adcs.set_mode(AdcsMode.TARGET_TRACKING, lat, lon)
        except OSError as exc:
            raise self._pointing_failed(lat, lon, PointingFault.ADCS_ABSENT, f"ADCS: {exc}") from exc
        try:
            await self._wait_settled(adcs, lat, lon)
            await self._sleep_until(utc - float(self.power_up_lead_s.value))  # settled early: camera later
            await self._open_camera()
            await self._sleep_until(utc)
            await self._capture(reason, target=(lat, lon))
        finally:
            try:  # a previous target tracking resumes on its own target
                await adcs.set_mode(before.mode, *before.target)
            except OSError as exc:  # the ADCS component reported it; the capture's outcome stands
                _LOG.warning("ADCS not returned to %s: %s", before.mode.name, exc)

    def _pointing_failed(self, lat: float, lon: float, fault: PointingFault, why: str) -> PointingFailed:
        self.pointing_failed.emit(lat=f"{lat:.3f}", lon=f"{lon:.3f}", reason=fault.value, why=why[:80])
        self.capture_refused.emit(reason=fault.value, why=why[:80])
        return PointingFailed(fault, why)

    async def _wait_settled(self, adcs: AttitudeControl, lat: float, lon: float) -> AttitudeState:
        """Poll the slew status until SETTLED; a FAULT or the timeout refuses the capture."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + self.pointing.settle_timeout_s
        while True:
            try:
                status = await adcs.status()
            except OSError as exc:
                raise self._pointing_failed(lat, lon, PointingFault.ADCS_ABSENT, f"ADCS: {exc}") from exc
            if status.slew is SlewStatus.SETTLED:
                self.pointing_settled.emit(lat=f"{lat:.3f}", lon=f"{lon:.3f}",
                                           settle_s=f"{loop.time() - began:.1f}",
                                           off_nadir_deg=f"{status.off_nadir_deg:.2f}",
                                           error_deg=f"{status.error_deg:.2f}")
                return status
            if status.slew is SlewStatus.FAULT:
                raise self._pointing_failed(lat, lon, PointingFault.ADCS_FAULT,
                                            f"slew fault, error {status.error_deg:.1f} deg")
            if loop.time() >= deadline:
                raise self._pointing_failed(
                    lat, lon, PointingFault.NOT_SETTLED,
                    f"not settled in {self.pointing.settle_timeout_s:g} s, error {status.error_deg:.1f} deg")
            await asyncio.sleep(SETTLE_POLL_S)

    async def _sleep_until(self, utc: float) -> None:
        """Sleep until onboard UTC reaches ``utc``, re-reading it each second (UTC can step)."""
        while True:
            remaining = utc - self._utc_now()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 1.0))

    @command(args=[Arg("line1", STRING(69)), Arg("line2", STRING(69))],
             doc="Uplink a TLE for onboard SGP4 propagation (positions and target planning).")
    async def set_tle(self, line1: str, line2: str) -> None:
        try:
            predictor = OrbitPredictor(line1, line2)
        except ValueError as exc:
            raise CommandFailure(str(exc)) from exc
        self._predictor = predictor
        self.ctx.state.set(TLE_KEY, list(predictor.lines))
        await self.ctx.state.save()
        self.tle_accepted.emit(line1=predictor.lines[0][:24])
        for listener in self._tle_listeners:  # the ORBIT_TLE port: contact-aware downlink follows
            listener(predictor.lines)

    @command(args=[Arg("exposure_us", U32, range=(10, 1_000_000)),
                   Arg("analogue_gain", F32, range=(1.0, 16.0)),
                   Arg("width", U16, range=(16, 4056)),
                   Arg("height", U16, range=(16, 3040)),
                   Arg("jpeg_quality", U8, range=(1, 100))],
             doc="Set all camera parameters at once (validated, persisted).")
    async def set_camera(self, exposure_us: int, analogue_gain: float, width: int, height: int,
                         jpeg_quality: int) -> None:
        for decl, value in ((ImagingComponent.exposure_us, exposure_us),
                            (ImagingComponent.analogue_gain, analogue_gain),
                            (ImagingComponent.width, width), (ImagingComponent.height, height),
                            (ImagingComponent.jpeg_quality, jpeg_quality)):
            await self.ctx.params.set(self.item_id(decl), value)

    @command(args=[Arg("since_id", U32), Arg("max_count", U8, range=(1, 50))],
             doc="Report catalog entries from since_id as IMAGE_INFO events.")
    async def list_images(self, since_id: int, max_count: int) -> None:
        assert self._catalog is not None
        for record in await self._db(self._catalog.list, since_id, max_count):
            self.image_info.emit(
                image_id=record.id, utc=_fmt(record.utc, 0), lat=_fmt(record.lat, 3),
                lon=_fmt(record.lon, 3), exposure_us=record.exposure_us,
                gain=round(record.analogue_gain, 2), full_bytes=record.full_bytes,
                pinned=record.pinned)

    @command(args=[Arg("image_id", U32), Arg("pinned", BOOL)],
             doc="Pin (never evict) or unpin an image.")
    async def pin_image(self, image_id: int, pinned: bool) -> None:
        assert self._catalog is not None
        if not await self._db(self._catalog.set_pinned, image_id, pinned):
            raise CommandFailure(f"no image {image_id}")

    @command(args=[Arg("image_id", U32)], doc="Delete an image and its products.")
    async def delete_image(self, image_id: int) -> None:
        assert self._catalog is not None and self._store is not None
        if not await self._db(self._catalog.delete, image_id):
            raise CommandFailure(f"no image {image_id}")
        await self._db(self._store.remove, image_id)
        await self._refresh_storage()

    @command(args=[Arg("image_id", U32), Arg("product", U8, range=(0, 2),
                                             doc="0 thumbnail, 1 preview, 2 full")],
             doc="Queue an image product for downlink.")
    async def downlink_image(self, image_id: int, product: int) -> None:
        assert self._catalog is not None
        if await self._db(self._catalog.get, image_id) is None:
            raise CommandFailure(f"no image {image_id}")
        if not await self._request_downlink(image_id, PRODUCTS[product]):
            raise CommandFailure(f"downlink of image {image_id} {PRODUCTS[product]} not queued")

    @command(doc="Export the catalog as JSON and queue it for downlink.")
    async def downlink_catalog(self) -> None:
        if self.downlink is None:
            raise CommandFailure("no file downlink available")
        path: Path = await self._db(self._export_catalog)
        await self.downlink.put(path, "catalog.json", CATALOG_PRIORITY)

    @command(args=[Arg("max_count", U8, range=(1, 50)),
                   Arg("max_cloud_pct", U8, range=(0, 100), doc="leave out images cloudier than this"),
                   Arg("min_exposure_pct", U8, range=(0, 100), doc="leave out images exposed worse than this")],
             doc="Report the best images (least cloud, then best exposure) as IMAGE_SCORED events.")
    async def list_best(self, max_count: int, max_cloud_pct: int, min_exposure_pct: int) -> None:
        assert self._catalog is not None
        for record in await self._db(self._catalog.by_score, max_count, max_cloud_pct / 100,
                                     min_exposure_pct / 100):
            self.image_scored.emit(image_id=record.id, cloud_pct=_pct(record.cloud),
                                   exposure_pct=_pct(record.exposure))

    @command(args=[Arg("product", U8, range=(0, 2), doc="0 thumbnail, 1 preview, 2 full"),
                   Arg("max_count", U8, range=(1, 50)),
                   Arg("max_cloud_pct", U8, range=(0, 100), doc="leave out images cloudier than this"),
                   Arg("min_exposure_pct", U8, range=(0, 100), doc="leave out images exposed worse than this")],
             doc="Queue a product of the best images for downlink, best first (least cloud, best exposure).",
             timeout=60.0)
    async def downlink_best(self, product: int, max_count: int, max_cloud_pct: int, min_exposure_pct: int) -> None:
        assert self._catalog is not None
        best = await self._db(self._catalog.by_score, max_count, max_cloud_pct / 100, min_exposure_pct / 100)
        if not best:
            raise CommandFailure(f"no scored image with cloud <= {max_cloud_pct} % and exposure >= "
                                 f"{min_exposure_pct} %")
        queued = 0
        for record in best:
            queued += await self._request_downlink(record.id, PRODUCTS[product])
        if not queued:
            raise CommandFailure(f"none of {len(best)} images could be queued")

    @command(doc="Forget every scheduled capture (deletes them from the stored commands).")
    async def cancel_captures(self) -> None:
        await self._stored_port().delete_command(self._timed_command)
        await self._stored_port().delete_command(self._tracked_command)
        self._plans_changed()

    # ----------------------------------------------------------------- planning

    def _utc_now(self) -> float:
        utc = self.ctx.clock.utc()
        if utc is None:
            raise CommandFailure("onboard UTC unknown: correlate time first")
        return utc

    @property
    def _timed_command(self) -> str:
        return f"{self.name}.CAPTURE_TIMED"

    @property
    def _tracked_command(self) -> str:
        return f"{self.name}.CAPTURE_TRACKED"

    def _stored_port(self) -> StoredCommands:
        if self._stored is None:
            raise CommandFailure("no sequencer wired: captures cannot be scheduled")
        return self._stored

    def planned(self) -> list[dict[str, Any]]:
        """Scheduled captures, earliest first (``utc``, ``reason``): the sequencer's stored
        CAPTURE_TIMED commands."""
        if self._stored is None:
            return []
        plan = [{"utc": float(item.args[0]), "reason": str(item.args[1])}
                for item in self._stored.pending_items(self._timed_command)]
        plan += [{"utc": float(item.args[0]), "reason": str(item.args[3]),
                  "target": (float(item.args[1]), float(item.args[2]))}
                 for item in self._stored.pending_items(self._tracked_command)]
        return sorted(plan, key=lambda p: p["utc"])

    def _plans_changed(self) -> None:
        self.captures_planned.set(min(len(self.planned()), 0xFFFF))

    async def _add_plan(self, utc: float, reason: str, target: tuple[float, float] | None = None) -> None:
        """Store the capture: CAPTURE_TIMED due a warm-up before it, or (``target``: it needs
        pointing) CAPTURE_TRACKED due a slew lead earlier still."""
        stored = self._stored_port()
        if len(self.planned()) >= MAX_PLANNED:
            raise CommandFailure(f"{MAX_PLANNED} captures already planned; cancel some first")
        lead = float(self.power_up_lead_s.value)
        name, args = self._timed_command, [utc, reason[:40]]
        if target is not None:
            lead = max(lead, self.pointing.slew_lead_s)
            name, args = self._tracked_command, [utc, target[0], target[1], reason[:40]]
        try:
            # due at the warm-up; missed by more than MISSED_AFTER_S after the capture time: dropped
            await stored.store_at_utc(name, args, utc - lead,
                                      LatePolicy.SKIP_IF_LATER_THAN, MISSED_AFTER_S + lead,
                                      source=f"{self.name}.capture")
        except ValueError as exc:
            raise CommandFailure(str(exc)) from None
        self.capture_scheduled.emit(utc=f"{utc:.1f}", reason=reason)

    async def next_overflight(self, lat: float, lon: float, radius_km: float,
                              after_utc: float) -> float | None:
        """The OVERFLIGHTS port: next pass over a target from the uplinked TLE (within the
        search horizon, and while the TLE is younger than its age limit)."""
        predictor = self._predictor
        if predictor is None:
            raise ValueError("no TLE: uplink one with SET_TLE first")
        limits = self.plan_limits
        horizon = min(limits.horizon_s, predictor.epoch_utc + limits.max_tle_age_s - after_utc)
        if horizon <= 0:
            raise ValueError(f"TLE older than {limits.max_tle_age_s / 86400:g} d: uplink a new one")
        overflight = await self.ctx.workers.run_cpu(predictor.next_overflight,
                                                    Target(lat, lon, radius_km), after_utc, horizon)
        return None if overflight is None else overflight.utc

    async def _migrate_old_plan(self) -> None:
        """Captures planned by a version that kept its own plan become stored commands."""
        old = self.ctx.state.get(PLAN_KEY)
        if not old or self._stored is None:
            return
        for entry in old:
            try:
                await self._add_plan(float(entry["utc"]), str(entry["reason"]))
            except (CommandFailure, KeyError, TypeError, ValueError) as exc:
                self.capture_failed.emit(reason="plan migration", error=str(exc)[:80])
        self.ctx.state.set(PLAN_KEY, None)
        await self.ctx.state.save()

    async def _storage_service(self) -> None:
        count, used, orphans, dangling = await self._db(self._open_storage)
        if orphans or dangling:
            _LOG.warning("image store reconciled: orphans %s, dangling rows %s", orphans, dangling)
        self._publish_storage(count, used)
        self._plans_changed()
        self.camera_powered.set(False)
        self._ready.set()
        await self._migrate_old_plan()

    # ----------------------------------------------------------------- capture pipeline

    async def _open_camera(self) -> None:
        if not self._camera_open:
            await self.ctx.workers.run_io("camera", self.camera.open)
            self._camera_open = True
            self.camera_powered.set(True)

    async def _close_camera(self) -> None:
        self._camera_open = False
        self.camera_powered.set(False)
        await self.ctx.workers.run_io("camera", self.camera.close)

    def _settings(self) -> CaptureSettings:
        return CaptureSettings(
            exposure_us=int(self.exposure_us.value), analogue_gain=float(self.analogue_gain.value),
            width=int(self.width.value), height=int(self.height.value),
            jpeg_quality=int(self.jpeg_quality.value))

    def _fail(self, reason: str, error: str) -> CommandFailure:
        self._failures += 1
        self.capture_failures.set(self._failures)
        self.capture_failed.emit(reason=reason, error=error)
        return CommandFailure(error)

    async def _capture(self, reason: str, target: tuple[float, float] | None = None) -> int:
        """Take, store and catalog one image; ``target``: the ADCS tracks it (its sun and the
        pointed footprint then, instead of the point below)."""
        why = self._gate()
        if why:
            self.capture_refused.emit(reason=reason, why=why)
            raise CommandFailure(f"payload not allowed: {why}")
        async with self._capture_lock:
            settings = self._settings()
            predictor = self._predictor
            start = self.ctx.clock.now()
            sun = None
            if predictor is not None and start.utc is not None:
                below = predictor.subpoint(start.utc)
                seen = (below.lat_deg, below.lon_deg) if target is None else target
                sun = float(sun_elevation_deg(seen[0], seen[1], start.utc))
                minimum = float(self.min_sun_elevation_deg.value)
                if sun < minimum:
                    refusal = TargetInDarkness(f"Sun {sun:.1f} deg at ({seen[0]:.2f}, "
                                               f"{seen[1]:.2f}), minimum {minimum:g}")
                    self.capture_refused.emit(reason=reason, why=str(refusal)[:80])
                    raise refusal
            try:
                await self._open_camera()
                opened = self.ctx.clock.now()
                frame: Frame = await asyncio.wait_for(
                    self.ctx.workers.run_io("camera", self.camera.capture, settings),
                    settings.timeout_s + settings.exposure_us / 1e6 + 5.0)
                taken = self.ctx.clock.now()
            except (CameraError, TimeoutError) as exc:
                raise self._fail(reason, f"camera: {exc or 'timed out'}") from exc
            finally:
                if self._camera_open and not self._capture_soon():
                    await self._close_camera()
            # the exposure: the middle of the camera call (not the command's start)
            stamp = _middle(opened, taken)
            view = None
            if predictor is not None and stamp.utc is not None:
                seen_target = None if target is None else Target(target[0], target[1], MAX_TARGET_RADIUS_KM)
                view = await self.ctx.workers.run_cpu(predictor.view, stamp.utc, self.camera_geometry,
                                                      seen_target, target is not None)
            try:
                products: ProductSet = await self.ctx.workers.run_cpu(
                    make_products, frame, int(self.preview_quality.value), 320,
                    int(self.thumbnail_px.value))
            except CameraError as exc:
                raise self._fail(reason, f"bad frame: {exc}") from exc
            scores: TriageScores = await self.ctx.workers.run_cpu(
                score_jpeg, products.preview, float(settings.exposure_us), float(settings.analogue_gain), sun)
            temperatures: dict[str, float] = {}
            sensor_temp = frame.metadata.get("SensorTemperature")
            if isinstance(sensor_temp, int | float):
                temperatures["sensor"] = float(sensor_temp)
            if self.temperatures is not None:
                temperatures.update(self.temperatures())
            record = ImageRecord(
                id=0, boot=stamp.boot, since_boot=stamp.seconds, utc=stamp.utc,
                lat=None if view is None else view.subpoint.lat_deg,
                lon=None if view is None else view.subpoint.lon_deg,
                exposure_us=settings.exposure_us, analogue_gain=settings.analogue_gain,
                width=products.width, height=products.height, sha256=products.sha256,
                full_bytes=len(products.full), preview_bytes=len(products.preview),
                thumbnail_bytes=len(products.thumbnail), temperatures=temperatures, reason=reason,
                cloud=round(scores.cloud, 4), exposure=round(scores.exposure, 4),
                footprint=None if view is None else view.footprint.to_json())
            try:
                report: QuotaReport = await self._db(self._store_capture, record, products)
            except StorageFull as exc:
                raise self._fail(reason, f"storage full: {exc}") from exc
        for evicted in report.evicted:
            self.image_evicted.emit(image_id=evicted)
        self._captures += 1
        self.captures.set(self._captures)
        self.image_captured.emit(
            image_id=record.id, reason=reason, width=record.width, height=record.height,
            full_bytes=record.full_bytes, lat=_fmt(record.lat, 3), lon=_fmt(record.lon, 3),
            cloud_pct=round(100 * scores.cloud), exposure_pct=round(100 * scores.exposure))
        self.last_cloud_pct.set(round(100 * scores.cloud))
        self.last_exposure_pct.set(round(100 * scores.exposure))
        await self._refresh_storage()
        if self.auto_thumbnails.value and self.downlink is not None:
            await self._request_downlink(record.id, "thumbnail")
        return record.id

    def _capture_soon(self) -> bool:
        utc = self.ctx.clock.utc()
        plan = self.planned()
        return bool(plan and utc is not None
                    and plan[0]["utc"] - utc < 2 * float(self.power_up_lead_s.value) + 5.0)

    def _store_capture(self, record: ImageRecord, products: ProductSet) -> QuotaReport:
        assert self._catalog is not None and self._store is not None
        report = self._store.make_room(self._catalog, products.total_bytes)
        record.id = self._catalog.next_id()
        self._store.store(self._catalog, record, products)
        return report

    async def _refresh_storage(self) -> None:
        catalog = self._catalog
        assert catalog is not None
        count, used = await self._db(lambda: (catalog.count(), catalog.total_bytes()))
        self._publish_storage(count, used)

    async def _request_downlink(self, image_id: int, product: str) -> bool:
        assert self._store is not None
        if self.downlink is None:
            self.downlink_failed.emit(image_id=image_id, product=product,
                                      error="no file downlink available")
            return False
        path = self._store.path(image_id, product)
        name = f"img{image_id:06d}_{product}.jpg"
        try:
            transfer_id = await self.downlink.put(path, name, PRODUCT_PRIORITY[product])
        except (OSError, ValueError) as exc:
            self.downlink_failed.emit(image_id=image_id, product=product, error=str(exc))
            return False
        self.downlink_queued.emit(image_id=image_id, product=product, transfer_id=transfer_id)
        return True

    def _export_catalog(self) -> Path:
        assert self._catalog is not None and self._store is not None
        path = self._store.root.parent / "catalog.json"
        records = [r.to_json() for r in self._catalog.list(0, 100_000)]
        atomic_write(path, json.dumps({"images": records}, sort_keys=True).encode(), fsync=self._store.fsync)
        return path


def _middle(a: Stamp, b: Stamp) -> Stamp:
    """The stamp halfway between two of the same boot (UTC only if both have it)."""
    utc = None if a.utc is None or b.utc is None else (a.utc + b.utc) / 2
    return Stamp(b.boot, (a.seconds + b.seconds) / 2, utc)


def _pct(score: float | None) -> int:
    return 255 if score is None else round(100 * score)


def _fmt(value: float | None, digits: int) -> str:
    return "unknown" if value is None else f"{value:.{digits}f}"
