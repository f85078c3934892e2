"""Bounded, append-only record log for telemetry and events.

Each record is framed as ``magic(2) | length(u32) | crc32(u32) | payload``, so a record torn by a
power cut or a kill is detected on open and cut off (only the record being written is lost). The
log is split into segments; when the total size passes the limit, the oldest segments are
deleted, so the log can never fill the card (LightSail-1 froze on a 32 MB file).

Telemetry and events are appended as numbered records ``{"n": seq, "k": kind, "v": value}``:
the sequence number only grows (it continues from the newest record after a reboot and does
not depend on the clock, so a clock step cannot reorder the log), which lets playback select
records by number and the ground see which ones it still lacks.
"""

from __future__ import annotations

import bisect
import errno
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

REC_MAGIC = b"\xf5\x5a"
REC_HEADER = struct.Struct(">2sII")
SEGMENT_RE = re.compile(r"^records-(\d{8})\.log$")
MAX_RECORD = 1 << 20
# Closed segments waiting for the next sync; beyond this (sync failing or not running) the oldest
# is fsynced at rotation instead, so descriptors never pile up.
MAX_UNSYNCED_SEGMENTS = 8


@dataclass
class RecoveryReport:
    segments: int
    records: int
    truncated_bytes: int  # bytes cut from the torn tail of the newest segment
    deleted_segments: int
    last_record: Any = None  # the newest valid record (decoded), None when the log is empty
    damaged_regions: int = 0  # corrupt frames skipped in the newest segment (their records lost)


def frame(payload: bytes) -> bytes:
    return REC_HEADER.pack(REC_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _frame_end(data: bytes, pos: int) -> int | None:
    """End offset of the valid frame starting at ``pos``, None when there is none there."""
    if pos + REC_HEADER.size > len(data):
        return None
    magic, length, crc = REC_HEADER.unpack_from(data, pos)
    end = pos + REC_HEADER.size + int(length)
    if magic != REC_MAGIC or length > MAX_RECORD or end > len(data):
        return None
    if zlib.crc32(data[pos + REC_HEADER.size : end]) != crc:
        return None
    return end


def scan(data: bytes) -> tuple[list[bytes], int]:
    """Valid records from the start of ``data`` and the offset where validity ends (strict: the
    first bad frame ends the scan; the power-cut campaign checks segments with it)."""
    out: list[bytes] = []
    pos = 0
    while (end := _frame_end(data, pos)) is not None:
        out.append(data[pos + REC_HEADER.size : end])
        pos = end
    return out, pos


def scan_resync(data: bytes) -> tuple[list[bytes], int, int]:
    """Every valid record of ``data``, resyncing past damage: after a bad frame (a flipped bit, a
    bad card block) the next magic that starts a frame whose CRC checks is where reading goes on,
    so a corrupt frame loses itself only, not the rest of its segment. Returns the records, the
    end of the last valid one (what follows it is a torn tail) and the damaged regions skipped."""
    out: list[bytes] = []
    pos = last_end = skipped = 0
    damaged = False
    while pos + REC_HEADER.size <= len(data):
        end = _frame_end(data, pos)
        if end is None:
            damaged = True
            pos = data.find(REC_MAGIC, pos + 1)
            if pos < 0:
                break
            continue
        if damaged:
            skipped += 1
            damaged = False
        out.append(data[pos + REC_HEADER.size : end])
        pos = last_end = end
    return out, last_end, skipped


class RecordLog:
    """Append msgpack records (on the loop: a buffered write and a flush into the OS); ``sync``
    runs on the storage worker thread.

    The two threads share the open segment, so a lock guards every use of the file object and is
    held only for in-memory work and a flush: ``sync`` takes duplicates of the descriptors under it
    and fsyncs them outside it, so an fsync on a slow SD card never holds an append (the loop), and
    a rotation can no longer close the file under a running sync. A segment closed by a rotation
    keeps a duplicate descriptor until the next sync has made it durable.
    """

    def __init__(self, directory: Path, segment_bytes: int = 1 << 20, max_bytes: int = 64 << 20) -> None:
        if segment_bytes <= 0 or max_bytes < segment_bytes:
            raise ValueError("record log needs 0 < segment_bytes <= max_bytes")
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self._fh: BinaryIO | None = None
        self._current: Path | None = None
        self._current_size = 0
        self.records_written = 0
        self.bytes_written = 0
        self.segments_deleted = 0
        self._closed_bytes: int | None = None  # sizes of the segments before the open one
        self._lock = threading.Lock()
        self.write_errors = 0  # appends refused by the OS (full, read-only or failing storage)
        self._rotated_fds: list[int] = []  # segments closed since the last sync, not yet fsynced
        self.next_seq = 0  # number of the next numbered record (continues after a reboot)
        self._first_seq: dict[str, int | None] = {}  # segment name -> its first record number
        # the last segment read_numbered decoded: (name, size, records, their numbers)
        self._decoded_cache: tuple[str, int, list[tuple[int, str, Any]], list[int]] | None = None

    # -- segments ---------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        if not self.directory.exists():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := SEGMENT_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"records-{number:08d}.log"

    def open(self) -> RecoveryReport:
        """Recover: cut the torn tail of the newest segment (the bytes after its last valid frame; a
        corrupt frame before that is skipped, not cut with everything after it), enforce the size
        bound, open for append."""
        self.directory.mkdir(parents=True, exist_ok=True)
        segments = self.segments()
        truncated = damaged = 0
        records = 0
        last_record: Any = None
        if segments:
            newest = segments[-1]
            data = newest.read_bytes()
            good, end, damaged = scan_resync(data)
            records = len(good)
            if good:
                last_record = msgpack.unpackb(good[-1], raw=False, strict_map_key=False)
            elif len(segments) > 1:  # just rotated: the previous segment holds the newest record
                older, _, _ = scan_resync(segments[-2].read_bytes())
                if older:
                    last_record = msgpack.unpackb(older[-1], raw=False, strict_map_key=False)
            if end < len(data):
                truncated = len(data) - end
                with open(newest, "r+b") as fh:
                    fh.truncate(end)
                    fh.flush()
                    os.fsync(fh.fileno())
            self._current = newest
            self._current_size = end
            self.next_seq = self._recover_seq(good, segments[:-1])
        else:
            self._current = self._segment_path(1)
            self._current_size = 0
        self._fh = open(self._current, "ab", buffering=0)
        deleted = self._enforce_limit()
        return RecoveryReport(len(self.segments()), records, truncated, deleted, last_record, damaged)

    def _rotate(self) -> None:
        assert self._current is not None and self._fh is not None
        self._fh.flush()
        if len(self._rotated_fds) >= MAX_UNSYNCED_SEGMENTS:  # no sync for long: do not pile up fds
            oldest = self._rotated_fds.pop(0)
            try:
                os.fsync(oldest)
            finally:
                os.close(oldest)
        self._rotated_fds.append(os.dup(self._fh.fileno()))
        self._fh.close()
        match = SEGMENT_RE.match(self._current.name)
        assert match is not None  # the current segment is always a name this log made
        number = int(match.group(1)) + 1
        self._current = self._segment_path(number)
        self._current_size = 0
        self._fh = open(self._current, "ab", buffering=0)
        self._enforce_limit()

    def _enforce_limit(self) -> int:
        deleted = 0
        segments = self.segments()
        total = sum(p.stat().st_size for p in segments)
        while total > self.max_bytes - self.segment_bytes and len(segments) > 1:
            oldest = segments.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink()
            deleted += 1
        self.segments_deleted += deleted
        # Kept as a running figure so telemetry can read the log's size without touching the disk.
        self._closed_bytes = total - (self._current.stat().st_size if self._current in segments else 0)
        return deleted

    def _recover_seq(self, newest: list[bytes], older: list[Path]) -> int:
        """The next record number: one past the last numbered record (newest segment first)."""
        payloads = newest
        remaining = list(older)
        while True:
            for payload in reversed(payloads):
                seq = _seq_of(payload)
                if seq is not None:
                    return seq + 1
            if not remaining:
                return 0
            payloads, _, _ = scan_resync(remaining.pop().read_bytes())

    # -- writing and reading ----------------------------------------------------------------
    def append_numbered(self, kind: str, value: Any, met: float | None = None) -> int:
        """Append ``value`` as the next numbered record of ``kind``, stamped with mission elapsed
        time ``met`` when given (readers order by number and MET, never by UTC, which a time
        correction can step backward); returns its number."""
        seq = self.next_seq
        record: dict[str, Any] = {"n": seq, "k": kind, "v": value}
        if met is not None:
            record["m"] = round(met, 3)
        self.append(record)
        self.next_seq = seq + 1
        return seq

    def append(self, record: Any) -> None:
        payload = msgpack.packb(record, use_bin_type=True)
        if len(payload) > MAX_RECORD:
            raise ValueError(f"record of {len(payload)} bytes exceeds {MAX_RECORD}")
        framed = frame(payload)
        with self._lock:
            if self._fh is None:
                raise RuntimeError("record log is not open")
            if self._current_size and self._current_size + len(framed) > self.segment_bytes:
                self._rotate()
            self._write(framed)  # unbuffered, into the OS: survives a process kill; fsync() for power cuts
            self._current_size += len(framed)
            self.records_written += 1
            self.bytes_written += len(framed)

    def _write(self, framed: bytes) -> None:
        """Write one whole frame or nothing: after an error (a full or read-only card) the segment is
        cut back to its last whole record and the error raised, so the record is not written later
        by a buffer behind a torn frame (which made later records unreadable and numbers repeat)."""
        assert self._fh is not None
        done = 0
        try:
            while done < len(framed):
                n = self._fh.write(framed[done:])
                if not n:
                    raise OSError(errno.ENOSPC, "short write")
                done += n
        except OSError:
            self.write_errors += 1
            if done:
                try:
                    os.ftruncate(self._fh.fileno(), self._current_size)
                except OSError:  # the next open() cuts the torn tail instead
                    pass
            raise

    def sync(self) -> None:
        """Make everything appended so far durable (fsync), without holding appends meanwhile."""
        with self._lock:
            fds, self._rotated_fds = self._rotated_fds, []
            if self._fh is not None:
                self._fh.flush()
                fds.append(os.dup(self._fh.fileno()))
        first_error: OSError | None = None
        for fd in fds:  # every descriptor is closed, even after an fsync error (a worn card)
            try:
                os.fsync(fd)
            except OSError as exc:
                first_error = first_error or exc
            finally:
                os.close(fd)
        if first_error is not None:
            raise first_error

    def close(self) -> None:
        try:
            self.sync()
        finally:
            with self._lock:
                if self._fh is not None:
                    self._fh.close()
                    self._fh = None

    def total_bytes(self) -> int:
        """Bytes held by the log, counting the open segment's buffered tail as written, so the
        figure depends on what was recorded, not on when the OS buffer was flushed. Once opened it
        is kept up to date without I/O (it is read every second for telemetry)."""
        if self._closed_bytes is None:  # not opened here: read the directory
            return sum(p.stat().st_size for p in self.segments())
        return self._closed_bytes + self._current_size

    def first_seq(self, segment: Path) -> int | None:
        """Number of the first numbered record of a segment (cached: closed segments never change)."""
        key = segment.name
        if key in self._first_seq and segment != self._current:
            return self._first_seq[key]
        found: int | None = None
        try:
            with open(segment, "rb") as fh:
                head = fh.read(REC_HEADER.size)
                if len(head) == REC_HEADER.size:
                    magic, length, _ = REC_HEADER.unpack(head)
                    if magic == REC_MAGIC and length <= MAX_RECORD:
                        found = _seq_of(fh.read(length))
        except FileNotFoundError:
            return None
        if segment != self._current or found is not None:
            self._first_seq[key] = found
        return found

    def read_numbered(self, first: int, last: int, limit: int = 1000) -> list[tuple[int, str, Any]]:
        """Up to ``limit`` numbered records with ``first <= n <= last``, oldest first, as
        (n, kind, value). Blocking (reads segments): call it on the storage worker. The records of
        the segment read last are kept decoded, so a playback reading on in chunks decodes each
        record once."""
        segments = self.segments()
        firsts = [self.first_seq(p) for p in segments]
        self._first_seq = {p.name: f for p, f in zip(segments, firsts, strict=True)}
        out: list[tuple[int, str, Any]] = []
        for i, seg in enumerate(segments):
            later = [f for f in firsts[i + 1:] if f is not None]
            if later and later[0] <= first:
                continue  # every record of this segment is before `first`
            start = firsts[i]
            if start is not None and start > last:
                break
            records, numbers = self._decoded(seg)
            for record in records[bisect.bisect_left(numbers, first):]:
                if record[0] > last:
                    return out
                out.append(record)
                if len(out) >= limit:
                    return out
        return out

    def _decoded(self, segment: Path) -> tuple[list[tuple[int, str, Any]], list[int]]:
        """The numbered records of a segment and their numbers (cached while the file is unchanged)."""
        try:
            data = segment.read_bytes()
        except FileNotFoundError:  # deleted by the size bound meanwhile
            return [], []
        cached = self._decoded_cache
        if cached is not None and cached[0] == segment.name and cached[1] == len(data):
            return cached[2], cached[3]
        records: list[tuple[int, str, Any]] = []
        good, _, _ = scan_resync(data)
        for payload in good:
            record = msgpack.unpackb(payload, raw=False, strict_map_key=False)
            n = record.get("n") if isinstance(record, dict) else None
            if isinstance(n, int):
                records.append((n, str(record.get("k")), record.get("v")))
        numbers = [r[0] for r in records]
        self._decoded_cache = (segment.name, len(data), records, numbers)
        return records, numbers

    def read_all(self) -> Iterator[Any]:
        """Every valid record, oldest first (a corrupt frame is skipped, a torn tail ends its segment)."""
        for seg in self.segments():
            good, _, _ = scan_resync(seg.read_bytes())
            for payload in good:
                yield msgpack.unpackb(payload, raw=False, strict_map_key=False)


def _seq_of(payload: bytes) -> int | None:
    """The number of a numbered record's payload (None for other records or garbage)."""
    try:
        record = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException):
        return None
    n = record.get("n") if isinstance(record, dict) else None
    return n if isinstance(n, int) else None
