"""The flight dictionary as F Prime's JSON dictionary, and the tables the GDS bridge encodes with.

Why: an operations team can run NASA's F Prime GDS (web UI, charts, test API) against this
satellite. The GDS loads the JSON dictionary F Prime's FPP compiler emits (``metadata``,
``typeDefinitions``, ``constants``, ``commands``, ``events``, ``telemetryChannels``,
``parameters``, ``telemetryPacketSets``); this module writes one from ``flightsw dict``'s JSON,
with the same ids and opcodes, and keeps the wire types the bridge (:mod:`flightsw.ground.gds`)
serialises F Prime packets with, so the two cannot disagree.

Mapping (docs/gds.md): channels, commands and parameters keep their names, ids and types
(``STRINGn`` becomes an F Prime ``string`` of size n, ``BOOL`` ``bool``). An event's arguments are
the fields of its format string, each sent as a string already formatted with its field's format
spec, so the GDS shows the same text as the ground station. The beacon's fields are channels of a
``beacon`` component, its coded fields enums; command verdicts and completions are events of a
``ground`` component (F Prime has no verdict packet; its own dispatcher reports by events too).
"""

from __future__ import annotations

import enum
import string
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flightsw.core.commands import Completion, Reason
from flightsw.core.events import Severity
from flightsw.core.types import DataType, type_from_name
from flightsw.link import beacon

#: the F Prime framework version this dictionary follows (its JSON dictionary spec, FPP 3.x)
FRAMEWORK_VERSION = "4.0.0"
DICTIONARY_SPEC_VERSION = "1.0.0"
#: the largest string an event argument carries (longer text is cut)
EVENT_ARG_SIZE = 120
#: component bases the bridge's own items use (16-bit bases; flight components use lower ones)
BEACON_BASE = 0xFFFE
GROUND_BASE = 0xFFFF


class FprimeDictionaryError(ValueError):
    """A flightsw dictionary that cannot be expressed as an F Prime one (the message says why)."""


class Kind(enum.Enum):
    """How a value goes on the F Prime wire."""

    INTEGER = "integer"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"


@dataclass(frozen=True)
class WireType:
    """One F Prime type: its JSON type reference and its big-endian struct code (strings: none)."""

    name: str  # F Prime name: U8..F64, bool, string, or an enum's qualified name
    kind: Kind
    code: str  # struct code; "" for strings
    size: int  # bits for numbers, the maximum length for strings
    signed: bool = False
    allowed: frozenset[int] | None = None  # an enum's values (others do not decode in the GDS)

    def ref(self) -> dict[str, Any]:
        """The type reference as F Prime's dictionary writes it (command arguments, channels, ...)."""
        if self.kind is Kind.STRING:
            return {"name": "string", "kind": "string", "size": self.size}
        if self.kind is Kind.ENUM:
            return {"name": self.name, "kind": "qualifiedIdentifier"}
        if self.kind is Kind.INTEGER:
            return {"name": self.name, "kind": "integer", "size": self.size, "signed": self.signed}
        return {"name": self.name, "kind": self.kind.value, "size": self.size}

    def encode(self, value: Any) -> bytes:
        """Serialise ``value`` as F Prime does (strings: U16 length, then UTF-8 cut to size)."""
        if self.kind is Kind.STRING:
            data = str(value).encode()[: self.size]
            while data:  # never cut inside a UTF-8 sequence
                try:
                    data.decode()
                    break
                except UnicodeDecodeError:
                    data = data[:-1]
            return struct.pack(">H", len(data)) + data
        if self.kind is Kind.BOOL:
            return b"\xff" if value else b"\x00"
        if self.kind is Kind.FLOAT:
            return struct.pack(">" + self.code, float(value))
        if self.allowed is not None and int(value) not in self.allowed:
            raise ValueError(f"{value} is not a value of the enum {self.name}")
        return struct.pack(">" + self.code, int(value))

    def decode(self, data: bytes, offset: int) -> tuple[Any, int]:
        """(value, next offset); struct.error or ValueError on short or bad data."""
        if self.kind is Kind.STRING:
            (length,) = struct.unpack_from(">H", data, offset)
            end = offset + 2 + length
            if end > len(data) or length > self.size:
                raise ValueError(f"string of {length} bytes does not fit")
            return data[offset + 2: end].decode(), end
        if self.kind is Kind.BOOL:
            raw = data[offset]
            if raw not in (0, 0xFF):
                raise ValueError(f"bool byte 0x{raw:02x} is neither 0x00 nor 0xff")
            return raw == 0xFF, offset + 1
        (value,) = struct.unpack_from(">" + self.code, data, offset)
        return value, offset + struct.calcsize(self.code)


_NUMERIC: dict[str, WireType] = {
    "U8": WireType("U8", Kind.INTEGER, "B", 8), "U16": WireType("U16", Kind.INTEGER, "H", 16),
    "U32": WireType("U32", Kind.INTEGER, "I", 32), "U64": WireType("U64", Kind.INTEGER, "Q", 64),
    "I8": WireType("I8", Kind.INTEGER, "b", 8, True), "I16": WireType("I16", Kind.INTEGER, "h", 16, True),
    "I32": WireType("I32", Kind.INTEGER, "i", 32, True), "I64": WireType("I64", Kind.INTEGER, "q", 64, True),
    "F32": WireType("F32", Kind.FLOAT, "f", 32), "F64": WireType("F64", Kind.FLOAT, "d", 64),
    "BOOL": WireType("bool", Kind.BOOL, "B", 8),
}
_STRUCT_TO_NAME = {"B": "U8", "H": "U16", "I": "U32", "b": "I8", "h": "I16", "i": "I32"}


def wire_type(flight_type: DataType) -> WireType:
    """The F Prime type of a flightsw wire type."""
    if flight_type.kind == "str":
        return WireType("string", Kind.STRING, "", flight_type.max_length)
    return _NUMERIC[flight_type.name]


def enum_type(definition: EnumDef) -> WireType:
    rep = _NUMERIC[definition.representation]
    return WireType(definition.name, Kind.ENUM, rep.code, rep.size, rep.signed,
                    frozenset(v for _, v in definition.constants))


@dataclass(frozen=True)
class EnumDef:
    name: str
    representation: str  # U8, U16, ...
    constants: tuple[tuple[str, int], ...]

    def json(self) -> dict[str, Any]:
        return {"kind": "enum", "qualifiedName": self.name,
                "representationType": _NUMERIC[self.representation].ref(),
                "enumeratedConstants": [{"name": n, "value": v} for n, v in self.constants],
                "default": f"{self.name}.{self.constants[0][0]}"}


@dataclass(frozen=True)
class FpChannel:
    id: int
    name: str
    type: WireType


@dataclass(frozen=True)
class FpField:
    """One field of an event's format string: the argument name, its format spec and conversion."""

    name: str
    spec: str
    conversion: str | None

    def render(self, value: Any) -> str:
        """The field's text, as ``str.format`` would put it into the flight's message."""
        if self.conversion == "r":
            value = repr(value)
        elif self.conversion in ("s", "a"):
            value = str(value) if self.conversion == "s" else ascii(value)
        try:
            return format(value, self.spec)
        except (TypeError, ValueError):
            return str(value)


@dataclass(frozen=True)
class FpEvent:
    id: int
    name: str
    severity: str  # F Prime severity name
    format: str  # F Prime format: one {} per field
    fields: tuple[FpField, ...]


@dataclass(frozen=True)
class FpCommand:
    opcode: int
    name: str
    args: tuple[tuple[str, DataType], ...]


#: flightsw severity -> F Prime's (COMMAND, ACTIVITY_LO/HI, WARNING_LO/HI, DIAGNOSTIC, FATAL)
SEVERITIES: dict[str, str] = {
    Severity.DEBUG.name: "DIAGNOSTIC", Severity.INFO.name: "ACTIVITY_HI", Severity.WARNING.name: "WARNING_LO",
    Severity.ERROR.name: "WARNING_HI", Severity.CRITICAL.name: "WARNING_HI", Severity.FATAL.name: "FATAL",
}

#: F Prime's framework types the GDS reads its wire widths from (its defaults, stated explicitly)
FRAMEWORK_ALIASES: dict[str, str] = {
    "FwChanIdType": "U32", "FwEventIdType": "U32", "FwOpcodeType": "U32", "FwPrmIdType": "U32",
    "FwPacketDescriptorType": "U16", "FwTlmPacketizeIdType": "U16", "FwSizeStoreType": "U16",
    "FwTimeContextStoreType": "U8", "FwSizeType": "U64",
}
TIME_BASE = EnumDef("TimeBase", "U16", (("TB_NONE", 0), ("TB_PROC_TIME", 1), ("TB_WORKSTATION_TIME", 2),
                                        ("TB_SC_TIME", 3), ("TB_FPGA_TIME", 4), ("TB_DONT_CARE", 0xFFFF)))
APIDS = EnumDef("ComCfg.Apid", "U16", (("FW_PACKET_COMMAND", 0), ("FW_PACKET_TELEM", 1), ("FW_PACKET_LOG", 2),
                                       ("FW_PACKET_FILE", 3), ("FW_PACKET_PACKETIZED_TLM", 4), ("FW_PACKET_IDLE", 5),
                                       ("FW_PACKET_HAND", 0xFE), ("FW_PACKET_UNKNOWN", 0xFF)))
REASON_ENUM = EnumDef("ground.CommandReason", "U8", tuple((r.name, int(r.value)) for r in Reason))
COMPLETION_ENUM = EnumDef("ground.CommandCompletion", "U8",
                          (("PENDING", 255), *((c.name, int(c.value)) for c in Completion)))

#: the ground component's events: (name, severity, format, argument types)
VERDICT_EVENT = "ground.command_verdict"
COMPLETION_EVENT = "ground.command_completed"
_STR = WireType("string", Kind.STRING, "", EVENT_ARG_SIZE)
_GROUND_EVENTS: tuple[tuple[str, str, str, tuple[tuple[str, WireType], ...]], ...] = (
    (VERDICT_EVENT, "COMMAND", "Command {} #{} accepted on board: {} {}",
     (("name", _STR), ("counter", _NUMERIC["U32"]), ("reason", enum_type(REASON_ENUM)), ("detail", _STR))),
    (COMPLETION_EVENT, "COMMAND", "Command {} #{} completed: {} {}",
     (("name", _STR), ("counter", _NUMERIC["U32"]),
      ("completion", enum_type(COMPLETION_ENUM)), ("detail", _STR))),
    ("ground.command_refused", "WARNING_HI", "Command {} not sent: {}", (("name", _STR), ("detail", _STR))),
    ("ground.command_unanswered", "WARNING_LO", "Command {} #{}: no final answer after the retries",
     (("name", _STR), ("counter", _NUMERIC["U32"]))),
    ("ground.file_uplink_queued", "ACTIVITY_HI", "File {} queued for the satellite by CFDP (upload #{})",
     (("name", _STR), ("transfer", _NUMERIC["U32"]))),
    ("ground.file_uplink_done", "ACTIVITY_HI", "File {} (upload #{}) on board: {}",
     (("name", _STR), ("transfer", _NUMERIC["U32"]), ("condition", _STR))),
    ("ground.file_uplink_failed", "WARNING_HI", "File {} not uploaded: {}", (("name", _STR), ("detail", _STR))),
)


def _beacon_enums() -> dict[str, EnumDef]:
    out: dict[str, EnumDef] = {}
    for field, (enum_name, table) in beacon.CODED_FIELDS.items():
        constants = sorted(((str(value.name), code) for value, code in table.items()), key=lambda c: c[1])
        out[field] = EnumDef(f"beacon.{enum_name}", "U8", tuple(constants))
    return out


def _event_fields(fmt: str) -> tuple[str, tuple[FpField, ...]]:
    """The F Prime format (one ``{}`` per field, literal braces kept doubled) and the fields."""
    parts: list[str] = []
    fields: list[FpField] = []
    for literal, name, spec, conversion in string.Formatter().parse(fmt):
        parts.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is not None:
            parts.append("{}")
            fields.append(FpField(name, spec or "", conversion))
    return "".join(parts), tuple(fields)


def _limits(raw: Mapping[str, float]) -> dict[str, Any] | None:
    low = {k: raw[f"{k}_low"] for k in ("yellow", "red") if f"{k}_low" in raw}
    high = {k: raw[f"{k}_high"] for k in ("yellow", "red") if f"{k}_high" in raw}
    limits: dict[str, Any] = {}
    if low:
        limits["low"] = low
    if high:
        limits["high"] = high
    return limits or None


class FprimeDictionary:
    """The F Prime view of one flight dictionary: encoding tables and the JSON the GDS loads."""

    def __init__(self, flight: Mapping[str, Any], deployment: str = "flightsw") -> None:
        if flight.get("format") != "flightsw-dictionary":
            raise FprimeDictionaryError("not a flightsw dictionary (missing format: flightsw-dictionary)")
        self.deployment = deployment
        self.hash = str(flight.get("hash", ""))
        self.channels: dict[str, FpChannel] = {}
        self.events: dict[str, FpEvent] = {}
        self.commands: dict[int, FpCommand] = {}
        self.enums: list[EnumDef] = [TIME_BASE, APIDS, REASON_ENUM, COMPLETION_ENUM]
        self._json_events: list[dict[str, Any]] = []
        self._json_channels: list[dict[str, Any]] = []
        self._json_commands: list[dict[str, Any]] = []
        self._json_params: list[dict[str, Any]] = []
        self._event_args: dict[str, tuple[tuple[str, WireType], ...]] = {}
        try:
            self._build(flight)
        except FprimeDictionaryError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise FprimeDictionaryError(f"malformed flightsw dictionary: {type(exc).__name__} {exc}") from None

    def _build(self, flight: Mapping[str, Any]) -> None:
        used_ids: dict[str, set[int]] = {"channel": set(), "event": set()}
        for c in flight["commands"]:
            args = tuple((a["name"], type_from_name(a["type"])) for a in c["args"])
            self.commands[int(c["opcode"])] = FpCommand(int(c["opcode"]), c["name"], args)
            self._json_commands.append({
                "name": c["name"], "commandKind": "async", "opcode": int(c["opcode"]),
                "formalParams": [{"name": a["name"], "type": wire_type(type_from_name(a["type"])).ref(), "ref": False,
                                  "annotation": _arg_doc(a)} for a in c["args"]],
                "annotation": c.get("doc", "")})
        for ch in flight["channels"]:
            self._add_channel(int(ch["id"]), ch["name"], wire_type(type_from_name(ch["type"])),
                              ch.get("doc", ""), ch.get("unit", ""), ch.get("limits") or {}, used_ids)
        coded = _beacon_enums()
        self.enums.extend(coded.values())
        for index, field in enumerate(beacon.FIELDS, start=1):
            if field.name in coded:
                ftype = enum_type(coded[field.name])
            elif field.scale != 1:
                ftype = _NUMERIC["F32"]
            else:
                ftype = _NUMERIC[_STRUCT_TO_NAME[field.code]]
            self._add_channel(BEACON_BASE << 16 | index, f"beacon.{field.name}", ftype, field.doc, field.unit, {},
                              used_ids)
        self._add_channel(BEACON_BASE << 16 | 0xFFFF, "beacon.callsign", WireType("string", Kind.STRING, "", 6),
                          "station callsign in the beacon", "", {}, used_ids)
        for e in flight["events"]:
            fp_format, fields = _event_fields(e["format"])
            self._add_event(FpEvent(int(e["id"]), e["name"], SEVERITIES[e["severity"]], fp_format, fields),
                            tuple((f.name, _STR) for f in fields), e.get("doc", ""), used_ids)
        for index, (name, severity, fmt, ground_args) in enumerate(_GROUND_EVENTS, start=1):
            ground_fields = tuple(FpField(arg, "", None) for arg, _ in ground_args)
            self._add_event(FpEvent(GROUND_BASE << 16 | index, name, severity, fmt, ground_fields), ground_args,
                            "reported by the ground station", used_ids)
        for p in flight.get("parameters", []):
            ptype = type_from_name(p["type"])
            self._json_params.append({"name": p["name"], "type": wire_type(ptype).ref(), "id": int(p["id"]),
                                      "default": p.get("default"), "annotation": p.get("doc", "")})

    def _add_channel(self, cid: int, name: str, ftype: WireType, doc: str, unit: str, limits: Mapping[str, float],
                     used: dict[str, set[int]]) -> None:
        if cid in used["channel"]:
            raise FprimeDictionaryError(f"channel {name}: id 0x{cid:08x} used twice")
        used["channel"].add(cid)
        self.channels[name] = FpChannel(cid, name, ftype)
        entry: dict[str, Any] = {"name": name, "type": ftype.ref(), "id": cid, "telemetryUpdate": "always",
                                 "annotation": f"{doc} [{unit}]" if unit else doc}
        fp_limits = _limits(limits)
        if fp_limits is not None and ftype.kind in (Kind.INTEGER, Kind.FLOAT):
            entry["limits"] = fp_limits
        self._json_channels.append(entry)

    def _add_event(self, event: FpEvent, args: tuple[tuple[str, WireType], ...], doc: str,
                   used: dict[str, set[int]]) -> None:
        if event.id in used["event"]:
            raise FprimeDictionaryError(f"event {event.name}: id 0x{event.id:08x} used twice")
        used["event"].add(event.id)
        self.events[event.name] = event
        self._event_args[event.name] = args
        self._json_events.append({
            "name": event.name, "severity": event.severity, "id": event.id, "format": event.format,
            "formalParams": [{"name": n, "type": t.ref(), "ref": False, "annotation": ""} for n, t in args],
            "annotation": doc})

    def event_arg_types(self, name: str) -> tuple[tuple[str, WireType], ...]:
        """The F Prime argument types of the event ``name``, in order."""
        return self._event_args[name]

    def content(self) -> dict[str, Any]:
        """The dictionary as F Prime's FPP writes it (JSON-ready)."""
        aliases = [{"kind": "alias", "qualifiedName": name,
                    "type": {**_NUMERIC[under].ref(), "name": name},
                    "underlyingType": _NUMERIC[under].ref()} for name, under in FRAMEWORK_ALIASES.items()]
        return {
            "metadata": {"deploymentName": self.deployment, "projectVersion": self.hash[:16] or "unknown",
                         "frameworkVersion": FRAMEWORK_VERSION, "libraryVersions": [],
                         "dictionarySpecVersion": DICTIONARY_SPEC_VERSION},
            "typeDefinitions": aliases + [e.json() for e in self.enums],
            "constants": [{"qualifiedName": "FW_SERIALIZE_TRUE_VALUE", "type": _NUMERIC["U8"].ref(), "value": 0xFF},
                          {"qualifiedName": "FW_SERIALIZE_FALSE_VALUE", "type": _NUMERIC["U8"].ref(), "value": 0}],
            "commands": self._json_commands,
            "parameters": self._json_params,
            "events": self._json_events,
            "telemetryChannels": self._json_channels,
            "records": [],
            "containers": [],
            "telemetryPacketSets": [],
        }


def _arg_doc(arg: Mapping[str, Any]) -> str:
    doc = str(arg.get("doc", ""))
    rng = arg.get("range")
    return f"{doc} [{rng[0]}, {rng[1]}]".strip() if rng else doc
