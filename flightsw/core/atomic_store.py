"""Crash-safe storage of a small value: two slots, each replaced atomically, newest valid wins.

A write goes to the older slot through a temporary file (write, fsync, rename, fsync of the
directory), so a power cut at any instant leaves the previous value intact in the other slot. Each
slot carries a magic, a schema version, a sequence number, the payload length and a CRC-32; on load
the valid slot with the highest sequence number wins, and a corrupt slot is reported, not trusted.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgpack

from flightsw.core.atomic import atomic_write

MAGIC = b"FSWS"
HEADER = struct.Struct(">4sHQII")  # magic, schema version, sequence, length, crc32


class StoreCorrupt(Exception):
    pass


class SnapshotStore:
    """A value kept in memory and saved whole to an :class:`AtomicStore`, blocking or off the loop.

    What a store does when the card refuses a save (full, read-only, failing): count it, keep the
    last reason, tell ``on_save_error``; never raise, so the satellite keeps flying and the next
    save writes the value kept in memory. Subclasses say what is saved (:meth:`snapshot`)."""

    def __init__(self, store: AtomicStore) -> None:
        self.store = store
        self.save_errors = 0
        self.last_save_error: str | None = None
        self.on_save_error: Callable[[OSError], None] | None = None
        self._writer: Callable[[Callable[[], None]], Any] | None = None
        self._lock = asyncio.Lock()

    def snapshot(self) -> Any:
        raise NotImplementedError

    def use_writer(self, writer: Callable[[Callable[[], None]], Any]) -> None:
        """Route saves through a worker (``await writer(fn)`` runs ``fn`` off the loop)."""
        self._writer = writer

    def save_blocking(self) -> None:
        """Persist now (blocking); a storage error is counted and reported, not raised."""
        try:
            self.store.save(self.snapshot())
        except OSError as exc:
            self._save_failed(exc)

    async def save(self) -> None:
        """Persist now, off the event loop; returns once the data is on disk."""
        async with self._lock:
            prepared = self.store.prepare(self.snapshot())
            try:
                if self._writer is None:
                    self.store.write_blob(prepared)
                else:
                    await self._writer(lambda: self.store.write_blob(prepared))
            except OSError as exc:  # as in save_blocking: counted and reported, not raised
                self._save_failed(exc)

    def _save_failed(self, exc: OSError) -> None:
        self.save_errors += 1
        self.last_save_error = f"{exc.strerror or exc}"
        if self.on_save_error is not None:
            self.on_save_error(exc)


@dataclass
class LoadResult:
    value: Any | None  # None when no valid slot exists
    sequence: int
    problems: list[str]  # human-readable, one per bad or missing slot


def encode(value: Any, version: int, sequence: int) -> bytes:
    # msgpack ships no type hints; packb always returns bytes.
    payload = cast(bytes, msgpack.packb(value, use_bin_type=True))
    return HEADER.pack(MAGIC, version, sequence, len(payload), zlib.crc32(payload)) + payload


def decode(blob: bytes, version: int) -> tuple[int, Any]:
    if len(blob) < HEADER.size:
        raise StoreCorrupt(f"truncated ({len(blob)} bytes)")
    magic, ver, seq, length, crc = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise StoreCorrupt("bad magic")
    payload = blob[HEADER.size :]
    if len(payload) != length:
        raise StoreCorrupt(f"length {len(payload)} != {length}")
    if zlib.crc32(payload) != crc:
        raise StoreCorrupt("CRC mismatch")
    if ver != version:
        raise StoreCorrupt(f"schema version {ver}, expected {version}")
    return seq, msgpack.unpackb(payload, raw=False, strict_map_key=False)


class AtomicStore:
    """A value (anything msgpack can carry) persisted in ``<path>.a`` / ``<path>.b``."""

    def __init__(self, path: Path, version: int = 1, fsync: bool = True) -> None:
        self.path = Path(path)
        self.version = version
        self.fsync = fsync
        self.slots = (self.path.with_name(self.path.name + ".a"), self.path.with_name(self.path.name + ".b"))
        self.sequence = 0
        self._newest_slot = 1  # so the first write goes to slot a
        self.writes = 0
        # One write at a time: a shutdown's blocking save on the loop thread can meet a save still
        # running on the storage worker; both would pick the same slot and its temporary file.
        self._write_lock = threading.Lock()

    def load(self) -> LoadResult:
        best: tuple[int, int, Any] | None = None
        problems: list[str] = []
        for index, slot in enumerate(self.slots):
            try:
                blob = slot.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                problems.append(f"{slot.name}: {exc}")
                continue
            try:
                seq, value = decode(blob, self.version)
            except (StoreCorrupt, ValueError, msgpack.UnpackException) as exc:
                problems.append(f"{slot.name}: {exc}")
                continue
            if best is None or seq > best[0]:
                best = (seq, index, value)
        if best is None:
            return LoadResult(None, 0, problems)
        self.sequence, self._newest_slot, value = best
        return LoadResult(value, self.sequence, problems)

    def save(self, value: Any) -> None:
        """Blocking: call from a worker thread (or at start-up/shutdown)."""
        self.write_blob(self.prepare(value))

    def prepare(self, value: Any) -> tuple[int, bytes]:
        """Serialise on the caller's thread (cheap), so the value cannot change under the writer."""
        self.sequence += 1
        return self.sequence, encode(value, self.version, self.sequence)

    def write_blob(self, prepared: tuple[int, bytes]) -> None:
        _, blob = prepared
        with self._write_lock:
            target_index = 1 - self._newest_slot
            target = self.slots[target_index]
            atomic_write(target, blob, fsync=self.fsync)
            self._newest_slot = target_index
            self.writes += 1
