"""The beacon: a fixed binary layout any amateur station can decode from a published .ksy.

Why: the beacon is what the world hears from the satellite between passes over our own station,
and what SatNOGS / gr-satellites users decode and upload. A self-describing format (msgpack) would
need our dictionary; a fixed big-endian layout described by a Kaitai Struct file does not. The
layout table below is the single source: the encoder, the ground decoder and the generated
``docs/beacon.ksy`` all come from it, so they cannot disagree.

Physical values are sent as scaled integers; a field whose source is not available is sent as the
"not available" sentinel of its type (max value for unsigned, min value for signed types).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flightsw.core.enums import CommandStatus, Mode, ResetReason, TimeQuality
from flightsw.link import ax25
from flightsw.link.packets import (
    CRC_LEN,
    PRIMARY_HEADER_LEN,
    TM_SECONDARY_LEN,
    Apid,
    PacketBuilder,
    TimeStamp,
)

# 2: last_command_opcode carries the full 32-bit opcode (its low 16 bits left 83 commands 35 values).
# 3: dictionary_hash appended, so the ground sees a dictionary mismatch before it commands.
# 4: mission elapsed time and the UTC quality appended (time across reboots).
BEACON_VERSION = 4

# The codes below are part of the published format: a value, once given a code, keeps it. Every
# value of each enum has one (tested); a stored value no enum knows goes down as 255 (a mode: the
# field's "not available") or 254 (a reset reason).
UNKNOWN_MODE = 255
UNKNOWN_RESET = 254
MODE_CODES: dict[Mode, int] = {Mode.BOOT: 0, Mode.SAFE: 1, Mode.NOMINAL: 2, Mode.DETUMBLE: 4}  # 3: retired
RESET_CODES: dict[ResetReason, int] = {
    ResetReason.FIRST_BOOT: 0, ResetReason.UNEXPECTED: 1, ResetReason.STATE_LOST: 2, ResetReason.COMMANDED: 3,
    ResetReason.SIGTERM: 4, ResetReason.SIGINT: 5, ResetReason.DURATION: 6, ResetReason.SOFTWARE_ERROR: 7,
    ResetReason.WATCHDOG: 8, ResetReason.CRITICAL_SERVICE: 9, ResetReason.FDIR: 10,
    ResetReason.LOSS_OF_CONTACT: 11,
}
STATUS_CODES: dict[CommandStatus, int] = {status: int(status) for status in CommandStatus}
TIME_QUALITY_CODES: dict[TimeQuality, int] = {quality: quality.code for quality in TimeQuality}

#: beacon field -> (Kaitai enum name, value -> code) for the fields that carry an enum
CODED_FIELDS: dict[str, tuple[str, Mapping[Any, int]]] = {
    "mode": ("mode", MODE_CODES),
    "reset_reason": ("reset_reason", RESET_CODES),
    "last_command_status": ("command_status", STATUS_CODES),
    "time_quality": ("time_quality", TIME_QUALITY_CODES),
}


def mode_code(value: object) -> int:
    mode = Mode.parse(value)
    return MODE_CODES[mode] if mode is not None else UNKNOWN_MODE


def reset_code(value: object) -> int:
    reason = ResetReason.parse(value)
    return RESET_CODES[reason] if reason is not None else UNKNOWN_RESET


def code_name(field: str, code: int | None) -> str | None:
    """The enum value a coded field's code stands for (ground side), or None."""
    table = CODED_FIELDS[field][1]
    return next((str(value.name) for value, c in table.items() if c == code), None)


def _codes_doc(table: Mapping[Any, int]) -> str:
    return ", ".join(f"{code} {value.name}" for value, code in sorted(table.items(), key=lambda kv: kv[1]))


@dataclass(frozen=True)
class BeaconField:
    """One beacon field: wire type (struct code), scale from physical unit, unit and meaning."""

    name: str
    code: str  # struct code: B H I b h i
    scale: float
    unit: str
    doc: str


FIELDS: tuple[BeaconField, ...] = (
    BeaconField("version", "B", 1, "", "beacon layout version"),
    BeaconField("mode", "B", 1, "", f"operating mode ({_codes_doc(MODE_CODES)})"),
    BeaconField("boot_count", "H", 1, "", "number of boots"),
    BeaconField("reset_reason", "B", 1, "", f"cause of the last reset ({_codes_doc(RESET_CODES)})"),
    BeaconField("uptime", "I", 1, "s", "seconds since boot"),
    BeaconField("battery_voltage", "H", 1000, "V", "battery voltage"),
    BeaconField("battery_current", "h", 1000, "A", "battery current, positive = charging"),
    BeaconField("battery_temperature", "h", 100, "degC", "battery temperature"),
    BeaconField("rail_3v3_current", "H", 1000, "A", "3.3 V rail current"),
    BeaconField("rail_5v_current", "H", 1000, "A", "5 V rail current"),
    BeaconField("board_temperature", "h", 100, "degC", "flight computer board temperature"),
    BeaconField("radio_temperature", "h", 100, "degC", "transceiver temperature"),
    BeaconField("last_command_opcode", "I", 1, "", "opcode of the last uplinked command (as in the dictionary)"),
    BeaconField("last_command_status", "B", 1, "", f"fate of the last command ({_codes_doc(STATUS_CODES)})"),
    BeaconField("uplink_counter", "I", 1, "", "last accepted uplink counter"),
    BeaconField("commands_executed", "H", 1, "", "commands executed since boot"),
    BeaconField("commands_rejected", "H", 1, "", "commands rejected since boot"),
    BeaconField("auth_failures", "H", 1, "", "uplink packets dropped (auth, replay, CRC, malformed)"),
    BeaconField("frames_received", "H", 1, "", "uplink frames received since boot"),
    BeaconField("frames_sent", "I", 1, "", "downlink frames sent since boot"),
    BeaconField("dictionary_hash", "I", 1, "", "first 32 bits of the flight dictionary's SHA-256 (version 3 on)"),
    BeaconField("met", "I", 1, "s", "mission elapsed time: seconds run since the first boot, across boots (version 4 on)"),
    BeaconField("time_quality", "B", 1, "", f"quality of spacecraft UTC ({_codes_doc(TIME_QUALITY_CODES)}; version 4 on)"),
)
#: fields each version carries: a later version only appends, so an old beacon still decodes
FIELDS_BY_VERSION: dict[int, tuple[BeaconField, ...]] = {2: FIELDS[:-3], 3: FIELDS[:-2], 4: FIELDS}
FIRST_FIELD_OF_VERSION = {"dictionary_hash": 3, "met": 4, "time_quality": 4}

FORMAT = ">6s" + "".join(f.code for f in FIELDS)
PAYLOAD_LEN = struct.calcsize(FORMAT)
PACKET_LEN = PRIMARY_HEADER_LEN + TM_SECONDARY_LEN + PAYLOAD_LEN + CRC_LEN
FRAME_LEN = ax25.HEADER_LEN + PACKET_LEN

_LIMITS = {"B": (0, 0xFF), "H": (0, 0xFFFF), "I": (0, 0xFFFFFFFF),
           "b": (-0x80, 0x7F), "h": (-0x8000, 0x7FFF), "i": (-0x80000000, 0x7FFFFFFF)}


def sentinel(code: str) -> int:
    """The "not available" value of a wire type."""
    low, high = _LIMITS[code]
    return high if low == 0 else low


def _to_wire(field: BeaconField, value: float | None) -> int:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return sentinel(field.code)
    low, high = _LIMITS[field.code]
    raw = round(float(value) * field.scale)
    # Clamp below the sentinel so a real value is never mistaken for "not available".
    if low == 0:
        return max(0, min(high - 1, raw))
    return max(low + 1, min(high, raw))


def dictionary_hash_as_sent(short_hash: int) -> int:
    """The beacon's value for a 32-bit dictionary hash: all-ones is the "not available" sentinel,
    so that one hash goes down one lower (the ground compares through this function too)."""
    return min(short_hash, sentinel("I") - 1)


def encode_payload(callsign: str, values: Mapping[str, float | None]) -> bytes:
    """Beacon user data. Unknown names in ``values`` are an error (a typo would silently vanish)."""
    known = {f.name for f in FIELDS}
    unknown = set(values) - known
    if unknown:
        raise KeyError(f"unknown beacon fields: {sorted(unknown)}")
    merged = dict(values)
    merged["version"] = BEACON_VERSION
    wire = [_to_wire(f, merged.get(f.name)) for f in FIELDS]
    return struct.pack(FORMAT, callsign.ljust(6)[:6].encode("ascii"), *wire)


def build_packet(builder: PacketBuilder, callsign: str, stamp: TimeStamp,
                 values: Mapping[str, float | None]) -> bytes:
    return builder.telemetry(Apid.BEACON, encode_payload(callsign, values), stamp)


def decode_payload(payload: bytes) -> dict[str, float | str | None]:
    """Physical values of a beacon payload of any known version; sentinels decode to None; coded
    fields get a name too; a field an older version does not carry decodes to None."""
    if len(payload) < 7:
        raise ValueError(f"beacon payload is {len(payload)} bytes, expected at least 7 (callsign and version)")
    version = payload[6]
    fields = FIELDS_BY_VERSION.get(version)
    if fields is None:
        raise ValueError(f"beacon version {version} unknown (known: {sorted(FIELDS_BY_VERSION)})")
    fmt = ">6s" + "".join(f.code for f in fields)
    if len(payload) != struct.calcsize(fmt):
        raise ValueError(f"beacon version {version} payload is {len(payload)} bytes, expected {struct.calcsize(fmt)}")
    callsign, *wire = struct.unpack(fmt, payload)
    out: dict[str, float | str | None] = {"callsign": callsign.decode("ascii", "replace").rstrip()}
    out.update(dict.fromkeys(f.name for f in FIELDS[len(fields):]))
    for field, raw in zip(fields, wire, strict=True):
        if raw == sentinel(field.code):
            out[field.name] = None
        else:
            out[field.name] = raw / field.scale if field.scale != 1 else raw
    for name in CODED_FIELDS:  # the enum value's name next to its code, e.g. reset_reason_name
        code = out[name]
        out[f"{name}_name"] = code_name(name, code if isinstance(code, int) else None)
    return out


_KSY_TYPES = {"B": "u1", "H": "u2", "I": "u4", "b": "s1", "h": "s2", "i": "s4"}


def ksy() -> str:
    """Kaitai Struct description of a whole beacon frame as a TNC delivers it (no FCS)."""
    lines = [
        "# Generated by `flightsw dict --format ksy` from flightsw/link/beacon.py. Do not edit.",
        "meta:",
        "  id: flightsw_beacon",
        "  title: flightsw CubeSat beacon (AX.25 UI frame, CCSDS space packet, fixed layout)",
        "  endian: be",
        "doc: |",
        "  One beacon frame as received from a KISS TNC (AX.25 UI frame without flags and FCS).",
        f"  The information field holds one CCSDS space packet on APID 0x{Apid.BEACON:03x} with",
        "  an 8-byte time stamp, the beacon fields and a CRC-16/CCITT-FALSE over the packet.",
        "  A field equal to the maximum (unsigned) or minimum (signed) value means not available.",
        f"  Versions {min(FIELDS_BY_VERSION)} to {BEACON_VERSION} decode: a later version only appends fields.",
        "seq:",
        "  - id: dest_callsign_raw",
        "    size: 6",
        "    process: ror(1)",
        "    type: callsign",
        "  - id: dest_ssid_raw",
        "    type: u1",
        "  - id: src_callsign_raw",
        "    size: 6",
        "    process: ror(1)",
        "    type: callsign",
        "  - id: src_ssid_raw",
        "    type: u1",
        "  - id: ctl",
        "    type: u1",
        "    valid: 0x03",
        "  - id: pid",
        "    type: u1",
        "    valid: 0xf0",
        "  - id: packet",
        "    type: space_packet",
        "instances:",
        "  dest_ssid:",
        "    value: (dest_ssid_raw >> 1) & 0x0f",
        "  src_ssid:",
        "    value: (src_ssid_raw >> 1) & 0x0f",
        "types:",
        "  callsign:",
        "    seq:",
        "      - id: callsign",
        "        size: 6",
        "        type: str",
        "        encoding: ASCII",
        "  space_packet:",
        "    seq:",
        "      - id: ccsds_version",
        "        type: b3",
        "      - id: packet_type",
        "        type: b1",
        "      - id: sec_header_flag",
        "        type: b1",
        "      - id: apid",
        "        type: b11",
        f"        valid: 0x{Apid.BEACON:x}",
        "      - id: seq_flags",
        "        type: b2",
        "      - id: seq_count",
        "        type: b14",
        "      - id: data_length",
        "        type: u2",
        "      - id: time_boot_count",
        "        type: u2",
        "      - id: time_seconds",
        "        type: u4",
        "      - id: time_fraction",
        "        type: u2",
        "        doc: 1/65536 s",
        "      - id: callsign",
        "        size: 6",
        "        type: str",
        "        encoding: ASCII",
    ]
    for field in FIELDS:
        lines += [f"      - id: {field.name}_raw" if field.scale != 1 else f"      - id: {field.name}",
                  f"        type: {_KSY_TYPES[field.code]}"]
        if field.name in CODED_FIELDS:
            lines.append(f"        enum: {CODED_FIELDS[field.name][0]}")
        if field.name in FIRST_FIELD_OF_VERSION:
            lines.append(f"        if: version >= {FIRST_FIELD_OF_VERSION[field.name]}")
        lines.append(f"        doc: {field.doc}" + (f" [{field.unit}]" if field.unit else ""))
        if field.name == "version":
            lines += ["        valid:", f"          min: {min(FIELDS_BY_VERSION)}", f"          max: {BEACON_VERSION}"]
    lines += ["      - id: crc", "        type: u2", "        doc: CRC-16/CCITT-FALSE over the packet"]
    lines += ["    instances:"]
    for field in FIELDS:
        if field.scale != 1:
            lines += [f"      {field.name}:",
                      f"        value: {field.name}_raw / {float(field.scale)}",
                      f"        doc: {field.unit}"]
    lines.append("enums:")
    for enum_name, table in CODED_FIELDS.values():
        lines.append(f"  {enum_name}:")
        lines += [f"    {code}: {value.name.lower()}" for value, code in sorted(table.items(), key=lambda kv: kv[1])]
    return "\n".join(lines) + "\n"
