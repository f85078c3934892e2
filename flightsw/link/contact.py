"""Contact-aware downlink: transmit when a ground station can hear, save energy when none can.

Why: with ~5 passes a day over one station, a satellite that transmits all orbit spends its
radio's power on empty sky. From the uplinked TLE (``imaging.SET_TLE`` through the ORBIT_TLE port
when the payload is configured, ``contact.SET_TLE``, or a TLE loaded before launch in
``[contact] tle``; the newest upload wins) the satellite predicts its passes over the configured stations
(flightsw.link.passes, in an executor, every ``replan_h`` hours and on a new TLE). In a
predicted pass (widened by ``margin_s`` on both sides) housekeeping goes at its configured rate
and a playback of everything recorded since the last pass starts; out of one the link sends
beacons only (or nothing, ``out_of_contact = "silent"``) and housekeeping is emitted and
recorded every ``housekeeping_divisor``-th cycle. Without a TLE, or without UTC on board, nothing
changes: beacons and real-time traffic go as they always did. Every step is an event.
"""

from __future__ import annotations

import asyncio
import logging

from flightsw.config import ContactSection
from flightsw.core.component import (
    Arg,
    Channel,
    CommandFailure,
    Component,
    Counter,
    CounterSet,
    Event,
    command,
)
from flightsw.core.events import Severity
from flightsw.core.ports import TleSource
from flightsw.core.types import BOOL, F32, F64, STRING, U16
from flightsw.link.component import LinkComponent
from flightsw.link.passes import Pass, PassPredictor, Station, TleError
from flightsw.link.playback import Playback

log = logging.getLogger("flightsw.link.contact")

STATE_TLE = "contact.tle"
NO_UTC_RETRY_S = 60.0  # without UTC on board, look again this often


class ContactManager(Component):
    """Predicts passes from the TLE and switches the downlink between pass and out-of-contact."""

    predictions = Counter("Pass predictions run")
    prediction_failures = Counter("Pass predictions that failed (TLE too old, decayed)")
    passes_started = Counter("Predicted passes entered")
    in_contact = Channel(BOOL, doc="In a predicted pass (false also when nothing is predicted)",
                         update="on_change")
    predicting = Channel(BOOL, doc="A TLE is loaded and passes are predicted", update="on_change")
    next_aos = Channel(F64, unit="s", doc="UTC of the next predicted AOS (0: none)", update="on_change")
    next_los = Channel(F64, unit="s", doc="UTC of the current or next predicted LOS (0: none)",
                       update="on_change")
    passes_ahead = Channel(U16, doc="Predicted passes in the horizon", update="on_change")
    energy_saved = Channel(F32, unit="J", doc="Transmitter energy not spent out of contact since boot",
                           update="on_change")

    tle_accepted = Event(Severity.INFO, "TLE accepted for pass prediction: {line1}", throttle=None)
    predicted = Event(Severity.INFO, "{count} passes predicted; next AOS {aos:.0f} over {station}",
                      throttle=(5, 3600.0))
    prediction_failed = Event(Severity.WARNING, "Pass prediction failed: {error}", throttle=(3, 3600.0))
    pass_started = Event(Severity.INFO, "Predicted pass over {station} until {los:.0f}", throttle=None)
    pass_ended = Event(Severity.INFO, "Predicted pass ended: out of contact ({mode})", throttle=None)

    def __init__(self, settings: ContactSection, link: LinkComponent, playback: Playback,
                 name: str = "contact", base_id: int = 0x006C) -> None:
        super().__init__(name, base_id)
        self.settings = settings
        self.link = link
        self.playback = playback
        self.stations = [Station(s.name, s.lat_deg, s.lon_deg, s.alt_m, s.min_elevation_deg)
                         for s in settings.stations]
        self.stats = CounterSet(self)
        self.predictor: PassPredictor | None = None
        self.passes: list[Pass] = []
        self._planned_at: float | None = None
        self._state: bool | None = None  # None: no prediction in force
        self._changed = asyncio.Event()
        self._tle_source: TleSource | None = None

    def use_tle_source(self, source: TleSource) -> None:
        """Consumer of the ORBIT_TLE port (imaging): its TLE uploads feed the pass prediction too."""
        self._tle_source = source
        source.add_tle_listener(self._on_shared_tle)

    def _on_shared_tle(self, lines: tuple[str, str]) -> None:
        try:
            predictor = PassPredictor(*lines)
        except TleError as exc:
            self.prediction_failed.emit(error=f"shared TLE: {exc}"[:80])
            return
        self._adopt(predictor)

    def setup(self) -> None:
        # the newest (by epoch) of the TLE last used, the shared one and the pre-launch one
        shared = self._tle_source.tle() if self._tle_source is not None else None
        candidates = []
        for lines in (self.ctx.state.get(STATE_TLE), shared, self.settings.tle):
            if lines:
                try:
                    candidates.append(PassPredictor(*lines))
                except TleError as exc:
                    log.warning("TLE unusable: %s", exc)
        self.predictor = max(candidates, key=lambda p: p.epoch, default=None)
        self.ctx.supervisor.add_service(f"{self.name}.run", self._run, critical=False)
        self.ctx.rate_group("slow").add(f"{self.name}.telemetry", self.publish)

    # -- commands -------------------------------------------------------------------------------
    @command(args=[Arg("line1", STRING(69)), Arg("line2", STRING(69))],
             doc="Uplink a TLE for onboard pass prediction (contact-aware downlink).")
    async def set_tle(self, line1: str, line2: str) -> None:
        try:
            predictor = PassPredictor(line1, line2)
        except TleError as exc:
            raise CommandFailure(str(exc)) from None
        self._adopt(predictor)
        await self.ctx.state.save()

    def _adopt(self, predictor: PassPredictor) -> None:
        """Predict from this TLE from now on (the newest upload wins, whichever command brought it)."""
        self.predictor = predictor
        self._planned_at = None
        self.ctx.state.set(STATE_TLE, list(predictor.lines))
        self.tle_accepted.emit(line1=predictor.lines[0][:24])
        self._changed.set()

    @command(doc="Predict the passes again now.")
    def replan(self) -> None:
        if self.predictor is None:
            raise CommandFailure("no TLE: uplink one with contact.SET_TLE")
        self._planned_at = None
        self._changed.set()

    # -- service --------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            self._changed.clear()  # before the step: a TLE arriving during a plan is not missed
            wait = await self._step()
            try:
                await asyncio.wait_for(self._changed.wait(), wait)
            except TimeoutError:
                pass

    async def _step(self) -> float | None:
        """Plan if due, apply the state for now; the seconds until something changes (None: a TLE)."""
        if self.predictor is None:
            self._apply(None)
            return None
        now = self.ctx.clock.utc()
        if now is None:
            self._apply(None)
            return NO_UTC_RETRY_S
        replan_s = self.settings.replan_h * 3600.0
        if self._planned_at is None or now - self._planned_at >= replan_s:
            await self._plan(now)
        margin = self.settings.margin_s
        current = next((p for p in self.passes if p.aos - margin <= now < p.los + margin), None)
        if not self.passes and self._planned_at is None:
            self._apply(None)  # prediction failed: behave as without a TLE
            return replan_s
        self._apply(True if current is not None else False, current)
        upcoming = [p.aos - margin for p in self.passes if p.aos - margin > now]
        edges = [current.los + margin] if current is not None else upcoming[:1]
        until_replan = (self._planned_at or now) + replan_s - now
        return max(0.5, min([until_replan, *(e - now for e in edges)]))

    async def _plan(self, now: float) -> None:
        predictor = self.predictor
        assert predictor is not None
        horizon = self.settings.horizon_h * 3600.0
        start = now - self.settings.margin_s - 3600.0  # a pass already under way is found too
        try:
            passes = await self.ctx.workers.run_cpu(predictor.passes, self.stations, start, horizon + 3600.0)
        except (TleError, ValueError) as exc:
            self.stats.inc("prediction_failures")
            self.prediction_failed.emit(error=str(exc)[:80])
            self.passes, self._planned_at = [], None
            return
        self.stats.inc("predictions")
        self.passes = [p for p in passes if p.los + self.settings.margin_s > now]
        self._planned_at = now
        nxt = next((p for p in self.passes if p.aos > now), None)
        self.predicted.emit(count=len(self.passes), aos=nxt.aos if nxt else 0.0,
                            station=nxt.station if nxt else "-")

    def _apply(self, in_contact: bool | None, current: Pass | None = None) -> None:
        if in_contact == self._state:
            return
        previous, self._state = self._state, in_contact
        silent = self.settings.out_of_contact == "silent"
        self.link.set_contact(in_contact, silent)
        self.ctx.telemetry.set_packet_divisor(self.settings.housekeeping_divisor if in_contact is False else 1)
        if in_contact:
            self.stats.inc("passes_started")
            assert current is not None
            self.pass_started.emit(station=current.station, los=current.los)
            if self.settings.auto_playback:
                self.playback.start_auto()
        elif in_contact is False and previous is not None:
            self.pass_ended.emit(mode=self.settings.out_of_contact)

    def publish(self) -> None:
        self.stats.publish()
        now = self.ctx.clock.utc() or 0.0
        self.in_contact.set(bool(self._state))
        self.predicting.set(self._state is not None)
        upcoming = [p for p in self.passes if p.los > now]
        nxt = next((p for p in upcoming if p.aos > now), None)
        self.next_aos.set(nxt.aos if nxt else 0.0)
        self.next_los.set(upcoming[0].los if upcoming else 0.0)
        self.passes_ahead.set(min(len(upcoming), 0xFFFF))
        self.energy_saved.set(self.link.airtime_saved_s * self.settings.tx_extra_power_w)
