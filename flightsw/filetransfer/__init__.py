"""CCSDS File Delivery Protocol (class 2) for downlink and uplink files, on cfdp-py 0.7."""

from flightsw.filetransfer.entity import (
    CfdpEntity,
    EntityConfig,
    EntityStats,
    PduSink,
    ReceivedFile,
    TransferOutcome,
    safe_file_name,
)
from flightsw.filetransfer.errors import FileTransferError

__all__ = [
    "CfdpEntity",
    "EntityConfig",
    "EntityStats",
    "FileTransferError",
    "PduSink",
    "ReceivedFile",
    "TransferOutcome",
    "safe_file_name",
]
