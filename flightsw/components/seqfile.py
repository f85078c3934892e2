"""The sequence file format: a text file of time-tagged commands, validated as a whole.

One step per line; blank lines and ``#`` comments are ignored::

    # Almaty pass 2026-12-06
    sequence almaty_0612                  # optional name (default: the file name's stem)
    late SKIP_IF_LATER_THAN:60            # optional default late policy of the steps below
    +0     imaging.SET_CAMERA [2000, 1.0, 640, 480, 90]
    +10m   imaging.CAPTURE_NOW
    +10m30s imaging.CAPTURE_NOW late=RUN_LATE
    2026-12-06T05:12:30Z imaging.CAPTURE_NOW

A step is ``TIME COMMAND [ARGS] [late=POLICY]``: ``TIME`` is ``+OFFSET`` after the sequence's
start (seconds, or with ``h``/``m``/``s`` units; at most 366 days) or an absolute ISO-8601 UTC
time (1970 to 9999: what the clock and every report can show); ``COMMAND`` a
dictionary name; ``ARGS`` a JSON array of the command's arguments in order (omitted: none);
``POLICY`` is ``RUN_LATE``, ``SKIP`` or ``SKIP_IF_LATER_THAN:N`` (seconds). Steps run in time
order, steps with the same time in file order.

Why text: operators write and review sequences by hand, and the same parser checks a file on the
ground (``flightsw ground sequence check``) and on board before anything is stored. A file with
any bad line is refused whole, with one line naming the line and the problem.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flightsw.components.schedule import LatePolicy, StoredCommand

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,24}$")
OFFSET_RE = re.compile(r"^\+(?:(\d+(?:\.\d+)?)|(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?)$")
DEFAULT_POLICY = (LatePolicy.SKIP_IF_LATER_THAN, 60.0)
MAX_OFFSET_S = 366 * 86400.0  #: a sequence spans at most a year after its start
#: absolute step times: from the UNIX epoch to the last second a calendar (and time.gmtime) shows
MAX_UTC = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp()

#: checks a command and its arguments against the dictionary; raises ValueError naming the problem
CommandCheck = Callable[[str, list[Any]], None]


class SequenceError(ValueError):
    """A sequence (file or inline text) that cannot be stored; the message names the line."""


@dataclass(frozen=True)
class Step:
    line: int
    at: float  #: seconds after the start, or UTC seconds when ``absolute``
    absolute: bool
    command: str
    args: tuple[Any, ...]
    policy: LatePolicy
    late_s: float


@dataclass(frozen=True)
class Sequence:
    name: str
    steps: tuple[Step, ...]

    @property
    def relative(self) -> bool:
        """Whether any step needs a start time."""
        return any(not s.absolute for s in self.steps)

    def drafts(self, start: float | None, source: str) -> list[StoredCommand]:
        """The steps as stored-command drafts (ids assigned when stored), in file order."""
        if start is None and self.relative:
            raise SequenceError(f"sequence {self.name}: relative steps need a start time")
        return [StoredCommand(0, s.at if s.absolute else (start or 0.0) + s.at, s.command, s.args,
                              s.policy, s.late_s, self.name, source) for s in self.steps]


def parse_offset(text: str) -> float:
    """``+90``, ``+1.5``, ``+2m``, ``+1h30m``, ``+10m30s`` -> seconds."""
    match = OFFSET_RE.match(text)
    if match is None or text == "+":
        raise ValueError(f"bad offset {text!r} (e.g. +90, +2m, +1h30m)")
    plain, hours, minutes, seconds = match.groups()
    try:
        seconds_after = (float(plain) if plain is not None else
                         int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0))
    except OverflowError:  # a whole number of hours too large for a float
        seconds_after = math.inf
    if not seconds_after <= MAX_OFFSET_S:  # also inf: float() of 400 digits does not raise
        raise ValueError(f"offset {text[:24]!r} is more than {MAX_OFFSET_S / 86400:.0f} days after the start")
    return seconds_after


def parse_utc(text: str) -> float:
    """ISO-8601 time (UTC when no zone is given) -> UNIX seconds."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad time {text!r} (+OFFSET or ISO UTC such as 2026-12-06T05:12:30Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    utc = when.timestamp()
    if not 0.0 <= utc <= MAX_UTC:
        raise ValueError(f"time {text!r} is outside 1970-01-01..9999-12-31 UTC")
    return utc


def parse_policy(text: str) -> tuple[LatePolicy, float]:
    """``RUN_LATE``, ``SKIP`` or ``SKIP_IF_LATER_THAN:N``."""
    name, _, limit = text.partition(":")
    try:
        policy = LatePolicy[name]
    except KeyError:
        raise ValueError(f"unknown late policy {name!r} (RUN_LATE, SKIP, SKIP_IF_LATER_THAN:N)") from None
    if policy is LatePolicy.SKIP_IF_LATER_THAN:
        try:
            late_s = float(limit)
        except ValueError:
            raise ValueError("SKIP_IF_LATER_THAN needs a limit in seconds, e.g. SKIP_IF_LATER_THAN:60") from None
        if not 0.0 <= late_s <= 10 * 86400.0:
            raise ValueError(f"late limit {late_s} s outside [0, 864000]")
        return policy, late_s
    if limit:
        raise ValueError(f"{name} takes no limit")
    return policy, 0.0


def parse_args(text: str) -> tuple[Any, ...]:
    """A JSON array of arguments ("" means none)."""
    if not text.strip():
        return ()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"arguments are not a JSON array: {exc.msg}") from None
    except RecursionError:
        raise ValueError("arguments nested too deeply") from None
    if not isinstance(value, list):
        raise ValueError("arguments must be a JSON array, e.g. [2000, 1.0]")
    return tuple(value)


def parse_sequence(text: str, default_name: str, check: CommandCheck) -> Sequence:
    """Parse and validate a whole sequence; SequenceError names the first bad line."""
    name = default_name
    policy = DEFAULT_POLICY
    steps: list[Step] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            head, _, rest = line.partition(" ")
            rest = rest.strip()
            if head == "sequence":
                if steps:
                    raise ValueError("'sequence' must come before the steps")
                name = rest
                if not NAME_RE.match(name):
                    raise ValueError(f"sequence name {name!r}: 1-24 letters, digits, '_', '.', '-'")
                continue
            if head == "late":
                policy = parse_policy(rest)
                continue
            steps.append(_step(number, head, rest, policy, check))
        except ValueError as exc:
            raise SequenceError(f"line {number}: {exc}") from None
    if not NAME_RE.match(name):
        raise SequenceError(f"sequence name {name!r}: 1-24 letters, digits, '_', '.', '-'")
    if not steps:
        raise SequenceError("no steps")
    return Sequence(name, tuple(steps))


def _step(number: int, head: str, rest: str, default: tuple[LatePolicy, float],
          check: CommandCheck) -> Step:
    if head.startswith("+"):
        at, absolute = parse_offset(head), False
    else:
        at, absolute = parse_utc(head), True
    command, _, rest = rest.partition(" ")
    if not command:
        raise ValueError("missing command after the time")
    rest = rest.strip()
    policy = default
    late_at = rest.rfind("late=")
    if late_at >= 0 and (late_at == 0 or rest[late_at - 1] in " ]"):
        policy = parse_policy(rest[late_at + 5:].strip())
        rest = rest[:late_at]
    args = parse_args(rest)
    try:
        check(command, list(args))
    except ValueError as exc:
        raise ValueError(f"{command}: {exc}") from None
    return Step(number, at, absolute, command, args, policy[0], policy[1])
