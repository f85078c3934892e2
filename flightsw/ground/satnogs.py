"""Frames received by the SatNOGS network, into the mission archive.

SatNOGS DB serves the frames its stations heard of a satellite (``/api/telemetry/``) as JSON: a
list of objects, or a page ``{"results": [...]}``, each with the frame as hex (``frame``), the
reception time (``timestamp``, ISO 8601 UTC such as ``2021-01-05T22:28:09Z``) and who heard it
(``observer``, the station's callsign and locator like ``KB9JHU-EM69uf``; ``station_id`` on newer
records). Its dashboard's export is text, one ``timestamp|hexframe`` a line. Both are read here.

Why this module only parses: the frames then go through the station's one decoder and archive
(``GroundStation.handle_frame``) tagged ``satnogs:<observer>``, so a frame the mission's own
station heard too is recorded as a second reception, not stored twice. An entry that does not
parse is counted and named (entry number and reason), never fatal, and never costs the others.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

#: a SatNOGS export larger than this is refused (read whole into memory)
MAX_FILE_BYTES = 64 * 1024 * 1024
#: longest frame taken (the ground's KISS decoder's limit)
MAX_FRAME_BYTES = 4096
SITE_PREFIX = "satnogs"


class SatnogsFormatError(ValueError):
    """The whole file is unusable (not JSON nor ``timestamp|hexframe`` lines); one line."""


@dataclass(frozen=True)
class SatnogsFrame:
    entry: int  # 1-based: the list index in JSON, the line number in text
    raw: bytes
    utc: float
    site: str


@dataclass
class ParsedExport:
    frames: list[SatnogsFrame] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "entry N: reason", one per malformed entry


def _timestamp(value: Any) -> float:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("no timestamp")
    text = value.strip()
    try:
        when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(f"timestamp {text[:40]!r} is not ISO 8601") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # SatNOGS times are UTC
    return when.timestamp()


def _frame(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("no hex frame")
    text = "".join(value.split())
    if not text:
        raise ValueError("empty frame")
    if len(text) > 2 * MAX_FRAME_BYTES:
        raise ValueError(f"frame of {len(text) // 2} bytes is longer than {MAX_FRAME_BYTES}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError("frame is not hex") from None


def _site(record: dict[str, Any]) -> str:
    for key in ("observer", "station_id", "station"):
        value = record.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return f"{SITE_PREFIX}:{str(value).strip()[:64]}"
    return SITE_PREFIX


def parse_export(text: str) -> ParsedExport:
    """The frames of a SatNOGS DB export (JSON, or ``timestamp|hexframe`` lines) and a named
    problem for each entry that does not parse. SatnogsFormatError only for a JSON document
    whose top level is neither a list nor a page of results."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            document = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise SatnogsFormatError(f"not valid JSON: {str(exc)[:120]}") from None
        if isinstance(document, dict) and isinstance(document.get("results"), list):
            document = document["results"]
        if not isinstance(document, list):
            raise SatnogsFormatError("JSON is neither a list of telemetry records nor a page with 'results'")
        return _parse_records(document)
    return _parse_lines(text)


def _parse_records(records: list[Any]) -> ParsedExport:
    out = ParsedExport()
    for number, record in enumerate(records, start=1):
        try:
            if not isinstance(record, dict):
                raise ValueError("not an object")
            out.frames.append(SatnogsFrame(number, _frame(record.get("frame")),
                                           _timestamp(record.get("timestamp")), _site(record)))
        except ValueError as exc:
            out.problems.append(f"entry {number}: {exc}")
    return out


def _parse_lines(text: str) -> ParsedExport:
    out = ParsedExport()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            stamp, sep, hexframe = line.partition("|")
            if not sep:
                raise ValueError("not 'timestamp|hexframe'")
            out.frames.append(SatnogsFrame(number, _frame(hexframe), _timestamp(stamp), SITE_PREFIX))
        except ValueError as exc:
            out.problems.append(f"line {number}: {exc}")
    return out
