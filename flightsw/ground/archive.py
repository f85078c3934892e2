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
from concurrent.futures import Future, ThreadPoolExecutor
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
CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, seq INTEGER, kind INTEGER NOT NULL,
    ident INTEGER NOT NULL, boot INTEGER NOT NULL, seconds REAL NOT NULL, utc REAL, body BLOB NOT NULL,
    partial INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL, rx_time REAL NOT NULL,
    UNIQUE(kind, ident, boot, seconds));
CREATE INDEX IF NOT EXISTS records_seq ON records(seq);
CREATE TABLE IF NOT EXISTS onboard (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

#: a recorded housekeeping packet or event, as merged into the archive:
#: (seq or None for live, kind, packet/event id, boot, seconds, utc, body, partial, source)
RecordRow = tuple[int | None, int, int, int, float, float | None, bytes, bool, str]
GAP_QUERY = """SELECT seq + 1, next - 1 FROM (SELECT seq, LEAD(seq) OVER (ORDER BY seq) AS next
    FROM (SELECT DISTINCT seq FROM records WHERE seq IS NOT NULL AND seq >= ?)) WHERE next > seq + 1"""

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
        self._record_batches = 0
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

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue work on the archive thread without waiting (in order with every other call)."""
        return self._executor.submit(fn, *args)

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

    # -- recorded data: live and played back, merged (flightsw/ground/records.py) ---------------
    def store_records(self, rows: Iterable[RecordRow], rx_time: float, head: int | None = None) -> tuple[int, int]:
        """Merge records by (kind, id, spacecraft time): a record already archived (live, or played
        back before) is not stored again; it only gains its record number, and a channel subset
        gives way to the whole packet. Returns (new records, duplicates merged)."""
        db = self.db
        new = duplicates = 0
        for seq, kind, ident, boot, seconds, utc, body, partial, source in rows:
            cur = db.execute(
                "INSERT INTO records(seq, kind, ident, boot, seconds, utc, body, partial, source, rx_time) "
                "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(kind, ident, boot, seconds) DO NOTHING",
                (seq, kind, ident, boot, seconds, utc, body, int(partial), source, rx_time))
            if cur.rowcount:
                new += 1
                continue
            duplicates += 1
            db.execute("UPDATE records SET seq = COALESCE(seq, ?), "
                       "body = CASE WHEN partial AND NOT ? THEN ? ELSE body END, partial = partial AND ? "
                       "WHERE kind=? AND ident=? AND boot=? AND seconds=?",
                       (seq, int(partial), body, int(partial), kind, ident, boot, seconds))
        if head is not None:
            db.execute("INSERT INTO onboard(key, value) VALUES ('head', ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)", (head,))
        db.commit()
        self._record_batches += 1
        if self._record_batches % 1000 == 0:
            self._prune_records()
        return new, duplicates

    def _prune_records(self) -> None:
        """Bound the record table like the frame table: the oldest rows beyond ``max_frames`` go
        (their numbers are reported as gaps again; ``gaps --from`` hides them)."""
        row = self.db.execute("SELECT MAX(id) FROM records").fetchone()
        if row and row[0] and row[0] > self.max_frames:
            self.db.execute("DELETE FROM records WHERE id <= ?", (row[0] - self.max_frames,))
            self.db.commit()

    def onboard_head(self) -> int | None:
        """The number the satellite's next record gets, as last reported by a played-back packet."""
        row = self.db.execute("SELECT value FROM onboard WHERE key='head'").fetchone()
        return int(row[0]) if row else None

    def record_gaps(self, first: int = 0) -> list[tuple[int, int]]:
        """Record numbers the archive lacks, as inclusive (first, last) runs from ``first`` up to
        the satellite's last reported head."""
        db = self.db
        gaps = [(int(a), int(b)) for a, b in db.execute(GAP_QUERY, (first,))]
        low = db.execute("SELECT MIN(seq), MAX(seq) FROM records WHERE seq >= ?", (first,)).fetchone()
        head = self.onboard_head()
        if low[0] is None:
            return [(first, head - 1)] if head is not None and head > first else []
        if low[0] > first:
            gaps.insert(0, (first, int(low[0]) - 1))
        if head is not None and head - 1 > low[1]:
            gaps.append((int(low[1]) + 1, head - 1))
        return gaps

    def record_counts(self) -> dict[str, int]:
        """Archived records by kind and source (live, playback), and how many carry a number."""
        counts: dict[str, int] = {}
        for kind, source, n in self.db.execute("SELECT kind, source, COUNT(*) FROM records GROUP BY kind, source"):
            counts[f"{'tlm' if kind == 1 else 'evt'}_{source}"] = int(n)
        counts["numbered"] = int(self.db.execute("SELECT COUNT(*) FROM records WHERE seq IS NOT NULL").fetchone()[0])
        return counts

    def record_keys(self, kind: int) -> set[tuple[int, int, float]]:
        """(id, boot, seconds) of every archived record of a kind (for completeness checks)."""
        return {(int(i), int(b), float(s)) for i, b, s in
                self.db.execute("SELECT ident, boot, seconds FROM records WHERE kind = ?", (kind,))}

    def timeline(self, since_utc: float | None = None) -> list[tuple[Any, ...]]:
        """Merged records in spacecraft time order: (boot, seconds, utc, kind, id, seq, source)."""
        return self.db.execute(
            "SELECT boot, seconds, utc, kind, ident, seq, source FROM records WHERE utc >= ? OR ? IS NULL "
            "ORDER BY boot, seconds", (since_utc, since_utc)).fetchall()

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
