"""Tables, cFS style: a typed block of settings loaded as a whole, validated as a whole, activated
atomically, with the previous version kept for a one-command revert.

Why tables and not parameters: some settings only make sense together (a watch-point names a
channel, its thresholds and its response; a parameter table sets many values at once). Changing
them one command at a time would leave the satellite running half-edited rules between commands,
and a power cut in the middle would keep them. A table is replaced in one step or not at all.

Buffers of one table (cFS TBL services' model):

* **active**: what the owner uses now; persisted as ``<dir>/active/<name>.json``;
* **previous**: the active table before the last activation; ``<dir>/previous/<name>.json``;
  ``revert`` swaps it back in;
* **staged**: a table loaded from a file (``<dir>/uploads/<file>``) and validated, waiting for
  ``activate``; lost at a reboot (only the active and previous tables are persisted).

Files are JSON (msgspec, the table's own Struct: unknown keys refused). Activation writes the
previous file then the active file, each with :func:`flightsw.core.atomic.atomic_write`, then
swaps the owner's in-memory table and calls its ``on_activate``: a power cut at any instant
leaves a complete old or new active file, never a mix. At boot a missing active file means the
default table (from the mission config); an unreadable or invalid one is reported and the
default is used, never a half-trusted table.

The file operations block (write, fsync, rename): the table service runs them on the storage
worker. This module has no component machinery and no event loop; ``flightsw.components.tables``
offers it to the ground as commands and events.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec

from flightsw.core.atomic import atomic_write

T = TypeVar("T")

#: a table's name: ``component.table`` like a dictionary item
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
#: a file name under the uploads or dumps directory: no directory part, no hidden file
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_TABLE_BYTES = 64 * 1024  # a table is settings, not data: bigger is a mistake


class TableError(ValueError):
    """A table operation refused; the message is one line naming the table and the problem."""


@dataclass(frozen=True)
class TableDef(Generic[T]):
    """What an owner registers: the table's type, its default and its rules.

    ``validate`` raises ``ValueError`` with a one-line reason for a table that decodes but must
    not run (checks across entries, names that must exist on this satellite). ``on_activate``
    receives every newly active table (at registration too); it must not fail: all checking
    belongs in ``validate``.
    """

    name: str
    kind: type[T]
    default: T
    validate: Callable[[T], None] | None = None
    on_activate: Callable[[T], None] | None = None
    doc: str = ""


class Table(Generic[T]):
    """One registered table and its three buffers (active, previous, staged)."""

    def __init__(self, definition: TableDef[T], directory: Path, fsync: bool = True) -> None:
        if not TABLE_NAME.match(definition.name):
            raise ValueError(f"table name {definition.name!r} is not 'component.table'")
        self.definition = definition
        self.name = definition.name
        self.directory = directory
        self.fsync = fsync
        self.active: T = definition.default
        self.active_source = "default"
        self.previous: T | None = None
        self.staged: T | None = None
        self.staged_from = ""
        self.activations = 0

    # -- paths ----------------------------------------------------------------------------------
    @property
    def active_path(self) -> Path:
        return self.directory / "active" / f"{self.name}.json"

    @property
    def previous_path(self) -> Path:
        return self.directory / "previous" / f"{self.name}.json"

    # -- coding -----------------------------------------------------------------------------------
    def encode(self, table: T) -> bytes:
        return msgspec.json.format(msgspec.json.encode(table), indent=2) + b"\n"

    def decode(self, data: bytes, where: str) -> T:
        """A table from JSON, checked in full: type, then the owner's rules."""
        if len(data) > MAX_TABLE_BYTES:
            raise TableError(f"{self.name}: {where} is {len(data)} bytes, more than {MAX_TABLE_BYTES}")
        try:
            table = msgspec.json.decode(data, type=self.definition.kind)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise TableError(f"{self.name}: {where}: {_one_line(exc)}") from None
        self.check(table, where)
        return table

    def check(self, table: T, where: str) -> None:
        if self.definition.validate is not None:
            try:
                self.definition.validate(table)
            except ValueError as exc:
                raise TableError(f"{self.name}: {where}: {_one_line(exc)}") from None

    @staticmethod
    def crc(data: bytes) -> int:
        return zlib.crc32(data) & 0xFFFFFFFF

    @property
    def active_crc(self) -> int:
        """CRC-32 of the active table's encoding: identifies its content in telemetry."""
        return self.crc(self.encode(self.active))

    # -- life cycle (blocking: call from the storage worker or at start-up) ---------------------
    def boot_load(self) -> list[str]:
        """Read the persisted active and previous tables; problems are returned, never raised."""
        problems: list[str] = []
        for path, slot in ((self.active_path, "active"), (self.previous_path, "previous")):
            if not path.exists():
                continue
            try:
                table = self.decode(path.read_bytes(), f"stored {slot} table")
            except OSError as exc:
                problems.append(f"{self.name}: stored {slot} table unreadable: {exc.strerror}; ignored")
                continue
            except TableError as exc:
                problems.append(f"{exc}; ignored")
                continue
            if slot == "active":
                self.active, self.active_source = table, "stored"
            else:
                self.previous = table
        self._announce()
        return problems

    def stage(self, data: bytes, where: str) -> T:
        """Decode and validate ``data``; on success it becomes the staged table."""
        table = self.decode(data, where)
        self.staged, self.staged_from = table, where
        return table

    def revalidate(self) -> T:
        """Validate the staged table again (the satellite may have changed since it was loaded)."""
        if self.staged is None:
            raise TableError(f"{self.name}: no staged table (LOAD one first)")
        self.check(self.staged, self.staged_from)
        return self.staged

    def activate(self) -> T:
        """Make the staged table active: validated again, persisted, swapped in; the old one kept."""
        table = self.revalidate()
        old = self.active
        self._persist(self.previous_path, old)
        self._persist(self.active_path, table)
        self.previous, self.active = old, table
        self.active_source = self.staged_from
        self.staged, self.staged_from = None, ""
        self.activations += 1
        self._announce()
        return table

    def revert(self) -> T:
        """Swap the previous table back in (the current one becomes the previous one)."""
        if self.previous is None:
            raise TableError(f"{self.name}: no previous table to revert to")
        old, table = self.active, self.previous
        self.check(table, "previous table")
        self._persist(self.previous_path, old)
        self._persist(self.active_path, table)
        self.previous, self.active = old, table
        self.active_source = "reverted"
        self.activations += 1
        self._announce()
        return table

    def abort(self) -> None:
        if self.staged is None:
            raise TableError(f"{self.name}: no staged table")
        self.staged, self.staged_from = None, ""

    def _persist(self, path: Path, table: T) -> None:
        atomic_write(path, self.encode(table), fsync=self.fsync)

    def _announce(self) -> None:
        if self.definition.on_activate is not None:
            self.definition.on_activate(self.active)


class TableRegistry:
    """Every table of the satellite by name, and the directories their files live in."""

    def __init__(self, directory: Path, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        self.tables: dict[str, Table[Any]] = {}
        self.problems: list[str] = []

    @property
    def upload_dir(self) -> Path:
        """Where LOAD reads table files (an uploaded file is moved here by the ground)."""
        return self.directory / "uploads"

    @property
    def dump_dir(self) -> Path:
        """Where DUMP writes table files (for the ground to download)."""
        return self.directory / "dumps"

    def register(self, definition: TableDef[T]) -> Table[T]:
        """Add a table and load its persisted buffers (blocking, at start-up: from ``setup``)."""
        if definition.name in self.tables:
            raise ValueError(f"duplicate table {definition.name}")
        table = Table(definition, self.directory, self.fsync)
        self.tables[definition.name] = table
        self.problems.extend(table.boot_load())
        return table

    def get(self, name: str) -> Table[Any]:
        table = self.tables.get(name)
        if table is None:
            known = ", ".join(sorted(self.tables)) or "none"
            raise TableError(f"no table {name!r} (tables: {known})")
        return table

    def file(self, directory: Path, name: str) -> Path:
        """A file directly under ``directory``: any path, hidden name or link out is refused."""
        if not FILE_NAME.match(name) or name in (".", ".."):
            raise TableError(f"file name {name!r}: expected a plain file name (letters, digits, _ . -)")
        path = directory / name
        if path.is_symlink():
            raise TableError(f"file {name!r} is a symbolic link")
        return path

    def read_upload(self, name: str) -> bytes:
        path = self.file(self.upload_dir, name)
        try:
            with open(path, "rb", opener=_no_follow) as handle:
                return handle.read(MAX_TABLE_BYTES + 1)
        except FileNotFoundError:
            raise TableError(f"no file {name!r} in {self.upload_dir}") from None
        except OSError as exc:
            raise TableError(f"file {name!r}: {exc.strerror}") from None

    def write_dump(self, table: Table[Any], name: str) -> Path:
        path = self.file(self.dump_dir, name)
        atomic_write(path, table.encode(table.active), fsync=self.fsync)
        return path


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
