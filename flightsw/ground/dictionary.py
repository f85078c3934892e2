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
from flightsw.core.dictionary import command_digest
from flightsw.core.types import type_from_name


class CommandArgumentError(ValueError):
    """A command name or argument that does not match the dictionary."""


class DictionaryMismatch(CommandArgumentError):
    """The satellite runs another dictionary and this command is not known to be defined alike."""


@dataclass(frozen=True)
class ChannelInfo:
    id: int
    name: str
    type: str
    unit: str
    limits: Limits


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
                                                 Limits(**ch.get("limits", {})))
        for e in raw["events"]:
            d.events[e["id"]] = EventInfo(e["id"], e["name"], e["severity"], e["format"])
        for p in raw.get("packets", []):
            from flightsw.core.telemetry import packet_id

            d.packets[packet_id(p["name"])] = (p["name"], list(p["channels"]))
        return d

    @classmethod
    def load(cls, path: str | Path) -> GroundDictionary:
        return cls.from_json(Path(path).read_text())

    @property
    def short_hash(self) -> int | None:
        """First 32 bits of the dictionary's SHA-256, as the flight side reports it."""
        return int(self.hash[:8], 16) if len(self.hash) >= 8 else None

    def command_digest(self, name: str) -> tuple[int, int]:
        """(opcode, digest of its wire definition), computed as the flight side does."""
        info = self.commands[name]
        return info.opcode, command_digest(info.opcode, info.name, info.args)

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


#: the two commands that find out what may be sent: explicit opcodes, unchanged across versions
CHECK_COMMANDS = frozenset({"cmd.CHECK_COMMAND", "cmd.DICTIONARY_HASH"})


class DictionaryCheck:
    """What the ground knows of the flight dictionary, and which commands it may therefore send.

    Until a beacon (version 3) or the ``cmd.DICTIONARY_HASH`` event says otherwise the dictionaries
    are taken to match. Once the flight's hash is known to differ, a command goes only after the
    satellite confirmed (``cmd.CHECK_COMMAND``) that it defines the command's opcode, name and
    arguments exactly as the ground does; a command it defines differently is refused for good.
    """

    def __init__(self, dictionary: GroundDictionary) -> None:
        self.dictionary = dictionary
        self.flight_hash: int | None = None
        self.same: set[str] = set()
        self.differs: dict[str, str] = {}

    @property
    def mismatch(self) -> bool:
        ground = self.dictionary.short_hash
        return self.flight_hash is not None and ground is not None and self.flight_hash != _as_sent(ground)

    def observe(self, flight_hash: int) -> str | None:
        """Note the flight's 32-bit hash; returns a warning line when it newly differs."""
        flight_hash = _as_sent(flight_hash)
        changed = flight_hash != self.flight_hash
        if changed:
            self.same.clear()
            self.differs.clear()
        self.flight_hash = flight_hash
        if changed and self.mismatch:
            return (f"DICTIONARY MISMATCH: the satellite runs dictionary 0x{flight_hash:08x}, this ground "
                    f"station has 0x{self.dictionary.short_hash or 0:08x}; commands are checked one by one "
                    "(cmd.CHECK_COMMAND) and those defined differently are refused. Export the flight's "
                    "dictionary (flightsw dict) for this ground station.")
        return None

    def needs_check(self, name: str) -> bool:
        return self.mismatch and name not in CHECK_COMMANDS and name not in self.same and name not in self.differs

    def permit(self, name: str) -> None:
        """Raise :class:`DictionaryMismatch` unless ``name`` may be sent now."""
        if not self.mismatch or name in CHECK_COMMANDS or name in self.same:
            return
        why = self.differs.get(name, "not yet confirmed identical on board (cmd.CHECK_COMMAND)")
        raise DictionaryMismatch(f"{name} refused: the satellite's dictionary 0x{self.flight_hash or 0:08x} differs "
                                 f"from the ground's 0x{self.dictionary.short_hash or 0:08x}; {why}")

    def record(self, name: str, identical: bool, detail: str = "") -> None:
        if identical:
            self.same.add(name)
            self.differs.pop(name, None)
        else:
            self.differs[name] = detail or "defined differently on board"


def _as_sent(short_hash: int) -> int:
    from flightsw.link.beacon import dictionary_hash_as_sent

    return dictionary_hash_as_sent(short_hash)
