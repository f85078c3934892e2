"""The ground's view of the flight dictionary, loaded from the JSON that ``flightsw dict`` emits.

Why JSON and not the Python components: the ground must decode a satellite whose software it
does not run, from one exported file; the JSON carries ids, types, units, limits and formats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightsw.core.component import Arg, Limits
from flightsw.core.types import type_from_name


class CommandArgumentError(ValueError):
    """A command name or argument that does not match the dictionary."""


@dataclass(frozen=True)
class ChannelInfo:
    id: int
    name: str
    type: str
    unit: str
    limits: Limits
    utc: bool = False  # Unix seconds, shown as an ISO time


@dataclass(frozen=True)
class EventInfo:
    id: int
    name: str
    severity: str
    format: str


@dataclass(frozen=True)
class CommandInfo:
    opcode: int
    name: str
    args: tuple[Arg, ...]
    doc: str


@dataclass
class GroundDictionary:
    hash: str
    commands: dict[str, CommandInfo] = field(default_factory=dict)
    channels: dict[str, ChannelInfo] = field(default_factory=dict)
    events: dict[int, EventInfo] = field(default_factory=dict)
    packets: dict[int, tuple[str, list[str]]] = field(default_factory=dict)
    opcode_names: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> GroundDictionary:
        raw = json.loads(text)
        if raw.get("format") != "flightsw-dictionary":
            raise ValueError("not a flightsw dictionary (missing format: flightsw-dictionary)")
        d = cls(hash=str(raw.get("hash", "")))
        for c in raw["commands"]:
            args = tuple(Arg(a["name"], type_from_name(a["type"]),
                             tuple(a["range"]) if a.get("range") else None, a.get("doc", ""))
                         for a in c["args"])
            d.commands[c["name"]] = CommandInfo(c["opcode"], c["name"], args, c.get("doc", ""))
            d.opcode_names[c["opcode"]] = c["name"]
        for ch in raw["channels"]:
            d.channels[ch["name"]] = ChannelInfo(ch["id"], ch["name"], ch["type"], ch.get("unit", ""),
                                                 Limits(**ch.get("limits", {})), bool(ch.get("utc", False)))
        for e in raw["events"]:
            d.events[e["id"]] = EventInfo(e["id"], e["name"], e["severity"], e["format"])
        for p in raw.get("packets", []):
            from flightsw.core.telemetry import packet_id

            d.packets[packet_id(p["name"])] = (p["name"], list(p["channels"]))
        return d

    @classmethod
    def load(cls, path: str | Path) -> GroundDictionary:
        return cls.from_json(Path(path).read_text())

    def encode_command(self, name: str, assignments: dict[str, str]) -> tuple[int, list[Any]]:
        """Opcode and typed argument list for ``NAME ARG=VALUE ...``; errors name the problem."""
        info = self.commands.get(name)
        if info is None:
            close = [n for n in self.commands if n.lower().endswith(name.lower().split(".")[-1])]
            hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
            raise CommandArgumentError(f"unknown command {name!r}{hint}")
        expected = [a.name for a in info.args]
        extra = set(assignments) - set(expected)
        missing = [a for a in expected if a not in assignments]
        if extra or missing:
            raise CommandArgumentError(
                f"{name} takes {', '.join(expected) or 'no arguments'}; "
                + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(sorted(extra))}"))
        values: list[Any] = []
        for arg in info.args:
            text = assignments[arg.name]
            try:
                kind = arg.type.kind
                if kind == "str":
                    parsed: Any = text
                elif kind == "bool":
                    if text.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(f"{text!r} is not true/false")
                    parsed = text.lower() in ("true", "1")
                elif kind == "float":
                    parsed = float(text)
                else:
                    parsed = int(text, 0)
                values.append(arg.validate(parsed))
            except ValueError as exc:
                raise CommandArgumentError(f"{name} {arg.name}: {exc}") from None
        return info.opcode, values
