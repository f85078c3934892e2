"""Protocol settings of one local CFDP entity talking to one remote entity, checked on creation.

Why a module of its own: the mission config (``flightsw.config``), the radio link, the ground and
the tests all build an ``EntityConfig``; none of them should import the entity's machinery to do it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class EntityConfig:
    """Protocol settings for one local entity talking to one remote entity."""

    local_id: int
    remote_id: int
    work_dir: Path
    entity_id_bytes: int = 2
    max_pdu_len: int = 1024
    ack_interval_s: float = 5.0
    ack_limit: int = 10
    nak_interval_s: float = 5.0
    nak_limit: int = 10
    inactivity_s: float = 60.0
    retry_backoff_s: float = 30.0
    tick_s: float = 0.25
    idle_tick_s: float = 60.0  # longest sleep with nothing to do (no transaction, nothing queued)
    burst: int = 32
    max_incoming: int = 4
    inbound_queue: int = 4096
    journal_flush_bytes: int = 64 * 1024
    max_partial: int = 8  # interrupted incoming transfers kept for resuming (oldest dropped)

    def __post_init__(self) -> None:
        if self.entity_id_bytes not in (1, 2, 4):
            raise ValueError(f"entity_id_bytes must be 1, 2 or 4, not {self.entity_id_bytes}")
        for name in ("local_id", "remote_id"):
            value = getattr(self, name)
            if not 0 <= value < 256**self.entity_id_bytes:
                raise ValueError(f"{name}={value} does not fit in {self.entity_id_bytes} bytes")
        if self.local_id == self.remote_id:
            raise ValueError("local_id and remote_id must differ")
        if self.max_pdu_len < 64:
            raise ValueError(f"max_pdu_len={self.max_pdu_len} is too small for a CFDP PDU (>= 64)")
        if self.ack_limit < 1 or self.nak_limit < 1:
            raise ValueError("ack_limit and nak_limit must be at least 1")
        if not 0 < self.tick_s <= self.idle_tick_s:
            raise ValueError(f"need 0 < tick_s ({self.tick_s}) <= idle_tick_s ({self.idle_tick_s})")

    @property
    def staging_dir(self) -> Path:
        return self.work_dir / "staging"

    @property
    def quarantine_dir(self) -> Path:
        return self.work_dir / "quarantine"

    @property
    def journal_dir(self) -> Path:
        return self.work_dir / "journal"

    @property
    def incoming_journal_dir(self) -> Path:
        return self.journal_dir / "incoming"
