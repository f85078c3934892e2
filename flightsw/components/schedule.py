"""Stored commands as data: what is stored, in which order it runs, what to do when it is late.

Pure logic, no I/O and no clock of its own (like ``modes.py`` for the mode manager): the
sequencer component (``sequencer.py``) owns persistence, the dispatcher and the time base.

Why items are keyed by an insertion number: the onboard clock can step (a ground time fix, a
correlation lost at reboot). Items therefore run in the order (due time, insertion number), both
fixed when the item is stored, so a clock step changes *when* an item runs, never the order of
two items; an item is removed from the store before it is dispatched, so a step backwards can
never run it again.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from flightsw.core.enums import LatePolicy

__all__ = ["Disposition", "LatePolicy", "Schedule", "ScheduleFull", "SchedulingClock", "StoredCommand", "decide"]


class Disposition(enum.Enum):
    """The decision for the first stored item at a given instant."""

    WAIT = "WAIT"  #: not due yet (or the time base is unknown)
    RUN = "RUN"  #: due, within the grace time
    RUN_LATE = "RUN_LATE"  #: late, and its policy says run
    SKIP_LATE = "SKIP_LATE"  #: late, and its policy says drop


class ScheduleFull(Exception):
    """Storing would exceed the configured maximum number of stored commands."""


class SchedulingClock(Protocol):
    """The time base stored commands are tagged in: seconds on one timescale, None when unknown.

    The one place the sequencer reads time (today UTC from the spacecraft clock); times given
    as UTC (commands, the overflight predictor) are converted through it."""

    def now(self) -> float | None: ...

    def from_utc(self, utc: float) -> float | None: ...

    def to_utc(self, t: float) -> float | None: ...


@dataclass(frozen=True)
class StoredCommand:
    """One stored command: run ``command(args)`` at ``due`` through the dispatcher."""

    id: int  #: insertion number, unique over the store's life; breaks ties in due order
    due: float  #: on the scheduling time base (UTC seconds)
    command: str  #: dictionary name, e.g. "imaging.CAPTURE_NOW"
    args: tuple[Any, ...] = ()
    policy: LatePolicy = LatePolicy.SKIP_IF_LATER_THAN
    late_s: float = 60.0  #: only for SKIP_IF_LATER_THAN
    sequence: str = ""  #: name of the sequence it belongs to ("" for a single command)
    source: str = ""  #: what stored it (a command name, a file)

    @property
    def order(self) -> tuple[float, int]:
        return (self.due, self.id)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "due": self.due, "command": self.command, "args": list(self.args),
                "policy": self.policy.name, "late_s": self.late_s, "sequence": self.sequence,
                "source": self.source}

    @classmethod
    def from_dict(cls, raw: Any) -> StoredCommand:
        """Rebuild a persisted item; ValueError names what is wrong with it."""
        if not isinstance(raw, dict):
            raise ValueError("not a table")
        try:
            item = cls(id=int(raw["id"]), due=float(raw["due"]), command=str(raw["command"]),
                       args=tuple(raw["args"]), policy=LatePolicy[raw["policy"]],
                       late_s=float(raw["late_s"]), sequence=str(raw["sequence"]),
                       source=str(raw["source"]))
        except KeyError as exc:
            raise ValueError(f"missing or unknown {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        if not math.isfinite(item.due) or item.id <= 0:
            raise ValueError("bad id or due time")
        return item


def decide(item: StoredCommand, now: float | None, grace_s: float) -> Disposition:
    """What to do with ``item`` at ``now``: wait, run, run late or skip, by its late policy."""
    if now is None or now < item.due:
        return Disposition.WAIT
    late = now - item.due
    if late <= grace_s:
        return Disposition.RUN
    if item.policy is LatePolicy.RUN_LATE:
        return Disposition.RUN_LATE
    if item.policy is LatePolicy.SKIP_IF_LATER_THAN and late <= item.late_s:
        return Disposition.RUN_LATE
    return Disposition.SKIP_LATE


@dataclass
class Schedule:
    """The stored commands, bounded, in execution order."""

    max_items: int
    next_id: int = 1
    _items: dict[int, StoredCommand] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[StoredCommand]:
        return iter(sorted(self._items.values(), key=lambda i: i.order))

    def first(self) -> StoredCommand | None:
        return min(self._items.values(), key=lambda i: i.order, default=None)

    def get(self, item_id: int) -> StoredCommand | None:
        return self._items.get(item_id)

    def add_all(self, drafts: Iterable[StoredCommand]) -> list[StoredCommand]:
        """Store every draft (their ``id`` is replaced) or none: refused as a whole when full."""
        drafts = list(drafts)
        if len(self._items) + len(drafts) > self.max_items:
            raise ScheduleFull(f"{len(drafts)} more stored command(s) would exceed the maximum of "
                               f"{self.max_items} ({len(self._items)} stored)")
        stored = []
        for draft in drafts:
            item = StoredCommand(self.next_id, draft.due, draft.command, draft.args, draft.policy,
                                 draft.late_s, draft.sequence, draft.source)
            self.next_id += 1
            self._items[item.id] = item
            stored.append(item)
        return stored

    def remove(self, item_id: int) -> StoredCommand | None:
        return self._items.pop(item_id, None)

    def remove_where(self, *, sequence: str | None = None, command: str | None = None) -> list[StoredCommand]:
        """Remove the items of a sequence, or of a command name, or (neither given) all."""
        gone = [i for i in self._items.values()
                if (sequence is None or i.sequence == sequence) and (command is None or i.command == command)]
        for item in gone:
            del self._items[item.id]
        return sorted(gone, key=lambda i: i.order)

    def to_state(self) -> dict[str, Any]:
        return {"next_id": self.next_id, "items": [i.to_dict() for i in self]}

    @classmethod
    def from_state(cls, raw: Any, max_items: int) -> tuple[Schedule, list[str]]:
        """The persisted schedule and one problem line per item that could not be restored."""
        schedule = cls(max_items)
        problems: list[str] = []
        if raw is None:
            return schedule, problems
        if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
            return schedule, ["stored commands: unreadable, started empty"]
        for index, entry in enumerate(raw["items"]):
            try:
                item = StoredCommand.from_dict(entry)
            except ValueError as exc:
                problems.append(f"stored command [{index}] dropped: {exc}")
                continue
            schedule._items[item.id] = item
        highest = max(schedule._items, default=0)
        try:
            schedule.next_id = max(int(raw.get("next_id", 1)), highest + 1)
        except (TypeError, ValueError):
            schedule.next_id = highest + 1
        return schedule, problems
