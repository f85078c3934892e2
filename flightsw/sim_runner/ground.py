"""The ground side of a scenario run: a KISS TCP client of the simulated transceiver and the
ground's CFDP entity.

Why apart: it is the ground station's half of the link, and knows nothing of reboots, the
World or the report; the runner only reads its counters."""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgpack

from flightsw.filetransfer import CfdpEntity, EntityConfig, ReceivedFile
from flightsw.ground.archive import Archive
from flightsw.ground.decoder import (
    Beacon,
    CommandResult,
    DecodeError,
    FilePdu,
    ForeignFrame,
    GroundDecoder,
)
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.files import ground_entity_config
from flightsw.ground.records import REQUEST_COMMAND, RecordIngest, gap_requests
from flightsw.link import ax25, stored
from flightsw.link.packets import Apid, Packet
from flightsw.link.scheduler import stuffed_bits
from flightsw.link.stored import PACKET_OVERHEAD
from hal import kiss
from sim.transceiver import (
    CountingStreamReader,
    bytes_sent_to_kernel,
    readable_bytes,
    socket_fd,
)

COMMAND_GAP_S = 900.0  # the ground sends at most one no-op per this many seconds (one per pass)...
COMMAND_RETRY_S = 60.0  # ... unless no verdict came back: then it tries again after this long, as operators do
NOOP_COMMAND = "exec.NO_OP"
PLAYBACK_COMMAND = REQUEST_COMMAND
TAIL_END = 0xFFFFFFFF  # "up to the newest record", whatever its number
MAX_RECORDS_PER_PASS = 3000  # about what one pass's playback carries: asked for at most
PASS_GAP_S = 600.0  # a beacon after this long without one starts a new pass
REQUEST_SPACING_S = 30.0  # the ground's playback requests go at most this often
SELECT_KEY_COMMAND = "link.SELECT_KEY"
# The operators' loss-of-contact procedure: after this many commands in a row without a verdict
# and without the beacon's uplink counter reaching them (while beacons come down), assume the
# satellite fell back to its safe defaults and sign with the default key (the lowest id of the key
# file); after as many misses on the default key, go back to the previous key (alternate).
FALLBACK_AFTER_MISSES = 3
IMAGE_FILE = re.compile(r"img(\d+)_(thumbnail|full)\.jpe?g")  # imaging's downlink names


def _holes(archive: Archive, tail: bool = False) -> list[tuple[int, int]]:
    """Gaps below the newest numbered record in the archive, and with ``tail`` everything after
    it too (runs on the archive thread)."""
    row = archive.db.execute("SELECT MAX(seq) FROM records").fetchone()
    newest = row[0]
    holes = [] if newest is None else [(a, b) for a, b in archive.record_gaps(0) if b < newest]
    if tail:
        holes.append((0 if newest is None else newest + 1, TAIL_END))
    return holes


class GroundFileReceiver:
    """The ground's CFDP entity: receives the files the satellite downlinks, and notes them.

    Why a real entity: class 2 transfers end only when the receiver acknowledges them, so a
    file counts as downlinked exactly when it arrived whole and checked at the ground. Received
    files are not kept (the run only needs their names and sizes), so a long run stays bounded
    on disk.
    """

    def __init__(self, flight_config: EntityConfig, work_dir: Path, send: Callable[[bytes], Awaitable[None]],
                 epoch_now: Callable[[], float]) -> None:
        self.entity = CfdpEntity(ground_entity_config(flight_config, work_dir), self,
                                 on_file_received=self._on_file_received)
        self._send = send
        self.epoch_now = epoch_now
        self.files: list[tuple[float, str, int]] = []  # (simulated UTC, name, size)
        self.pdus_received = 0
        self._discard: asyncio.Queue[Path] = asyncio.Queue()

    @property
    def images(self) -> set[int]:
        """Ids of the images whose thumbnail or full file reached the ground."""
        return {int(m.group(1)) for _, name, _ in self.files if (m := IMAGE_FILE.fullmatch(name))}

    async def send_pdu(self, pdu: bytes) -> None:
        await self._send(pdu)

    def on_packet(self, packet: Packet) -> None:
        self.pdus_received += 1
        self.entity.receive_pdu(packet.user_data)

    def _on_file_received(self, received: ReceivedFile) -> None:
        self.files.append((self.epoch_now(), received.name, received.size))
        self._discard.put_nowait(received.path)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._discard_loop())
            await self.entity.run()

    async def _discard_loop(self) -> None:
        while True:
            path = await self._discard.get()
            await asyncio.to_thread(path.unlink, missing_ok=True)


class GroundMonitor:
    """The ground side of the run: a KISS TCP client of the simulated transceiver.

    Counts what actually reaches the ground (frames, bytes, beacons with their simulated arrival
    time, verdicts, files), sends the scenario's timed commands in the first contact after their
    time and, once per pass after the first beacon, an authenticated no-op (again a minute later
    while no verdict has come back: near the horizon a frame is often lost), so the uplink is
    exercised through the same channel. It signs with the key it last selected (``link.SELECT_KEY``,
    each key with its own counter) and falls back to the default key after
    ``FALLBACK_AFTER_MISSES`` unanswered commands, as the loss-of-contact procedure says. A command
    whose counter a later beacon's ``uplink_counter`` reached counts as received (on a lossy link
    the verdict is often what was lost), and a default key that gets no answer either sends it
    back to the previous key: a lossy link must not strand it on a key the satellite refuses.
    """

    def __init__(self, transceiver: Any, satellite: ax25.Address, dictionary: GroundDictionary, ground: ax25.Address,
                 epoch_now: Callable[[], float], sign: Callable[[int, int, bytes, int], bytes] | None,
                 noop: bytes | None = None, scheduled: Sequence[tuple[float, str, bytes]] = (),
                 bit_rate: float = 9600.0, default_key: int = 0) -> None:
        self.transceiver = transceiver
        self.satellite = satellite
        self.decoder = GroundDecoder(dictionary, satellite)  # the ground station's decoder
        self.ground = ground
        self.epoch_now = epoch_now
        self.sign = sign  # (key id, counter, body, apid) -> complete telecommand packet
        self.default_key = default_key
        self.key_id = default_key  # the key the ground signs commands with now
        self.key_fallbacks = 0  # times the ground went back to the default key (no answer)
        self.key_returns = 0  # times it went from the default key back to the previous one (no answer either)
        self.received_by_beacon = 0  # commands without a verdict that the beacon's uplink counter showed taken
        self._previous_key: int | None = None  # the key it fell back from, until the default key is answered
        self._last_counter = 0  # counter of the last command (of self._last_key)
        self._received = False  # the beacon's uplink counter reached the last command's counter
        self.verdict_times: list[float] = []
        self._misses = 0  # commands in a row without a verdict
        self._pending_key: int | None = None  # selected by the last command, in use once answered
        self._last_key = default_key  # the key the last command was signed with
        self._unanswered: tuple[str, bytes] | None = None  # a link.SELECT_KEY, until answered
        self._counters: dict[int, int] = {}  # key id -> last counter used
        self.noop = noop  # body of the per-pass no-op
        self.scheduled = collections.deque(sorted(scheduled, key=lambda c: c[0]))  # (epoch due, name, body); file order kept
        self.bit_rate = bit_rate
        self.files: GroundFileReceiver | None = None
        # Store and forward: the archive of live and played-back records, and the per-pass gap
        # requests (body of playback.REQUEST for (first, last)); None without [ground] playback.
        self.records: RecordIngest | None = None
        self.request_body: Callable[[str], bytes] | None = None
        self.requests_per_pass = 0
        self.request_tail = False  # also ask for what is newer than the archive (no automatic playback)
        self.playback_requests_sent = 0
        self.bytes_by_apid: collections.Counter[int] = collections.Counter()  # whole packets
        self.stored_arrivals: list[tuple[float, int]] = []  # (simulated UTC, stored user-data bytes)
        self._last_beacon = -float("inf")
        self._requests_left = 0
        self._pending_requests: collections.deque[str] = collections.deque()
        self._asked_up_to = -1  # highest record number asked for in this pass
        self.frames = 0
        self.frames_foreign = 0
        self.frames_bad = 0
        self.bytes_down = 0
        self.beacon_times: list[float] = []
        self.frame_times: list[float] = []
        self.verdicts = 0
        self.commands_sent = 0
        self.commands_log: list[tuple[float, str]] = []  # (simulated UTC, command) sent
        self.bytes_read = 0  # raw KISS bytes from the socket
        self.bytes_written = 0
        self._file_counter = 0
        self._last_command = -float("inf")
        self._verdicts_at_command = 0
        self._writer: asyncio.StreamWriter | None = None
        self._reader: CountingStreamReader | None = None
        self._tx_lock = asyncio.Lock()
        # byte counts of connections that ended (for bytes_sent_to_kernel / bytes_arrived)
        self._written_before = 0
        self._kernel_sent_before = 0
        self._arrived_before = 0

    def bytes_sent_to_kernel(self) -> int:
        """Bytes sent towards the transceiver that left this side's buffers (all connections)."""
        writer = self._writer
        live = bytes_sent_to_kernel(writer, self.bytes_written - self._written_before) if writer is not None else 0
        return self._kernel_sent_before + live

    def bytes_arrived(self) -> int:
        """Bytes from the transceiver taken out of the kernel or readable there now (all connections)."""
        reader, writer = self._reader, self._writer
        live = reader.bytes_received + readable_bytes(socket_fd(writer)) if reader is not None and writer is not None else 0
        return self._arrived_before + live

    async def run(self) -> None:
        """Service: connect once the transceiver listens, then receive forever."""
        while not self.transceiver.listening:  # noqa: ASYNC110 (the transceiver has no ready event; virtual time makes the wait free)
            await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        reader = CountingStreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.create_connection(lambda: protocol, "127.0.0.1", self.transceiver.bound_port)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        self._reader, self._writer = reader, writer
        try:
            async with asyncio.TaskGroup() as group:
                if self.files is not None:
                    group.create_task(self.files.run())
                await self._receive(reader)
                raise ConnectionError("the simulated transceiver closed the ground connection")
        finally:
            self._kernel_sent_before += bytes_sent_to_kernel(writer, self.bytes_written - self._written_before)
            self._written_before = self.bytes_written
            self._arrived_before += reader.bytes_received
            self._reader = self._writer = None
            writer.close()

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        decoder = kiss.KissDecoder(max_frame=4096)
        while chunk := await reader.read(65536):
            self.bytes_read += len(chunk)
            for frame in decoder.feed(chunk):
                if frame.command == kiss.KissCommand.DATA:
                    await self.handle_frame(frame.payload)

    async def handle_frame(self, raw: bytes) -> None:
        now = self.epoch_now()
        try:
            frame = self.decoder.decode_frame(raw)
        except ForeignFrame:
            self.frames_foreign += 1
            return
        except DecodeError:
            self.frames_bad += 1
            return
        self.frames += 1
        self.bytes_down += len(raw)
        self.frame_times.append(now)
        for decoded in frame.packets:
            packet = decoded.packet
            self.bytes_by_apid[packet.apid] += len(packet.user_data) + PACKET_OVERHEAD
            if self.records is not None:
                self.records.on_packet(packet)
                if packet.apid == Apid.STORED:
                    self.stored_arrivals.append((now, len(packet.user_data)))
            match decoded.item:
                case Beacon():
                    await self.on_beacon(now, decoded.item.values.get("uplink_counter"))
                case CommandResult():
                    self.on_verdict(now)
                case FilePdu() if self.files is not None:
                    self.files.on_packet(packet)

    async def on_beacon(self, now: float, uplink_counter: int | None) -> None:
        """A beacon: note a new pass and what the uplink counter says, then maybe command."""
        if now - self._last_beacon > PASS_GAP_S:
            self._requests_left = self.requests_per_pass  # a new pass
            self._pending_requests.clear()
            self._asked_up_to = -1
        self._last_beacon = now
        self.beacon_times.append(now)
        self._note_uplink_counter(uplink_counter)
        await self._maybe_command(now)

    def on_verdict(self, now: float) -> None:
        """A command's verdict came down: the last command (and any key selection) went through."""
        self.verdicts += 1
        self.verdict_times.append(now)
        self._unanswered = None
        if self._pending_key is not None:  # link.SELECT_KEY went through (signed with either key)
            self.key_id, self._pending_key = self._pending_key, None
        self._note_key_works()

    def _note_uplink_counter(self, uplink_counter: int | None) -> None:
        """The satellite took the last command if its accepted counter reached that command's and
        is not beyond what the ground sent with this key (then it is another key's counter). Not for
        a key selection: once taken, the beacon shows the new key's counter."""
        if (uplink_counter is None or self._received or self._last_counter == 0 or self._pending_key is not None
                or self._last_key != self.key_id):
            return
        if self._last_counter <= uplink_counter <= self._counters.get(self._last_key, 0):
            self._received = True
            if self.verdicts == self._verdicts_at_command:
                self.received_by_beacon += 1
            self._note_key_works()

    def _note_key_works(self) -> None:
        """Evidence the satellite takes the current key: on the default key, stop alternating."""
        if self._last_key == self.default_key and self.key_id == self.default_key:
            self._previous_key = None

    async def _maybe_command(self, now: float) -> None:
        """On a beacon (the satellite is in contact): a due scenario command, else the pass's no-op."""
        if self.sign is None or self._writer is None:
            return
        since = now - self._last_command
        unanswered = self.verdicts == self._verdicts_at_command and not self._received
        key = self.key_id
        if self._unanswered is not None and unanswered and since >= COMMAND_RETRY_S:
            name, body = self._unanswered
            if self._last_key == self.key_id:
                key = int(msgpack.unpackb(body)[1][0])  # it may have gone through, only its answer lost
        elif self.scheduled and self.scheduled[0][0] <= now:
            _, name, body = self.scheduled.popleft()
        elif self.noop is not None and (since >= COMMAND_GAP_S or (unanswered and since >= COMMAND_RETRY_S)):
            name, body = NOOP_COMMAND, self.noop
        elif since >= REQUEST_SPACING_S and (request := await self._next_request()) is not None:
            name, body = request
            self.playback_requests_sent += 1
        else:
            return
        if self.commands_sent and unanswered:
            self._misses += 1
        else:
            self._misses = 0
        if self._misses >= FALLBACK_AFTER_MISSES and (self.key_id != self.default_key or self._previous_key is not None):
            if self.key_id != self.default_key:
                self._previous_key = self.key_id
                self.key_id = key = self.default_key
                self.key_fallbacks += 1
            elif self._previous_key is not None:  # the default key is not answered either
                self.key_id = key = self._previous_key
                self._previous_key = None
                self.key_returns += 1
            self._misses = 0
            self._unanswered = None
        self._verdicts_at_command = self.verdicts
        self._received = False
        self._last_command = now
        self._last_key = key
        counter = self._counters.get(key, 0) + 1
        self._counters[key] = counter
        self._last_counter = counter
        await self._transmit(self.sign(key, counter, body, Apid.COMMAND))
        self.commands_sent += 1
        self.commands_log.append((now, name))
        # a key selection is sent again until answered: until then the ground cannot know the key
        self._unanswered = (name, body) if name == SELECT_KEY_COMMAND else None
        # the satellite uses the new key after this command: so does the ground, once it is answered
        self._pending_key = int(msgpack.unpackb(body)[1][0]) if name == SELECT_KEY_COMMAND else None

    async def _next_request(self) -> tuple[str, bytes] | None:
        """The next playback request of this pass: record numbers missing below the newest one
        the archive has (the satellite's automatic playback, in order, brings what is newer), not
        asked for already in this pass (what was asked may still be on its way)."""
        if self.records is None or self.request_body is None or self._requests_left <= 0:
            return None
        if not self._pending_requests:
            archive = self.records.archive
            holes = [(max(a, self._asked_up_to + 1), b) for a, b in await archive.call(_holes, archive, self.request_tail)
                     if b > self._asked_up_to]
            requests = gap_requests(holes, self._requests_left, MAX_RECORDS_PER_PASS)
            if not requests:
                return None
            self._asked_up_to = max(b for _a, b in stored.parse_ranges(",".join(requests)))
            self._pending_requests.extend(requests)
        ranges = self._pending_requests.popleft()
        self._requests_left -= 1
        return f"{PLAYBACK_COMMAND} {ranges}", self.request_body(ranges)

    async def send_file_pdu(self, pdu: bytes) -> None:
        """The ground entity's PDUs: signed like telecommands with their own counter, paced to the
        uplink's bit rate (the ground radio sends one frame at a time)."""
        if self.sign is None:
            raise RuntimeError("the ground cannot send file PDUs without the uplink key")
        self._file_counter += 1
        await self._transmit(self.sign(self.key_id, self._file_counter, pdu, Apid.FILE), pace=True)

    async def _transmit(self, packet: bytes, pace: bool = False) -> None:
        frame = ax25.UiFrame(self.satellite, self.ground, packet).encode()
        async with self._tx_lock:
            writer = self._writer
            if writer is None:
                return  # not connected: the frame is lost, as on air (CFDP repeats what matters)
            data = kiss.encode(frame)
            writer.write(data)
            self.bytes_written += len(data)
            await writer.drain()
            if pace:
                await asyncio.sleep(stuffed_bits(frame) / self.bit_rate)

