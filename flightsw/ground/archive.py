"""SQLite archive of a pass: every raw frame and every decoded value, with ground receive time.

Why SQLite: one file the operator can copy, query and replay later; safe against a crash of the
ground station (WAL journal). All database work runs on one dedicated thread, so the live view's
event loop never waits for the disk. The frame table is bounded (oldest rows pruned) so an
unattended station cannot fill its disk.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (id INTEGER PRIMARY KEY, rx_time REAL NOT NULL,
    direction TEXT NOT NULL, raw BLOB NOT NULL, note TEXT);
CREATE TABLE IF NOT EXISTS vals (id INTEGER PRIMARY KEY, frame_id INTEGER, rx_time REAL NOT NULL,
    source TEXT NOT NULL, name TEXT NOT NULL, value, unit TEXT, boot INTEGER, seconds REAL);
CREATE INDEX IF NOT EXISTS vals_time ON vals(rx_time);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, frame_id INTEGER, rx_time REAL NOT NULL,
    boot INTEGER, seconds REAL, name TEXT, severity TEXT, text TEXT);
CREATE TABLE IF NOT EXISTS responses (id INTEGER PRIMARY KEY, frame_id INTEGER, rx_time REAL NOT NULL,
    seq INTEGER, opcode INTEGER, name TEXT, reason TEXT, completion TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS uplink (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

DEFAULT_MAX_FRAMES = 1_000_000


FILE_COUNTER_ROW = "file_counter"


class Archive:
    """Thread-confined SQLite archive with async and blocking entry points."""

    def __init__(self, path: str | Path, max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        self.path = Path(path)
        self.max_frames = max_frames
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ground-archive")
        self._db: sqlite3.Connection | None = None
        self._inserts = 0
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._db.commit()

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None
        return self._db

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def call_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return self._executor.submit(fn, *args).result()

    def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.commit()
                self._db.close()
                self._db = None
        self._executor.submit(shut).result()
        self._executor.shutdown(wait=True)

    # -- writes (run on the archive thread) -----------------------------------------------------
    def store_frame(self, rx_time: float, direction: str, raw: bytes, note: str,
                    values: Iterable[tuple[str, str, Any, str, int | None, float | None]],
                    events: Iterable[tuple[int | None, float | None, str, str, str]],
                    responses: Iterable[tuple[int, int, str, str, str, str]]) -> int:
        db = self.db
        cur = db.execute("INSERT INTO frames(rx_time, direction, raw, note) VALUES (?,?,?,?)",
                         (rx_time, direction, raw, note))
        frame_id = int(cur.lastrowid or 0)
        db.executemany(
            "INSERT INTO vals(frame_id, rx_time, source, name, value, unit, boot, seconds) VALUES (?,?,?,?,?,?,?,?)",
            [(frame_id, rx_time, src, name, _sql_value(v), unit, boot, sec)
             for src, name, v, unit, boot, sec in values])
        db.executemany(
            "INSERT INTO events(frame_id, rx_time, boot, seconds, name, severity, text) VALUES (?,?,?,?,?,?,?)",
            [(frame_id, rx_time, *e) for e in events])
        db.executemany(
            "INSERT INTO responses(frame_id, rx_time, seq, opcode, name, reason, completion, detail) "
            "VALUES (?,?,?,?,?,?,?,?)", [(frame_id, rx_time, *r) for r in responses])
        db.commit()
        self._inserts += 1
        if self._inserts % 1000 == 0:
            self._prune()
        return frame_id

    def _prune(self) -> None:
        row = self.db.execute("SELECT MAX(id) FROM frames").fetchone()
        if row and row[0] and row[0] > self.max_frames:
            cutoff = row[0] - self.max_frames
            for table in ("vals", "events", "responses"):
                self.db.execute(f"DELETE FROM {table} WHERE frame_id <= ?", (cutoff,))
            self.db.execute("DELETE FROM frames WHERE id <= ?", (cutoff,))
            self.db.commit()

    def _counter_row(self, key_id: int) -> str:
        """Each key has its own counter (as on board). Key 0 keeps the row of the single counter
        older archives had, so an existing station continues where it was."""
        return "counter" if key_id == 0 else f"counter.{key_id}"

    def last_counter(self, key_id: int = 0) -> int:
        row = self.db.execute("SELECT value FROM uplink WHERE key=?", (self._counter_row(key_id),)).fetchone()
        return int(row[0]) if row else 0

    def next_counter(self, at_least: int = 0, key_id: int = 0, limit: int | None = None) -> int:
        """Reserve the next uplink counter of a key (persisted before the command is sent).

        Above ``limit`` nothing is reserved and ValueError says so (the caller explains what to do)."""
        counter = max(self.last_counter(key_id), at_least) + 1
        if limit is not None and counter > limit:
            raise ValueError(f"counter {counter} of key {key_id} is above {limit}")
        self.db.execute("INSERT OR REPLACE INTO uplink(key, value) VALUES (?, ?)",
                        (self._counter_row(key_id), counter))
        self.db.commit()
        return counter

    def raise_counter(self, floor: int, key_id: int = 0) -> None:
        """Never go below a counter the satellite reports as used (e.g. after a lost database)."""
        if self.last_counter(key_id) < floor:
            self.db.execute("INSERT OR REPLACE INTO uplink(key, value) VALUES (?, ?)",
                            (self._counter_row(key_id), floor))
            self.db.commit()

    def next_file_counter(self, at_least: int = 0) -> int:
        """Reserve the next file-PDU uplink counter (one counter for all keys, as on board).

        Kept here and not beside the downloads: every ground process using this archive (live
        view, CLI commands, a fresh downloads folder) then draws from one counter, and SQLite's
        write lock makes the read-increment-write of two processes serialise."""
        db = self.db
        if db.in_transaction:
            db.commit()
        db.execute("BEGIN IMMEDIATE")  # takes the write lock before reading: no two processes share a value
        try:
            row = db.execute("SELECT value FROM uplink WHERE key=?", (FILE_COUNTER_ROW,)).fetchone()
            counter = max(int(row[0]) if row else 0, at_least) + 1
            db.execute("INSERT OR REPLACE INTO uplink(key, value) VALUES (?, ?)", (FILE_COUNTER_ROW, counter))
            db.commit()
        except BaseException:
            db.rollback()
            raise
        return counter

    # -- queries -------------------------------------------------------------------------------
    def values_since(self, since: float) -> list[tuple[Any, ...]]:
        return self.db.execute(
            "SELECT rx_time, source, name, value, unit, boot, seconds FROM vals WHERE rx_time >= ? ORDER BY id",
            (since,)).fetchall()

    def latest_value(self, name: str) -> tuple[float, Any] | None:
        """(receive time, value) of the newest archived sample of ``name``, or None."""
        row = self.db.execute("SELECT rx_time, value FROM vals WHERE name = ? ORDER BY id DESC LIMIT 1",
                              (name,)).fetchone()
        return None if row is None else (float(row[0]), row[1])

    def export_csv(self, since: float) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["rx_time_utc", "source", "name", "value", "unit", "boot", "seconds_since_boot"])
        import datetime as _dt

        for rx_time, source, name, value, unit, boot, seconds in self.values_since(since):
            stamp = _dt.datetime.fromtimestamp(rx_time, _dt.UTC).isoformat(timespec="milliseconds")
            writer.writerow([stamp, source, name, value, unit, boot, seconds])
        return out.getvalue()


def _sql_value(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str | bytes):
        return value
    return repr(value)
