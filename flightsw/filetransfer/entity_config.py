"""Protocol settings of one local CFDP entity talking to one remote entity, checked on creation.

Why a module of its own: the mission config (``flightsw.config``), the radio link, the ground and
the tests all build an ``EntityConfig``; none of them should import the entity's machinery to do it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from pathlib import Path

from spacepackets.cfdp import ChecksumType


class Checksum(enum.StrEnum):
    """File checksum types this entity computes and verifies (CCSDS 727.0-B-5 / SANA registry).

    Modular (type 0) is the one every CFDP implementation has (LibreCube's and, by its own
    tracker, cFS CF implement nothing else), so it is the default. CRC-32 Proximity-1 (type 1)
    is not implemented by cfdp-py: a Metadata naming it is refused with "unsupported checksum
    type".
    """

    MODULAR = "modular"
    CRC32 = "crc32"
    CRC32C = "crc32c"
    NULL = "null"

    @property
    def wire(self) -> ChecksumType:
        return _WIRE[self]


_WIRE = {
    Checksum.MODULAR: ChecksumType.MODULAR,
    Checksum.CRC32: ChecksumType.CRC_32,
    Checksum.CRC32C: ChecksumType.CRC_32C,
    Checksum.NULL: ChecksumType.NULL_CHECKSUM,
}
SUPPORTED_CHECKSUMS = frozenset(_WIRE.values())
SEQ_NUM_BYTES = (1, 2, 4)  # cfdp-py 0.7 originates no 8-octet sequence numbers (it decodes them)


@dataclass
class EntityConfig:
    """Protocol settings for one local entity talking to one remote entity."""

    local_id: int
    remote_id: int
    work_dir: Path
    entity_id_bytes: int = 2  # width of the entity ids in the PDUs this entity originates
    seq_num_bytes: int = 4  # width of its transaction sequence numbers
    # Checksum this entity puts in its Metadata/EOF for the remote entity, and the one the remote
    # entity uses towards us (only for deriving the remote's config, e.g. the ground's; a
    # receiver always verifies with the type the sender's Metadata names).
    send_checksum: str = Checksum.MODULAR.value
    remote_send_checksum: str = Checksum.MODULAR.value
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
        if self.seq_num_bytes not in SEQ_NUM_BYTES:
            raise ValueError(f"seq_num_bytes must be 1, 2 or 4, not {self.seq_num_bytes}")
        for name in ("send_checksum", "remote_send_checksum"):
            value = getattr(self, name)
            if value not in Checksum.__members__.values():
                raise ValueError(f"{name}={value!r} is not one of "
                                 f"{', '.join(c.value for c in Checksum)}")
        if self.local_id == self.remote_id:
            raise ValueError("local_id and remote_id must differ")
        if self.max_pdu_len < 64:
            raise ValueError(f"max_pdu_len={self.max_pdu_len} is too small for a CFDP PDU (>= 64)")
        if self.ack_limit < 1 or self.nak_limit < 1:
            raise ValueError("ack_limit and nak_limit must be at least 1")
        if not 0 < self.tick_s <= self.idle_tick_s:
            raise ValueError(f"need 0 < tick_s ({self.tick_s}) <= idle_tick_s ({self.idle_tick_s})")

    @property
    def checksum(self) -> Checksum:
        """The checksum type of the files this entity sends."""
        return Checksum(self.send_checksum)

    @property
    def max_seq(self) -> int:
        """The largest transaction sequence number this entity's field width can carry."""
        return (1 << (8 * self.seq_num_bytes)) - 1

    def for_peer(self, work_dir: Path, **changes: object) -> EntityConfig:
        """The remote entity's config (ids and checksums swapped), e.g. the ground's from the flight's."""
        return replace(self, local_id=self.remote_id, remote_id=self.local_id, work_dir=work_dir,
                       send_checksum=self.remote_send_checksum,
                       remote_send_checksum=self.send_checksum, **changes)  # type: ignore[arg-type]

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
