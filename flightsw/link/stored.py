"""Played-back records on the stored-telemetry APID: selection, decimation and the wire layout.

Why one module for both sides: the satellite packs what the ground unpacks, and the selection
rules (kind, number range, UTC range, every Nth sample, a channel subset) are pure functions
worth testing without a loop. A stored packet's user data is msgpack

    [head, [[n, code, value], ...]]

``head`` is the number the next record will get on board (so the ground sees what exists beyond
what it has), ``n`` the record's number, ``code`` its kind (:class:`RecordCode`). ``value`` is
the recorded housekeeping packet body (bytes, exactly as sent live), the event's wire list, or
for a channel subset ``[packet id, boot, seconds, utc, mask, values]`` with bit i of ``mask``
set for each channel index kept.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import msgpack

from flightsw.link.packets import CRC_LEN, PRIMARY_HEADER_LEN, TM_SECONDARY_LEN

PACKET_OVERHEAD = PRIMARY_HEADER_LEN + TM_SECONDARY_LEN + CRC_LEN
LIST_OVERHEAD = 12  # outer msgpack array, head (up to a u64) and the records' array header


class RecordCode(IntEnum):
    """The kind of one played-back record on the wire."""

    TELEMETRY = 1  # a housekeeping packet body, as recorded
    EVENT = 2  # an event record's wire list
    TELEMETRY_SUBSET = 3  # some channels of a housekeeping packet (decimated by channel)


class KindFilter(IntEnum):
    """Which records a playback request selects (the ``kind`` argument of the commands)."""

    ALL = 0
    TELEMETRY = 1
    EVENTS = 2


KIND_CODES = {"tlm": RecordCode.TELEMETRY, "evt": RecordCode.EVENT}


class SelectionError(ValueError):
    """A playback request that cannot be served (unknown channel, empty range...)."""


@dataclass
class Selection:
    """One playback request: which records, and how they are thinned. ``every_nth`` counts per
    housekeeping packet (the first sample of each packet is kept, then every Nth)."""

    kind: KindFilter = KindFilter.ALL
    first: int = 0
    last: int = 2**63
    utc_from: float | None = None
    utc_to: float | None = None
    every_nth: int = 1
    channels: dict[int, list[int]] | None = None  # packet id -> channel indexes kept
    #: several number ranges (inclusive, ascending) within [first, last]; None: the whole range
    ranges: list[tuple[int, int]] | None = None
    _seen: dict[int, int] = field(default_factory=dict)
    _starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise SelectionError(f"first record {self.first} is after last record {self.last}")
        if self.ranges is not None:
            self._starts = [a for a, _ in self.ranges]
        if self.every_nth < 1:
            raise SelectionError(f"every_nth must be >= 1, got {self.every_nth}")
        if self.utc_from is not None and self.utc_to is not None and self.utc_from > self.utc_to:
            raise SelectionError("utc_from is after utc_to")

    def pick(self, n: int, kind: str, value: Any) -> tuple[int, int, Any] | None:
        """The wire record for one logged record, or None when this request leaves it out."""
        code = KIND_CODES.get(kind)
        if code is None or not self.first <= n <= self.last:
            return None
        if self.ranges is not None:
            i = bisect.bisect_right(self._starts, n) - 1
            if i < 0 or n > self.ranges[i][1]:
                return None
        if self.kind == KindFilter.TELEMETRY and code != RecordCode.TELEMETRY:
            return None
        if self.kind == KindFilter.EVENTS and code != RecordCode.EVENT:
            return None
        if code == RecordCode.EVENT:
            return (n, int(code), value) if self._in_time(_event_utc(value)) else None
        try:
            pid, boot, seconds, utc, values = msgpack.unpackb(value, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            return None  # not a housekeeping body: nothing to play back
        if not self._in_time(utc):
            return None
        if self.every_nth > 1:
            seen = self._seen.get(pid, 0)
            self._seen[pid] = seen + 1
            if seen % self.every_nth:
                return None
        if self.channels is None:
            return (n, int(code), value)
        kept = self.channels.get(pid)
        if kept is None:
            return None  # a packet with none of the requested channels
        mask = sum(1 << i for i in kept)
        return (n, int(RecordCode.TELEMETRY_SUBSET), [pid, boot, seconds, utc, mask, [values[i] for i in kept]])

    def _in_time(self, utc: Any) -> bool:
        if self.utc_from is None and self.utc_to is None:
            return True
        if not isinstance(utc, int | float):
            return False  # no UTC stamp (clock not set): not selectable by time
        return ((self.utc_from is None or utc >= self.utc_from)
                and (self.utc_to is None or utc <= self.utc_to))


def _event_utc(value: Any) -> Any:
    return value[4] if isinstance(value, list) and len(value) >= 5 else None


def parse_ranges(text: str) -> list[tuple[int, int]]:
    """Record number ranges "10-20,25,31-40" as sorted, merged (first, last) pairs."""
    ranges: list[tuple[int, int]] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        first, sep, last = part.partition("-")
        if not first.isdigit() or (sep and not last.isdigit()):
            raise SelectionError(f"{part!r} is not a record number or a range like 10-20")
        a, b = int(first), int(last) if sep else int(first)
        if a > b:
            raise SelectionError(f"range {part}: first record {a} is after last record {b}")
        ranges.append((a, b))
    if not ranges:
        raise SelectionError("no record ranges given")
    ranges.sort()
    merged = [ranges[0]]
    for a, b in ranges[1:]:
        if a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def format_ranges(ranges: Sequence[tuple[int, int]], max_chars: int) -> list[str]:
    """The ranges as "a-b,c" strings of at most ``max_chars`` each (one command argument each)."""
    out: list[str] = []
    current = ""
    for a, b in ranges:
        part = f"{a}" if a == b else f"{a}-{b}"
        candidate = f"{current},{part}" if current else part
        if len(candidate) > max_chars and current:
            out.append(current)
            candidate = part
        current = candidate
    if current:
        out.append(current)
    return out


def channel_subset(names: str, packets: Sequence[tuple[int, Sequence[str]]]) -> dict[int, list[int]] | None:
    """Packet id -> indexes of the named channels, from "comp.chan,comp.chan" ("" keeps all)."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        return None
    subset: dict[int, list[int]] = {}
    found: set[str] = set()
    for pid, channel_names in packets:
        kept = [i for i, name in enumerate(channel_names) if name in wanted]
        if kept:
            subset[pid] = kept
            found.update(channel_names[i] for i in kept)
    missing = [n for n in wanted if n not in found]
    if missing:
        raise SelectionError(f"no housekeeping packet carries {', '.join(missing)}")
    return subset


def pack(head: int, records: Iterable[tuple[int, int, Any]], max_user: int) -> Iterator[bytes]:
    """User data of stored packets, each as full as ``max_user`` bytes allows, records in order."""
    batch: list[bytes] = []
    size = LIST_OVERHEAD
    for record in records:
        encoded = msgpack.packb(list(record), use_bin_type=True)
        if size + len(encoded) > max_user and batch:
            yield _packet(head, batch)
            batch, size = [], LIST_OVERHEAD
        if LIST_OVERHEAD + len(encoded) > max_user:
            continue  # a record larger than a packet cannot be played back (never for housekeeping)
        batch.append(encoded)
        size += len(encoded)
    if batch:
        yield _packet(head, batch)


def _packet(head: int, batch: list[bytes]) -> bytes:
    # the records are already msgpack: build the outer arrays around them by hand
    out = bytearray(msgpack.packb(head))
    out[:0] = b"\x92"  # fixarray of 2: [head, records]
    n = len(batch)
    out += bytes([0x90 | n]) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
    for encoded in batch:
        out += encoded
    return bytes(out)


def unpack(user_data: bytes) -> tuple[int, list[tuple[int, RecordCode, Any]]]:
    """(head, records) of one stored packet; ValueError if it is not one."""
    try:
        head, records = msgpack.unpackb(user_data, raw=False)
        out = [(int(n), RecordCode(code), value) for n, code, value in records]
        return int(head), out
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ValueError(f"malformed stored-telemetry packet: {exc}") from None
