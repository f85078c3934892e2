"""Crash-safe persistence of file-transfer progress, so transfers survive a reboot.

Two kinds of records, each a small JSON file replaced atomically (temporary file, fsync, rename,
fsync of the directory), so a power cut leaves the old or the new version, never a torn one:

* the outgoing queue (``outgoing.json``): what to send, in which order, how far it got;
* one record per incoming transaction (``incoming/<source>-<seq>.json``): the Metadata PDU and
  the byte ranges already written to the staging file, so a resumed transaction replays them
  instead of asking the sender for them again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flightsw.core.atomic import atomic_write

JOURNAL_VERSION = 1


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` so that ``path`` is always either the old or the new complete file."""
    atomic_write(path, json.dumps({"version": JOURNAL_VERSION, **payload}, sort_keys=True).encode())


def read_json(path: Path) -> dict[str, Any] | None:
    """Load a journal record; a missing, unreadable or foreign-version file counts as absent."""
    try:
        payload = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("version") != JOURNAL_VERSION:
        return None
    return payload


class RangeSet:
    """Sorted, merged half-open byte ranges ``[start, end)`` received so far."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._ranges: list[tuple[int, int]] = []
        for start, end in ranges:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        merged: list[tuple[int, int]] = []
        placed = False
        for cur_start, cur_end in self._ranges:
            if cur_end < start:
                merged.append((cur_start, cur_end))
            elif end < cur_start:
                if not placed:
                    merged.append((start, end))
                    placed = True
                merged.append((cur_start, cur_end))
            else:
                start, end = min(start, cur_start), max(end, cur_end)
        if not placed:
            merged.append((start, end))
        self._ranges = sorted(merged)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return list(self._ranges)

    @property
    def total(self) -> int:
        return sum(end - start for start, end in self._ranges)

    def __len__(self) -> int:
        return len(self._ranges)


@dataclass
class OutgoingRecord:
    """One queued or running downlink/uplink; ``transfer_id`` is also the CFDP sequence number."""

    transfer_id: int
    source: str
    dest_name: str
    priority: int
    size: int
    state: str = "queued"  # queued | active | done | failed
    attempts: int = 0
    file_bytes_sent: int = 0
    condition: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OutgoingRecord:
        return cls(**{key: raw[key] for key in cls.__dataclass_fields__ if key in raw})


@dataclass
class OutgoingJournal:
    """The persisted outgoing queue plus the next sequence number (never reused after reboot)."""

    path: Path
    next_seq: int = 1
    records: dict[int, OutgoingRecord] = field(default_factory=dict)
    keep_finished: int = 32
    max_seq: int = 0xFFFFFFFF  # the sequence-number field's width decides (EntityConfig.max_seq)

    @classmethod
    def load(cls, path: Path, max_seq: int = 0xFFFFFFFF) -> OutgoingJournal:
        journal = cls(path, max_seq=max_seq)
        payload = read_json(path)
        if payload is not None:
            journal.next_seq = int(payload.get("next_seq", 1))
            for raw in payload.get("records", []):
                record = OutgoingRecord.from_dict(raw)
                if record.state == "active":
                    record.state = "queued"  # interrupted by a reboot: resume it
                journal.records[record.transfer_id] = record
        return journal

    def allocate_id(self) -> int:
        seq = self.next_seq if 1 <= self.next_seq <= self.max_seq else 1
        self.next_seq = seq + 1 if seq < self.max_seq else 1
        return seq

    def save(self) -> None:
        finished = sorted(
            (r for r in self.records.values() if r.state in ("done", "failed")),
            key=lambda r: r.transfer_id,
        )
        for old in finished[: max(0, len(finished) - self.keep_finished)]:
            del self.records[old.transfer_id]
        atomic_write_json(
            self.path,
            {"next_seq": self.next_seq, "records": [asdict(r) for r in self.records.values()]},
        )


@dataclass
class IncomingRecord:
    """What an interrupted incoming transaction already holds in its staging file."""

    source_id: int
    seq: int
    metadata_pdu: bytes
    dest_name: str
    received: RangeSet = field(default_factory=RangeSet)

    @property
    def key(self) -> str:
        return f"{self.source_id}-{self.seq}"

    def to_json(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "seq": self.seq,
            "metadata_pdu": self.metadata_pdu.hex(),
            "dest_name": self.dest_name,
            "received": self.received.ranges,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> IncomingRecord:
        return cls(
            source_id=int(raw["source_id"]),
            seq=int(raw["seq"]),
            metadata_pdu=bytes.fromhex(raw["metadata_pdu"]),
            dest_name=str(raw["dest_name"]),
            received=RangeSet(tuple(r) for r in raw["received"]),
        )
