"""CCSDS Space Packets as carried in the AX.25 information field.

Why: space packets give every kind of traffic its own APID and sequence count, so the ground can
tell what a packet is and whether packets were lost, independent of the link layer underneath.
Layout (big-endian), see docs/protocol.md:

  telemetry   primary header (6) | time stamp (8)            | user data | CRC-16 (2)
  telecommand primary header (6) | key id (1) + counter (4)   | body + MAC | CRC-16 (2)

The CRC is CRC-16/CCITT-FALSE over every preceding byte of the packet; it protects the packet end
to end, whatever link carries it. Several packets may follow each other in one frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import crcmod.predefined
from spacepackets.ccsds.spacepacket import (
    MAX_SEQ_COUNT,
    PacketType,
    SequenceFlags,
    SpacePacketHeader,
)

crc16 = crcmod.predefined.mkPredefinedCrcFun("crc-ccitt-false")

PRIMARY_HEADER_LEN = 6
TM_SECONDARY_LEN = 8  # U16 boot count, U32 seconds since boot, U16 fraction (1/65536 s)
TC_SECONDARY_LEN = 5  # U8 key id, U32 counter
CRC_LEN = 2
MAX_PACKET_LEN = 65536 + PRIMARY_HEADER_LEN


class Apid(IntEnum):
    """One application process id per kind of traffic."""

    COMMAND = 0x010  # uplink: authenticated telecommands
    VERDICT = 0x011  # command verdicts and completions
    BEACON = 0x012  # fixed-layout beacon (see beacon.py / docs/beacon.ksy)
    HOUSEKEEPING = 0x013  # real-time telemetry
    EVENT = 0x014  # event records
    STORED = 0x015  # stored (recorded) telemetry played back
    FILE = 0x016  # reserved for file transfer PDUs


class PacketError(ValueError):
    """A packet that cannot be built or decoded (too large, truncated, bad CRC, unknown type)."""


class CrcMismatch(PacketError):
    """A received packet whose CRC does not match: corrupted on the way."""


class MalformedPacket(PacketError):
    """A received packet that is not a well-formed space packet (truncated, wrong version...)."""


@dataclass(frozen=True)
class TimeStamp:
    """Spacecraft time: boot count and seconds since that boot (UTC is not known on board)."""

    boot: int
    seconds: float

    def pack(self) -> bytes:
        whole = int(self.seconds)
        fraction = int((self.seconds - whole) * 65536) & 0xFFFF
        return struct.pack(">HIH", self.boot & 0xFFFF, whole & 0xFFFFFFFF, fraction)

    @classmethod
    def unpack(cls, raw: bytes) -> TimeStamp:
        boot, whole, fraction = struct.unpack(">HIH", raw[:TM_SECONDARY_LEN])
        return cls(boot, whole + fraction / 65536)


@dataclass(frozen=True)
class Packet:
    """A decoded space packet (CRC already checked and stripped)."""

    packet_type: PacketType
    apid: int
    seq_count: int
    secondary_header: bytes
    user_data: bytes
    raw: bytes  # the whole packet as received, CRC included

    @property
    def stamp(self) -> TimeStamp:
        if self.packet_type != PacketType.TM:
            raise PacketError("only telemetry packets carry a time stamp")
        return TimeStamp.unpack(self.secondary_header)


def build(
    packet_type: PacketType, apid: int, seq_count: int, secondary_header: bytes, user_data: bytes
) -> bytes:
    """Assemble one packet and append its CRC."""
    data_field_len = len(secondary_header) + len(user_data) + CRC_LEN
    if data_field_len > 65536:
        raise PacketError(f"packet data field of {data_field_len} bytes exceeds 65536")
    header = SpacePacketHeader(
        packet_type,
        apid=apid,
        seq_count=seq_count % (MAX_SEQ_COUNT + 1),
        data_len=data_field_len - 1,
        sec_header_flag=True,
        seq_flags=SequenceFlags.UNSEGMENTED,
    ).pack()
    body = bytes(header) + bytes(secondary_header) + bytes(user_data)
    return body + struct.pack(">H", crc16(body))


class PacketBuilder:
    """Builds telemetry packets with one sequence count per APID (14 bits, wrapping)."""

    def __init__(self, max_packet_len: int) -> None:
        self.max_packet_len = max_packet_len
        self._seq: dict[int, int] = {}

    def next_seq(self, apid: int) -> int:
        seq = self._seq.get(apid, 0)
        self._seq[apid] = (seq + 1) % (MAX_SEQ_COUNT + 1)
        return seq

    def telemetry(self, apid: int, user_data: bytes, stamp: TimeStamp, max_len: int | None = None) -> bytes:
        """A TM packet; refuses one that could never fit into a frame (files use CFDP).
        ``max_len`` overrides the limit (file PDUs travel in the link's larger file frames)."""
        size = PRIMARY_HEADER_LEN + TM_SECONDARY_LEN + len(user_data) + CRC_LEN
        limit = self.max_packet_len if max_len is None else max_len
        if size > limit:
            raise PacketError(
                f"packet for APID 0x{apid:03x} is {size} bytes, larger than the "
                f"{limit}-byte frame; split it or send it as a file"
            )
        return build(PacketType.TM, apid, self.next_seq(apid), stamp.pack(), user_data)


def split_packets(data: bytes) -> tuple[list[Packet], list[PacketError]]:
    """Decode the packets concatenated in one frame's information field.

    Returns the good packets and the errors (CrcMismatch or MalformedPacket). Decoding stops at the first
    broken packet, because after a corrupted length field the boundaries are unknown.
    """
    packets: list[Packet] = []
    errors: list[PacketError] = []
    data = bytes(data)
    offset = 0
    while offset < len(data):
        rest = data[offset:]
        if len(rest) < PRIMARY_HEADER_LEN:
            errors.append(MalformedPacket(f"truncated packet header ({len(rest)} bytes)"))
            break
        header = SpacePacketHeader.unpack(rest[:PRIMARY_HEADER_LEN])
        total = header.packet_len
        if header.ccsds_version != 0:
            errors.append(MalformedPacket(f"CCSDS version {header.ccsds_version} is not 0"))
            break
        if total > len(rest):
            errors.append(MalformedPacket(f"truncated packet: header says {total} bytes, {len(rest)} present"))
            break
        raw = rest[:total]
        offset += total
        (crc,) = struct.unpack(">H", raw[-CRC_LEN:])
        if crc16(raw[:-CRC_LEN]) != crc:
            errors.append(CrcMismatch(f"CRC mismatch on APID 0x{header.apid:03x}"))
            break
        sec_len = TM_SECONDARY_LEN if header.packet_type == PacketType.TM else TC_SECONDARY_LEN
        if not header.sec_header_flag or total < PRIMARY_HEADER_LEN + sec_len + CRC_LEN:
            errors.append(MalformedPacket(f"packet on APID 0x{header.apid:03x} lacks its secondary header"))
            break
        packets.append(
            Packet(
                packet_type=header.packet_type,
                apid=header.apid,
                seq_count=header.seq_count,
                secondary_header=raw[PRIMARY_HEADER_LEN : PRIMARY_HEADER_LEN + sec_len],
                user_data=raw[PRIMARY_HEADER_LEN + sec_len : -CRC_LEN],
                raw=raw,
            )
        )
    return packets, errors
