"""The one ground decoder: the bytes of a downlinked AX.25 frame to typed items.

Why one pure step: the ground station, the simulation runner's ground side and the tests must
agree on what a frame says, and a decoder without I/O or state can be tested on its own, down to
arbitrary bytes. It raises or returns nothing but :class:`DecodeError`, each a one-line message
naming the problem; what to do with the items (archive, count, answer) is the caller's.

Wire formats (docs/protocol.md): the beacon has a fixed layout (``flightsw.link.beacon``); the
other payloads are msgpack arrays, checked here by msgspec:

  housekeeping  [packet_id, boot, seconds, utc, [values...]]   (values in the dictionary's order)
  event         [id, severity, boot, seconds, utc, suppressed, {args}]
  verdict       [seq, opcode, reason, completion, detail, boot, seconds, utc]
  stored        [head, [[number, kind, value]...]]   (flightsw.link.stored: played-back records)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from flightsw.core.clock import Stamp
from flightsw.core.commands import Completion, Reason
from flightsw.core.events import Severity
from flightsw.ground.dictionary import GroundDictionary
from flightsw.link import ax25, beacon, stored
from flightsw.link.packets import Apid, Packet, split_packets
from flightsw.link.stored import RecordCode


class DecodeError(ValueError):
    """Downlinked bytes that do not decode; the message names the problem in one line."""


class FrameError(DecodeError):
    """The frame is not an AX.25 UI frame."""


class ForeignFrame(DecodeError):
    """A well-formed frame from another station than the satellite."""

    def __init__(self, source: ax25.Address) -> None:
        super().__init__(f"foreign {source}")
        self.source = source


class PacketDecodeError(DecodeError):
    """One packet of a frame that does not decode (broken space packet, or a payload that does
    not match its APID's format or the dictionary)."""


@dataclass(frozen=True)
class Beacon:
    stamp: Stamp
    values: dict[str, Any]  # beacon.decode_payload's fields, plus last_command_name from the dictionary


@dataclass(frozen=True)
class Telemetry:
    """A housekeeping packet: channel name -> value, in the dictionary's order."""

    packet: str
    stamp: Stamp
    values: dict[str, Any]


@dataclass(frozen=True)
class EventItem:
    id: int
    name: str
    severity: Severity
    stamp: Stamp
    text: str  # formatted from the dictionary, with "[n suppressed]" when the satellite throttled
    args: dict[str, Any] = field(default_factory=dict)  # the event's arguments as sent


@dataclass(frozen=True)
class CommandResult:
    """A command's verdict (completion None) or completion."""

    seq: int
    opcode: int
    name: str
    reason: Reason
    completion: Completion | None
    detail: str


@dataclass(frozen=True)
class FilePdu:
    """A CFDP PDU; the file-transfer entity decodes the PDU itself."""

    packet: Packet


@dataclass(frozen=True)
class StoredPacket:
    """Played-back records (``flightsw.link.stored``): the satellite's next record number and the
    records, each (number, kind, value) with the value in its live format."""

    packet: Packet
    head: int
    records: tuple[tuple[int, RecordCode, Any], ...]


Item = Beacon | Telemetry | EventItem | CommandResult | FilePdu | StoredPacket


@dataclass(frozen=True)
class DecodedPacket:
    """One space packet of a frame and what it decoded to: exactly one of item and error is set."""

    packet: Packet
    item: Item | None
    error: PacketDecodeError | None


@dataclass(frozen=True)
class DecodedFrame:
    source: ax25.Address
    packets: tuple[DecodedPacket, ...]
    broken: tuple[PacketDecodeError, ...]  # where splitting stopped (CRC, truncation): the rest is lost


class _HousekeepingWire(msgspec.Struct, array_like=True):
    packet_id: int
    boot: int
    seconds: float
    utc: float | None
    values: list[Any]


class _EventWire(msgspec.Struct, array_like=True):
    id: int
    severity: Severity
    boot: int
    seconds: float
    utc: float | None
    suppressed: int
    args: dict[str, Any]


class _VerdictWire(msgspec.Struct, array_like=True):
    seq: int
    opcode: int
    reason: Reason
    completion: Completion | None
    detail: str
    # trailing stamp: older software sent the first five fields only
    boot: int | None = None
    seconds: float | None = None
    utc: float | None = None


_HOUSEKEEPING = msgspec.msgpack.Decoder(_HousekeepingWire)
_EVENT = msgspec.msgpack.Decoder(_EventWire)
_VERDICT = msgspec.msgpack.Decoder(_VerdictWire)


class GroundDecoder:
    """Decodes the frames of one satellite against its exported dictionary (``satellite`` None:
    frames from any source, e.g. to read a recording)."""

    def __init__(self, dictionary: GroundDictionary, satellite: ax25.Address | None = None) -> None:
        self.dictionary = dictionary
        self.satellite = satellite

    def decode_frame(self, raw: bytes) -> DecodedFrame:
        """Every packet of a frame; FrameError for a broken frame, ForeignFrame for another
        station's. Packet problems do not raise: they are in the result, next to the good packets."""
        try:
            ui = ax25.decode(raw)
        except ax25.Ax25Error as exc:
            raise FrameError(str(exc)) from None
        if self.satellite is not None and ui.source.callsign != self.satellite.callsign:
            raise ForeignFrame(ui.source)
        packets, errors = split_packets(ui.info)
        return DecodedFrame(ui.source, tuple(self._decode(p) for p in packets),
                            tuple(PacketDecodeError(str(e)) for e in errors))

    def _decode(self, packet: Packet) -> DecodedPacket:
        try:
            return DecodedPacket(packet, self.decode_packet(packet), None)
        except PacketDecodeError as exc:
            return DecodedPacket(packet, None, exc)

    def decode_packet(self, packet: Packet) -> Item:
        """The item one space packet carries; PacketDecodeError naming the APID and the problem."""
        try:
            return self._item(packet)
        except (msgspec.MsgspecError, ValueError, RecursionError) as exc:
            raise PacketDecodeError(f"APID 0x{packet.apid:03x}: {exc}") from None

    def _item(self, packet: Packet) -> Item:
        data = packet.user_data
        if packet.apid == Apid.BEACON:
            return self.beacon(packet.stamp.boot, packet.stamp.seconds, data)
        if packet.apid == Apid.HOUSEKEEPING:
            return self.housekeeping(data)
        if packet.apid == Apid.EVENT:
            return self.event(data)
        if packet.apid == Apid.VERDICT:
            return self.verdict(data)
        if packet.apid == Apid.FILE:
            return FilePdu(packet)
        if packet.apid == Apid.STORED:
            head, records = stored.unpack(data)
            return StoredPacket(packet, head, tuple(records))
        raise ValueError(f"unexpected APID 0x{packet.apid:03x}")

    # -- one decoder per payload format (public: a stored record's body decodes the same way) --
    def beacon(self, boot: int, seconds: float, payload: bytes) -> Beacon:
        values: dict[str, Any] = dict(beacon.decode_payload(payload))
        opcode = values.get("last_command_opcode")
        # the full opcode goes down, so the dictionary names the command
        values["last_command_name"] = (self.dictionary.opcode_names.get(int(opcode))
                                       if isinstance(opcode, int | float) else None)
        return Beacon(Stamp(boot, seconds, None), values)

    def housekeeping(self, body: bytes) -> Telemetry:
        wire = _HOUSEKEEPING.decode(body)
        entry = self.dictionary.packets.get(wire.packet_id)
        if entry is None or len(entry[1]) != len(wire.values):
            raise ValueError(f"housekeeping packet id {wire.packet_id} does not match the dictionary")
        name, channels = entry
        return Telemetry(name, Stamp(wire.boot, wire.seconds, wire.utc),
                         dict(zip(channels, wire.values, strict=True)))

    def event(self, body: bytes) -> EventItem:
        wire = _EVENT.decode(body)
        info = self.dictionary.events.get(wire.id)
        name = info.name if info else f"0x{wire.id:08x}"
        try:
            text = info.format.format(**wire.args) if info else str(wire.args)
        except (KeyError, ValueError, IndexError, TypeError):  # arguments that do not fit the format
            text = f"{info.format if info else ''} {wire.args}"
        if wire.suppressed:
            text += f" [{wire.suppressed} suppressed]"
        return EventItem(wire.id, name, wire.severity, Stamp(wire.boot, wire.seconds, wire.utc), text,
                         dict(wire.args) if isinstance(wire.args, dict) else {})

    def verdict(self, body: bytes) -> CommandResult:
        wire = _VERDICT.decode(body)
        name = self.dictionary.opcode_names.get(wire.opcode, f"0x{wire.opcode:08x}")
        return CommandResult(wire.seq, wire.opcode, name, wire.reason, wire.completion, wire.detail)
