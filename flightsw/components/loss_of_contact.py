"""Loss of contact: when no valid authenticated command arrives for long, climb the ladder.

radio power-cycle (through the radio's GPIO power line, OUTPUTS port) -> reboot of the flight
software (REBOOT port, reset reason LOSS_OF_CONTACT) -> the link's safe defaults
(LINK_DEFAULTS port: the default uplink key and link parameters). The decision rules are in
``contact_ladder`` (pure); this component measures silence in MET, persists the ladder's state
so a reboot continues the count, counts and reports each rung, and listens for valid commands on
the COMMANDS port (every response to an uplinked command: the link hands the dispatcher only
authenticated commands), so it never reaches into the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from flightsw.app import Subsystem
from flightsw.components.contact_ladder import (
    ContactStep,
    LadderState,
    LadderTimes,
    contact,
    next_rung,
    took,
)
from flightsw.config import LossOfContactSection
from flightsw.core.commands import CommandResponse
from flightsw.core.component import Channel, Component, Counter, CounterSet, Event
from flightsw.core.enums import ResetReason
from flightsw.core.events import Severity
from flightsw.core.ports import (
    COMMANDS,
    LINK_DEFAULTS,
    OUTPUTS,
    REBOOT,
    CommandPort,
    LinkDefaults,
    OutputBank,
    RebootRequest,
)
from flightsw.core.types import F64, U8

if TYPE_CHECKING:
    from flightsw.app import Satellite

log = logging.getLogger("flightsw.contact")

STATE_KEY = "loss_of_contact"
COUNTS_KEY = "loss_of_contact.counts"  # rung -> times taken since first boot (persisted)
CHECK_PERIOD_S = 10.0  # how often the ladder looks at the silence (its thresholds are hours)
UPLINK_SOURCE = "uplink"  # the dispatcher's source of commands the link authenticated


class LossOfContact(Component):
    """Silence timer across reboots and the radio reset / reboot / safe defaults ladder."""

    silent_s = Channel(F64, unit="s", doc="Seconds of MET since the last valid authenticated command")
    step = Channel(U8, doc="Last rung taken: 0 IN_CONTACT, 1 RADIO_RESET, 2 REBOOT, 3 SAFE_DEFAULTS",
                   update="on_change")
    radio_resets = Counter("Radio power-cycles by the ladder (persisted across boots)")
    reboots = Counter("Reboots by the ladder (persisted across boots)")
    safe_defaults = Counter("Falls back to the link's safe defaults (persisted across boots)")
    rungs_skipped = Counter("Rungs that could not act (no radio power line, no link)")

    radio_reset = Event(Severity.WARNING, "No valid command for {silent_s:.0f} s: power-cycling the radio "
                        "({output}, {off_s:.1f} s off)", throttle=None)
    radio_restored = Event(Severity.INFO, "Radio power restored ({output})", throttle=None)
    rebooting = Event(Severity.WARNING, "No valid command for {silent_s:.0f} s: rebooting", throttle=None)
    defaults_restored = Event(Severity.CRITICAL, "No valid command for {silent_s:.0f} s: link back to safe "
                              "defaults ({detail})", throttle=None)
    rung_skipped = Event(Severity.WARNING, "Loss-of-contact rung {rung} skipped: {detail}", throttle=None)
    contact_regained = Event(Severity.INFO, "Contact regained after {silent_s:.0f} s (ladder was at {rung})",
                             throttle=None)

    def __init__(self, settings: LossOfContactSection, name: str = "loc") -> None:
        super().__init__(name, settings.base_id)
        self.settings = settings
        self.times = LadderTimes(settings.radio_reset_after_s, settings.reboot_after_s,
                                 settings.safe_defaults_after_s)
        self.stats = CounterSet(self)
        self._outputs: OutputBank | None = None
        self._reset: RebootRequest | None = None
        self._link: LinkDefaults | None = None
        self.ladder = LadderState(0.0)
        self._loaded = False
        self._contact = asyncio.Event()  # set by a valid command: save the ladder's state at once

    # -- wiring -------------------------------------------------------------------------------
    def use_commands(self, commands: CommandPort) -> None:
        commands.add_listener(self._on_response)

    def use_outputs(self, outputs: OutputBank) -> None:
        self._outputs = outputs

    def use_reset(self, reset: RebootRequest) -> None:
        self._reset = reset

    def use_link(self, link: LinkDefaults) -> None:
        self._link = link

    def setup(self) -> None:
        ctx = self.ctx
        counts = dict(ctx.state.get(COUNTS_KEY) or {})
        for key in ("radio_resets", "reboots", "safe_defaults", "rungs_skipped"):
            self.stats.inc(key, int(counts.get(key, 0)))
        ctx.rate_group("slow").add(f"{self.name}.telemetry", self.publish)
        ctx.supervisor.add_service(f"{self.name}.ladder", self._ladder_loop, critical=False)

    # -- contact ------------------------------------------------------------------------------
    def _on_response(self, response: CommandResponse) -> None:
        if response.source != UPLINK_SOURCE:
            return
        met = self.ctx.clock.met()
        previous = self.ladder
        self.ladder = contact(met)
        self._loaded = True
        self._store()
        self._contact.set()  # the ladder loop saves it now: a reset must not resume an old silence
        if previous.step is not ContactStep.IN_CONTACT:
            self.contact_regained.emit(silent_s=previous.silent_s(met), rung=previous.step.value)

    # -- the ladder ---------------------------------------------------------------------------
    def publish(self) -> None:
        if not self._loaded:
            return
        self.silent_s.set(self.ladder.silent_s(self.ctx.clock.met()))
        self.step.set(self.ladder.step.code)
        self.stats.publish()

    async def _ladder_loop(self) -> None:
        """Take the next rung when its time has come (one at a time, in order). The state changes
        only on a valid command or a rung, and is saved at once then: silence itself needs no
        checkpoint, it is counted in MET (which the satellite checkpoints)."""
        if not self._loaded:  # MET is read on the running loop's clock (after the epoch restarted)
            self.ladder = LadderState.from_dict(self.ctx.state.get(STATE_KEY), self.ctx.clock.met())
            self._loaded = True
            await self._save()  # a first boot's silence starts now, on disk too
        while True:
            rung = next_rung(self.ladder, self.ctx.clock.met(), self.times)
            if rung is not None:
                await self._take(rung)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHECK_PERIOD_S):
                    await self._contact.wait()
            if self._contact.is_set():
                self._contact.clear()
                await self._save()

    async def _take(self, rung: ContactStep) -> None:
        silent = self.ladder.silent_s(self.ctx.clock.met())
        # the rung is persisted as taken before it acts: a reboot during it never repeats it
        self.ladder = took(self.ladder, rung)
        if rung is ContactStep.RADIO_RESET:
            self.stats.inc("radio_resets")
            await self._save()
            await self._power_cycle_radio(silent)
        elif rung is ContactStep.REBOOT:
            self.stats.inc("reboots")
            await self._save()
            self._reboot(silent)
        else:
            self.stats.inc("safe_defaults")
            await self._save()
            await self._restore_defaults(silent)

    async def _power_cycle_radio(self, silent: float) -> None:
        name = self.settings.radio_power_output
        if self._outputs is not None and name:
            self._outputs.open()  # idempotent; requested on the loop, never while building
        line = self._outputs.outputs.get(name) if self._outputs is not None and name else None
        if line is None:
            self._skip(ContactStep.RADIO_RESET, "no radio power output configured" if not name
                       else f"output {name!r} not available")
            return
        self.radio_reset.emit(silent_s=silent, output=name, off_s=self.settings.radio_off_s)
        line.set(False)
        try:
            await asyncio.sleep(self.settings.radio_off_s)
        finally:
            line.set(True)  # never leave the radio off, even when cancelled (a shutdown)
        self.radio_restored.emit(output=name)

    def _reboot(self, silent: float) -> None:
        if self._reset is None:
            self._skip(ContactStep.REBOOT, "no reset service wired")
            return
        self.rebooting.emit(silent_s=silent)
        self._reset(ResetReason.LOSS_OF_CONTACT, f"no valid command for {silent:.0f} s")

    async def _restore_defaults(self, silent: float) -> None:
        if self._link is None:
            self._skip(ContactStep.SAFE_DEFAULTS, "no link")
            return
        detail = await self._link.restore_defaults()
        self.defaults_restored.emit(silent_s=silent, detail=detail[:80])

    def _skip(self, rung: ContactStep, detail: str) -> None:
        self.stats.inc("rungs_skipped")
        self.rung_skipped.emit(rung=rung.value, detail=detail)

    # -- persistence --------------------------------------------------------------------------
    def _store(self) -> None:
        state = self.ctx.state
        state.set(STATE_KEY, self.ladder.to_dict())
        state.set(COUNTS_KEY, {k: self.stats[k] for k in ("radio_resets", "reboots", "safe_defaults",
                                                          "rungs_skipped")})

    async def _save(self) -> None:
        self._store()
        await self.ctx.state.save()

    async def shutdown(self) -> None:
        if self._loaded:
            self._store()  # the satellite saves the state store after every component's shutdown


def build_loss_of_contact(sat: Satellite) -> None:
    """Subsystem builder (``contact`` entry point): only with a ``[loss_of_contact]`` section."""
    settings = sat.config.loss_of_contact
    if settings is None:
        return
    comp = sat.add(LossOfContact(settings))
    sat.ports.connect(COMMANDS, comp.use_commands, required=True, by=comp.name)
    sat.ports.connect(OUTPUTS, comp.use_outputs, by=comp.name)
    sat.ports.connect(REBOOT, comp.use_reset, required=True, by=comp.name)
    sat.ports.connect(LINK_DEFAULTS, comp.use_link, by=comp.name)


SUBSYSTEM = Subsystem("loss_of_contact", build_loss_of_contact, order=85)
