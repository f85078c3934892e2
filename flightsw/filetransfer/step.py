"""What one step of the protocol machinery (on the worker thread) hands back to the event loop.

Why: the handlers run on a worker thread and must not touch the loop; everything a step
produced (PDUs to send, files received, transfer outcomes, the queue's snapshot, when to wake
next) travels back in one ``StepOutput`` that the loop side publishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spacepackets.cfdp import GenericPduPacket

from flightsw.filetransfer.interface import ReceivedFile, TransferOutcome
from flightsw.filetransfer.journal import OutgoingRecord


@dataclass
class StepOutput:
    pdus: list[tuple[bytes, int]] = field(default_factory=list)  # (raw, file-data bytes)
    received: list[ReceivedFile] = field(default_factory=list)
    outcomes: list[TransferOutcome] = field(default_factory=list)
    more_to_send: bool = False
    snapshot: list[OutgoingRecord] = field(default_factory=list)
    # When the handlers next need a step without a wake-up: None while a transaction is open
    # (its timers advance only when stepped), else the earliest retry of a queued transfer
    # (math.inf when there is none).
    idle_until: float | None = None

    def emit(self, pdu: GenericPduPacket, file_bytes: int = 0) -> None:
        """Queue ``pdu`` for transmission (packed now, on the worker)."""
        self.pdus.append((bytes(pdu.pack()), file_bytes))
