"""The F Prime GDS bridge: the ground station speaks to NASA's F Prime GDS as F Prime flight software does.

Why a bridge and not a GDS plugin: the uplink key and the counters shared by every ground process
stay in this ground station (:class:`flightsw.ground.station.GroundStation`); the GDS only ever
sees clear telemetry and sends unsigned F Prime commands, which the station validates, signs and
sends with its usual retries.

Wire (fprime-gds 4.x with ``--communication-selection ip --framing-selection fprime``): the GDS
listens on TCP; the bridge connects as the flight software would. Frames are ``0xDEADBEEF``, a
U32 length, the packet and a CRC-32 of all that; the GDS also writes a raw keep-alive string,
skipped here. Packets start with a U16 type (0 command, 1 telemetry, 2 event); ids are U32; a time
tag is U16 time base, U8 context, U32 seconds, U32 microseconds; all big-endian.

Time tags: a stamp with spacecraft UTC goes as ``TB_SC_TIME`` (Unix seconds, the GDS shows a
date); one without as ``TB_PROC_TIME`` (seconds since boot); the context is the boot count's low
byte. The bridge's own events (verdicts it could not get, refusals) carry ``TB_WORKSTATION_TIME``.
Played-back records (stored telemetry and events the satellite sends again on request) go to the
GDS like live ones, with the time tags they were recorded with, not the time they came down.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import msgpack
import msgspec

from flightsw.core.clock import Stamp
from flightsw.ground.decoder import (
    Beacon,
    CommandResult,
    EventItem,
    GroundDecoder,
    Item,
    PacketDecodeError,
    StoredPacket,
    Telemetry,
)
from flightsw.ground.dictionary import CommandArgumentError
from flightsw.ground.files import Download, GroundFiles
from flightsw.ground.fprime_dict import (
    COMPLETION_EVENT,
    VERDICT_EVENT,
    FpCommand,
    FprimeDictionary,
    wire_type,
)
from flightsw.ground.station import CounterExhausted, GroundStation
from flightsw.link.stored import RecordCode

log = logging.getLogger("flightsw.ground.gds")

START_TOKEN = 0xDEADBEEF
HEADER = struct.Struct(">II")
MAX_PACKET = 4096  # the GDS's own limit for one framed packet
PENDING_COMPLETION = 255  # ground.CommandCompletion value for a verdict without completion


class PacketType(enum.IntEnum):
    """F Prime's packet descriptor (ComCfg.Apid)."""

    COMMAND = 0
    TELEM = 1
    LOG = 2
    FILE = 3
    PACKETIZED_TLM = 4
    IDLE = 5
    HAND = 0xFE


class TimeBase(enum.IntEnum):
    NONE = 0
    PROC_TIME = 1
    WORKSTATION_TIME = 2
    SC_TIME = 3


class LinkState(enum.Enum):
    """The bridge's connection to the GDS."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


class FilePacketType(enum.IntEnum):
    """F Prime's file packets (Svc.FileDownlink / FileUplink)."""

    START = 0
    DATA = 1
    END = 2
    CANCEL = 3


FILE_CHUNK = 1024  # data bytes per F Prime file packet (frames stay well under MAX_PACKET)
MAX_FILE_BYTES = 64 << 20  # larger downloads are not handed to the GDS, larger uploads not taken
MAX_BUFFERED = 4 << 20  # bytes queued for a GDS that does not read before packets are dropped
UPLOAD_REPORT_LIMIT = 3600.0  # seconds the bridge waits for an upload's final outcome to report it


def _stage(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def cfdp_checksum(data: bytes) -> int:
    """The END packet's checksum: the CFDP modular checksum (big-endian words, zero-padded)."""
    padded = data + b"\x00" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


def _path_field(text: str) -> bytes:
    data = text.encode()[:255]
    return bytes([len(data)]) + data


def file_packets(source: str, dest: str, data: bytes) -> list[bytes]:
    """A whole file as F Prime's downlink sends it: START, DATA chunks, END (type 3 packets)."""
    head = struct.pack(">H", PacketType.FILE)
    packets = [head + struct.pack(">BII", FilePacketType.START, 0, len(data)) + _path_field(source) + _path_field(dest)]
    seq = 1
    for offset in range(0, len(data), FILE_CHUNK):
        chunk = data[offset: offset + FILE_CHUNK]
        packets.append(head + struct.pack(">BIIH", FilePacketType.DATA, seq, offset, len(chunk)) + chunk)
        seq += 1
    packets.append(head + struct.pack(">BII", FilePacketType.END, seq, cfdp_checksum(data)))
    return packets


class GdsPacketError(ValueError):
    """An uplinked F Prime packet the bridge cannot turn into a command (the message says why)."""


@dataclass(frozen=True)
class UplinkedFile:
    """A whole file the GDS sent (its uplink): the destination it named, and the bytes."""

    dest: str
    data: bytes


class UplinkAssembler:
    """F Prime file packets from the GDS's uplink to whole files (one at a time, as it sends them)."""

    def __init__(self) -> None:
        self._dest: str | None = None
        self._size = 0
        self._data = bytearray()

    def feed(self, packet: bytes) -> UplinkedFile | None:
        """Take one type-3 packet; the file once its END arrived and checks; GdsPacketError if not."""
        try:
            kind, _seq = struct.unpack_from(">BI", packet, 2)
            if kind == FilePacketType.START:
                size, src_len = struct.unpack_from(">IB", packet, 7)
                dest_at = 12 + src_len
                dest_len = packet[dest_at]
                self._dest = packet[dest_at + 1: dest_at + 1 + dest_len].decode()
                if size > MAX_FILE_BYTES:
                    self._dest = None
                    raise GdsPacketError(f"file of {size} bytes is larger than {MAX_FILE_BYTES >> 20} MiB")
                self._size, self._data = size, bytearray()
                return None
            if kind == FilePacketType.CANCEL:
                self._dest = None
                return None
            if self._dest is None:
                raise GdsPacketError("file packet without its START")
            if kind == FilePacketType.DATA:
                offset, length = struct.unpack_from(">IH", packet, 7)
                chunk = packet[13: 13 + length]
                if len(chunk) != length or offset + length > self._size:
                    raise GdsPacketError(f"data at {offset}+{length} does not fit a {self._size}-byte file")
                self._data[len(self._data):offset] = bytes(max(0, offset - len(self._data)))
                self._data[offset: offset + length] = chunk
                return None
            if kind == FilePacketType.END:
                (checksum,) = struct.unpack_from(">I", packet, 7)
                dest, data = self._dest, bytes(self._data)
                self._dest = None
                if len(data) != self._size or cfdp_checksum(data) != checksum:
                    raise GdsPacketError(f"{dest}: {len(data)} of {self._size} bytes, checksum "
                                         f"{'matches' if cfdp_checksum(data) == checksum else 'differs'}")
                return UplinkedFile(dest, data)
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            self._dest = None
            raise GdsPacketError(f"malformed file packet ({exc})") from None
        raise GdsPacketError(f"file packet type {kind} unknown")


def frame(packet: bytes) -> bytes:
    """One packet in F Prime's framing (start word, length, packet, CRC-32 over all before it)."""
    head = HEADER.pack(START_TOKEN, len(packet)) + packet
    return head + struct.pack(">I", zlib.crc32(head) & 0xFFFFFFFF)


class Deframer:
    """Packets out of the GDS's byte stream; keep-alive strings and broken frames are skipped."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        packets: list[bytes] = []
        buf = self._buffer
        while True:
            start = buf.find(b"\xde\xad\xbe\xef")
            if start < 0:
                keep = min(len(buf), 3)  # a start word may be split across reads
                self.discarded += len(buf) - keep
                del buf[: len(buf) - keep]
                return packets
            if start:
                self.discarded += start
                del buf[:start]
            if len(buf) < HEADER.size:
                return packets
            _, length = HEADER.unpack_from(buf)
            if length >= MAX_PACKET:
                self.discarded += 1
                del buf[:1]
                continue
            total = HEADER.size + length + 4
            if len(buf) < total:
                return packets
            (crc,) = struct.unpack_from(">I", buf, HEADER.size + length)
            if crc != zlib.crc32(bytes(buf[: HEADER.size + length])) & 0xFFFFFFFF:
                self.discarded += 1
                del buf[:1]
                continue
            packets.append(bytes(buf[HEADER.size: HEADER.size + length]))
            del buf[:total]


def time_tag(stamp: Stamp | None, now: float) -> bytes:
    """F Prime's time tag for a flight stamp (None: the ground's clock)."""
    if stamp is None:
        base, context, seconds = TimeBase.WORKSTATION_TIME, 0, now
    elif stamp.utc is not None:
        base, context, seconds = TimeBase.SC_TIME, stamp.boot & 0xFF, stamp.utc
    else:
        base, context, seconds = TimeBase.PROC_TIME, stamp.boot & 0xFF, stamp.seconds
    seconds = max(seconds, 0.0)
    whole = int(seconds)
    return struct.pack(">HBII", int(base), context, whole & 0xFFFFFFFF, int((seconds - whole) * 1e6) % 1_000_000)


@dataclass
class BridgeStats:
    channels_sent: int = 0
    events_sent: int = 0
    values_skipped: int = 0  # not in the F Prime dictionary, or not encodable (None, out of an enum)
    commands_received: int = 0
    commands_refused: int = 0
    dropped_offline: int = 0  # packets produced while no GDS was connected
    files_sent: int = 0
    files_skipped: int = 0  # unreadable or larger than MAX_FILE_BYTES
    records_forwarded: int = 0  # played-back records sent to the GDS
    records_skipped: int = 0  # played-back records that do not decode against the flight dictionary


class GdsEncoder:
    """Decoded ground items to F Prime packets, by the F Prime dictionary's ids and types."""

    def __init__(self, fdict: FprimeDictionary, stats: BridgeStats, wall_clock: Callable[[], float] = time.time,
                 decoder: GroundDecoder | None = None) -> None:
        self.fdict = fdict
        self.stats = stats
        self.wall_clock = wall_clock
        self.decoder = decoder  # decodes played-back records (None: they are not forwarded)

    def channel(self, name: str, value: Any, stamp: Stamp | None) -> bytes | None:
        info = self.fdict.channels.get(name)
        if info is None or value is None:
            self.stats.values_skipped += 1
            return None
        try:
            body = info.type.encode(value)
        except (struct.error, ValueError, TypeError):
            self.stats.values_skipped += 1
            return None
        self.stats.channels_sent += 1
        return struct.pack(">HI", PacketType.TELEM, info.id) + time_tag(stamp, self.wall_clock()) + body

    def event(self, name: str, values: list[Any], stamp: Stamp | None) -> bytes | None:
        info = self.fdict.events.get(name)
        if info is None:
            self.stats.values_skipped += 1
            return None
        types = self.fdict.event_arg_types(name)
        try:
            body = b"".join(wire.encode(value) for (_, wire), value in zip(types, values, strict=True))
        except (struct.error, ValueError, TypeError):
            self.stats.values_skipped += 1
            return None
        self.stats.events_sent += 1
        return struct.pack(">HI", PacketType.LOG, info.id) + time_tag(stamp, self.wall_clock()) + body

    def flight_event(self, item: EventItem) -> bytes | None:
        info = self.fdict.events.get(item.name)
        if info is None:
            self.stats.values_skipped += 1
            return None
        return self.event(item.name, [f.render(item.args.get(f.name, "")) for f in info.fields], item.stamp)

    def packets(self, item: Item) -> list[bytes]:
        """The F Prime packets one decoded downlink item becomes (file PDUs: none; played-back
        records: their channels and events, with the time tags they were recorded with)."""
        out: list[bytes | None] = []
        match item:
            case Telemetry(stamp=stamp, values=values):
                out = [self.channel(name, value, stamp) for name, value in values.items()]
            case Beacon(stamp=stamp, values=values):
                out = [self.channel(f"beacon.{name}", value, stamp) for name, value in values.items()
                       if f"beacon.{name}" in self.fdict.channels]
            case EventItem():
                out = [self.flight_event(item)]
            case CommandResult():
                if item.completion is None:
                    out = [self.event(VERDICT_EVENT, [item.name, item.seq, int(item.reason.value), item.detail], None)]
                else:
                    out = [self.event(COMPLETION_EVENT, [item.name, item.seq, int(item.completion.value), item.detail],
                                      None)]
            case StoredPacket(records=records) if self.decoder is not None:
                for _number, code, value in records:
                    record = self.played_back(code, value)
                    if record is None:
                        self.stats.records_skipped += 1
                        continue
                    self.stats.records_forwarded += 1
                    out.extend(self.packets(record))
        return [p for p in out if p is not None]

    def played_back(self, code: RecordCode, value: Any) -> Telemetry | EventItem | None:
        """One played-back record as the live item it was recorded from (a channel subset: only
        its channels); None when it does not decode against the flight dictionary."""
        if self.decoder is None:
            return None
        try:
            if code == RecordCode.TELEMETRY:
                return self.decoder.housekeeping(bytes(value))
            if code == RecordCode.EVENT:
                return self.decoder.event(msgpack.packb(value, use_bin_type=True))
            if code == RecordCode.TELEMETRY_SUBSET:
                pid, boot, seconds, utc, mask, values = value
                entry = self.decoder.dictionary.packets.get(int(pid))
                if entry is None:
                    return None
                name, channels = entry
                kept = [channel for i, channel in enumerate(channels) if int(mask) >> i & 1]
                if len(kept) != len(values):
                    return None
                return Telemetry(name, Stamp(int(boot), float(seconds), utc), dict(zip(kept, values, strict=True)))
        except (PacketDecodeError, msgspec.MsgspecError, ValueError, TypeError):
            return None
        return None


def decode_command(fdict: FprimeDictionary, packet: bytes) -> tuple[FpCommand, dict[str, str]]:
    """An F Prime command packet as (command, ``ARG=VALUE`` texts the station validates and signs)."""
    if len(packet) < 6:
        raise GdsPacketError(f"command packet of {len(packet)} bytes is too short")
    kind, opcode = struct.unpack_from(">HI", packet)
    if kind != PacketType.COMMAND:
        raise GdsPacketError(f"packet type {kind} is not a command")
    command = fdict.commands.get(opcode)
    if command is None:
        raise GdsPacketError(f"opcode 0x{opcode:08x} is not in the dictionary")
    offset = 6
    texts: dict[str, str] = {}
    for name, flight_type in command.args:
        wire = wire_type(flight_type)
        try:
            value, offset = wire.decode(packet, offset)
        except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise GdsPacketError(f"{command.name}: argument {name} does not decode ({exc})") from None
        texts[name] = _as_text(value)
    if offset != len(packet):
        raise GdsPacketError(f"{command.name}: {len(packet) - offset} bytes after the last argument")
    return command, texts


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.9g}"  # an F32 argument back to the text it was typed as
    return str(value)


class GdsBridge:
    """Connects the ground station to a running GDS: downlink items out, GDS commands in."""

    def __init__(self, station: GroundStation, fdict: FprimeDictionary, host: str, port: int, *,
                 command_timeout: float = 10.0, retries: int = 2, reconnect_delay: float = 1.0) -> None:
        self.station = station
        self.fdict = fdict
        self.host, self.port = host, port
        self.command_timeout = command_timeout
        self.retries = retries
        self.reconnect_delay = reconnect_delay
        self.stats = BridgeStats()
        self.encoder = GdsEncoder(fdict, self.stats, station.wall_clock, station.decoder)
        self.state = LinkState.CONNECTING
        self.connected = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._commands: set[asyncio.Task[None]] = set()
        self._files: asyncio.Queue[Download] = asyncio.Queue()
        self._ground_files: GroundFiles | None = None
        self._assembler = UplinkAssembler()
        self._uploads: asyncio.Queue[UplinkedFile] = asyncio.Queue()
        station.item_listeners.append(self.on_item)

    def attach_files(self, files: GroundFiles) -> None:
        """Hand each verified CFDP download to the GDS too (its downlink file list), and send the
        files the GDS uplinks to the satellite by CFDP."""
        self._ground_files = files
        files.download_listeners.append(self._files.put_nowait)

    # -- downlink ------------------------------------------------------------------------------
    def on_item(self, item: Item) -> None:
        """Called by the station on the loop for every decoded item; writes without waiting
        (the socket buffers up to MAX_BUFFERED bytes; past that, packets are dropped and counted)."""
        for packet in self.encoder.packets(item):
            self._send(packet)

    def _send(self, packet: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing() or writer.transport.get_write_buffer_size() > MAX_BUFFERED:
            self.stats.dropped_offline += 1  # no GDS, or one that stopped reading
            return
        writer.write(frame(packet))

    async def _send_files(self) -> None:
        """One download at a time, read off the loop, sent as F Prime file packets."""
        while True:
            download = await self._files.get()
            if not self.connected.is_set():
                self.stats.dropped_offline += 1
                continue
            try:
                if download.path.stat().st_size > MAX_FILE_BYTES:
                    raise ValueError(f"larger than {MAX_FILE_BYTES >> 20} MiB")
                data = await asyncio.to_thread(download.path.read_bytes)
            except (OSError, ValueError) as exc:
                self.stats.files_skipped += 1
                log.warning("download %s not sent to the GDS: %s", download.path, exc)
                continue
            for packet in file_packets(download.name, download.path.name, data):
                self._send(packet)
            self.stats.files_sent += 1
            writer = self._writer
            if writer is not None:
                try:
                    await writer.drain()
                except ConnectionError:
                    pass

    # -- uplink --------------------------------------------------------------------------------
    def on_packet(self, packet: bytes) -> None:
        kind = struct.unpack_from(">H", packet)[0] if len(packet) >= 2 else None
        if kind == PacketType.FILE:
            self._on_file_packet(packet)
            return
        if kind != PacketType.COMMAND:
            return  # idle and others: nothing to do
        self.stats.commands_received += 1
        try:
            command, texts = decode_command(self.fdict, packet)
        except GdsPacketError as exc:
            self._refused("?", str(exc))
            return
        task = asyncio.get_running_loop().create_task(self._command(command, texts))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def _command(self, command: FpCommand, texts: dict[str, str]) -> None:
        sent: list[int] = []
        try:
            response = await self.station.command(command.name, texts, timeout=self.command_timeout,
                                                  retries=self.retries, on_sent=sent.append)
        except (CommandArgumentError, CounterExhausted) as exc:
            self._refused(command.name, str(exc))
            return
        if response is None:
            self._event("ground.command_unanswered", [command.name, sent[-1] if sent else 0])

    def _on_file_packet(self, packet: bytes) -> None:
        try:
            uplinked = self._assembler.feed(packet)
        except GdsPacketError as exc:
            self._event("ground.file_uplink_failed", ["?", str(exc)])
            return
        if uplinked is None:
            return
        if self._ground_files is None:
            self._event("ground.file_uplink_failed", [uplinked.dest, "this mission has no [filetransfer]"])
            return
        self._uploads.put_nowait(uplinked)

    async def _upload_files(self) -> None:
        """Stage each file the GDS uplinked and queue it for the satellite (CFDP, the station's
        signed file PDUs); report queueing and the final outcome as ground events."""
        while True:
            uplinked = await self._uploads.get()
            files = self._ground_files
            assert files is not None
            name = PurePosixPath(uplinked.dest).name or "upload"
            stage = files.config.work_dir / "gds_uplink"
            path = stage / f"{time.time_ns()}_{name}"  # unique: an earlier upload may still read its own
            try:
                await asyncio.to_thread(_stage, path, uplinked.data)
                transfer = await files.upload(path, name)
            except (OSError, ValueError) as exc:
                self._event("ground.file_uplink_failed", [name, str(exc)])
                continue
            self._event("ground.file_uplink_queued", [name, transfer])
            task = asyncio.create_task(self._report_upload(files, name, transfer))
            self._commands.add(task)
            task.add_done_callback(self._commands.discard)

    async def _report_upload(self, files: GroundFiles, name: str, transfer: int) -> None:
        outcome = await files.wait_upload(transfer, UPLOAD_REPORT_LIMIT)
        condition = "still running" if outcome is None else ("SUCCESS" if outcome.success else outcome.condition)
        self._event("ground.file_uplink_done", [name, transfer, condition])

    def _event(self, name: str, values: list[Any]) -> None:
        packet = self.encoder.event(name, values, None)
        if packet is not None:
            self._send(packet)

    def _refused(self, name: str, detail: str) -> None:
        self.stats.commands_refused += 1
        log.warning("GDS command %s refused: %s", name, detail)
        self._event("ground.command_refused", [name, detail])

    # -- connection ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect (again after a loss) and read the GDS's uplink until cancelled."""
        sender = asyncio.create_task(self._send_files(), name="gds-files")
        uploader = asyncio.create_task(self._upload_files(), name="gds-uploads")
        try:
            while True:
                try:
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                except OSError:
                    await asyncio.sleep(self.reconnect_delay)
                    continue
                self._writer = writer
                self.state = LinkState.CONNECTED
                self.connected.set()
                log.info("connected to the F Prime GDS at %s:%d", self.host, self.port)
                deframer = Deframer()
                try:
                    while data := await reader.read(4096):
                        for packet in deframer.feed(data):
                            self.on_packet(packet)
                except ConnectionError:
                    pass
                finally:
                    self.connected.clear()
                    self.state = LinkState.CONNECTING
                    self._writer = None
                    writer.close()
                log.warning("F Prime GDS at %s:%d closed the connection; reconnecting", self.host, self.port)
        finally:
            self.state = LinkState.CLOSED
            sender.cancel()
            uploader.cancel()
            for task in list(self._commands):
                task.cancel()
