"""Events: severities, per-event throttling, an in-memory ring of recent events and sinks.

Every event is recorded (record log) and offered to sinks (the downlink); a throttle per event id
keeps a flapping fault from flooding the log or the link, and the number of suppressed events is
carried by the next one that gets through.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flightsw.core.clock import SpacecraftClock, Stamp

log = logging.getLogger("flightsw.events")


class Severity(enum.IntEnum):
    DEBUG = 0
    INFO = 1
    WARNING = 2
    ERROR = 3
    CRITICAL = 4
    FATAL = 5


_LOG_LEVEL = {
    Severity.DEBUG: logging.DEBUG,
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.ERROR: logging.ERROR,
    Severity.CRITICAL: logging.CRITICAL,
    Severity.FATAL: logging.CRITICAL,
}


@dataclass(frozen=True)
class EventInfo:
    """What the event log needs to know about a declared event."""

    id: int
    name: str
    severity: Severity
    format: str
    throttle: tuple[int, float] | None


@dataclass
class EventRecord:
    id: int
    name: str
    severity: Severity
    stamp: Stamp
    args: dict[str, Any]
    suppressed: int = 0

    def text(self, fmt: str) -> str:
        try:
            msg = fmt.format(**self.args)
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            msg = f"{fmt} {self.args} (format error: {exc})"
        if self.suppressed:
            msg += f" [{self.suppressed} suppressed]"
        return msg

    def to_wire(self) -> list[Any]:
        """Compact msgpack-ready form: [id, severity, boot, seconds, utc|None, suppressed, args]."""
        return [self.id, int(self.severity), *self.stamp.to_wire(), self.suppressed, self.args]

    @classmethod
    def from_wire(cls, raw: list[Any], names: dict[int, str]) -> EventRecord:
        eid, sev, boot, sec, utc, suppressed, args = raw
        return cls(eid, names.get(eid, f"0x{eid:08x}"), Severity(sev), Stamp(boot, sec, utc), args, suppressed)


@dataclass
class _Throttle:
    burst: int
    window: float
    times: deque[float] = field(default_factory=deque)
    suppressed: int = 0

    def allow(self, now: float) -> bool:
        while self.times and now - self.times[0] >= self.window:
            self.times.popleft()
        if len(self.times) < self.burst:
            self.times.append(now)
            return True
        self.suppressed += 1
        return False


EventSink = Callable[[EventRecord], None]


class EventLog:
    """Receives every event, throttles, logs, keeps the recent ones and feeds the sinks."""

    def __init__(self, clock: SpacecraftClock, recent: int = 200) -> None:
        self._clock = clock
        self._info: dict[int, EventInfo] = {}
        self._throttles: dict[int, _Throttle] = {}
        self.recent: deque[EventRecord] = deque(maxlen=recent)
        self._sinks: list[EventSink] = []
        self.emitted = 0
        self.suppressed = 0

    def declare(self, info: EventInfo) -> None:
        self._info[info.id] = info
        if info.throttle is not None:
            self._throttles[info.id] = _Throttle(*info.throttle)

    def info(self, event_id: int) -> EventInfo:
        return self._info[event_id]

    def add_sink(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def emit(self, event_id: int, args: dict[str, Any]) -> bool:
        info = self._info[event_id]
        suppressed = 0
        throttle = self._throttles.get(event_id)
        if throttle is not None:
            if not throttle.allow(self._clock.monotonic()):
                self.suppressed += 1
                return False
            suppressed, throttle.suppressed = throttle.suppressed, 0
        record = EventRecord(event_id, info.name, info.severity, self._clock.now(), args, suppressed)
        self.emitted += 1
        self.recent.append(record)
        # The journal keeps the event's identity as fields (flightsw.logs renders them), so an
        # operator can filter on FLIGHTSW_EVENT=... instead of parsing the text.
        log.log(_LOG_LEVEL[info.severity], "%s %s: %s", record.stamp, info.name, record.text(info.format),
                extra={"FLIGHTSW_EVENT": info.name, "FLIGHTSW_EVENT_ID": f"0x{event_id:08x}",
                       "FLIGHTSW_SEVERITY": info.severity.name, "FLIGHTSW_BOOT": record.stamp.boot})
        for sink in self._sinks:
            try:
                sink(record)
            except Exception:  # a broken sink must not stop event reporting
                log.exception("event sink %r failed", sink)
        return True
