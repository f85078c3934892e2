"""The ground's half of playback: live and played-back records merged in the archive, the gaps
that remain, and the playback requests that ask for them.

Why apart from the station: the scripted ground of the simulator and the operator's station
both feed it packets; it only needs the archive. Live housekeeping and events carry no record
number, played-back records do; both are merged by (kind, id, spacecraft time), so a record
received live and again in playback is stored once (see ``Archive.store_records``). Database work
is queued on the archive's thread without waiting, in arrival order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

from flightsw.ground.archive import Archive, RecordRow
from flightsw.link import stored
from flightsw.link.packets import Apid, Packet
from flightsw.link.stored import RecordCode

if TYPE_CHECKING:
    from flightsw.ground.station import GroundStation

log = logging.getLogger("flightsw.ground.records")

LIVE, PLAYBACK = "live", "playback"
KIND_TLM, KIND_EVT = int(RecordCode.TELEMETRY), int(RecordCode.EVENT)
REQUEST_COMMAND = "playback.REQUEST_RANGES"
RANGES_CHARS = 160  # the command's argument (flightsw.link.playback.RANGES_CHARS)


@dataclass
class IngestStats:
    live: int = 0
    played_back: int = 0
    stored_packets: int = 0
    stored_bytes: int = 0  # user data of stored-telemetry packets
    bad: int = 0
    new: int = 0  # records new to the archive (as the archive thread reports)
    duplicates: int = 0  # records the archive already had (merged, not stored twice)


def _tlm_row(seq: int | None, body: bytes, source: str) -> RecordRow:
    pid, boot, seconds, utc, _values = msgpack.unpackb(body, raw=False)
    return (seq, KIND_TLM, int(pid), int(boot), float(seconds), utc, bytes(body), False, source)


def _evt_row(seq: int | None, wire: list[Any], source: str) -> RecordRow:
    eid, _sev, boot, seconds, utc, _suppressed, _args = wire
    return (seq, KIND_EVT, int(eid), int(boot), float(seconds), utc,
            msgpack.packb(wire, use_bin_type=True), False, source)


def _subset_row(seq: int, value: list[Any]) -> RecordRow:
    pid, boot, seconds, utc, _mask, _values = value
    return (seq, KIND_TLM, int(pid), int(boot), float(seconds), utc,
            msgpack.packb(value, use_bin_type=True), True, PLAYBACK)


class RecordIngest:
    """Feeds the archive's merged record table from downlinked packets."""

    def __init__(self, archive: Archive, wall_clock: Callable[[], float]) -> None:
        self.archive = archive
        self.wall_clock = wall_clock
        self.stats = IngestStats()
        self.head: int | None = None  # the satellite's next record number, from stored packets
        self._pending: list[Future[tuple[int, int]]] = []

    def attach(self, station: GroundStation) -> RecordIngest:
        """Archive what ``station`` receives: live records as they come, played-back ones too."""
        station.stored_handler = self.on_packet
        station.packet_listeners.append(self._on_live)
        return self

    def _on_live(self, packet: Packet) -> None:
        if packet.apid in (Apid.HOUSEKEEPING, Apid.EVENT):
            self.on_packet(packet)

    def on_packet(self, packet: Packet) -> None:
        """One received packet of any APID (others are ignored)."""
        try:
            rows = self._rows(packet)
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            self.stats.bad += 1
            log.warning("APID 0x%03x: record not archived: %s", packet.apid, exc)
            return
        if rows is None:
            return
        head = self.head if packet.apid == Apid.STORED else None
        future = self.archive.submit(self.archive.store_records, rows, self.wall_clock(), head)
        future.add_done_callback(self._stored)

    def _rows(self, packet: Packet) -> list[RecordRow] | None:
        if packet.apid == Apid.HOUSEKEEPING:
            self.stats.live += 1
            return [_tlm_row(None, packet.user_data, LIVE)]
        if packet.apid == Apid.EVENT:
            self.stats.live += 1
            return [_evt_row(None, msgpack.unpackb(packet.user_data, raw=False), LIVE)]
        if packet.apid != Apid.STORED:
            return None
        head, records = stored.unpack(packet.user_data)
        self.head = head if self.head is None else max(self.head, head)
        self.stats.stored_packets += 1
        self.stats.stored_bytes += len(packet.user_data)
        rows: list[RecordRow] = []
        for seq, code, value in records:
            if code == RecordCode.TELEMETRY:
                rows.append(_tlm_row(seq, value, PLAYBACK))
            elif code == RecordCode.EVENT:
                rows.append(_evt_row(seq, value, PLAYBACK))
            else:
                rows.append(_subset_row(seq, value))
        self.stats.played_back += len(rows)
        return rows

    def _stored(self, future: Future[tuple[int, int]]) -> None:
        try:
            new, duplicates = future.result()
        except Exception as exc:  # the archive thread's error: reported, the station goes on
            self.stats.bad += 1
            log.error("records not archived: %s", exc)
            return
        self.stats.new += new
        self.stats.duplicates += duplicates


def gap_requests(gaps: list[tuple[int, int]], limit: int, max_records: int | None = None,
                 bridge: int = 2) -> list[str]:
    """At most ``limit`` ``playback.REQUEST_RANGES`` arguments covering the gaps, oldest first, and
    at most ``max_records`` records in all (what a pass can carry); gaps closer than ``bridge``
    records are asked for together."""
    merged: list[tuple[int, int]] = []
    total = 0
    for first, last in gaps:
        if max_records is not None and total >= max_records:
            break
        if max_records is not None:
            last = min(last, first + max_records - total - 1)
        total += last - first + 1
        if merged and first - merged[-1][1] <= bridge:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return stored.format_ranges(merged, RANGES_CHARS)[:limit]


def request_assignments(ranges: str, kind: int = 0) -> dict[str, str]:
    """Arguments of ``playback.REQUEST_RANGES``, as the command line would give them."""
    return {"kind": str(kind), "ranges": ranges}
