"""The radio link component: uplink authentication and dispatch, downlink of everything else.

Why one component: the link is one resource with one set of counters and one transmit switch.
Received frames are decoded (AX.25, space packets with CRC), authenticated (key, MAC, counter),
the counter persisted *before* execution (a power cut can never re-open a used counter), then the
command body goes to the dispatcher. Verdicts, completions, events, housekeeping and the beacon go
down through the priority scheduler. A re-sent packet (same counter, valid MAC) is never executed
again; its cached verdict is sent again so the operator learns it went through, but at most once
per counter per ``link.resend_interval``: a replayed recording cannot turn the downlink into an
echo of itself. Every AX.25 header byte of an uplink frame is checked against the one expected
header (destination and source address with SSIDs, UI control, PID) and each mismatch is counted
by field. Each key has its own counter space: selecting a key starts (or resumes) that key's
counter, so a counter run far on one key is recovered by switching keys, never by lowering it.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

import msgpack

from flightsw.core.commands import CommandResponse, Completion, Reason
from flightsw.core.component import (
    Arg,
    Channel,
    CommandFailure,
    Component,
    Counter,
    CounterSet,
    Event,
    Parameter,
    command,
)
from flightsw.core.enums import CommandStatus, Mode
from flightsw.core.events import EventRecord, Severity
from flightsw.core.ports import CommandPort, TransmitPermission
from flightsw.core.telemetry import PacketDef
from flightsw.core.types import BOOL, F32, U8, U16, U32
from flightsw.link import ax25, beacon
from flightsw.link.auth import (
    AuthError,
    CounterJump,
    CounterReserved,
    KeyRing,
    NotACommand,
    Replay,
    reserved_counter,
    verify_command,
)
from flightsw.link.packets import (
    CRC_LEN,
    PRIMARY_HEADER_LEN,
    TM_SECONDARY_LEN,
    Apid,
    CrcMismatch,
    PacketBuilder,
    PacketError,
    TimeStamp,
    split_packets,
)
from flightsw.link.scheduler import DownlinkScheduler, Priority
from flightsw.link.settings import LinkSettings
from hal.radio import FrameTooLong, KissRadio
from hal.serial_port import SerialPortUnavailable

log = logging.getLogger("flightsw.link")

STATE_COUNTER = "link.uplink_counter"
STATE_KEY_ID = "link.key_id"
STATE_KEY_COUNTERS = "link.key_counters"  # {key id: last accepted counter} of the inactive keys
DUPLICATE_CACHE = 32



class HeaderCheck(Enum):
    """The AX.25 header field an uplink frame failed (counted per field)."""

    DESTINATION = "frames_foreign"
    SOURCE = "frames_wrong_source"
    CONTROL = "frames_wrong_control"
    PID = "frames_wrong_pid"


class LinkComponent(Component):
    """UHF radio link: authenticated uplink, prioritised downlink, beacon, transmitter control."""

    frames_received = Counter("Uplink frames received from the radio")
    bytes_received = Counter("Uplink bytes received", unit="B")
    frames_sent = Channel(U32, doc="Downlink frames handed to the radio", update="on_change")
    bytes_sent = Channel(U32, unit="B", doc="Downlink bytes handed to the radio", update="on_change")
    frames_foreign = Counter("Frames addressed to another station or SSID (ignored)")
    frames_wrong_source = Counter("Uplink frames not from the ground callsign/SSID")
    frames_wrong_control = Counter("Uplink frames whose control byte is not UI 0x03")
    frames_wrong_pid = Counter("Uplink frames whose PID is not 0xF0")
    kiss_wrong_port = Channel(U32, doc="KISS frames from the radio on another port or not data", update="on_change")
    kiss_oversize = Channel(U32, doc="Frames from the radio longer than link.max_frame (dropped unread)",
                            update="on_change")
    counter_refusals = Counter("MAC-valid commands refused for their counter (jump, reserved)")
    resends_suppressed = Counter("Re-sent commands not answered again (within resend_interval)")
    malformed = Counter("Frames or packets that could not be decoded")
    crc_failures = Counter("Packets dropped for a CRC mismatch")
    auth_failures = Counter("Telecommands dropped: bad MAC, wrong/unknown key, truncated")
    replays = Counter("Telecommands dropped for an old counter (replay or re-send)")
    duplicates = Counter("Re-sent telecommands answered from the verdict cache")
    commands_executed = Counter("Authenticated telecommands handed to the dispatcher")
    uplink_counter = Channel(U32, doc="Last accepted uplink counter (persisted)", update="on_change")
    key_id = Channel(U8, doc="Active uplink key id", update="on_change")
    tx_inhibited = Channel(BOOL, doc="Transmission not allowed by transmitter control now", update="on_change")
    frames_withheld = Channel(U32, doc="Downlink frames withheld (not sent) while transmission was not allowed",
                              update="on_change")
    tx_errors = Counter("Frames the radio could not take (device absent)")
    queue_beacon = Channel(U16, doc="Queued beacon packets", update="on_change")
    queue_verdicts = Channel(U16, doc="Queued verdict packets", update="on_change")
    queue_housekeeping = Channel(U16, doc="Queued real-time housekeeping packets", update="on_change")
    queue_events = Channel(U16, doc="Queued event packets", update="on_change")
    queue_stored = Channel(U16, doc="Queued stored-telemetry packets", update="on_change")
    packets_dropped = Channel(U32, doc="Downlink packets dropped from full queues", update="on_change")
    airtime = Channel(F32, unit="s", doc="Downlink on-air time since boot", update="on_change")
    frames_out_of_contact = Counter("Frames sent while out of a predicted contact", group="contact")
    frames_out_of_contact_other = Counter("Frames sent out of a predicted contact carrying more than "
                                          "a beacon or a verdict", group="contact")
    packets_withheld = Counter("Real-time packets not sent out of contact (recorded, or not emitted "
                               "at the reduced housekeeping rate)", group="contact")
    frames_saved = Counter("Frames the withheld packets would have filled", group="contact")
    airtime_saved = Channel(F32, unit="s", doc="On-air time of the frames not sent out of contact",
                            update="on_change")

    uplink_rejected = Event(Severity.WARNING, "Uplink packet dropped: {reason} ({detail})", throttle=(5, 60.0))
    uplink_duplicate = Event(Severity.INFO, "Re-sent command {counter} not executed again", throttle=(5, 60.0))
    # ``last`` tells a ground that lost its counter (second computer, fresh archive) where to go on.
    counter_refused = Event(Severity.WARNING,
                            "Command counter {counter} of key {key_id} refused: {detail}; last accepted {last}",
                            throttle=(10, 60.0))
    key_selected = Event(Severity.WARNING, "Uplink key {key_id} now active", throttle=None)
    packet_refused = Event(Severity.WARNING, "Downlink packet refused: {detail}", throttle=(3, 60.0))

    beacon_period = Parameter(U16, default=30, range=(5, 600), doc="Beacon period in nominal modes [s]")
    beacon_period_safe = Parameter(U16, default=60, range=(5, 600), doc="Beacon period in SAFE mode [s]")

    def __init__(self, settings: LinkSettings, radio: KissRadio, keys: KeyRing,
                 name: str = "link", base_id: int = 0x0040) -> None:
        super().__init__(name, base_id)
        self.settings = settings
        self.radio = radio
        self.keys = keys
        self.builder = PacketBuilder(settings.max_info)
        self.scheduler = DownlinkScheduler(self._transmit, self._wrap, max_info=settings.max_info,
                                           bit_rate=settings.bit_rate, tx_delay=settings.tx_delay,
                                           response_share=settings.response_share, burst_s=settings.burst_s,
                                           max_file_info=settings.max_file_info)
        self._header = ax25.header(settings.callsign, settings.ground)
        self.stats = CounterSet(self)
        self._resent_at: dict[int, float] = {}  # counter -> loop time its responses were last re-sent
        self._responses: OrderedDict[int, list[bytes]] = OrderedDict()  # counter -> sent responses
        self._tags: dict[int, bytes] = {}
        self._last_response: CommandResponse | None = None
        self.beacon_sources: dict[str, Callable[[], float | None]] = {}
        self._commands: CommandPort | None = None  # the dispatcher, wired through the COMMANDS port
        self._permission: TransmitPermission | None = None  # transmitter control (TX_INHIBIT port)
        # Other uplink APIDs (file PDUs) go to their owner, which authenticates them itself.
        self.packet_handlers: dict[int, Callable[[Any], Awaitable[None]]] = {}
        # Contact-aware downlink (flightsw/link/contact.py): None while no pass prediction exists.
        self.in_contact: bool | None = None
        # Transmitter control's out-of-contact inhibit (wired by the link subsystem).
        self._contact_silence: Callable[[bool], None] | None = None
        self.silent_out_of_contact = False
        self.contact_stats = CounterSet(self, group="contact")
        self.airtime_saved_s = 0.0
        self._withheld = bytearray()  # packets withheld since the last whole frame was counted

    # -- wiring -------------------------------------------------------------------------------
    def use_contact_silence(self, set_silent: Callable[[bool], None]) -> None:
        """``set_silent(True)`` keeps the transmitter off while out of contact (``[contact]
        out_of_contact = "silent"``): transmitter control owns every inhibit."""
        self._contact_silence = set_silent

    def use_commands(self, commands: CommandPort) -> None:
        """Consumer of the COMMANDS port: uplinked commands go to this dispatcher."""
        self._commands = commands

    def use_permission(self, permission: TransmitPermission) -> None:
        """Consumer of the TX_INHIBIT port: no frame goes on the air unless it allows it."""
        self._permission = permission
        self.scheduler.use_permission(lambda: not permission.inhibits())
        permission.add_listener(self.scheduler.permission_changed)

    @property
    def _dispatcher(self) -> CommandPort:
        if self._commands is None:
            raise RuntimeError(f"{self.name}: no command dispatcher wired (COMMANDS port)")
        return self._commands

    def setup(self) -> None:
        ctx = self.ctx
        active = int(ctx.state.get(STATE_KEY_ID, self.keys.ids[0]))
        if active not in self.keys:
            active = self.keys.ids[0]
        self._active_key = active
        ctx.supervisor.add_service(f"{self.name}.rx", self._rx_loop, critical=True)
        ctx.supervisor.add_service(f"{self.name}.tx", self.scheduler.run, critical=True)
        ctx.supervisor.add_service(f"{self.name}.beacon", self._beacon_loop, critical=False)
        ctx.rate_group("slow").add(f"{self.name}.telemetry", self.publish)
        ctx.telemetry.add_packet_sink(self._on_housekeeping)
        ctx.telemetry.add_skip_sink(self._on_housekeeping_skipped)
        ctx.events.add_sink(self._on_event)
        self._dispatcher.add_listener(self._on_response)
        for field_name, channel_name in self.settings.beacon_channels.items():
            self.beacon_sources[field_name] = self._channel_reader(channel_name)

    def _channel_reader(self, name: str) -> Callable[[], float | None]:
        found = self.ctx.find_channel(name)
        if found is None:
            log.warning("beacon source %s is not a known channel; sent as not available", name)
            return lambda: None
        channel_id = found[1]

        def read() -> float | None:
            sample = self.ctx.telemetry.latest(channel_id)
            return None if sample is None or not isinstance(sample.value, int | float) else float(sample.value)

        return read

    def _stamp(self) -> TimeStamp:
        now = self.ctx.clock.now()
        return TimeStamp(now.boot, now.seconds)

    def _wrap(self, info: bytes) -> bytes:
        return ax25.UiFrame(self.settings.ground, self.settings.callsign, info).encode()

    def set_contact(self, in_contact: bool | None, silent: bool = False) -> None:
        """Contact-aware downlink: out of a predicted contact only beacons (none when ``silent``)
        and verdicts go; real-time housekeeping and events are withheld (they are recorded and
        played back in the next pass) and queued playback and files wait. None: no prediction,
        everything is sent as usual."""
        self.in_contact = in_contact
        self.silent_out_of_contact = silent
        out = in_contact is False
        self.scheduler.hold(Priority.VERDICT if out else None)
        if self._contact_silence is not None:
            self._contact_silence(out and silent)

    def _withhold(self, packet_len: int, alone: bool = False) -> None:
        """Count a packet not sent out of contact, and the airtime of the frames it would have filled."""
        self.contact_stats.inc("packets_withheld")
        if alone:  # a beacon has a frame to itself
            self.airtime_saved_s += self.scheduler.airtime(self._wrap(bytes(packet_len)))
            self.contact_stats.inc("frames_saved")
            return
        if len(self._withheld) + packet_len > self.settings.max_info:
            self.airtime_saved_s += self.scheduler.airtime(self._wrap(bytes(self._withheld)))
            self.contact_stats.inc("frames_saved")
            self._withheld.clear()
        self._withheld += bytes(packet_len)

    async def _transmit(self, frame: bytes) -> None:
        if self.in_contact is False:
            self.contact_stats.inc("frames_out_of_contact")
            info = frame[ax25.HEADER_LEN:]
            apid = ((info[0] & 0x07) << 8) | info[1] if len(info) > 1 else -1
            if apid not in (Apid.BEACON, Apid.VERDICT):
                self.contact_stats.inc("frames_out_of_contact_other")
        try:
            await self.radio.send(frame)
        except (SerialPortUnavailable, FrameTooLong) as exc:
            self.stats.inc("tx_errors")
            log.warning("frame not transmitted: %s", exc)

    # -- downlink producers ---------------------------------------------------------------------
    def downlink(self, priority: Priority, apid: int, user_data: bytes, *,
                 replace_key: Any = None, alone: bool = False) -> bool:
        """Queue user data on an APID; a packet too large for a frame is refused and reported."""
        if self.in_contact is False and (priority in (Priority.HOUSEKEEPING, Priority.EVENT) or
                                         (priority == Priority.BEACON and self.silent_out_of_contact)):
            self._withhold(len(user_data) + PRIMARY_HEADER_LEN + TM_SECONDARY_LEN + CRC_LEN, alone)
            return True
        try:
            packet = self.builder.telemetry(apid, user_data, self._stamp(), max_len=self.settings.max_file_info
                                            if priority == Priority.FILE else None)
        except PacketError as exc:
            self.packet_refused.emit(detail=str(exc)[:100])
            return False
        self.scheduler.enqueue(priority, packet, replace_key=replace_key, alone=alone)
        return True

    def _on_housekeeping(self, packet: PacketDef, body: bytes) -> None:
        self.downlink(Priority.HOUSEKEEPING, Apid.HOUSEKEEPING, body, replace_key=packet.id)

    def _on_housekeeping_skipped(self, packet: PacketDef, size: int) -> None:
        """A sample not emitted out of contact (contact-aware divisor) is airtime saved too."""
        if self.in_contact is False:
            self._withhold(size + PRIMARY_HEADER_LEN + TM_SECONDARY_LEN + CRC_LEN)

    def _on_event(self, record: EventRecord) -> None:
        if record.severity < Severity.INFO:
            return
        if record.id == self.uplink_rejected.id and not self.scheduler.transmit_allowed:
            return
        body = msgpack.packb(record.to_wire(), use_bin_type=True, default=str)
        self.downlink(Priority.EVENT, Apid.EVENT, body)

    def _on_response(self, response: CommandResponse) -> None:
        self._last_response = response
        body = msgpack.packb(response.to_wire(), use_bin_type=True)
        if response.source == "uplink" and response.seq in self._responses:
            self._responses[response.seq].append(body)
        self.downlink(Priority.VERDICT, Apid.VERDICT, body)

    def beacon_values(self) -> dict[str, float | None]:
        ctx = self.ctx
        dispatcher = self._dispatcher
        resp = self._last_response
        status = CommandStatus.NONE
        if resp is not None:
            if resp.completion is None:
                status = CommandStatus.ACCEPTED if resp.reason == Reason.OK else CommandStatus.REJECTED
            else:
                status = CommandStatus.COMPLETED if resp.completion == Completion.SUCCESS else CommandStatus.FAILED
        values: dict[str, float | None] = {
            "mode": beacon.mode_code(ctx.state.get("mode", "")),
            "boot_count": ctx.state.boot_count,
            "reset_reason": beacon.reset_code(ctx.state.get("reset_reason")),
            "uptime": ctx.clock.seconds_since_boot(),
            "last_command_opcode": resp.opcode if resp is not None else None,  # the full 32-bit opcode
            "last_command_status": beacon.STATUS_CODES[status],
            "uplink_counter": int(ctx.state.get(STATE_COUNTER, 0)),
            # Counters saturate below the "not available" sentinel (beacon.encode_payload clamps).
            "commands_executed": dispatcher.stats["succeeded"],
            "commands_rejected": dispatcher.stats["rejected_total"],
            "auth_failures": (self.stats["auth_failures"] + self.stats["replays"]
                              + self.stats["crc_failures"] + self.stats["malformed"]),
            "frames_received": self.stats["frames_received"],
            "frames_sent": self.scheduler.frames_sent,
            "dictionary_hash": (None if dispatcher.dictionary_hash is None
                                else beacon.dictionary_hash_as_sent(dispatcher.dictionary_hash)),
            "met": ctx.clock.met(),
            "time_quality": beacon.TIME_QUALITY_CODES[ctx.clock.quality],
        }
        for field_name, read in self.beacon_sources.items():
            values[field_name] = read()
        return values

    def send_beacon(self) -> bool:
        payload = beacon.encode_payload(self.settings.callsign.callsign, self.beacon_values())
        return self.downlink(Priority.BEACON, Apid.BEACON, payload, alone=True)

    async def _beacon_loop(self) -> None:
        """The periodic beacon, from the first moment transmission is allowed (never during the
        RF silence after separation: the first beacon is the first frame on the air)."""
        while True:
            while not self.scheduler.transmit_allowed:
                await self.scheduler.wait_progress()
            self.send_beacon()
            safe = Mode.parse(self.ctx.state.get("mode")) is Mode.SAFE
            period = self.beacon_period_safe.value if safe else self.beacon_period.value
            await asyncio.sleep(float(period))

    # -- uplink -------------------------------------------------------------------------------
    async def _rx_loop(self) -> None:
        await self.radio.open()
        async for frame in self.radio.frames():
            await self.handle_frame(frame)
            # A burst of frames (or a flood of forged ones) is handled one frame per loop turn,
            # so the rest of the satellite keeps running while the uplink is busy.
            await asyncio.sleep(0)

    def _reject(self, counter_key: str, reason: str, detail: str) -> None:
        self.stats.inc(counter_key)
        self.uplink_rejected.emit(reason=reason, detail=detail[:80])

    async def handle_frame(self, frame: bytes) -> None:
        """Decode, authenticate and execute the commands of one received frame."""
        self.stats.inc("frames_received")
        self.stats.inc("bytes_received", len(frame))
        frame = bytes(frame)
        if len(frame) < ax25.HEADER_LEN:
            self._reject("malformed", "malformed", f"frame of {len(frame)} bytes has no AX.25 header")
            return
        failed = self._check_header(frame[: ax25.HEADER_LEN])
        if failed is not None:
            self.stats.inc(failed.value)
            if failed != HeaderCheck.DESTINATION:  # others' traffic is normal, not an incident
                self.uplink_rejected.emit(reason=failed.name.lower(), detail=frame[:ax25.HEADER_LEN].hex())
            return
        packets, errors = split_packets(frame[ax25.HEADER_LEN :])
        for error in errors:
            if isinstance(error, CrcMismatch):
                self._reject("crc_failures", "crc", str(error))
            else:
                self._reject("malformed", "malformed", str(error))
        for packet in packets:
            await self._handle_packet(packet)

    def _check_header(self, header: bytes) -> HeaderCheck | None:
        """The first header field that differs from the one expected uplink header, if any.

        Exact bytes: callsign, SSID, command/response and reserved bits and the end-of-address
        bit (no digipeaters) of both addresses, control 0x03 with P/F clear, PID 0xF0. With
        ``check_source = false`` the source callsign and SSID may be any well-formed address.
        """
        expected = self._header
        if header[0:7] != expected[0:7]:
            return HeaderCheck.DESTINATION
        if header[7:14] != expected[7:14]:
            if self.settings.check_source:
                return HeaderCheck.SOURCE
            source_ok = (header[13] & 0xE1) == (expected[13] & 0xE1)  # C bit, reserved, last address
            if source_ok:
                try:
                    ax25.decode(header)  # a well-formed callsign
                except ax25.Ax25Error:
                    source_ok = False
            if not source_ok:
                return HeaderCheck.SOURCE
        if header[14] != expected[14]:
            return HeaderCheck.CONTROL
        if header[15] != expected[15]:
            return HeaderCheck.PID
        return None

    async def _handle_packet(self, packet: Any) -> None:
        if packet.apid in self.packet_handlers:
            await self.packet_handlers[packet.apid](packet)
            return
        last = int(self.ctx.state.get(STATE_COUNTER, 0))
        try:
            cmd = verify_command(packet, self.keys, self._active_key, last,
                                 window=self.settings.counter_window)
            if reserved_counter(cmd.counter) and self._opcode(cmd.body) != self._select_key_opcode:
                raise CounterReserved(f"counter {cmd.counter} is reserved for link.SELECT_KEY")
        except Replay:
            self._handle_resend(packet, last)
            return
        except (CounterJump, CounterReserved) as exc:
            # MAC-valid, so from the key holder: tell the ground (not throttled with forgeries).
            self.stats.inc("counter_refusals")
            self.counter_refused.emit(counter=struct.unpack(">BI", packet.secondary_header)[1],
                                      key_id=self._active_key, detail=exc.detail[:80], last=last)
            return
        except NotACommand as exc:
            self._reject("malformed", exc.reason, exc.detail)
            return
        except AuthError as exc:
            self._reject("auth_failures", exc.reason, exc.detail)
            return
        # Persist the counter before anything executes: a reboot must not re-open it.
        self.ctx.state.set(STATE_COUNTER, cmd.counter)
        await self.ctx.state.save()
        self.stats.inc("commands_executed")
        self._responses[cmd.counter] = []
        self._tags[cmd.counter] = cmd.tag
        while len(self._responses) > DUPLICATE_CACHE:
            old, _ = self._responses.popitem(last=False)
            self._tags.pop(old, None)
            self._resent_at.pop(old, None)
        self._dispatcher.submit_packed(cmd.body, source="uplink", seq=cmd.counter)

    @property
    def _select_key_opcode(self) -> int:
        return self.item_id(type(self).declarations["select_key"])

    @staticmethod
    def _opcode(body: bytes) -> int | None:
        try:
            decoded = msgpack.unpackb(body, raw=False)
        except (ValueError, msgpack.UnpackException):
            return None
        return decoded[0] if isinstance(decoded, list) and decoded and isinstance(decoded[0], int) else None

    def _handle_resend(self, packet: Any, last_accepted: int) -> None:
        key_id, counter = struct.unpack(">BI", packet.secondary_header)
        tag = packet.user_data[-16:]
        if self._tags.get(counter) == tag:
            self.stats.inc("duplicates")
            now = asyncio.get_running_loop().time()
            last = self._resent_at.get(counter)
            if last is not None and now - last < self.settings.resend_interval:
                self.stats.inc("resends_suppressed")  # answered recently: a replay storm gets nothing
                return
            self._resent_at[counter] = now
            self.uplink_duplicate.emit(counter=counter)
            for body in self._responses.get(counter, []):
                self.scheduler.enqueue(Priority.VERDICT,
                                       self.builder.telemetry(Apid.VERDICT, body, self._stamp()))
            return
        # MAC-valid (checked first) but not a re-send: another ground signed this counter first, or
        # a ground lost its counter. The refusal (with the last accepted counter) lets it go on.
        self.stats.inc("replays")
        self.counter_refused.emit(counter=counter, key_id=key_id, detail="replay: counter already used",
                                  last=last_accepted)

    # -- telemetry ----------------------------------------------------------------------------
    def publish(self) -> None:
        self.stats.publish()
        self.kiss_wrong_port.set(self.radio.frames_ignored & 0xFFFFFFFF)
        self.kiss_oversize.set(self.radio.frames_oversize & 0xFFFFFFFF)
        sched = self.scheduler
        self.frames_sent.set(sched.frames_sent & 0xFFFFFFFF)
        self.bytes_sent.set(sched.bytes_sent & 0xFFFFFFFF)
        self.uplink_counter.set(int(self.ctx.state.get(STATE_COUNTER, 0)))
        self.key_id.set(self._active_key)
        self.tx_inhibited.set(not sched.transmit_allowed)
        self.frames_withheld.set(sched.frames_withheld & 0xFFFFFFFF)
        self.queue_beacon.set(min(sched.depth(Priority.BEACON), 0xFFFF))
        self.queue_verdicts.set(min(sched.depth(Priority.VERDICT), 0xFFFF))
        self.queue_housekeeping.set(min(sched.depth(Priority.HOUSEKEEPING), 0xFFFF))
        self.queue_events.set(min(sched.depth(Priority.EVENT), 0xFFFF))
        self.queue_stored.set(min(sched.depth(Priority.STORED), 0xFFFF))
        self.packets_dropped.set(sched.packets_dropped & 0xFFFFFFFF)
        self.airtime.set(sched.airtime_total)
        self.contact_stats.publish()
        self.airtime_saved.set(self.airtime_saved_s)

    # -- commands -----------------------------------------------------------------------------
    @command(args=[Arg("key_id", U8, doc="id of a key in the on-board key file")],
             doc="Make another key of the ring the uplink key (with its own counter); takes effect after this command.")
    async def select_key(self, key_id: int) -> None:
        if key_id not in self.keys:
            raise CommandFailure(f"key id {key_id} is not in the key file")
        await self._switch_key(key_id)

    async def _switch_key(self, key_id: int) -> None:
        # Each key has its own counter space: park this key's counter, take up the new key's.
        state = self.ctx.state
        counters = {str(k): int(v) for k, v in dict(state.get(STATE_KEY_COUNTERS, {})).items()}
        counters[str(self._active_key)] = int(state.get(STATE_COUNTER, 0))
        state.set(STATE_KEY_COUNTERS, counters)
        state.set(STATE_COUNTER, counters.get(str(key_id), 0))
        self.ctx.state.set(STATE_KEY_ID, key_id)
        await self.ctx.state.save()
        self._active_key = key_id
        self.key_selected.emit(key_id=key_id)

    # -- safe defaults (LINK_DEFAULTS port, the loss-of-contact ladder) --------------------------
    async def restore_defaults(self) -> str:
        """Back to what the ground knows from launch: the default uplink key (the lowest id of the
        key file, with its own counter: a counter is never lowered) and the link parameters'
        defaults. The transmitter-off command stays in force (cessation of emissions is the
        ground's decision alone)."""
        changed: list[str] = []
        default_key = self.keys.ids[0]
        if self._active_key != default_key:
            changed.append(f"key {self._active_key}->{default_key}")
            await self._switch_key(default_key)
        declarations = type(self).declarations
        for attr in ("beacon_period", "beacon_period_safe"):
            decl = declarations[attr]
            assert isinstance(decl, Parameter)
            pid = self.item_id(decl)
            if self.ctx.params.get(pid) != decl.default:
                changed.append(f"{attr} {self.ctx.params.get(pid)}->{decl.default}")
                await self.ctx.params.set(pid, decl.default)
        return ", ".join(changed) or "already at defaults"

    @command(doc="Queue a beacon now (besides the periodic one).")
    def send_beacon_now(self) -> None:
        if not self.send_beacon():
            raise CommandFailure("beacon could not be built")
