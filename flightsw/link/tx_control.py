"""Transmitter control: the one owner of permission to key the transmitter.

Why one owner: RF silence after separation, the ground's transmitter-off command (the ITU's
cessation of emissions by telecommand), a low battery and the operating mode each forbid
transmission for their own reasons; with each part switching the radio itself, one clearing its
reason could key the transmitter while another still forbids it. Here every reason is a
:class:`TxInhibit`, combined in :meth:`TransmitterControl.inhibits`; the link asks it before every
frame (the ``TX_INHIBIT`` port) and is woken when the answer may have changed.

* Silence comes from the deployment sequence (``RF_SILENCE`` port), live at every question.
* TX_OFF is persisted (``state.flags["tx_off"]``) and survives reboots; TX_ON during silence is
  refused (:class:`TransmitterRefused`, reason ``TxInhibit.SILENCE``): nobody can end it early.
* The low-power inhibit has hysteresis (``[transmitter] off_below_v`` / ``on_above_v``) and reads
  the configured battery channel once a second; a missing or stale reading keeps its last verdict.
* ``[transmitter] silent_modes`` lists operating modes (``MODES`` port) without transmission.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flightsw.config import ConfigError, TransmitterSection
from flightsw.core.component import Channel, CommandRejected, Component, Event, command
from flightsw.core.enums import Mode, TxInhibit
from flightsw.core.events import Severity
from flightsw.core.ports import ModeSource, SilenceSource
from flightsw.core.types import BOOL, F32, STRING

log = logging.getLogger("flightsw.link")

FLAG_TX_OFF = "tx_off"  # the state store flag the link has always used for the commanded-off state
READING_MAX_AGE_S = 10.0


class TransmitterRefused(CommandRejected):
    """A transmitter command refused because an inhibit the command cannot clear is active."""

    def __init__(self, reason: TxInhibit, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


class TransmitterControl(Component):
    """Combines every transmit inhibit; the link asks it before any frame goes on the air."""

    allowed = Channel(BOOL, doc="The transmitter may key up now", update="on_change")
    inhibit = Channel(STRING(64), doc="Active inhibits: silence, commanded_off, low_power, mode, out_of_contact",
                      update="on_change")
    tx_off = Channel(BOOL, doc="Transmitter commanded off (persisted)", update="on_change")
    silence_left = Channel(F32, unit="s", doc="RF silence still to serve")

    changed = Event(Severity.WARNING, "Transmitter {state}: {reasons}", throttle=None)
    refused = Event(Severity.WARNING, "Transmitter command {command} refused: {reason}", throttle=(5, 60.0))

    def __init__(self, section: TransmitterSection, name: str = "tx") -> None:
        super().__init__(name, section.base_id)
        self.section = section
        self._silence: SilenceSource | None = None
        self._modes: ModeSource | None = None
        self._listeners: list[Callable[[], None]] = []
        self._battery_id: int | None = None
        self._low_power = False
        self._out_of_contact = False
        self._last: frozenset[TxInhibit] | None = None

    # -- wiring ---------------------------------------------------------------------------------
    def use_silence(self, silence: SilenceSource) -> None:
        self._silence = silence

    def use_modes(self, modes: ModeSource) -> None:
        self._modes = modes
        modes.add_listener(self._on_mode)

    def _on_mode(self, old: str, new: str, reason: str) -> None:
        self.evaluate()

    def set_out_of_contact(self, silent: bool) -> None:
        """Contact-aware downlink: out of a predicted pass with ``out_of_contact = "silent"``."""
        self._out_of_contact = bool(silent)
        self.evaluate()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called whenever the inhibits change (the link wakes its transmitter)."""
        self._listeners.append(listener)

    def setup(self) -> None:
        name = self.section.battery_channel
        if name:
            found = self.ctx.find_channel(name)
            if found is None:
                raise ConfigError(f"transmitter.battery_channel: no telemetry channel named {name!r}")
            self._battery_id = found[1]
        self.ctx.rate_group("slow").add(f"{self.name}.check", self.cycle)

    # -- the TX_INHIBIT port ----------------------------------------------------------------------
    def inhibits(self) -> frozenset[TxInhibit]:
        """Every reason the transmitter must stay off now (empty: it may transmit)."""
        reasons: set[TxInhibit] = set()
        if self._silence is not None and self._silence.silence_active():
            reasons.add(TxInhibit.SILENCE)
        if self.ctx.state.flag(FLAG_TX_OFF):
            reasons.add(TxInhibit.COMMANDED_OFF)
        if self._low_power:
            reasons.add(TxInhibit.LOW_POWER)
        if self._out_of_contact:
            reasons.add(TxInhibit.OUT_OF_CONTACT)
        if self._modes is not None and self.section.silent_modes:
            mode = Mode.parse(self._modes.current)
            if mode is not None and mode.value in self.section.silent_modes:
                reasons.add(TxInhibit.MODE)
        return frozenset(reasons)

    def evaluate(self) -> frozenset[TxInhibit]:
        """Recompute; on a change report it and wake the listeners."""
        now = self.inhibits()
        if now != self._last:
            first = self._last is None
            self._last = now
            if now or not first:
                self.changed.emit(state="inhibited" if now else "allowed",
                                  reasons=", ".join(sorted(r.value for r in now)) or "no inhibit")
            for listener in self._listeners:
                try:
                    listener()
                except Exception:  # a listener's bug must not stop the others
                    log.exception("transmitter listener %r failed", listener)
        return now

    def _check_battery(self) -> None:
        if self._battery_id is None:
            return
        sample = self.ctx.telemetry.latest(self._battery_id)
        if sample is None or not isinstance(sample.value, int | float):
            return
        if self.ctx.clock.seconds_since_boot() - sample.stamp.seconds > READING_MAX_AGE_S:
            return
        volts = float(sample.value)
        if not self._low_power and volts < self.section.off_below_v:
            self._low_power = True
        elif self._low_power and volts > self.section.on_above_v:
            self._low_power = False

    def cycle(self) -> None:
        """Once a second: the battery, the silence's end, telemetry."""
        self._check_battery()
        now = self.evaluate()
        self.allowed.set(not now)
        self.inhibit.set(",".join(sorted(r.value for r in now)))
        self.tx_off.set(self.ctx.state.flag(FLAG_TX_OFF))
        self.silence_left.set(self._silence.silence_remaining_s() if self._silence is not None else 0.0)

    # -- commands -------------------------------------------------------------------------------
    @command(name="TX_OFF", doc="Transmitter off (cessation of emissions; persisted across reboots); the receiver stays on.")
    async def tx_off_cmd(self) -> None:
        self.ctx.state.set_flag(FLAG_TX_OFF, True)
        await self.ctx.state.save()
        self.evaluate()

    @command(name="TX_ON", doc="Clear the commanded transmitter-off (persisted); refused during RF silence.")
    async def tx_on_cmd(self) -> None:
        if self._silence is not None and self._silence.silence_active():
            left = round(self._silence.silence_remaining_s())
            self.refused.emit(command="TX_ON", reason=f"RF silence, {left} s left")
            raise TransmitterRefused(TxInhibit.SILENCE, f"RF silence after separation, {left} s left")
        self.ctx.state.set_flag(FLAG_TX_OFF, False)
        await self.ctx.state.save()
        self.evaluate()
