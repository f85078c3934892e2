"""Logging set-up: lines journald can filter when run by systemd, readable lines on a terminal.

Why: on the board flightsw.service's stderr goes to the journal. Without a priority every line is
stored at the unit's default level, so ``journalctl -p warning`` cannot separate a SAFE-mode entry
from routine chatter. Under systemd (``JOURNAL_STREAM`` names our stderr, see systemd.exec(5))
each line starts with the sd-daemon(3) priority prefix ``<N>``, which journald turns into the
entry's PRIORITY, and carries the event's identity as ``FLIGHTSW_*=value`` words (the event name,
id, severity and boot), so ``journalctl -u flightsw -p warning -g FLIGHTSW_EVENT=modes.mode_changed``
finds every mode change. Telemetry (packets, sensor readings) is never logged above DEBUG: it is
recorded in the record log, and a line per reading would fill the journal's quota in days.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

#: syslog priorities (sd-daemon(3)) for the logging levels
JOURNAL_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}
FIELD_PREFIX = "FLIGHTSW_"
TERMINAL_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"  # the journal stamps entries itself


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (levels between the named ones round down)."""
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return JOURNAL_PRIORITY[level]
    return JOURNAL_PRIORITY[logging.DEBUG]


def stream_is_journal(stream: TextIO) -> bool:
    """True when systemd connected ``stream`` to the journal (JOURNAL_STREAM is its device:inode)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
        return False
    return f"{st.st_dev}:{st.st_ino}" == expected


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields a record carries (``extra={"FLIGHTSW_...": value}``)."""
    return {k: v for k, v in vars(record).items() if k.startswith(FIELD_PREFIX)}


class JournalFormatter(logging.Formatter):
    """``<N>logger: message FLIGHTSW_EVENT=... ...``; every line of a multi-line record (a
    traceback) gets the prefix, since journald makes each line an entry of its own."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = record_fields(record)
        if fields:
            first, sep, rest = text.partition("\n")
            words = " ".join(f"{k}={str(v).replace(' ', '_')}" for k, v in fields.items())
            text = f"{first} {words}{sep}{rest}"
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


def setup_logging(verbose: bool, stream: TextIO | None = None) -> None:
    """Root logging for the ``flightsw`` command: DEBUG with ``-v``, else INFO. Like
    ``logging.basicConfig``, it leaves a root logger that already has handlers alone."""
    stream = stream if stream is not None else sys.stderr
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter() if stream_is_journal(stream) else logging.Formatter(TERMINAL_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
