"""The dictionary: every component's declarations collected under stable numeric ids.

Ids are ``base_id << 16 | local_id`` where the local id is derived from the item's name (or given
explicitly), so adding or reordering declarations never renumbers existing items. The content hash
lets the ground refuse to talk with a mismatched dictionary. Exports are generated from this one
source, so flight and ground cannot disagree.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flightsw.core.component import (
    Arg,
    Channel,
    CommandDecl,
    Component,
    DeclaredItem,
    Event,
    Parameter,
)
from flightsw.core.telemetry import PacketDef, packet_id
from flightsw.core.types import F32


class DictionaryError(ValueError):
    pass


@dataclass
class Dictionary:
    components: dict[str, Component] = field(default_factory=dict)
    commands: dict[int, DeclaredItem] = field(default_factory=dict)
    channels: dict[int, DeclaredItem] = field(default_factory=dict)
    events: dict[int, DeclaredItem] = field(default_factory=dict)
    parameters: dict[int, DeclaredItem] = field(default_factory=dict)
    packets: dict[int, PacketDef] = field(default_factory=dict)
    by_name: dict[str, DeclaredItem] = field(default_factory=dict)

    @classmethod
    def build(cls, components: Iterable[Component]) -> Dictionary:
        d = cls()
        bases: dict[int, str] = {}
        for comp in components:
            if comp.name in d.components:
                raise DictionaryError(f"duplicate component name {comp.name}")
            if comp.base_id in bases:
                raise DictionaryError(f"components {bases[comp.base_id]} and {comp.name} share base_id 0x{comp.base_id:04x}")
            bases[comp.base_id] = comp.name
            d.components[comp.name] = comp
            for decl in type(comp).declarations.values():
                d._add(DeclaredItem(comp, decl, comp.item_id(decl)))
        return d

    def _add(self, item: DeclaredItem) -> None:
        table = {"channel": self.channels, "event": self.events, "parameter": self.parameters,
                 "command": self.commands}[item.decl.kind]
        if item.id in table:
            other = table[item.id]
            raise DictionaryError(
                f"id 0x{item.id:08x} of {item.name} collides with {other.name}; give one an explicit id="
            )
        if item.name in self.by_name and self.by_name[item.name].decl.kind == item.decl.kind:
            raise DictionaryError(f"duplicate name {item.name}")
        table[item.id] = item
        self.by_name.setdefault(item.name, item)

    def add_packet(self, name: str, rate_hz: float, channel_names: Sequence[str]) -> PacketDef:
        ids = []
        singles = []
        for cname in channel_names:
            item = self.by_name.get(cname)
            if item is None or not isinstance(item.decl, Channel):
                raise DictionaryError(f"packet {name}: unknown channel {cname!r}")
            ids.append(item.id)
            singles.append(item.decl.type is F32)
        pdef = PacketDef(name, packet_id(name), rate_hz, tuple(ids), tuple(channel_names), tuple(singles))
        if pdef.id in self.packets:
            raise DictionaryError(f"packet {name}: id collides with {self.packets[pdef.id].name}")
        self.packets[pdef.id] = pdef
        return pdef

    def lookup(self, name: str, kind: type) -> DeclaredItem:
        table = {Channel: self.channels, Event: self.events, Parameter: self.parameters, CommandDecl: self.commands}[kind]
        for item in table.values():
            if item.name == name:
                return item
        raise KeyError(f"no {kind.__name__.lower()} named {name!r}")

    def command(self, name: str) -> DeclaredItem:
        """The command called ``component.NAME`` (KeyError naming it if there is none)."""
        return self.lookup(name, CommandDecl)

    def channel(self, name: str) -> DeclaredItem:
        return self.lookup(name, Channel)

    # -- export -----------------------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        def cmd(item: DeclaredItem) -> dict[str, Any]:
            decl = item.decl_as(CommandDecl)
            return {"name": item.name, "opcode": item.id, "args": [a.to_json() for a in decl.args],
                    "timeout": decl.timeout, "doc": decl.doc}

        def chan(item: DeclaredItem) -> dict[str, Any]:
            decl = item.decl_as(Channel)
            out = {"name": item.name, "id": item.id, "type": decl.type.name, "unit": decl.unit,
                   "limits": decl.limits.to_json(), "update": decl.update, "doc": decl.doc}
            if decl.utc:
                out["utc"] = True  # Unix seconds: ground tools show an ISO time
            return out

        def evt(item: DeclaredItem) -> dict[str, Any]:
            decl = item.decl_as(Event)
            return {"name": item.name, "id": item.id, "severity": decl.severity.name, "format": decl.format,
                    "args": list(decl.arg_names), "throttle": list(decl.throttle) if decl.throttle else None,
                    "doc": decl.doc}

        def prm(item: DeclaredItem) -> dict[str, Any]:
            decl = item.decl_as(Parameter)
            return {"name": item.name, "id": item.id, "type": decl.type.name, "default": decl.default,
                    "range": list(decl.range) if decl.range else None, "doc": decl.doc}

        return {
            "components": [{"name": c.name, "base_id": c.base_id, "type": type(c).__name__,
                            "doc": (type(c).__doc__ or "").strip().split("\n")[0]}
                           for c in sorted(self.components.values(), key=lambda c: c.base_id)],
            "commands": [cmd(i) for _, i in sorted(self.commands.items())],
            "channels": [chan(i) for _, i in sorted(self.channels.items())],
            "events": [evt(i) for _, i in sorted(self.events.items())],
            "parameters": [prm(i) for _, i in sorted(self.parameters.items())],
            "packets": [p.to_json() for _, p in sorted(self.packets.items())],
            "enums": enums_json(),
        }

    def content_hash(self) -> str:
        return _hash(self.content())

    def command_digest(self, opcode: int) -> int | None:
        """The wire definition's digest of the command ``opcode`` (None: no such command)."""
        item = self.commands.get(opcode)
        if item is None:
            return None
        return command_digest(opcode, item.name, item.decl_as(CommandDecl).args)

    def short_hash(self) -> int:
        """32-bit form of the content hash, small enough for the beacon."""
        return int(self.content_hash()[:8], 16)

    def to_json(self, indent: int | None = 2) -> str:
        content = self.content()
        out = {"format": "flightsw-dictionary", "version": 1, "hash": _hash(content), **content}
        return json.dumps(out, indent=indent)


def enums_json() -> dict[str, dict[str, Any]]:
    """The closed sets of names the satellite reports, from their enums: string-valued ones map
    name to the string sent, integer ones (command verdicts) name to the code sent."""
    from flightsw.core.commands import Completion, Reason
    from flightsw.core.enums import CommandStatus, DeviceStatus, LatePolicy, Mode, ResetReason

    sets: dict[str, type[enum.Enum]] = {"Mode": Mode, "ResetReason": ResetReason, "CommandReason": Reason,
                                        "CommandCompletion": Completion, "CommandStatus": CommandStatus,
                                        "DeviceStatus": DeviceStatus, "LatePolicy": LatePolicy}
    return {name: {member.name: member.value for member in cls} for name, cls in sets.items()}


def command_digest(opcode: int, name: str, args: Sequence[Arg]) -> int:
    """32 bits of SHA-256 over what decides a command's meaning on the wire: opcode, name and each
    argument's name, type and range (not the docs). Flight and ground compute it the same way, so a
    command whose definition is identical on both sides can be told apart from one that changed."""
    wire = [opcode, name, [[a.name, a.type.name, [float(x) for x in a.range] if a.range else None] for a in args]]
    canonical = json.dumps(wire, separators=(",", ":"))
    return int(hashlib.sha256(canonical.encode()).hexdigest()[:8], 16)


def _hash(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
