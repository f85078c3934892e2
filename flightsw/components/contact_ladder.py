"""The loss-of-contact ladder's decision rules (pure: no asyncio, no I/O, no component).

Why a ladder: a satellite that hears nothing from the ground cannot tell a deaf receiver (cured
by power-cycling the radio) from a hung driver or a wedged computer (cured by a reboot) from a
ground that lost its key or a link setting it no longer matches (cured by going back to the
launch defaults the ground still knows). It tries the cheapest cure first and the most drastic
last, each once per silence.

Silence is measured in mission elapsed time (MET), which counts across reboots: the ladder's own
reboot, or a reboot loop, does not restart the count from zero, so safe defaults are reached
even when every boot dies early. Only the time the computer was off is not counted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class ContactStep(enum.StrEnum):
    """The last rung taken in the current silence (persisted)."""

    IN_CONTACT = "IN_CONTACT"
    RADIO_RESET = "RADIO_RESET"
    REBOOT = "REBOOT"
    SAFE_DEFAULTS = "SAFE_DEFAULTS"

    @property
    def code(self) -> int:
        return list(ContactStep).index(self)


#: the rungs in the order they are taken
RUNGS: tuple[ContactStep, ...] = (ContactStep.RADIO_RESET, ContactStep.REBOOT, ContactStep.SAFE_DEFAULTS)


@dataclass(frozen=True)
class LadderTimes:
    """Seconds of silence after which each rung is taken (strictly increasing)."""

    radio_reset_after_s: float
    reboot_after_s: float
    safe_defaults_after_s: float

    def __post_init__(self) -> None:
        if not 0 < self.radio_reset_after_s < self.reboot_after_s < self.safe_defaults_after_s:
            raise ValueError("ladder times must increase: radio reset < reboot < safe defaults")

    def after(self, step: ContactStep) -> float:
        return {ContactStep.RADIO_RESET: self.radio_reset_after_s, ContactStep.REBOOT: self.reboot_after_s,
                ContactStep.SAFE_DEFAULTS: self.safe_defaults_after_s}[step]


@dataclass(frozen=True)
class LadderState:
    """What is persisted: the MET of the last valid command and the last rung taken since."""

    last_contact_met: float
    step: ContactStep = ContactStep.IN_CONTACT

    def silent_s(self, met: float) -> float:
        return max(0.0, met - self.last_contact_met)

    def to_dict(self) -> dict[str, Any]:
        return {"last_contact_met": self.last_contact_met, "step": self.step.value}

    @classmethod
    def from_dict(cls, raw: object, met_now: float) -> LadderState:
        """The stored state; a first boot (or an unreadable entry) starts a silence now."""
        if isinstance(raw, dict):
            try:
                last = float(raw["last_contact_met"])
                step = ContactStep(raw.get("step", ContactStep.IN_CONTACT.value))
            except (KeyError, TypeError, ValueError):
                return cls(met_now)
            if 0.0 <= last <= met_now:
                return cls(last, step)
            # a MET ahead of now cannot be: start the silence now, keep the rung taken
            return cls(met_now, step)
        return cls(met_now)


def next_rung(state: LadderState, met: float, times: LadderTimes) -> ContactStep | None:
    """The rung to take now, if any: the first one after ``state.step`` whose time has come.

    One rung per call: a satellite that was off through two thresholds still resets its radio
    before it reboots (each step is an event, in order)."""
    taken = RUNGS.index(state.step) + 1 if state.step in RUNGS else 0
    if taken >= len(RUNGS):
        return None
    rung = RUNGS[taken]
    return rung if state.silent_s(met) >= times.after(rung) else None


def contact(met: float) -> LadderState:
    """A valid authenticated command arrived: the ladder starts again from the bottom."""
    return LadderState(met, ContactStep.IN_CONTACT)


def took(state: LadderState, rung: ContactStep) -> LadderState:
    return LadderState(state.last_contact_met, rung)
