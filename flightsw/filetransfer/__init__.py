"""CCSDS File Delivery Protocol (class 2) for downlink and uplink files, on cfdp-py 0.7.

Modules: ``entity`` (the asyncio driver), ``source`` and ``destination`` (the two sides),
``compat``, ``clock`` and ``pdu`` (the cfdp-py/spacepackets work-arounds), ``journal``
(crash-safe progress), ``quarantine`` (where received files land), ``entity_config``,
``interface`` and ``settings`` (configuration and what the entity reports).
"""

from flightsw.filetransfer.entity import CfdpEntity
from flightsw.filetransfer.entity_config import EntityConfig
from flightsw.filetransfer.errors import FileTransferError
from flightsw.filetransfer.interface import EntityStats, PduSink, ReceivedFile, TransferOutcome
from flightsw.filetransfer.quarantine import safe_file_name

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
