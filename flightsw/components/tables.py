"""The table service: the ground's commands on every registered table (cFS TBL services).

Tables themselves live in ``flightsw.core.tables`` (buffers, files, atomic activation); owners
register theirs through ``ctx.tables`` in ``setup``. This component names the table in each
command, so one set of commands serves every table: LOAD a file from the uploads directory into
the staged buffer (decoded and validated as a whole), VALIDATE it again, ACTIVATE it (persisted
atomically, the old one kept), REVERT to the previous table, ABORT the staged one, DUMP the
active table to a file for the ground. Every step is an event; a refusal is a command failure
whose reason names the table and the problem. File work runs on the storage worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flightsw.core.component import (
    Arg,
    Channel,
    CommandFailure,
    Component,
    Counter,
    CounterSet,
    Event,
    command,
)
from flightsw.core.events import Severity
from flightsw.core.tables import Table, TableError
from flightsw.core.types import STRING, U8, U32

STORAGE_RESOURCE = "storage"
R = TypeVar("R")

TABLE_ARG = Arg("table", STRING(40), doc="Table name, component.table (e.g. modes.watchpoints)")
FILE_ARG = Arg("file", STRING(64), doc="Plain file name in the tables' uploads (LOAD) or dumps (DUMP) directory")


class TableService(Component):
    """Load, validate, activate, revert and dump the satellite's tables."""

    tables = Channel(U8, doc="Registered tables", update="on_change")
    last_table = Channel(STRING(40), doc="Table of the last activation or revert", update="on_change")
    last_crc = Channel(U32, doc="CRC-32 of that table's active content", update="on_change")
    activations = Counter("Tables activated or reverted since boot")
    refusals = Counter("Table commands refused (decode, validation, missing buffer)")

    loaded = Event(Severity.INFO, "Table {table} loaded from {file} and validated; ACTIVATE to use it", throttle=None)
    validated = Event(Severity.INFO, "Table {table}: staged table valid", throttle=None)
    activated = Event(Severity.WARNING, "Table {table} activated from {source} (crc {crc:#010x})", throttle=None)
    reverted = Event(Severity.WARNING, "Table {table} reverted to the previous table (crc {crc:#010x})", throttle=None)
    aborted = Event(Severity.INFO, "Table {table}: staged table dropped", throttle=None)
    dumped = Event(Severity.INFO, "Table {table} dumped to {file} (crc {crc:#010x})", throttle=None)
    refused = Event(Severity.WARNING, "Table command refused: {reason}", throttle=(10, 60.0))
    store_problem = Event(Severity.WARNING, "Stored table ignored: {detail}", throttle=None)

    def __init__(self, name: str = "tbl", base_id: int = 0x000B) -> None:
        super().__init__(name, base_id)
        self.stats = CounterSet(self)
        self._reported = 0

    def setup(self) -> None:
        self.ctx.rate_group("slow").add(f"{self.name}.telemetry", self.publish)

    def publish(self) -> None:
        registry = self.ctx.tables
        # problems of tables registered by setups that ran after ours: reported once, here
        for problem in registry.problems[self._reported:]:
            self.store_problem.emit(detail=problem[:160])
        self._reported = len(registry.problems)
        self.tables.set(len(registry.tables))
        self.stats.publish()

    async def _do(self, table_name: str, action: Callable[[Table[Any]], R]) -> tuple[Table[Any], R]:
        """Run ``action`` on the named table on the storage worker; a refusal is a command failure."""
        try:
            table = self.ctx.tables.get(table_name.strip())
            result = await self.ctx.workers.run_io(STORAGE_RESOURCE, action, table)
        except TableError as exc:
            self.stats.inc("refusals")
            self.refused.emit(reason=str(exc)[:160])
            # the ground sees 80 characters: the command already names the table
            raise CommandFailure(str(exc).removeprefix(f"{table_name.strip()}: ")) from None
        return table, result

    def _changed(self, table: Table[Any]) -> int:
        crc = table.active_crc
        self.stats.inc("activations")
        self.last_table.set(table.name[:40])
        self.last_crc.set(crc)
        return crc

    @command(args=[TABLE_ARG, FILE_ARG], timeout=30.0,
             doc="Read a table file from the uploads directory, decode and validate it into the staged buffer.")
    async def load(self, table: str, file: str) -> None:
        registry = self.ctx.tables

        def stage(t: Table[Any]) -> None:
            t.stage(registry.read_upload(file), file)

        found, _ = await self._do(table, stage)
        self.loaded.emit(table=found.name, file=file)

    @command(args=[TABLE_ARG], doc="Validate the staged table again against the satellite as it is now.")
    async def validate(self, table: str) -> None:
        found, _ = await self._do(table, lambda t: t.revalidate())
        self.validated.emit(table=found.name)

    @command(args=[TABLE_ARG], timeout=30.0,
             doc="Make the staged table active: validated again, persisted atomically, the old one kept.")
    async def activate(self, table: str) -> None:
        found, _ = await self._do(table, lambda t: t.activate())
        crc = self._changed(found)
        self.activated.emit(table=found.name, source=found.active_source[:60], crc=crc)

    @command(args=[TABLE_ARG], timeout=30.0, doc="Go back to the table that was active before the last activation.")
    async def revert(self, table: str) -> None:
        found, _ = await self._do(table, lambda t: t.revert())
        crc = self._changed(found)
        self.reverted.emit(table=found.name, crc=crc)

    @command(args=[TABLE_ARG], doc="Drop the staged table.")
    async def abort(self, table: str) -> None:
        found, _ = await self._do(table, lambda t: t.abort())
        self.aborted.emit(table=found.name)

    @command(args=[TABLE_ARG, FILE_ARG], timeout=30.0,
             doc="Write the active table to a file in the dumps directory (JSON, the upload format).")
    async def dump(self, table: str, file: str) -> None:
        registry = self.ctx.tables
        found, _ = await self._do(table, lambda t: registry.write_dump(t, file))
        self.dumped.emit(table=found.name, file=file, crc=found.active_crc)
