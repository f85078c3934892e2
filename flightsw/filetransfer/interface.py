"""What the file-transfer entity needs from its surroundings and what it reports back.

Why apart from the entity: the radio link, the ground and the tests implement ``PduSink`` and
consume these records without depending on how the protocol machinery is organised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from flightsw.filetransfer.errors import ErrorCounters


class PduSink(Protocol):
    """Where the entity hands PDUs for transmission; the radio link implements this.

    ``send_pdu`` may wait while the link is busy (that is the flow control) and may lose the PDU
    (CFDP class 2 recovers). The link delivers received PDUs with ``CfdpEntity.receive_pdu``.
    """

    async def send_pdu(self, pdu: bytes) -> None: ...


@dataclass(frozen=True)
class ReceivedFile:
    """A file that arrived complete, passed its checksums and sits in quarantine."""

    path: Path
    name: str
    size: int
    sha256: str
    source_id: int
    seq: int


@dataclass(frozen=True)
class TransferOutcome:
    """End of one outgoing transfer attempt."""

    transfer_id: int
    success: bool
    condition: str
    final: bool  # False: it will be retried (resumed) later


@dataclass
class EntityStats:
    """Counters for housekeeping telemetry."""

    pdus_sent: int = 0
    pdus_received: int = 0
    pdus_dropped_queue_full: int = 0
    file_bytes_sent: int = 0
    files_sent: int = 0
    files_received: int = 0
    eof_acks_synthesised: int = 0
    partials_dropped: int = 0
    steps: int = 0  # handler steps run on the worker (idle entities should hardly step)
    errors: ErrorCounters = field(default_factory=ErrorCounters)
