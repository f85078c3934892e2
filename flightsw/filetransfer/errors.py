"""One error type for everything cfdp-py and spacepackets can throw at the file-transfer entity.

cfdp-py's exceptions share no common base class (``PduIgnoredForSource``, ``InvalidNakPdu``,
``UnretrievedPdusToBeSent``, plain ``ValueError``/``AssertionError`` from spacepackets decoding,
``BytesTooShortError``...). A hostile or corrupted PDU must never take the service down, so the
entity catches everything at the handler boundary, maps it to ``FileTransferError`` with a stable
``kind`` and counts it per kind for telemetry.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


class FileTransferError(Exception):
    """A protocol or filestore problem in one transaction; ``kind`` is the original class name."""

    def __init__(self, kind: str, detail: str, transaction: str | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.transaction = transaction
        where = f" in transaction {transaction}" if transaction else ""
        super().__init__(f"{kind}{where}: {detail}")

    @classmethod
    def wrap(cls, exc: BaseException, transaction: str | None = None) -> FileTransferError:
        """Map any exception raised by cfdp-py/spacepackets to a ``FileTransferError``."""
        if isinstance(exc, FileTransferError):
            return exc
        return cls(type(exc).__name__, str(exc) or repr(exc), transaction)


@dataclass
class ErrorCounters:
    """Counts of swallowed protocol errors per kind, kept for housekeeping telemetry."""

    by_kind: Counter[str] = field(default_factory=Counter)
    last: FileTransferError | None = None

    def record(self, error: FileTransferError) -> None:
        self.by_kind[error.kind] += 1
        self.last = error

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())
