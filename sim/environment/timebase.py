"""Simulated-time conversions shared by every environment model.

The world runs on POSIX epoch seconds (UTC, float) because that is what a virtual asyncio loop
can add to cheaply; astronomy needs Julian dates. Keeping both in one place avoids each model
growing its own slightly different conversion.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

JD_UNIX_EPOCH = 2440587.5  # Julian date of 1970-01-01T00:00:00Z
JD_J2000 = 2451545.0
SECONDS_PER_DAY = 86400.0

TimeLike = datetime | float | int


def to_epoch_seconds(t: TimeLike) -> float:
    """Return POSIX seconds for a timezone-aware datetime or a number; reject naive datetimes."""
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError(f"naive datetime {t.isoformat()} has no timezone; use UTC")
        return t.timestamp()
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"time must be a UTC datetime or epoch seconds, got {type(t).__name__}")
    value = float(t)
    if not math.isfinite(value):
        raise ValueError(f"time must be finite, got {value}")
    return value


def to_datetime(epoch_seconds: float) -> datetime:
    """Return the UTC datetime for POSIX seconds."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)


def julian_date_split(epoch_seconds: float) -> tuple[float, float]:
    """Julian date as (whole, fraction) so sgp4 keeps sub-millisecond precision."""
    days = epoch_seconds / SECONDS_PER_DAY
    whole_days = math.floor(days)
    return JD_UNIX_EPOCH + whole_days, days - whole_days


def julian_date(epoch_seconds: float) -> float:
    """Julian date (UTC used as UT1; the 0.9 s difference is below this simulator's needs)."""
    return JD_UNIX_EPOCH + epoch_seconds / SECONDS_PER_DAY


def parse_utc(text: str) -> datetime:
    """Parse an ISO-8601 UTC timestamp ("2026-06-01T00:00:00Z"); a missing zone is an error."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone; append Z for UTC")
    return parsed.astimezone(UTC)
