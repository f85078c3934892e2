"""The ground station engine: talks KISS to a TNC, decodes and archives, sends commands.

Why one engine for the CLI and the live view: both need the same decoding, archive and
command-counter bookkeeping; the views only render its state.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack

from flightsw.core.clock import Stamp
from flightsw.core.commands import Completion, Reason
from flightsw.ground.archive import Archive
from flightsw.ground.decoder import (
    Beacon,
    CommandResult,
    DecodeError,
    EventItem,
    FilePdu,
    ForeignFrame,
    GroundDecoder,
    Item,
    StoredPacket,
    Telemetry,
)
from flightsw.ground.dictionary import DictionaryCheck, GroundDictionary
from flightsw.ground.uplink import COMMAND_COUNTER_CHANNEL, CounterKind, UplinkCounters
from flightsw.link import ax25, beacon
from flightsw.link.auth import COUNTER_RESERVE, MAX_COUNTER, KeyRing, build_command
from flightsw.link.packets import Packet
from hal import kiss
from hal.serial_port import AsyncSerialPort

log = logging.getLogger("flightsw.ground")
BEACON_UNITS = {f.name: f.unit for f in beacon.FIELDS}


class KissTransport(Protocol):
    async def read(self) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...


class FileSide(Protocol):
    """The station's file-transfer side (flightsw.ground.files.GroundFiles), attached by itself."""

    def on_packet(self, packet: Packet) -> None:
        """Take one downlinked file PDU's packet (on the loop, cheap); ValueError if malformed."""

    def render_lines(self, colour: bool = True, max_transfers: int = 6) -> list[str]:
        """Transfer progress for the live view."""


class CounterExhausted(RuntimeError):
    """The key's uplink counter is at the end of its space; the message says how to recover."""


class TcpKiss:
    """KISS over TCP (direwolf, the simulated transceiver, most software TNCs)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def read(self) -> bytes:
        assert self._reader is not None
        data = await self._reader.read(4096)
        if not data:
            raise ConnectionError(f"TNC {self.host}:{self.port} closed the connection")
        return data

    async def write(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except ConnectionError:
                pass


class SerialKiss:
    """KISS over a serial TNC."""

    def __init__(self, device: str, baud: int) -> None:
        self.port = AsyncSerialPort(device, baud)

    async def connect(self) -> None:
        await self.port.open()

    async def read(self) -> bytes:
        return await self.port.read()

    async def write(self, data: bytes) -> None:
        await self.port.write(data)

    async def close(self) -> None:
        await self.port.close()


@dataclass
class ChannelValue:
    value: Any
    unit: str
    limit_state: str
    rx_time: float
    source: str


@dataclass
class Response:
    seq: int
    opcode: int
    name: str
    reason: Reason
    completion: Completion | None
    detail: str


@dataclass
class StationStats:
    frames_received: int = 0
    frames_foreign: int = 0
    frames_bad: int = 0
    frames_duplicate: int = 0  # already archived from another station's reception
    packets_bad: int = 0
    beacons: int = 0
    housekeeping: int = 0
    events: int = 0
    responses: int = 0
    commands_sent: int = 0
    seq_gaps: dict[int, int] = field(default_factory=dict)


async def wait_on_changes(changed: asyncio.Event, predicate: Callable[[], bool], limit: float,
                          recheck: float | None = None) -> bool:
    """Wait until ``predicate()`` holds, re-checking each time ``changed`` is set (and every
    ``recheck`` seconds for predicates that also depend on state nobody signals); False after ``limit`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), remaining if recheck is None else min(remaining, recheck))
        except TimeoutError:
            pass
    return True


class GroundStation:
    def __init__(self, dictionary: GroundDictionary, keys: KeyRing, key_id: int, *,
                 ground: ax25.Address, satellite: ax25.Address, archive: Archive,
                 transport: KissTransport, kiss_port: int = 0,
                 wall_clock: Callable[[], float] = time.time, site: str | None = None) -> None:
        self.dictionary = dictionary
        self.keys = keys
        self.key_id = key_id
        self.ground = ground
        self.satellite = satellite
        self.archive = archive
        self.transport = transport
        self.kiss_port = kiss_port
        self.wall_clock = wall_clock
        # The name this station's receptions carry in the archive (several stations, one archive).
        self.site = site if site is not None else str(ground)
        self.latest: dict[str, ChannelValue] = {}
        self.beacon: dict[str, Any] = {}
        self.beacon_time: float | None = None
        self.recent_events: collections.deque[tuple[float, str, str, str]] = collections.deque(maxlen=50)
        self.responses: dict[int, list[Response]] = {}
        self.stats = StationStats()
        self._last_seq: dict[int, int] = {}
        self._last_sent: bytes | None = None
        self._last_counter = 0
        self._changed = asyncio.Event()
        self._kiss = kiss.KissDecoder(max_frame=4096)
        self.decoder = GroundDecoder(dictionary, satellite)
        self._channel_info = {c.name: c for c in dictionary.channels.values()}
        # The file-transfer side, if one is attached: gets every file PDU, shows in the live view.
        self.files: FileSide | None = None
        # Command and file-PDU counters shared with every ground process of this archive.
        self.uplink = UplinkCounters(archive)
        # Called on the loop with (event name, arguments) for every downlinked event.
        self.event_listeners: list[Callable[[str, dict[str, Any]], None]] = [self.uplink.on_event]
        self.dictionary_check = DictionaryCheck(dictionary)
        # Played-back records (APID STORED) go here: the record archive (flightsw/ground/records.py).
        self.stored_handler: Callable[[Packet], None] | None = None
        # Also told of every well-formed downlink packet (the record archive takes live records).
        self.packet_listeners: list[Callable[[Packet], None]] = []
        # Told of every decoded item, on the loop, after the station took it (the F Prime GDS bridge).
        self.item_listeners: list[Callable[[Item], None]] = []

    # -- receiving -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Receive forever (until the transport fails)."""
        while True:
            chunk = await self.transport.read()
            for frame in self._kiss.feed(chunk):
                if frame.command == kiss.KissCommand.DATA and frame.port == self.kiss_port:
                    await self.handle_frame(frame.payload)

    async def handle_frame(self, raw: bytes, rx_time: float | None = None, site: str | None = None) -> bool:
        """Decode one frame (flightsw.ground.decoder), update the station's view, archive it.
        ``rx_time`` and ``site`` default to now and this station (an import gives its own).
        False if the archive already had the frame from another station's reception."""
        rx_time = self.wall_clock() if rx_time is None else rx_time
        self.stats.frames_received += 1
        values: list[tuple[str, str, Any, str, int | None, float | None]] = []
        events: list[tuple[int | None, float | None, str, str, str]] = []
        responses: list[tuple[int, int, str, str, str, str]] = []
        note = ""
        try:
            frame = self.decoder.decode_frame(raw)
        except ForeignFrame as exc:
            self.stats.frames_foreign += 1
            note = str(exc)[:200]
        except DecodeError as exc:
            self.stats.frames_bad += 1
            note = str(exc)[:200]
        else:
            self.stats.packets_bad += len(frame.broken)
            note = "; ".join(map(str, frame.broken))[:200]
            for decoded in frame.packets:
                self._track_sequence(decoded.packet)
                if decoded.error is None:
                    for listener in self.packet_listeners:
                        listener(decoded.packet)
                problem = decoded.error or self._apply(decoded.item, rx_time, values, events, responses)
                if problem is not None:
                    self.stats.packets_bad += 1
                    note = str(problem)[:200]
                elif decoded.item is not None:
                    for item_listener in self.item_listeners:
                        item_listener(decoded.item)
        stored = await self.archive.call(self.archive.store_downlink, rx_time, "down", raw, note, values, events,
                                         responses, self.site if site is None else site)
        if stored.duplicate:
            self.stats.frames_duplicate += 1
        self._changed.set()
        return not stored.duplicate

    def _track_sequence(self, packet: Packet) -> None:
        previous = self._last_seq.get(packet.apid)
        if previous is not None:
            gap = (packet.seq_count - previous - 1) % 16384
            if 0 < gap < 8192:
                self.stats.seq_gaps[packet.apid] = self.stats.seq_gaps.get(packet.apid, 0) + gap
        self._last_seq[packet.apid] = packet.seq_count

    def _set(self, source: str, name: str, value: Any, rx_time: float, stamp: Stamp,
             values: list[tuple[str, str, Any, str, int | None, float | None]], unit: str = "") -> None:
        info = self._channel_info.get(name)
        unit = info.unit if info is not None else unit
        state = info.limits.state(value) if info is not None else "ok"
        self.latest[name] = ChannelValue(value, unit, state, rx_time, source)
        values.append((source, name, value, unit, stamp.boot, stamp.seconds))

    def _apply(self, item: Item | None, rx_time: float, values: list[Any], events: list[Any],
               responses: list[Any]) -> str | None:
        """Take one decoded item into the station's state and the archive rows; the problem, if
        the station could not use it (a file PDU the file side refuses, or no file side)."""
        match item:
            case Beacon(stamp=stamp, values=decoded):
                self.beacon = decoded
                self.beacon_time = rx_time
                self.stats.beacons += 1
                for name, value in decoded.items():
                    self._set("beacon", f"beacon.{name}", value, rx_time, stamp, values, BEACON_UNITS.get(name, ""))
                # The satellite's used counter: never sign below it (e.g. after losing the database).
                self.uplink.on_channels({COMMAND_COUNTER_CHANNEL: decoded.get("uplink_counter")}, self.key_id)
                flight_hash = decoded.get("dictionary_hash")
                if isinstance(flight_hash, int):
                    self._observe_dictionary(int(flight_hash), rx_time)
            case Telemetry():
                self.stats.housekeeping += 1
                for cname, value in item.values.items():
                    self._set(item.packet, cname, value, rx_time, item.stamp, values)
                self.uplink.on_channels(item.values, self.key_id)
            case EventItem():
                severity = item.severity.name
                self.stats.events += 1
                self.recent_events.append((rx_time, severity, item.name, item.text))
                events.append((item.stamp.boot, item.stamp.seconds, item.name, severity, item.text))
                if item.name == "cmd.dictionary_reported":
                    self._observe_dictionary(int(str(item.args.get("short", "0")), 16), rx_time)
                for listener in self.event_listeners:
                    listener(item.name, item.args)
            case CommandResult():
                resp = Response(item.seq, item.opcode, item.name, item.reason, item.completion, item.detail)
                self.stats.responses += 1
                bucket = self.responses.setdefault(item.seq, [])
                if resp not in bucket:
                    bucket.append(resp)
                responses.append((item.seq, item.opcode, item.name, item.reason.name,
                                  item.completion.name if item.completion is not None else "", item.detail))
            case StoredPacket(packet=packet):
                if self.stored_handler is not None:
                    self.stored_handler(packet)
            case FilePdu(packet=packet):
                if self.files is None:
                    return f"APID 0x{packet.apid:03x}: no file receiver on this station"
                try:
                    self.files.on_packet(packet)
                except ValueError as exc:  # the receiver's refusal of a malformed PDU
                    return f"APID 0x{packet.apid:03x}: {exc}"
        return None

    def note_flight_dictionary(self, flight_hash: int, rx_time: float) -> None:
        """The flight dictionary's 32-bit hash, from a beacon, an event or the archive."""
        self._observe_dictionary(flight_hash, rx_time)

    def _observe_dictionary(self, flight_hash: int, rx_time: float) -> None:
        warning = self.dictionary_check.observe(flight_hash)
        if warning:
            log.warning("%s", warning)
            self.recent_events.append((rx_time, "WARNING", "ground.dictionary_mismatch", warning))

    async def verify_command(self, name: str, timeout: float = 10.0, retries: int = 2) -> bool:
        """Ask the satellite whether it defines ``name`` as this ground does (cmd.CHECK_COMMAND)."""
        opcode, digest = self.dictionary.command_digest(name)
        resp = await self.command("cmd.CHECK_COMMAND", {"opcode": str(opcode), "digest": str(digest)},
                                  timeout=timeout, retries=retries)
        if resp is None:
            return False  # no answer: still unconfirmed, so still refused
        identical = resp.completion is Completion.SUCCESS
        self.dictionary_check.record(name, identical, resp.detail)
        return identical

    # -- commanding ----------------------------------------------------------------------------
    async def send(self, name: str, assignments: dict[str, str]) -> int:
        """Validate against the dictionary, sign with the next counter, transmit. Returns the counter.
        With a dictionary mismatch, only commands confirmed identical on board go (DictionaryMismatch)."""
        opcode, args = self.dictionary.encode_command(name, assignments)
        self.dictionary_check.permit(name)
        body = msgpack.packb([opcode, args], use_bin_type=True)
        # The last counters of a key are kept for SELECT_KEY: a key near the end of its space can
        # always hand over to a fresh key (whose counter space starts again at 1 on board).
        limit = MAX_COUNTER if name == "link.SELECT_KEY" else MAX_COUNTER - COUNTER_RESERVE
        try:
            async with self.uplink.reserve(CounterKind.COMMAND, self.key_id, limit) as counter:
                # A random sequence count (signed with the rest): two grounds signing the same command
                # with the same counter make different packets, so the later one is refused with the
                # satellite's counter (and signed again) instead of taken for a re-send of the first.
                packet = build_command(self.keys.key(self.key_id), self.key_id, counter, body,
                                       seq_count=secrets.randbelow(1 << 14))
                frame = ax25.UiFrame(self.satellite, self.ground, packet).encode()
                self._last_sent = frame
                self._last_counter = counter
                await self._transmit(frame, f"command {name} #{counter}")
                await self.archive.call(self.archive.store_command, self.wall_clock(), self.key_id, counter,
                                        name, json.dumps(assignments))
        except ValueError:
            raise CounterExhausted(
                f"uplink counter of key {self.key_id} is within {COUNTER_RESERVE} of the end of its space "
                f"(2^32-1); not signed. Switch to a fresh key: send link.SELECT_KEY key_id=<another key> "
                f"with this key, then command with --key-id <that key> (each key has its own counter)"
            ) from None
        self.stats.commands_sent += 1
        return counter

    async def resend(self) -> int:
        """Transmit the last command again, unchanged (the satellite executes it at most once)."""
        if self._last_sent is None:
            raise RuntimeError("no command has been sent yet")
        await self._transmit(self._last_sent, f"re-send #{self._last_counter}")
        return self._last_counter

    async def _transmit(self, frame: bytes, note: str) -> None:
        await self.archive.call(self.archive.store_frame, self.wall_clock(), "up", frame, note, [], [], [], self.site)
        await self.transport.write(kiss.encode(frame, port=self.kiss_port))

    def completed(self, counter: int) -> Response | None:
        """The final response of a command: a rejection verdict or a completion."""
        for resp in self.responses.get(counter, []):
            if resp.completion is not None or resp.reason != Reason.OK:
                return resp
        return None

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (without polling) until a received frame makes ``predicate`` true."""
        return await wait_on_changes(self._changed, predicate, timeout)

    async def command(self, name: str, assignments: dict[str, str], *, timeout: float = 10.0,
                      retries: int = 2, on_sent: Callable[[int], None] | None = None) -> Response | None:
        """Send, and re-send the same packet until the command's final response arrives. A command
        the satellite refused for its counter (another ground signed it first) did not run: it is
        signed again with a new counter, above the last one the satellite accepted. ``on_sent``
        hears each counter the command is signed with."""
        if name in self.dictionary.commands and self.dictionary_check.needs_check(name):
            await self.verify_command(name, timeout, retries)
        counter = await self.send(name, assignments)
        frame = self._last_sent
        for attempt in range(retries + 1):
            if attempt:
                if self.uplink.refused(self.key_id, counter):
                    counter = await self.send(name, assignments)
                    frame = self._last_sent
                elif frame is not None:
                    await self._transmit(frame, f"re-send #{counter}")
            if on_sent is not None:
                on_sent(counter)
            if await self.wait_until(functools.partial(self._answered, counter), timeout):
                response = self.completed(counter)
                if response is not None:
                    return response
        return None

    def _answered(self, counter: int) -> bool:
        return self.completed(counter) is not None or self.uplink.refused(self.key_id, counter)
