"""The deployment sequence's rules: RF silence on a clock that survives reboots, when to burn,
what a burn's outcome leads to. Plain functions on a plain record, tested without a loop.

The record (:class:`DeployRecord`) is what the state store keeps under ``"deployment"``. Every
time in it is on the *served* clock: seconds the flight software has run since the first
separation, summed over boots (the component adds each boot's elapsed time and persists it
periodically and at every clean stop). Time while the computer is off does not count, and a
reset loses at most the time since the last save, so silence can only last longer than
configured, never shorter.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from flightsw.core.enums import DeploymentState

PRIMARY = 0


@dataclass(frozen=True)
class DeploySettings:
    """The ``[deployment]`` section as the rules need it."""

    first_boot: str = "stowed"
    silence_s: float = 2700.0
    circuits: int = 1  # burn-wire outputs: primary, then backups
    min_battery_v: float = 7.4
    check_battery: bool = True
    max_wait_s: float = 43200.0
    burn_s: float = 8.0
    cooldown_s: float = 60.0
    attempts_per_circuit: int = 3


@dataclass
class DeployRecord:
    """The persisted progress of the sequence (served-clock times in seconds)."""

    state: DeploymentState = DeploymentState.SILENCE
    served_s: float = 0.0  # powered-on time since first separation, across boots
    silence_done: bool = False
    circuit: int = PRIMARY  # index into the burn outputs
    attempt: int = 0  # attempts made on the current circuit
    attempts_total: int = 0
    armed_at_s: float = 0.0  # served time the current wait for an attempt began
    cooldown_until_s: float = 0.0

    def to_state(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d

    @classmethod
    def from_state(cls, raw: Any) -> DeployRecord | None:
        """The record a state store held, or None when there is none (first boot) or it is unusable."""
        if not isinstance(raw, dict):
            return None
        try:
            return cls(state=DeploymentState(str(raw.get("state"))), served_s=float(raw.get("served_s", 0.0)),
                       silence_done=bool(raw.get("silence_done", False)), circuit=int(raw.get("circuit", 0)),
                       attempt=int(raw.get("attempt", 0)), attempts_total=int(raw.get("attempts_total", 0)),
                       armed_at_s=float(raw.get("armed_at_s", 0.0)),
                       cooldown_until_s=float(raw.get("cooldown_until_s", 0.0)))
        except (TypeError, ValueError):
            return None


class Step(enum.StrEnum):
    """What the sequence does next, as :func:`next_step` decides it."""

    NOTHING = "nothing"  # a final state
    SILENCE = "silence"  # still serving RF silence
    COOLING = "cooling"  # between attempts
    WAIT_BATTERY = "wait_battery"  # an attempt is due; the battery is below the threshold
    BURN = "burn"
    FORCED_BURN = "forced_burn"  # the battery never came up within max_wait_s: burn anyway


class Refusal(enum.StrEnum):
    """Why an operator command was refused (carried by :class:`DeploymentRefused`)."""

    SILENCE = "RF silence is not over"
    BURNING = "a burn is in progress"
    NO_CIRCUIT = "no such burn circuit"


class DeploymentRefused(Exception):
    """An operator command the sequence cannot follow now."""

    def __init__(self, reason: Refusal, detail: str = "") -> None:
        super().__init__(f"{reason.value}{': ' + detail if detail else ''}")
        self.reason = reason


def first_record(settings: DeploySettings) -> DeployRecord:
    """The record of the very first boot: stowed (silence first) or, on a bench, already deployed."""
    if settings.first_boot == "deployed":
        return DeployRecord(state=DeploymentState.DEPLOYED, silence_done=True)
    return DeployRecord()


def silence_remaining(rec: DeployRecord, settings: DeploySettings) -> float:
    return 0.0 if rec.silence_done else max(0.0, settings.silence_s - rec.served_s)


def advance(rec: DeployRecord, elapsed_s: float, settings: DeploySettings) -> bool:
    """Count ``elapsed_s`` more served time; True when this ends the RF silence (once, ever)."""
    rec.served_s += max(0.0, elapsed_s)
    if rec.silence_done or rec.served_s < settings.silence_s:
        return False
    rec.silence_done = True
    if rec.state is DeploymentState.SILENCE:
        rec.state = DeploymentState.ARMED
        rec.armed_at_s = rec.served_s
    return True


def next_step(rec: DeployRecord, battery_v: float | None, settings: DeploySettings) -> Step:
    """What to do now; moves COOLDOWN on to ARMED when the cool-down is over."""
    state = rec.state
    if state.final or state is DeploymentState.BURNING:
        return Step.NOTHING
    if not rec.silence_done:
        return Step.SILENCE
    if state is DeploymentState.COOLDOWN:
        if rec.served_s < rec.cooldown_until_s:
            return Step.COOLING
        rec.state = DeploymentState.ARMED
        rec.armed_at_s = rec.served_s
    if not settings.check_battery or (battery_v is not None and battery_v >= settings.min_battery_v):
        return Step.BURN
    if rec.served_s - rec.armed_at_s >= settings.max_wait_s:
        return Step.FORCED_BURN
    return Step.WAIT_BATTERY


def start_burn(rec: DeployRecord) -> int:
    """The record of a burn starting (persist it before powering the wire); the attempt's number."""
    rec.state = DeploymentState.BURNING
    rec.attempt += 1
    rec.attempts_total += 1
    return rec.attempt


@dataclass(frozen=True)
class BurnOutcome:
    released: bool
    switched_circuit: bool = False  # the next attempt uses the next circuit
    final: bool = False  # DEPLOYED or FAILED


def burn_result(rec: DeployRecord, released: bool, settings: DeploySettings) -> BurnOutcome:
    """After a burn: deployed, or cool down for the next attempt (next circuit when this one's
    attempts are spent), or FAILED when every circuit has had its attempts."""
    if released:
        rec.state = DeploymentState.DEPLOYED
        return BurnOutcome(True, final=True)
    switched = False
    if rec.attempt >= settings.attempts_per_circuit:
        if rec.circuit + 1 >= settings.circuits:
            rec.state = DeploymentState.FAILED
            return BurnOutcome(False, final=True)
        rec.circuit += 1
        rec.attempt = 0
        switched = True
    rec.state = DeploymentState.COOLDOWN
    rec.cooldown_until_s = rec.served_s + settings.cooldown_s
    return BurnOutcome(False, switched_circuit=switched)


def resume_after_reset(rec: DeployRecord, released: bool, settings: DeploySettings) -> BurnOutcome | None:
    """A boot that finds BURNING was reset mid-burn: that attempt is over; the switch says how."""
    if rec.state is not DeploymentState.BURNING:
        return None
    return burn_result(rec, released, settings)


# --- operator commands ------------------------------------------------------------------------

def _check_commandable(rec: DeployRecord) -> None:
    if rec.state is DeploymentState.BURNING:
        raise DeploymentRefused(Refusal.BURNING)
    if not rec.silence_done:
        raise DeploymentRefused(Refusal.SILENCE)


def retry(rec: DeployRecord, circuit: int, settings: DeploySettings) -> None:
    """One more round of attempts on ``circuit`` now (no cool-down, the battery still checked)."""
    _check_commandable(rec)
    if not 0 <= circuit < settings.circuits:
        raise DeploymentRefused(Refusal.NO_CIRCUIT, f"{circuit} (have {settings.circuits})")
    rec.circuit = circuit
    rec.attempt = 0
    rec.state = DeploymentState.ARMED
    rec.armed_at_s = rec.served_s


def rearm(rec: DeployRecord) -> None:
    """The whole sequence again from the primary circuit (silence is never served again)."""
    _check_commandable(rec)
    rec.circuit = PRIMARY
    rec.attempt = 0
    rec.state = DeploymentState.ARMED
    rec.armed_at_s = rec.served_s


def skip(rec: DeployRecord) -> None:
    """Stop the sequence for good (e.g. deployment confirmed another way); silence still applies."""
    if rec.state is DeploymentState.BURNING:
        raise DeploymentRefused(Refusal.BURNING)
    rec.state = DeploymentState.SKIPPED
