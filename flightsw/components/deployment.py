"""Deployment sequence: RF silence after separation, then the antennas' burn wires.

The rules (silence on the served clock, battery threshold, forced attempt, retries, backup
circuit) are plain functions in ``flightsw.components.deployment_rules``. This component applies
them: it keeps the record in the state store (``state["deployment"]``), adds each second of
uptime to the served clock and saves it every ``persist_period_s`` and at a clean stop, powers a
burn wire through the ``OUTPUTS`` port for at most ``burn_s`` (stopping as soon as a deployment
switch from the ``INPUTS`` port reads released), and offers the silence on the ``RF_SILENCE``
port, which transmitter control combines with its other inhibits. The record is saved as
BURNING before a wire is powered, so a reset in the middle of a burn is known at the next boot
and counted as that attempt.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from flightsw.app import Subsystem
from flightsw.components.deployment_rules import (
    PRIMARY,
    DeploymentRefused,
    DeployRecord,
    DeploySettings,
    Refusal,
    Step,
    advance,
    burn_result,
    first_record,
    next_step,
    rearm,
    resume_after_reset,
    retry,
    silence_remaining,
    skip,
    start_burn,
)
from flightsw.config import ConfigError, DeploymentSection
from flightsw.core.component import (
    Arg,
    Channel,
    CommandRejected,
    Component,
    Counter,
    CounterSet,
    Event,
    command,
)
from flightsw.core.enums import DeploymentState
from flightsw.core.events import Severity
from flightsw.core.ports import INPUTS, OUTPUTS, RF_SILENCE, InputBank, OutputBank
from flightsw.core.types import BOOL, F32, STRING, U8

if TYPE_CHECKING:
    from flightsw.app import Satellite

log = logging.getLogger("flightsw.deployment")

STATE_KEY = "deployment"
STEP_S = 1.0  # the sequence's step (and the served clock's resolution)
SWITCH_POLL_S = 0.25  # how often a burn reads the switches


class CommandRefused(CommandRejected):
    """A deployment command refused now; ``reason`` is the rules' :class:`Refusal`."""

    def __init__(self, refused: DeploymentRefused) -> None:
        super().__init__(str(refused))
        self.reason: Refusal = refused.reason


def settings_from(section: DeploymentSection) -> DeploySettings:
    return DeploySettings(first_boot=section.first_boot, silence_s=section.silence_s,
                          circuits=max(1, len(section.burn_outputs)), min_battery_v=section.min_battery_v,
                          check_battery=bool(section.battery_channel), max_wait_s=section.max_wait_s,
                          burn_s=section.burn_s, cooldown_s=section.cooldown_s,
                          attempts_per_circuit=section.attempts_per_circuit)


class Deployment(Component):
    """RF silence after separation and antenna deployment by burn wire, persisted across reboots."""

    state = Channel(STRING(10), doc="SILENCE, ARMED, BURNING, COOLDOWN, DEPLOYED, FAILED or SKIPPED",
                    update="on_change")
    silence_left = Channel(F32, unit="s", doc="RF silence still to serve (served clock)")
    served = Channel(F32, unit="s", doc="Powered-on time since first separation, across boots")
    circuit = Channel(U8, doc="Burn circuit of the next/current attempt (0 primary)", update="on_change")
    attempts = Channel(U8, doc="Burn attempts over the mission", update="on_change")
    switch_released = Channel(BOOL, doc="A deployment switch reads released", update="on_change")
    burns = Counter("Burns started this boot")

    silence_started = Event(Severity.WARNING, "RF silence for {seconds} s after separation", throttle=None)
    silence_resumed = Event(Severity.WARNING, "RF silence resumed after reboot: {left} s of {seconds} s left",
                            throttle=None)
    silence_ended = Event(Severity.WARNING, "RF silence over after {served} s served", throttle=None)
    waiting_battery = Event(Severity.INFO, "Deployment waits for the battery: {volts} V below {threshold} V "
                            "(forced in {forced_in} s)", throttle=(1, 600.0))
    burn_started = Event(Severity.WARNING, "Burn wire {output} on (circuit {circuit}, attempt {attempt}, "
                         "{why})", throttle=None)
    burn_ended = Event(Severity.WARNING, "Burn wire {output} off after {seconds} s: switch {switch}",
                       throttle=None)
    burn_interrupted = Event(Severity.WARNING, "Reset during burn attempt {attempt} of circuit {circuit}: "
                             "switch {switch}", throttle=None)
    cooldown = Event(Severity.INFO, "Cool-down {seconds} s before the next attempt", throttle=None)
    circuit_switched = Event(Severity.WARNING, "Primary circuit spent: next attempts on circuit {circuit} "
                             "({output})", throttle=None)
    deployed = Event(Severity.WARNING, "Antennas deployed (circuit {circuit}, attempt {attempt}, "
                     "{total} attempts in all)", throttle=None)
    failed = Event(Severity.CRITICAL, "Antenna deployment failed after {total} attempts on every circuit",
                   throttle=None)
    operator = Event(Severity.WARNING, "Deployment {action} by command: now {state}", throttle=None)
    output_failed = Event(Severity.WARNING, "Burn wire {output} not switched {level}: {error}", throttle=(5, 600.0))

    def __init__(self, section: DeploymentSection, name: str = "deploy") -> None:
        super().__init__(name, section.base_id)
        self.section = section
        self.settings = settings_from(section)
        self._outputs: OutputBank | None = None
        self._inputs: InputBank | None = None
        self._rec: DeployRecord | None = None
        self._battery_id: int | None = None
        self._last_clock: float | None = None
        self._saved_at = 0.0
        self._boot_note: tuple[str, dict[str, Any]] | None = None
        self._burning = False
        self.stats = CounterSet(self)

    # -- wiring ---------------------------------------------------------------------------------
    def use_outputs(self, outputs: OutputBank) -> None:
        self._outputs = outputs

    def use_inputs(self, inputs: InputBank) -> None:
        self._inputs = inputs

    @property
    def record(self) -> DeployRecord:
        """The persisted record (read from the state store on first use, which may come before
        ``setup``: transmitter control asks for the silence when it sets up)."""
        if self._rec is None:
            rec = DeployRecord.from_state(self.ctx.state.get(STATE_KEY))
            if rec is None:
                rec = first_record(self.settings)
                self._boot_note = ("first", {})
            elif not rec.silence_done:
                self._boot_note = ("resumed", {})
            self._rec = rec
            self.ctx.state.set(STATE_KEY, rec.to_state())
        return self._rec

    def setup(self) -> None:
        missing = [n for n in self.section.burn_outputs if self._outputs is None or n not in self._outputs.outputs]
        missing += [n for n in self.section.switch_inputs if self._inputs is None or n not in self._inputs.inputs]
        if missing:
            raise ConfigError(f"deployment: GPIO line(s) {missing} not built by the hardware layer")
        self._find_battery()
        self.ctx.supervisor.add_service(f"{self.name}.sequence", self._run, critical=True)

    def _find_battery(self) -> None:
        name = self.section.battery_channel
        if not name:
            return
        found = self.ctx.find_channel(name)
        if found is None:
            raise ConfigError(f"deployment.battery_channel: no telemetry channel named {name!r}")
        self._battery_id = found[1]

    # -- RF_SILENCE port ------------------------------------------------------------------------
    def silence_active(self) -> bool:
        return not self.record.silence_done

    def silence_remaining_s(self) -> float:
        return silence_remaining(self.record, self.settings)

    # -- inputs ---------------------------------------------------------------------------------
    def read_battery(self) -> float | None:
        if self._battery_id is None:
            return None
        sample = self.ctx.telemetry.latest(self._battery_id)
        if sample is None or not isinstance(sample.value, int | float):
            return None
        if self.ctx.clock.seconds_since_boot() - sample.stamp.seconds > self.section.max_reading_age_s:
            return None
        return float(sample.value)

    def read_switch(self) -> bool:
        """Any configured deployment switch reads released (a read error counts as not released)."""
        if self._inputs is None:
            return False
        self._inputs.open()
        for name in self.section.switch_inputs:
            try:
                if self._inputs.inputs[name].read():
                    return True
            except (OSError, RuntimeError) as exc:
                log.warning("deployment switch %s unreadable: %s", name, exc)
        return False

    # -- the sequence ---------------------------------------------------------------------------
    def _tick_clock(self) -> bool:
        """Add the uptime since the last tick to the served clock; True when silence just ended."""
        now = self.ctx.clock.monotonic()
        last, self._last_clock = self._last_clock, now
        return advance(self.record, 0.0 if last is None else now - last, self.settings)

    async def _save(self) -> None:
        self.ctx.state.set(STATE_KEY, self.record.to_state())
        self._saved_at = self.ctx.clock.monotonic()
        await self.ctx.state.save()

    def _announce_boot(self) -> None:
        rec = self.record
        note, self._boot_note = self._boot_note, None
        seconds = round(self.settings.silence_s)
        if note is not None and note[0] == "first" and not rec.silence_done:
            self.silence_started.emit(seconds=seconds)
        elif note is not None and note[0] == "resumed":
            self.silence_resumed.emit(left=round(self.silence_remaining_s()), seconds=seconds)
        outcome = resume_after_reset(rec, self.read_switch(), self.settings)
        if outcome is not None:
            self.burn_interrupted.emit(attempt=rec.attempt, circuit=rec.circuit,
                                       switch="released" if outcome.released else "stowed")
            self._after_burn(outcome)

    async def _run(self) -> None:
        """The sequence's service: one step a second; burns run inside it (bounded by burn_s)."""
        self._announce_boot()
        self._tick_clock()
        await self._save()
        try:
            while True:
                await self.step()
                await asyncio.sleep(STEP_S)
        finally:
            self._all_off()

    async def step(self) -> None:
        rec = self.record
        if self._tick_clock():
            self.silence_ended.emit(served=round(rec.served_s))
            await self._save()
        battery = self.read_battery()
        action = next_step(rec, battery, self.settings)
        if action is Step.WAIT_BATTERY:
            self.waiting_battery.emit(volts=round(battery, 2) if battery is not None else "no reading",
                                      threshold=self.settings.min_battery_v,
                                      forced_in=round(rec.armed_at_s + self.settings.max_wait_s - rec.served_s))
        elif action in (Step.BURN, Step.FORCED_BURN):
            await self._burn(forced=action is Step.FORCED_BURN, volts=battery)
        self._publish()
        if self.ctx.clock.monotonic() - self._saved_at >= self.section.persist_period_s:
            await self._save()

    async def _burn(self, forced: bool, volts: float | None) -> None:
        rec = self.record
        attempt = start_burn(rec)
        await self._save()  # BURNING is on disk before the wire is powered
        output = self.section.burn_outputs[rec.circuit]
        why = "forced after max_wait_s" if forced else f"battery {volts if volts is None else round(volts, 2)} V"
        self.burn_started.emit(output=output, circuit=rec.circuit, attempt=attempt, why=why)
        self.stats.inc("burns")
        started = self.ctx.clock.monotonic()
        released = False
        # a switch that reads released before the wire is powered (failed open) cannot tell us
        # when the line parts: the wire then burns its whole burn_s
        trust_switch = not self.read_switch()
        self._burning = True
        try:
            self._set(output, True)
            deadline = started + self.settings.burn_s
            while self.ctx.clock.monotonic() < deadline:
                await asyncio.sleep(min(SWITCH_POLL_S, max(0.0, deadline - self.ctx.clock.monotonic())))
                if trust_switch and self.read_switch():
                    released = True
                    break
        finally:
            self._set(output, False)
            self._burning = False
        released = released or self.read_switch()
        self.burn_ended.emit(output=output, seconds=round(self.ctx.clock.monotonic() - started, 2),
                             switch="released" if released else "stowed")
        self._tick_clock()
        self._after_burn(burn_result(rec, released, self.settings))
        await self._save()

    def _after_burn(self, outcome: Any) -> None:
        rec = self.record
        if rec.state is DeploymentState.DEPLOYED:
            self.deployed.emit(circuit=rec.circuit, attempt=rec.attempt, total=rec.attempts_total)
        elif rec.state is DeploymentState.FAILED:
            self.failed.emit(total=rec.attempts_total)
        else:
            if outcome.switched_circuit:
                self.circuit_switched.emit(circuit=rec.circuit, output=self.section.burn_outputs[rec.circuit])
            self.cooldown.emit(seconds=round(self.settings.cooldown_s))

    def _set(self, output: str, on: bool) -> None:
        if self._outputs is None:
            return
        self._outputs.open()
        try:
            self._outputs.outputs[output].set(on)
        except (OSError, RuntimeError) as exc:
            self.output_failed.emit(output=output, level="on" if on else "off", error=str(exc)[:80])

    def _all_off(self) -> None:
        """No burn wire stays powered when the sequence stops (a stop, a crash of the service)."""
        if self._outputs is None or not self._outputs.outputs:
            return
        for name in self.section.burn_outputs:
            self._set(name, False)

    def _publish(self) -> None:
        rec = self.record
        self.state.set(rec.state.value)
        self.silence_left.set(self.silence_remaining_s())
        self.served.set(rec.served_s)
        self.circuit.set(rec.circuit)
        self.attempts.set(min(rec.attempts_total, 255))
        self.switch_released.set(self.read_switch())
        self.stats.publish()

    async def shutdown(self) -> None:
        """A clean stop keeps the time served up to now (the framework saves the store after)."""
        self._all_off()
        if self._rec is not None:
            self._tick_clock()
            self.ctx.state.set(STATE_KEY, self._rec.to_state())

    # -- commands -------------------------------------------------------------------------------
    async def _command(self, action: str, change: Any) -> None:
        if self._burning:
            raise CommandRefused(DeploymentRefused(Refusal.BURNING))
        self._tick_clock()
        try:
            change()
        except DeploymentRefused as exc:
            raise CommandRefused(exc) from None
        await self._save()
        self.operator.emit(action=action, state=self.record.state.value)
        self._publish()

    @command(args=[Arg("circuit", U8, doc="0 primary, 1 backup")],
             doc="Another round of attempts on a circuit now (after silence; battery still checked).")
    async def retry(self, circuit: int) -> None:
        await self._command(f"retry on circuit {circuit}", lambda: retry(self.record, circuit, self.settings))

    @command(doc="Stop the sequence for good (deployment confirmed otherwise); silence still applies.")
    async def skip(self) -> None:
        await self._command("skipped", lambda: skip(self.record))

    @command(doc="Start the attempts again from the primary circuit (silence is never served again).")
    async def rearm(self) -> None:
        await self._command("re-armed", lambda: rearm(self.record))


def build_deployment(sat: Satellite) -> None:
    """Subsystem builder (``deployment`` entry point): with ``[deployment]``, the sequence; it
    offers RF_SILENCE and uses the hardware's OUTPUTS and INPUTS."""
    section = sat.config.deployment
    if section is None:
        return
    deploy = sat.add(Deployment(section))
    sat.ports.provide(RF_SILENCE, deploy, by=deploy.name)
    required = bool(section.burn_outputs)
    sat.ports.connect(OUTPUTS, deploy.use_outputs, required=required, by=deploy.name)
    sat.ports.connect(INPUTS, deploy.use_inputs, required=bool(section.switch_inputs), by=deploy.name)


SUBSYSTEM = Subsystem("deployment", build_deployment, order=25)

__all__ = ["PRIMARY", "CommandRefused", "Deployment", "build_deployment", "settings_from"]
