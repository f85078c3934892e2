"""Playback of the record log: recorded telemetry and events down on the stored-telemetry APID.

Why: almost everything the satellite records happens out of contact. The ground asks for records
by number range or UTC range and kind, thinned (every Nth sample, a channel subset) when the
pass is short; requests run one after the other at STORED priority through the downlink
scheduler, so real-time traffic always goes first and the airtime is shaped to the bit rate.
Records are read, selected and packed on the storage worker a chunk at a time, and a chunk is
queued only while the stored queue has room, so a long playback never floods the queue (nothing is dropped) and a pass
that ends simply leaves the rest queued for the next one. A lost pass is recovered by asking
again for the numbers the ground lacks. With contact-aware downlink, each predicted pass starts
an automatic playback of everything recorded since the last one (:meth:`start_auto`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flightsw.core.component import (
    Arg,
    Channel,
    CommandFailure,
    Component,
    Counter,
    CounterSet,
    Event,
    command,
)
from flightsw.core.events import Severity
from flightsw.core.telemetry import PacketDef
from flightsw.core.types import F64, STRING, U8, U16, U32
from flightsw.link import stored
from flightsw.link.component import LinkComponent
from flightsw.link.packets import Apid
from flightsw.link.scheduler import Priority

log = logging.getLogger("flightsw.link.playback")

STORAGE_RESOURCE = "storage"  # the record log's worker (the one the satellite syncs it on)
STATE_AUTO_CURSOR = "playback.auto_cursor"
MAX_REQUESTS = 16
CHUNK_RECORDS = 1000  # records read, selected and packed per storage-worker call
QUEUE_TARGET = 24  # stored packets kept queued ahead of the radio (the scheduler's queue holds 512)
U32_MAX = 0xFFFFFFFF
RANGES_CHARS = 160  # a REQUEST_RANGES command still fits one 256-byte uplink frame


@dataclass
class _Request:
    selection: stored.Selection
    label: str
    auto: bool = False


class Playback(Component):
    """Record-log playback: commands by number or time range, automatic playback in passes."""

    requests_accepted = Counter("Playback requests accepted")
    requests_done = Counter("Playback requests completed")
    records_sent = Counter("Records queued for downlink by playback")
    packets_queued = Counter("Stored-telemetry packets queued")
    bytes_queued = Counter("Stored-telemetry user data queued", unit="B")
    head_seq = Channel(U32, doc="Number the next record will get (records 0..head-1 exist or existed)",
                       update="on_change")
    pending = Channel(U16, doc="Playback requests waiting or running", update="on_change")
    cursor = Channel(U32, doc="Last record number the running request reached", update="on_change")
    auto_cursor = Channel(U32, doc="Records below this number were played back automatically",
                          update="on_change")

    started = Event(Severity.INFO, "Playback {label} started", throttle=(10, 60.0))
    finished = Event(Severity.INFO, "Playback {label} done: {records} records in {packets} packets",
                     throttle=(10, 60.0))
    cancelled = Event(Severity.INFO, "Playback cancelled ({requests} requests)", throttle=None)

    def __init__(self, link: LinkComponent, packets: Callable[[], Sequence[PacketDef]],
                 name: str = "playback", base_id: int = 0x0068) -> None:
        super().__init__(name, base_id)
        self.link = link
        self._packets = packets
        self.stats = CounterSet(self)
        self._requests: collections.deque[_Request] = collections.deque()
        self._wake = asyncio.Event()
        self._running: _Request | None = None
        self._cancel = False

    def setup(self) -> None:
        self.ctx.supervisor.add_service(f"{self.name}.run", self._run, critical=False)
        self.ctx.rate_group("slow").add(f"{self.name}.telemetry", self.publish)

    @property
    def max_user(self) -> int:
        return self.link.settings.max_info - stored.PACKET_OVERHEAD

    # -- requests ---------------------------------------------------------------------------
    def submit(self, selection: stored.Selection, label: str, auto: bool = False) -> None:
        """Queue one request (CommandFailure when MAX_REQUESTS are already waiting)."""
        if len(self._requests) >= MAX_REQUESTS:
            raise CommandFailure(f"{MAX_REQUESTS} playback requests already waiting; CANCEL or wait")
        self._requests.append(_Request(selection, label, auto))
        self.stats.inc("requests_accepted")
        self._wake.set()

    def start_auto(self) -> bool:
        """Play back every record since the last automatic playback (a pass begins). False when
        one is already waiting or running, or nothing new was recorded."""
        if any(r.auto for r in self._requests) or (self._running is not None and self._running.auto):
            return False
        first = int(self.ctx.state.get(STATE_AUTO_CURSOR, 0))
        head = self.ctx.records.next_seq
        if first >= head:
            return False
        try:
            self.submit(stored.Selection(first=first, last=head - 1), f"auto #{first}-#{head - 1}", auto=True)
        except CommandFailure:
            return False
        return True

    def _selection(self, kind: int, first: int, last: int, every_nth: int, channels: str,
                   utc_from: float | None = None, utc_to: float | None = None,
                   ranges: list[tuple[int, int]] | None = None) -> stored.Selection:
        try:
            kind_filter = stored.KindFilter(kind)
        except ValueError:
            raise CommandFailure(f"kind {kind}: 0 all, 1 telemetry, 2 events") from None
        try:
            subset = stored.channel_subset(channels, [(p.id, p.channel_names) for p in self._packets()])
            return stored.Selection(kind_filter, first, last, utc_from, utc_to, every_nth, subset, ranges)
        except stored.SelectionError as exc:
            raise CommandFailure(str(exc)) from None

    @command(args=[Arg("kind", U8, range=(0, 2), doc="0 all, 1 telemetry, 2 events"),
                   Arg("first", U32, doc="first record number"),
                   Arg("last", U32, doc="last record number (inclusive)"),
                   Arg("every_nth", U16, range=(1, 10000), doc="keep every Nth sample of each packet"),
                   Arg("channels", STRING(120), doc="comma-separated channels to keep ('' all)")],
             doc="Downlink recorded records by number range (what the ground lacks after a lost pass).")
    def request(self, kind: int, first: int, last: int, every_nth: int, channels: str) -> None:
        self.submit(self._selection(kind, first, last, every_nth, channels), f"#{first}-#{last}")

    @command(args=[Arg("kind", U8, range=(0, 2), doc="0 all, 1 telemetry, 2 events"),
                   Arg("ranges", STRING(RANGES_CHARS), doc="record numbers, e.g. '10-20,25,31-40'")],
             doc="Downlink the records of several number ranges (the gaps the ground reports), whole.")
    def request_ranges(self, kind: int, ranges: str) -> None:
        try:
            parsed = stored.parse_ranges(ranges)
        except stored.SelectionError as exc:
            raise CommandFailure(str(exc)) from None
        selection = self._selection(kind, parsed[0][0], parsed[-1][1], 1, "", ranges=parsed)
        self.submit(selection, f"{len(parsed)} ranges #{parsed[0][0]}-#{parsed[-1][1]}")

    @command(args=[Arg("kind", U8, range=(0, 2), doc="0 all, 1 telemetry, 2 events"),
                   Arg("utc_from", F64, doc="UTC start (POSIX seconds)"),
                   Arg("utc_to", F64, doc="UTC end (POSIX seconds)"),
                   Arg("every_nth", U16, range=(1, 10000), doc="keep every Nth sample of each packet"),
                   Arg("channels", STRING(120), doc="comma-separated channels to keep ('' all)")],
             doc="Downlink recorded records stamped within a UTC range.")
    def request_time(self, kind: int, utc_from: float, utc_to: float, every_nth: int, channels: str) -> None:
        selection = self._selection(kind, 0, self.ctx.records.next_seq, every_nth, channels, utc_from, utc_to)
        self.submit(selection, f"UTC {utc_from:.0f}-{utc_to:.0f}")

    @command(doc="Drop every waiting playback request and stop the running one.")
    def cancel(self) -> None:
        count = len(self._requests) + (self._running is not None)
        self._requests.clear()
        self._cancel = self._running is not None
        self.cancelled.emit(requests=count)

    # -- service ----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            while not self._requests:
                self._wake.clear()
                await self._wake.wait()
            request = self._requests.popleft()
            self._running, self._cancel = request, False
            try:
                await self._play(request)
            finally:
                self._running = None

    async def _play(self, request: _Request) -> None:
        sel = request.selection
        self.started.emit(label=request.label)
        records = packets = 0
        position = sel.first
        while position <= sel.last and not self._cancel:
            chunk = await self.ctx.workers.run_io(STORAGE_RESOURCE, self._read_chunk, sel, position)
            if chunk is None:
                break
            position, picked, user_datas = chunk
            for user_data in user_datas:
                await self._room()
                if self._cancel:
                    break
                if self.link.downlink(Priority.STORED, Apid.STORED, user_data):
                    packets += 1
                    self.stats.inc("packets_queued")
                    self.stats.inc("bytes_queued", len(user_data))
            records += picked
            self.stats.inc("records_sent", picked)
            self.cursor.set(min(position - 1, U32_MAX))
            if request.auto:
                self.ctx.state.set(STATE_AUTO_CURSOR, position)
        if request.auto:
            self.ctx.state.set(STATE_AUTO_CURSOR, max(position, int(self.ctx.state.get(STATE_AUTO_CURSOR, 0))))
            await self.ctx.state.save()
        if self._cancel:
            return  # told by playback.cancelled
        self.stats.inc("requests_done")
        self.finished.emit(label=request.label, records=records, packets=packets)

    def _read_chunk(self, sel: stored.Selection, position: int) -> tuple[int, int, list[bytes]] | None:
        """On the storage worker: read, select and pack the next chunk of records (None: no more)."""
        records_log = self.ctx.records
        chunk = records_log.read_numbered(position, sel.last, CHUNK_RECORDS)
        if not chunk:
            return None
        picked = [r for n, kind, value in chunk if (r := sel.pick(n, kind, value)) is not None]
        packed = list(stored.pack(records_log.next_seq, picked, self.max_user))
        return chunk[-1][0] + 1, len(picked), packed

    async def _room(self) -> None:
        scheduler = self.link.scheduler
        while scheduler.depth(Priority.STORED) >= QUEUE_TARGET and not self._cancel:
            await scheduler.wait_progress()

    def publish(self) -> None:
        self.stats.publish()
        self.head_seq.set(min(self.ctx.records.next_seq, U32_MAX))
        self.pending.set(min(len(self._requests) + (self._running is not None), 0xFFFF))
        self.auto_cursor.set(min(int(self.ctx.state.get(STATE_AUTO_CURSOR, 0)), U32_MAX))
