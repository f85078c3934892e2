"""Time across resets: the persisted time checkpoint and how a boot resumes from it.

Why: the Pi has no real-time clock, so every reset used to forget UTC until the ground set it
again, and nothing counted mission time across boots. The flight software now writes a small
checkpoint to the state store (``state["time"]``) every ``time.checkpoint_s`` seconds and at a
clean stop: the mission elapsed time (MET) and UTC at that instant with their quality. The next
boot starts MET where the checkpoint left it and carries UTC over as DEGRADED: the last known
UTC plus this boot's uptime. The seconds the computer was off or booting are not counted, so the
carried UTC runs late by at least that much, until the ground (``exec.SET_TIME``) or a GPS fix
confirms it.

Ordering rule for consumers (stored commands, the record log, the ground): order by MET or by the
record sequence number, never by UTC. MET only moves forward (a boot starts at least at the MET
of the newest record, see ``SpacecraftClock.raise_met_floor``); UTC can step backward when the
ground corrects a clock that ran fast.

Pure: no asyncio, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flightsw.core.clock import TimeCorrelation
from flightsw.core.enums import TimeQuality

STATE_KEY = "time"


@dataclass(frozen=True)
class TimeCheckpoint:
    """MET and UTC at one instant, as persisted (``utc`` None when unknown)."""

    met: float
    utc: float | None
    quality: TimeQuality

    def to_dict(self) -> dict[str, Any]:
        return {"met": self.met, "utc": self.utc, "quality": self.quality.value}

    @classmethod
    def from_dict(cls, raw: object) -> TimeCheckpoint | None:
        """The stored checkpoint, or None when absent or unreadable (a first boot)."""
        if not isinstance(raw, dict):
            return None
        try:
            met = float(raw["met"])
            utc = None if raw.get("utc") is None else float(raw["utc"])
            quality = TimeQuality(raw.get("quality", TimeQuality.UNKNOWN.value))
        except (KeyError, TypeError, ValueError):
            return None
        if met < 0 or met != met:  # negative or NaN: not a time this software wrote
            return None
        return cls(met, utc, quality)


@dataclass(frozen=True)
class ResumedTime:
    """What a boot starts from: its MET offset and its (DEGRADED) UTC correlation, if any."""

    met_at_boot: float
    correlation: TimeCorrelation | None


def resume(checkpoint: TimeCheckpoint | None, boot: int) -> ResumedTime:
    """This boot's starting time from the last checkpoint.

    MET continues from the checkpoint. A known UTC (any quality but UNKNOWN) is carried over as
    DEGRADED, referenced to this boot's second 0: the computer's off time is not known, so it is
    not added (the estimate is late, never early, by the time off plus at most one checkpoint
    period of lost running time).
    """
    if checkpoint is None:
        return ResumedTime(0.0, None)
    if checkpoint.utc is None or checkpoint.quality is TimeQuality.UNKNOWN:
        return ResumedTime(checkpoint.met, None)
    return ResumedTime(checkpoint.met, TimeCorrelation(boot, 0.0, checkpoint.utc, TimeQuality.DEGRADED))


def checkpoint_of(met: float, utc: float | None, quality: TimeQuality) -> TimeCheckpoint:
    return TimeCheckpoint(met, utc, quality if utc is not None else TimeQuality.UNKNOWN)
