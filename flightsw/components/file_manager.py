"""File management by command (cFS "FM" style): list, delete, move out of quarantine, downlink.

Why: uploads land in the CFDP quarantine and stayed there; files on board could be neither seen
nor removed nor fetched from the ground. This component lets an operator do that within the
configured roots only (``[files]``): every path is checked lexically by ``file_policy`` (no
``..``, no absolute path outside a root) and on disk by ``file_ops`` (no symlink anywhere, no
device file, checked on the opened descriptor so a swap between check and use is caught).
A refusal is a ``PathRefused`` subclass whose ``reason`` goes down in the ``refused`` event and
the command's failure detail. Every action is an event and counted. Disk work runs on the
component's own worker thread, never on the loop.

Config::

    [files]
    roots = { configs = "uploads/configs", sequences = "uploads/sequences", ... }  # under data_dir
    destinations = ["configs", "sequences", "tables", "software"]  # where MOVE may put uploads
    max_listing = 64           # entries a listing reports (the total is always given)

With ``[filetransfer]`` the CFDP quarantine is the root ``quarantine`` (the only MOVE source).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from flightsw.app import Subsystem
from flightsw.components import file_ops, file_policy
from flightsw.components.file_policy import FileRef, NotADestination, PathRefused
from flightsw.config import ConfigError
from flightsw.core.atomic import atomic_write
from flightsw.core.component import (
    Arg,
    CommandFailure,
    Component,
    Counter,
    CounterSet,
    Event,
    command,
)
from flightsw.core.events import Severity
from flightsw.core.ports import FILE_DOWNLINK, FileDownlink
from flightsw.core.types import BOOL, STRING, U8

if TYPE_CHECKING:
    from flightsw.app import Satellite

WORKER = "file-manager"
QUARANTINE = "quarantine"
FM_BASE_ID = 0x00A0
PATH = STRING(file_policy.MAX_PATH_LEN)


class FileManager(Component):
    """Lists, deletes, moves (out of quarantine) and downlinks files under the configured roots."""

    lists = Counter("Directory listings made")
    deletes = Counter("Files deleted")
    moves = Counter("Uploads moved out of quarantine")
    downlinks = Counter("Files queued for downlink")
    refusals = Counter("File commands refused (path policy, missing file, checksum)")

    listed = Event(Severity.INFO, "Listed {path}: {shown} of {total} entries{via}", throttle=None)
    entry = Event(Severity.INFO, "{path}/{name} {kind} {size} B mtime {mtime}", throttle=None)
    deleted = Event(Severity.INFO, "Deleted {path} ({size} B)", throttle=None)
    moved = Event(Severity.INFO, "Moved {source} to {dest} ({size} B, sha256 {sha256})", throttle=None)
    downlink_queued = Event(Severity.INFO, "File {path} queued for downlink as {name} ({size} B, "
                            "transfer {transfer_id})", throttle=None)
    refused = Event(Severity.WARNING, "File command {action} refused ({reason}): {path}: {detail}",
                    throttle=(10, 60.0))

    def __init__(self, roots: dict[str, Path], destinations: tuple[str, ...], spool: Path, *,
                 max_listing: int = 64, listing_events: int = 16, max_downlink_bytes: int = 16 << 20,
                 name: str = "fm", base_id: int = FM_BASE_ID) -> None:
        super().__init__(name, base_id)
        for root in roots:
            file_policy.check_root_name(root)
        missing = [d for d in destinations if d not in roots]
        if missing:
            raise ValueError(f"destinations {missing} are not roots ({sorted(roots)})")
        self.roots = {k: Path(v).absolute() for k, v in roots.items()}
        self._pure_roots = {k: PurePosixPath(v) for k, v in self.roots.items()}
        self.destinations = destinations
        self.spool = spool
        self.max_listing = max_listing
        self.listing_events = listing_events
        self.max_downlink_bytes = max_downlink_bytes
        self.downlink: FileDownlink | None = None
        self.stats = CounterSet(self)
        self._spool_seq = itertools.count(1)

    def use_downlink(self, downlink: FileDownlink) -> None:
        self.downlink = downlink

    def setup(self) -> None:
        self.ctx.supervisor.add_service(f"{self.name}.prepare", self._prepare, critical=False)
        self.ctx.rate_group("slow").add(f"{self.name}.telemetry", self.stats.publish)

    async def _prepare(self) -> None:
        """Create the roots and empty the spool (links left by a reboot mid-queue)."""
        def prepare() -> None:
            for path in [*self.roots.values(), self.spool]:
                path.mkdir(parents=True, exist_ok=True)
            for leftover in self.spool.iterdir():
                leftover.unlink(missing_ok=True)

        await self._io(prepare)

    async def _io(self, fn: Any, *args: Any) -> Any:
        return await self.ctx.workers.run_io(WORKER, fn, *args)

    def _parse(self, action: str, path: str) -> FileRef:
        try:
            return file_policy.parse(path, self._pure_roots)
        except PathRefused as exc:
            raise self._refuse(action, exc) from None

    def _refuse(self, action: str, exc: PathRefused) -> CommandFailure:
        self.stats.inc("refusals")
        self.refused.emit(action=action, reason=exc.reason, path=exc.path[:60], detail=exc.detail[:80])
        return CommandFailure(f"{exc.reason}: {exc.detail}")

    async def _guarded(self, action: str, fn: Any, *args: Any) -> Any:
        try:
            return await self._io(fn, *args)
        except PathRefused as exc:
            raise self._refuse(action, exc) from None

    # -- commands -------------------------------------------------------------------------------
    @command(args=[Arg("path", PATH, doc="root/dir, e.g. quarantine or sequences/old"),
                   Arg("to_file", BOOL, doc="downlink the listing as a JSON file instead of events")],
             doc="List a directory under the configured roots (sorted by name, capped at max_listing).",
             timeout=30.0, name="LIST")
    async def list_directory(self, path: str, to_file: bool) -> None:
        ref = self._parse("LIST", path)
        entries, total = await self._guarded("LIST", file_ops.list_dir, self.roots, ref, self.max_listing)
        self.stats.inc("lists")
        shown = str(ref)
        if to_file:
            body = json.dumps({"path": shown, "total": total, "entries": [e.to_json() for e in entries]},
                              indent=1).encode()
            spool = self.spool / f"{next(self._spool_seq)}.listing"
            await self._io(lambda: atomic_write(spool, body, fsync=False))
            try:
                await self._send(spool, "_".join(("listing", ref.root, *ref.parts)) + ".json", "LIST", shown)
            finally:
                await self._io(spool.unlink, True)
            self.listed.emit(path=shown, shown=len(entries), total=total, via=" (as a file)")
            return
        for item in entries[:self.listing_events]:
            self.entry.emit(path=shown, name=item.name, kind=item.kind, size=item.size, mtime=round(item.mtime))
        self.listed.emit(path=shown, shown=min(len(entries), self.listing_events), total=total, via="")

    @command(args=[Arg("path", PATH, doc="root/file to remove")],
             doc="Delete one regular file under the roots (a quarantined file's arrival record too).")
    async def delete(self, path: str) -> None:
        ref = self._parse("DELETE", path)
        if not ref.parts:
            raise self._refuse("DELETE", file_policy.NotARegularFile(path, "a root cannot be deleted"))
        size = await self._guarded("DELETE", file_ops.delete, self.roots, ref)
        self.stats.inc("deletes")
        self.deleted.emit(path=str(ref), size=size)

    @command(args=[Arg("source", PATH, doc="quarantine/<file>"),
                   Arg("dest", PATH, doc="destination root (keeps the name) or root/new_name"),
                   Arg("replace", BOOL, doc="replace an existing file of that name (atomically)")],
             doc="Move a verified upload (SHA-256 matches its arrival record) out of quarantine.",
             timeout=60.0)
    async def move(self, source: str, dest: str, replace: bool) -> None:
        src = self._parse("MOVE", source)
        if src.root != QUARANTINE or len(src.parts) != 1:
            raise self._refuse("MOVE", NotADestination(source, "the source must be quarantine/<file>"))
        if QUARANTINE not in self.roots:
            raise self._refuse("MOVE", NotADestination(source, "no quarantine: [filetransfer] not configured"))
        target = self._parse("MOVE", dest)
        if target.root not in self.destinations:
            raise self._refuse("MOVE", NotADestination(
                dest, f"{target.root} is not a destination ({', '.join(self.destinations)})"))
        if not target.parts:
            target = FileRef(target.root, (src.name,))
        size, sha256 = await self._guarded("MOVE", file_ops.move_verified, self.roots, src, target, replace)
        self.stats.inc("moves")
        self.moved.emit(source=str(src), dest=str(target), size=size, sha256=sha256[:16])

    @command(args=[Arg("path", PATH, doc="root/file to send"),
                   Arg("priority", U8, range=(0, 9), doc="lower goes first (imaging thumbnails use 2)")],
             doc="Queue any regular file under the roots for downlink (CFDP).", timeout=60.0)
    async def downlink_file(self, path: str, priority: int) -> None:
        ref = self._parse("DOWNLINK_FILE", path)
        spool = self.spool / f"{next(self._spool_seq)}.file"
        size = await self._guarded("DOWNLINK_FILE", file_ops.snapshot, self.roots, ref, self.spool,
                                   spool.name, self.max_downlink_bytes)
        try:
            await self._send(spool, ref.name, "DOWNLINK_FILE", str(ref), priority, size)
        finally:
            await self._io(spool.unlink, True)

    async def _send(self, source: Path, dest_name: str, action: str, shown: str, priority: int = 5,
                    size: int | None = None) -> None:
        if self.downlink is None:
            self.stats.inc("refusals")
            raise CommandFailure("no file downlink: [filetransfer] not configured")
        transfer_id = await self.downlink.put(source, dest_name, priority)
        self.stats.inc("downlinks")
        if size is not None:
            self.downlink_queued.emit(path=shown, name=dest_name, size=size, transfer_id=transfer_id)


def build_file_manager(sat: Satellite) -> None:
    """Subsystem builder (the ``files`` entry point): with ``[files]`` in the config."""
    section = sat.config.files
    if section is None:
        return
    from flightsw.filetransfer.settings import entity_config_from

    data = sat.config.data_dir
    roots = {name: (Path(rel) if Path(rel).is_absolute() else data / rel) for name, rel in section.roots.items()}
    entity = entity_config_from(sat.config)
    if entity is not None:
        roots[QUARANTINE] = entity.quarantine_dir
    try:
        manager = FileManager(roots, tuple(section.destinations), data / "fm_spool",
                              max_listing=section.max_listing, listing_events=section.listing_events,
                              max_downlink_bytes=int(section.max_downlink_mb * (1 << 20)),
                              base_id=section.base_id)
    except ValueError as exc:
        raise ConfigError(f"files: {exc}") from None
    sat.add(manager)
    sat.ports.connect(FILE_DOWNLINK, manager.use_downlink, by=manager.name)


SUBSYSTEM = Subsystem("files", build_file_manager, order=35)

__all__ = ["FileManager", "QUARANTINE", "SUBSYSTEM", "build_file_manager"]
