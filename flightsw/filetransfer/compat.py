"""The cfdp-py 0.7 compatibility layer: adapters and work-arounds between cfdp-py and the entity.

Why one module: every place where the entity bends cfdp-py to its needs, or corrects a known
defect of it, is here, each with its reason (and each covered by a test in
tests/filetransfer/test_cfdp_defects.py). The timer defect is corrected in ``clock`` and the EOF
nibble defect in ``pdu``; the source and destination sides use only what this module offers.

* cfdp-py's handlers are configured through a MIB of local/remote entity configs: ``CfdpMib``
  builds them once for the one remote entity we talk to;
* its sequence-number provider is a counter: ``FixedSeqCount`` hands it the journal's id, so a
  resumed transfer keeps its transaction id;
* it sends the path it reads as the Metadata's source name: ``NamedSourceFilestore`` reads the
  real path under the destination name;
* its user and fault-handler callbacks run inside ``state_machine()``: ``Recorder`` only records;
* a lost EOF-ACK stalls class 2: ``synthetic_eof_ack`` and ``eof_ack_for`` build the ACKs the
  entity sends or feeds in its place;
* draining a handler can produce thousands of PDUs: ``drain`` lets the event loop's thread run;
* cfdp-py leaves the fault location out of the PDUs whose condition needs one (CCSDS 727.0-B-5
  5.2.2/5.2.3): ``with_fault_location`` adds ours to every EOF and Finished that lacks it;
* cfdp-py's receiver stalls when the EOF arrives before the Metadata (a lost or reordered
  Metadata): the late Metadata puts it back into "receiving file data", where it neither NAKs
  nor completes. ``resume_missing_data_procedure`` returns it to the lost-data procedure;
* the receiver always gets a Metadata naming the null checksum (``for_dest_handler``): the
  entity verifies the file itself with the type the sender named, including the case cfdp-py
  skips, and refuses a type it does not implement with "unsupported checksum type".
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from cfdppy import (
    IndicationConfig,
    LocalEntityConfig,
    RemoteEntityConfig,
    RemoteEntityConfigTable,
)
from cfdppy.filestore import NativeFilestore
from cfdppy.handler import DestHandler, SourceHandler
from cfdppy.handler.dest import TransactionStep as DestStep
from cfdppy.mib import DefaultFaultHandlerBase
from cfdppy.user import (
    CfdpUserBase,
    FileSegmentRecvdParams,
    MetadataRecvParams,
    TransactionFinishedParams,
    TransactionParams,
)
from spacepackets.cfdp import (
    ChecksumType,
    ConditionCode,
    Direction,
    FaultHandlerCode,
    GenericPduPacket,
    PduConfig,
    PduType,
    TransactionId,
    TransmissionMode,
)
from spacepackets.cfdp.pdu import (
    AckPdu,
    DeliveryCode,
    DirectiveType,
    EofPdu,
    FinishedPdu,
    MetadataPdu,
    TransactionStatus,
)
from spacepackets.cfdp.pdu.finished import FileStatus, FinishedParams
from spacepackets.cfdp.tlv import EntityIdTlv
from spacepackets.seqcount import ProvidesSeqCount
from spacepackets.util import UnsignedByteField

from flightsw.filetransfer.clock import ClockedCheckTimerProvider
from flightsw.filetransfer.entity_config import EntityConfig
from flightsw.filetransfer.step import StepOutput


def directive_of(pdu: GenericPduPacket | None) -> DirectiveType | None:
    """The directive type of a file-directive PDU, None for file data (or no PDU)."""
    return getattr(pdu, "directive_type", None)


class FixedSeqCount(ProvidesSeqCount):
    """Hands cfdp-py the sequence number chosen by the journal (same id when resuming).

    Its bit width is the width of the sequence-number field in the PDUs we originate.
    """

    def __init__(self, value: int, width_bytes: int = 4) -> None:
        self.value = value
        self._bits = 8 * width_bytes

    @property
    def max_bit_width(self) -> int:
        return self._bits

    @max_bit_width.setter
    def max_bit_width(self, width: int) -> None:
        raise ValueError(f"fixed at {self._bits} bits")

    def get_and_increment(self) -> int:
        return self.value


class NamedSourceFilestore(NativeFilestore):
    """Reads the outgoing file `path` when cfdp-py asks for `name`.

    Why: cfdp-py sends the path it reads from as the Metadata PDU's source file name. The real
    path (data directory, outbox link name) is the flight computer's business: on the air it costs
    downlink bytes and makes the same transfer differ from one machine or run to another (the
    frame's bit stuffing, hence its airtime, depends on every byte). The name sent is the
    destination name instead.
    """

    def __init__(self, name: Path, path: Path) -> None:
        super().__init__()
        self._name, self._path = name, path

    def _real(self, file: Path) -> Path:
        return self._path if file == self._name else file

    def file_exists(self, path: Path) -> bool:
        return super().file_exists(self._real(path))

    def file_size(self, file: Path) -> int:
        return super().file_size(self._real(file))

    def read_data(self, file: Path, offset: int | None, read_len: int | None = None) -> bytes:
        return super().read_data(self._real(file), offset, read_len)

    def calculate_checksum(self, checksum_type: ChecksumType, file_path: Path, size_to_verify: int,
                           segment_len: int = 4096) -> bytes:
        return super().calculate_checksum(checksum_type, self._real(file_path), size_to_verify, segment_len)


class Recorder(CfdpUserBase, DefaultFaultHandlerBase):
    """cfdp-py user and fault handler of one transaction: records, never acts inside callbacks."""

    def __init__(self, filestore: NativeFilestore | None = None) -> None:
        CfdpUserBase.__init__(self, filestore or NativeFilestore())
        DefaultFaultHandlerBase.__init__(self)
        # A corrupted file must not be reported as delivered.
        self.set_handler(ConditionCode.FILE_CHECKSUM_FAILURE, FaultHandlerCode.NOTICE_OF_CANCELLATION)
        self.finished: FinishedParams | None = None
        self.faults: list[ConditionCode] = []

    # user indications
    def transaction_indication(self, transaction_indication_params: TransactionParams) -> None:
        pass

    def eof_sent_indication(self, transaction_id: TransactionId) -> None:
        pass

    def transaction_finished_indication(self, params: TransactionFinishedParams) -> None:
        self.finished = params.finished_params

    def metadata_recv_indication(self, params: MetadataRecvParams) -> None:
        pass

    def file_segment_recv_indication(self, params: FileSegmentRecvdParams) -> None:
        pass

    def report_indication(self, transaction_id: TransactionId, status_report: Any) -> None:
        pass

    def suspended_indication(self, transaction_id: TransactionId, cond_code: ConditionCode) -> None:
        pass

    def resumed_indication(self, transaction_id: TransactionId, progress: int) -> None:
        pass

    def fault_indication(
        self, transaction_id: TransactionId, cond_code: ConditionCode, progress: int
    ) -> None:
        self.faults.append(cond_code)

    def abandoned_indication(
        self, transaction_id: TransactionId, cond_code: ConditionCode, progress: int
    ) -> None:
        self.faults.append(cond_code)

    def eof_recv_indication(self, transaction_id: TransactionId) -> None:
        pass

    # fault handler callbacks
    def notice_of_suspension_cb(
        self, transaction_id: TransactionId, cond: ConditionCode, progress: int
    ) -> None:
        self.faults.append(cond)

    def notice_of_cancellation_cb(
        self, transaction_id: TransactionId, cond: ConditionCode, progress: int
    ) -> None:
        self.faults.append(cond)

    def abandoned_cb(self, transaction_id: TransactionId, cond: ConditionCode, progress: int) -> None:
        self.faults.append(cond)

    def ignore_cb(self, transaction_id: TransactionId, cond: ConditionCode, progress: int) -> None:
        self.faults.append(cond)


class CfdpMib:
    """cfdp-py's management information base for our one local and one remote entity."""

    def __init__(self, config: EntityConfig) -> None:
        self.config = config
        self.id_bytes = config.entity_id_bytes
        self.local = UnsignedByteField(config.local_id, self.id_bytes)
        self.remote = UnsignedByteField(config.remote_id, self.id_bytes)
        self.remote_table = RemoteEntityConfigTable(
            [
                RemoteEntityConfig(
                    entity_id=self.remote,
                    max_file_segment_len=None,
                    max_packet_len=config.max_pdu_len,
                    closure_requested=True,
                    crc_on_transmission=False,
                    default_transmission_mode=TransmissionMode.ACKNOWLEDGED,
                    crc_type=config.checksum.wire,
                    positive_ack_timer_interval_seconds=config.ack_interval_s,
                    positive_ack_timer_expiration_limit=config.ack_limit,
                    nak_timer_interval_seconds=config.nak_interval_s,
                    nak_timer_expiration_limit=config.nak_limit,
                    check_limit=config.nak_limit,
                )
            ]
        )
        self.check_timers = ClockedCheckTimerProvider(config.nak_interval_s)

    @property
    def fault_location(self) -> EntityIdTlv:
        """Our entity id as the fault location of a condition we detected (our own width)."""
        return EntityIdTlv(self.local.as_bytes)

    def pdu_conf(self, seq: int) -> PduConfig:
        """Header fields of a transaction we originated: our ids and widths, towards the sender."""
        return PduConfig(
            source_entity_id=self.local,
            dest_entity_id=self.remote,
            transaction_seq_num=UnsignedByteField(seq, self.config.seq_num_bytes),
            trans_mode=TransmissionMode.ACKNOWLEDGED,
            direction=Direction.TOWARDS_SENDER,
        )

    def local_cfg(self, recorder: Recorder) -> LocalEntityConfig:
        return LocalEntityConfig(
            local_entity_id=self.local,
            indication_cfg=IndicationConfig(file_segment_recvd_indication_required=False),
            default_fault_handlers=recorder,
        )

    def dest_handler(self, recorder: Recorder) -> DestHandler:
        return DestHandler(
            cfg=self.local_cfg(recorder),
            user=recorder,
            remote_cfg_table=self.remote_table,
            check_timer_provider=self.check_timers,
        )

    def source_handler(self, recorder: Recorder, seq: int) -> SourceHandler:
        return SourceHandler(
            cfg=self.local_cfg(recorder),
            user=recorder,
            remote_cfg_table=self.remote_table,
            check_timer_provider=self.check_timers,
            seq_num_provider=FixedSeqCount(seq, self.config.seq_num_bytes),
        )


def share_gil(iteration: int) -> None:
    """Long worker loops release the GIL now and then so the event loop thread is never starved."""
    if iteration % 16 == 15:
        time.sleep(0)


def drain(handler: SourceHandler | DestHandler, out: StepOutput, drop_file_data: bool = False,
          fault_location: EntityIdTlv | None = None) -> None:
    """Move every PDU the handler queued into ``out`` (file data optionally dropped unsent)."""
    for count in itertools.count():
        share_gil(count)
        holder = handler.get_next_packet()
        if holder is None:
            return
        pdu = holder.pdu
        if pdu is None:
            continue
        if pdu.pdu_type == PduType.FILE_DATA:
            if drop_file_data:
                continue
            out.emit(pdu, len(pdu.file_data))  # type: ignore[union-attr]
        elif fault_location is not None:
            out.emit(with_fault_location(pdu, fault_location))
        else:
            out.emit(pdu)


# Conditions that are not faults: their PDUs carry no fault location (727.0-B-5 table 5-7).
NO_FAULT_LOCATION = frozenset({ConditionCode.NO_ERROR, ConditionCode.UNSUPPORTED_CHECKSUM_TYPE})


def rejected_file_params(condition: ConditionCode, fault_location: EntityIdTlv) -> FinishedParams:
    """Finished parameters for a complete file we discard (checksum failure or unsupported type)."""
    return FinishedParams(
        condition_code=condition,
        delivery_code=DeliveryCode.DATA_INCOMPLETE,
        file_status=FileStatus.DISCARDED_DELIBERATELY,
        fault_location=None if condition in NO_FAULT_LOCATION else fault_location,
    )


def with_fault_location(pdu: GenericPduPacket, location: EntityIdTlv) -> GenericPduPacket:
    """``pdu`` with a fault location when its condition code requires one and it has none.

    CCSDS 727.0-B-5 tables 5-6 and 5-7: an EOF or Finished PDU whose condition code is a fault
    (not "no error", nor for Finished "unsupported checksum type") carries the entity id of the
    entity that detected it.
    """
    directive = directive_of(pdu)
    if directive == DirectiveType.FINISHED_PDU:
        finished: FinishedPdu = pdu  # type: ignore[assignment]
        if finished.condition_code not in NO_FAULT_LOCATION and finished.fault_location is None:
            params = finished.finished_params
            params.fault_location = location
            return FinishedPdu(finished.pdu_header.pdu_conf, params)
    elif directive == DirectiveType.EOF_PDU:
        eof: EofPdu = pdu  # type: ignore[assignment]
        if eof.condition_code != ConditionCode.NO_ERROR and eof.fault_location is None:
            return EofPdu(eof.pdu_header.pdu_conf, eof.file_checksum, eof.file_size,
                          fault_location=location, condition_code=eof.condition_code)
    return pdu


def for_dest_handler(metadata: MetadataPdu, staging: Path) -> MetadataPdu:
    """The Metadata as the destination handler sees it: our staging file, no checksum of its own.

    The entity verifies every completed file itself, with the checksum type the sender named
    (cfdp-py skips the check in class 2 when nothing was lost, and raises inside its state
    machine on a type it does not implement, which would wedge the transaction).
    """
    metadata.dest_file_name = str(staging)
    metadata.params.checksum_type = ChecksumType.NULL_CHECKSUM
    return metadata


def resume_missing_data_procedure(handler: DestHandler) -> None:
    """After a late Metadata (EOF came first) put the handler back into its lost-data procedure.

    cfdp-py's ``_handle_metadata_packet`` always moves to RECEIVING_FILE_DATA, where the
    deferred NAK procedure the EOF started is never run again: nothing is NAKed, the transfer
    never completes, and the sender gives up on inactivity. WAITING_FOR_MISSING_DATA is where
    cfdp-py itself goes after an EOF when data is missing and the Metadata is there.
    """
    acked = handler._params.acked_params
    if handler.states.step == DestStep.RECEIVING_FILE_DATA and acked.deferred_lost_segment_detection_active:
        handler.states.step = DestStep.WAITING_FOR_MISSING_DATA


def synthetic_eof_ack(handler: SourceHandler) -> AckPdu:
    """The EOF-ACK a Finished PDU proves was sent: fed to a sender stuck waiting for it."""
    ack = AckPdu(handler.pdu_conf, DirectiveType.EOF_PDU, ConditionCode.NO_ERROR,
                 TransactionStatus.ACTIVE)  # AckPdu copies the config and sets the direction
    return AckPdu.unpack(ack.pack())


def eof_ack_for(eof: EofPdu, status: TransactionStatus = TransactionStatus.ACTIVE) -> AckPdu:
    """An ACK of ``eof`` (cfdp-py never acknowledges a repeated EOF itself)."""
    return AckPdu(eof.pdu_header.pdu_conf, DirectiveType.EOF_PDU, eof.condition_code, status)
