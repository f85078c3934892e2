"""The receiving side: one cfdp-py destination handler per incoming transaction, with a journal.

Why apart from the driver: receiving is where the entity adds most to cfdp-py. It journals the
byte ranges written (so a transaction cut by the end of a pass or a reboot is replayed into a
fresh handler and only the rest is asked for), verifies the file's checksum itself (cfdp-py
skips it in class 2 when nothing was lost), frees handlers whose sender went silent, bounds the
partial transfers kept on disk, answers a sender that repeats PDUs of a finished transaction,
and hands complete files to the quarantine. Everything here runs on the entity's worker thread.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from cfdppy import CfdpState
from cfdppy.exceptions import ChecksumNotImplemented
from cfdppy.filestore import NativeFilestore
from cfdppy.handler import DestHandler
from cfdppy.handler.dest import TransactionStep as DestStep
from spacepackets.cfdp import ConditionCode, Direction, GenericPduPacket, PduType
from spacepackets.cfdp.pdu import (
    DeliveryCode,
    DirectiveType,
    EofPdu,
    FileDataPdu,
    FinishedPdu,
    MetadataPdu,
    TransactionStatus,
)
from spacepackets.cfdp.pdu.file_data import FileDataParams

from flightsw.filetransfer.compat import (
    CfdpMib,
    Recorder,
    directive_of,
    eof_ack_for,
    for_dest_handler,
    rejected_file_params,
    resume_missing_data_procedure,
    share_gil,
    with_fault_location,
)
from flightsw.filetransfer.entity_config import EntityConfig
from flightsw.filetransfer.errors import FileTransferError
from flightsw.filetransfer.interface import EntityStats
from flightsw.filetransfer.journal import IncomingRecord, atomic_write_json, read_json
from flightsw.filetransfer.pdu import decode_pdu
from flightsw.filetransfer.quarantine import move_to_quarantine, safe_file_name
from flightsw.filetransfer.step import StepOutput

Key = tuple[int, int]  # (source entity id, transaction sequence number)


@dataclass
class _Incoming:
    handler: DestHandler
    recorder: Recorder
    record: IncomingRecord
    staging: Path
    eof_seen: bool = False
    eof_checksum: bytes | None = None
    eof_size: int | None = None
    verdict: ConditionCode | None = None  # our own checksum check of the complete file
    unflushed: int = 0
    last_activity: float = 0.0
    done: bool = False
    declared_size: int | None = None  # the Metadata's file size, once looked at


class DestinationSide:
    """Incoming transactions, up to ``max_incoming`` at a time."""

    def __init__(self, config: EntityConfig, mib: CfdpMib, stats: EntityStats) -> None:
        self.config = config
        self.mib = mib
        self.stats = stats
        self.incoming: dict[Key, _Incoming] = {}
        # Completed incoming transactions: the Finished PDU to repeat if the sender asks again.
        self._completed: OrderedDict[Key, bytes] = OrderedDict()

    @property
    def _journal_dir(self) -> Path:
        return self.config.incoming_journal_dir

    def drive(self, key: Key, pdu: GenericPduPacket | None, now: float, out: StepOutput) -> None:
        """Feed transaction ``key`` one PDU from its sender, or step it (``pdu`` None)."""
        incoming = self.incoming.get(key)
        if incoming is None:
            if pdu is None:
                return
            if key in self._completed:
                self._answer_completed(key, pdu, out)
                return
            incoming = self._open(key, pdu, now, out)
            if incoming is None:
                return
            if directive_of(pdu) == DirectiveType.METADATA_PDU and incoming.record.metadata_pdu:
                pdu = None  # already fed (fresh or replayed)
        if pdu is not None:
            incoming.last_activity = now
            directive = directive_of(pdu)
            if pdu.pdu_type == PduType.FILE_DATA and incoming.record.metadata_pdu:
                self._check_within_size(incoming, pdu)  # type: ignore[arg-type]
            if directive == DirectiveType.EOF_PDU and incoming.eof_seen:
                # Repeated EOF: its ACK was lost. cfdp-py would not answer it again.
                out.emit(eof_ack_for(pdu))  # type: ignore[arg-type]
                self.stats.eof_acks_synthesised += 1
                pdu = None
            elif directive == DirectiveType.METADATA_PDU:
                if not incoming.record.metadata_pdu:  # it was lost and NAKed, now it is here
                    incoming.record.metadata_pdu = bytes(pdu.pack())
                    incoming.record.dest_name = safe_file_name(
                        pdu.dest_file_name or "unnamed")  # type: ignore[union-attr]
                pdu = for_dest_handler(pdu, incoming.staging)  # type: ignore[arg-type]
        elif (
            incoming.handler.step in (DestStep.RECEIVING_FILE_DATA, DestStep.WAITING_FOR_METADATA)
            and now - incoming.last_activity > self.config.inactivity_s
        ):
            # cfdp-py has no inactivity timer: the sender went away (end of pass, reboot).
            # Keep what arrived on disk for a resume and free the handler.
            self._save(incoming)
            del self.incoming[key]
            self._prune_partials()
            return
        if pdu is not None or incoming.handler.state != CfdpState.IDLE:
            self._feed(incoming, pdu, out)
        if incoming.handler.state == CfdpState.IDLE:
            self._close(key, incoming)

    def _open(self, key: Key, pdu: GenericPduPacket, now: float, out: StepOutput) -> _Incoming | None:
        if len(self.incoming) >= self.config.max_incoming:
            raise FileTransferError("TooManyIncoming", f"transaction {key} refused")
        recorder = Recorder()
        handler = self.mib.dest_handler(recorder)
        staging = self.config.staging_dir / f"{key[0]}-{key[1]}.part"
        journal_path = self._journal_dir / f"{key[0]}-{key[1]}.json"
        saved = read_json(journal_path)
        is_metadata = directive_of(pdu) == DirectiveType.METADATA_PDU
        if saved is not None:
            record = IncomingRecord.from_json(saved)
        elif is_metadata:
            record = IncomingRecord(key[0], key[1], bytes(pdu.pack()),
                                    safe_file_name(pdu.dest_file_name or "unnamed"))  # type: ignore
        else:
            record = IncomingRecord(key[0], key[1], b"", "")
        incoming = _Incoming(handler, recorder, record, staging, last_activity=now)
        self.incoming[key] = incoming
        self._prune_partials()
        if saved is not None:
            self._replay(incoming, out)
        elif is_metadata:
            self._feed(incoming, for_dest_handler(pdu, staging), out)  # type: ignore[arg-type]
            self._save(incoming)
        return incoming

    def _check_within_size(self, incoming: _Incoming, pdu: FileDataPdu) -> None:
        """File data beyond the size the Metadata declared is refused before it is written: it
        would only make a sparse staging file of any apparent size (offsets go to 2^64)."""
        if incoming.declared_size is None:
            metadata: MetadataPdu = decode_pdu(incoming.record.metadata_pdu)  # type: ignore[assignment]
            incoming.declared_size = int(metadata.file_size)
        end = pdu.offset + len(pdu.file_data)
        if end > incoming.declared_size:
            raise FileTransferError("FileSizeError", f"file data up to byte {end} beyond the declared size "
                                    f"{incoming.declared_size}", incoming.record.key)

    def _prune_partials(self) -> None:
        """Keep at most ``max_partial`` resumable incoming transfers on disk (oldest go first)."""
        active = {f"{k[0]}-{k[1]}" for k in self.incoming}
        journals = sorted(
            (p for p in self._journal_dir.glob("*.json") if p.stem not in active),
            key=lambda p: p.stat().st_mtime_ns,
        )
        for journal in journals[: max(0, len(journals) - self.config.max_partial)]:
            for leftover in (journal, self.config.staging_dir / f"{journal.stem}.part",
                             self.config.staging_dir / f"{journal.stem}.resume"):
                leftover.unlink(missing_ok=True)
            self.stats.partials_dropped += 1

    def _replay(self, incoming: _Incoming, out: StepOutput) -> None:
        """Feed a fresh handler what an interrupted transaction already wrote to disk."""
        resume_source = incoming.staging.with_suffix(".resume")
        if incoming.staging.exists() and not resume_source.exists():
            os.replace(incoming.staging, resume_source)
        metadata = decode_pdu(incoming.record.metadata_pdu)
        self._feed(incoming, for_dest_handler(metadata, incoming.staging), out)  # type: ignore[arg-type]
        if resume_source.exists():
            segment = max(64, self.config.max_pdu_len - 32)
            conf = metadata.pdu_header.pdu_conf
            with open(resume_source, "rb") as data:
                for start, end in incoming.record.received.ranges:
                    offset = start
                    while offset < end:
                        data.seek(offset)
                        chunk = data.read(min(segment, end - offset))
                        if not chunk:
                            break
                        fd = FileDataPdu(conf, FileDataParams(chunk, offset, None))
                        self._feed(incoming, fd, out)
                        share_gil(offset // segment)
                        offset += len(chunk)
            resume_source.unlink()

    def _feed(self, incoming: _Incoming, pdu: GenericPduPacket | None, out: StepOutput) -> None:
        try:
            incoming.handler.state_machine(pdu)
            if directive_of(pdu) == DirectiveType.METADATA_PDU:
                resume_missing_data_procedure(incoming.handler)
            if pdu is not None and directive_of(pdu) == DirectiveType.EOF_PDU:
                incoming.eof_checksum = bytes(pdu.file_checksum)  # type: ignore[union-attr]
                incoming.eof_size = pdu.file_size  # type: ignore[union-attr]
            if incoming.recorder.finished is not None and not incoming.done:
                incoming.done = True
                self._on_finished(incoming, out)
        finally:
            self._drain(incoming, out)
        if pdu is None:
            return
        writes_data = (
            incoming.record.metadata_pdu
            and incoming.handler.state != CfdpState.IDLE
            and incoming.handler.step != DestStep.WAITING_FOR_METADATA
        )
        if pdu.pdu_type == PduType.FILE_DATA and writes_data:
            length = len(pdu.file_data)  # type: ignore[union-attr]
            incoming.record.received.add(pdu.offset, pdu.offset + length)  # type: ignore[union-attr]
            incoming.unflushed += length
            if incoming.unflushed >= self.config.journal_flush_bytes:
                self._save(incoming)
        elif directive_of(pdu) == DirectiveType.EOF_PDU:
            incoming.eof_seen = True
            self._save(incoming)

    def _drain(self, incoming: _Incoming, out: StepOutput) -> None:
        """Send what the handler produced; a Finished PDU reports our own checksum verdict."""
        location = self.mib.fault_location
        while True:
            holder = incoming.handler.get_next_packet()
            if holder is None or holder.pdu is None:
                if holder is None:
                    return
                continue
            pdu = holder.pdu
            verdict = incoming.verdict
            if (directive_of(pdu) == DirectiveType.FINISHED_PDU and verdict is not None
                    and verdict != ConditionCode.NO_ERROR):
                pdu = FinishedPdu(pdu.pdu_header.pdu_conf, rejected_file_params(verdict, location))
            out.emit(with_fault_location(pdu, location))

    def _save(self, incoming: _Incoming) -> None:
        if not incoming.record.metadata_pdu:
            return  # nothing useful to resume from until the Metadata PDU arrives
        if incoming.staging.exists():
            fd = os.open(incoming.staging, os.O_RDONLY)
            try:
                os.fsync(fd)  # the journal must never claim bytes that are not on disk
            finally:
                os.close(fd)
        atomic_write_json(self._journal_dir / f"{incoming.record.key}.json", incoming.record.to_json())
        incoming.unflushed = 0

    def _on_finished(self, incoming: _Incoming, out: StepOutput) -> None:
        finished = incoming.recorder.finished
        assert finished is not None
        journal_path = self._journal_dir / f"{incoming.record.key}.json"
        ok = bool(
            finished.condition_code == ConditionCode.NO_ERROR
            and finished.delivery_code == DeliveryCode.DATA_COMPLETE
            and incoming.record.metadata_pdu
        )
        if ok:
            # The handler was told "null checksum" (see compat.for_dest_handler): verify here.
            incoming.verdict = self._verify(incoming)
            if incoming.verdict != ConditionCode.NO_ERROR:
                kind = ("FileChecksumFailure" if incoming.verdict == ConditionCode.FILE_CHECKSUM_FAILURE
                        else "UnsupportedChecksumType")
                self.stats.errors.record(FileTransferError(
                    kind, f"received file refused: {incoming.verdict.name}", incoming.record.key))
                finished.condition_code = incoming.verdict
                finished.delivery_code = DeliveryCode.DATA_INCOMPLETE
                ok = False
        if ok:
            record = incoming.record
            out.received.append(move_to_quarantine(
                incoming.staging, self.config.quarantine_dir, record.dest_name or f"file-{record.key}",
                record.key, record.source_id, record.seq))
            journal_path.unlink(missing_ok=True)
        elif finished.condition_code in (ConditionCode.FILE_CHECKSUM_FAILURE,
                                         ConditionCode.UNSUPPORTED_CHECKSUM_TYPE):
            incoming.staging.unlink(missing_ok=True)  # resuming would not help
            journal_path.unlink(missing_ok=True)
        else:
            self._save(incoming)  # cut short: keep what arrived for a resume
            self._prune_partials()

    def _verify(self, incoming: _Incoming) -> ConditionCode:
        """Check the complete file with the checksum type the sender's Metadata names."""
        if incoming.eof_checksum is None or incoming.eof_size is None:
            return ConditionCode.FILE_CHECKSUM_FAILURE
        if not incoming.staging.exists() or incoming.staging.stat().st_size != incoming.eof_size:
            return ConditionCode.FILE_CHECKSUM_FAILURE
        metadata: MetadataPdu = decode_pdu(incoming.record.metadata_pdu)  # type: ignore[assignment]
        try:
            checksum = NativeFilestore().calculate_checksum(
                metadata.checksum_type, incoming.staging, incoming.eof_size, 1 << 16)
        except ChecksumNotImplemented:
            return ConditionCode.UNSUPPORTED_CHECKSUM_TYPE
        if checksum != incoming.eof_checksum:
            return ConditionCode.FILE_CHECKSUM_FAILURE
        return ConditionCode.NO_ERROR

    def _close(self, key: Key, incoming: _Incoming) -> None:
        del self.incoming[key]
        finished = incoming.recorder.finished
        if finished is not None and incoming.done and finished.condition_code == ConditionCode.NO_ERROR:
            conf = decode_pdu(incoming.record.metadata_pdu).pdu_header.pdu_conf
            conf.direction = Direction.TOWARDS_SENDER
            self._completed[key] = bytes(FinishedPdu(conf, finished).pack())
            while len(self._completed) > 64:
                self._completed.popitem(last=False)

    def _answer_completed(self, key: Key, pdu: GenericPduPacket, out: StepOutput) -> None:
        """The sender repeats PDUs of a transaction we finished: re-ACK its EOF, repeat Finished."""
        if directive_of(pdu) == DirectiveType.EOF_PDU:
            eof: EofPdu = pdu  # type: ignore[assignment]
            out.emit(eof_ack_for(eof, TransactionStatus.TERMINATED))
            out.pdus.append((self._completed[key], 0))
