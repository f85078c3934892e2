"""The sending side: the persisted outgoing queue and the one cfdp-py source handler running it.

Why apart from the driver: what a sender does (pick the next file by priority, resume a cut
transfer under its old transaction id without resending data, retry after a back-off, answer a
peer that repeats PDUs of a closed transfer) is protocol policy, testable without the loop.
Everything here runs on the entity's worker thread.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from cfdppy import CfdpState, PutRequest
from cfdppy.handler import SourceHandler
from cfdppy.handler.source import TransactionStep as SourceStep
from spacepackets.cfdp import ConditionCode, GenericPduPacket, PduType, TransmissionMode
from spacepackets.cfdp.pdu import AckPdu, DeliveryCode, DirectiveType, TransactionStatus

from flightsw.filetransfer.compat import (
    CfdpMib,
    NamedSourceFilestore,
    Recorder,
    directive_of,
    drain,
    share_gil,
    synthetic_eof_ack,
)
from flightsw.filetransfer.entity_config import EntityConfig
from flightsw.filetransfer.errors import FileTransferError
from flightsw.filetransfer.interface import EntityStats, TransferOutcome
from flightsw.filetransfer.journal import OutgoingJournal, OutgoingRecord
from flightsw.filetransfer.step import StepOutput


@dataclass
class _Outgoing:
    handler: SourceHandler
    recorder: Recorder
    record: OutgoingRecord
    resume: bool
    last_activity: float


def is_for_sender(pdu: GenericPduPacket) -> bool:
    """PDUs a receiver sends back to the sender of a transaction (Finished, NAK, EOF-ACK...)."""
    if pdu.pdu_type == PduType.FILE_DATA:
        return False
    directive = directive_of(pdu)
    if directive in (DirectiveType.FINISHED_PDU, DirectiveType.NAK_PDU,
                     DirectiveType.KEEP_ALIVE_PDU):
        return True
    if directive == DirectiveType.ACK_PDU:
        return bool(pdu.directive_code_of_acked_pdu == DirectiveType.EOF_PDU)  # type: ignore[union-attr]
    return False


class SourceSide:
    """Outgoing transfers, one at a time, highest priority (lowest number) first."""

    def __init__(self, config: EntityConfig, mib: CfdpMib, stats: EntityStats) -> None:
        self.config = config
        self.mib = mib
        self.stats = stats
        # Loaded on the worker at first use: no file I/O on the loop, not even at start-up.
        self.journal = OutgoingJournal(config.journal_dir / "outgoing.json", max_seq=config.max_seq)
        self.active: _Outgoing | None = None
        self._not_before: dict[int, float] = {}
        self._completed: OrderedDict[int, None] = OrderedDict()

    def load(self) -> None:
        self.journal = OutgoingJournal.load(self.config.journal_dir / "outgoing.json", self.config.max_seq)

    def queue(self, source: Path, dest_name: str, priority: int) -> int:
        """Persist a new outgoing record; returns its transfer id (= CFDP sequence number)."""
        if not source.is_file():
            raise FileNotFoundError(f"cannot send {source}: no such file")
        record = OutgoingRecord(
            transfer_id=self.journal.allocate_id(),
            source=str(source.resolve()),
            dest_name=dest_name,
            priority=priority,
            size=source.stat().st_size,
        )
        self.journal.records[record.transfer_id] = record
        self.journal.save()
        return record.transfer_id

    def copy_records(self) -> list[OutgoingRecord]:
        return [OutgoingRecord(**vars(r)) for r in self.journal.records.values()]

    def progress(self, transfer_id: int) -> tuple[int, int] | None:
        record = self.journal.records.get(transfer_id)
        if record is None:
            return None
        active = self.active
        if active is not None and active.record.transfer_id == transfer_id:
            return (active.handler.progress, record.size)
        return (record.size if record.state == "done" else 0, record.size)

    def idle_until(self) -> float:
        """When a queued transfer may next start (math.inf when none is queued)."""
        return min((self._not_before.get(r.transfer_id, 0.0)
                    for r in self.journal.records.values() if r.state == "queued"),
                   default=math.inf)

    def start_next(self, now: float, out: StepOutput) -> None:
        if self.active is not None:
            return
        candidates = [
            r for r in self.journal.records.values()
            if r.state == "queued" and self._not_before.get(r.transfer_id, 0.0) <= now
        ]
        if not candidates:
            return
        record = min(candidates, key=lambda r: (r.priority, r.transfer_id))
        source = Path(record.source)
        if not source.is_file():
            record.state, record.condition = "failed", "source file missing"
            self.journal.save()
            out.outcomes.append(TransferOutcome(record.transfer_id, False, record.condition, True))
            return
        sent_name = Path(record.dest_name)
        recorder = Recorder(NamedSourceFilestore(sent_name, source))
        handler = self.mib.source_handler(recorder, record.transfer_id)
        handler.put_request(
            PutRequest(
                destination_id=self.mib.remote,
                source_file=sent_name,
                dest_file=sent_name,
                trans_mode=TransmissionMode.ACKNOWLEDGED,
                closure_requested=True,
            )
        )
        resume = record.attempts > 0
        record.attempts += 1
        record.state = "active"
        self.journal.save()
        self.active = _Outgoing(handler, recorder, record, resume, now)
        self.drive(None, now, out)

    def drive(self, pdu: GenericPduPacket | None, now: float, out: StepOutput) -> None:
        """Feed the running transaction one PDU from the receiver, or step it (``pdu`` None)."""
        active = self.active
        if active is None:
            if pdu is not None:
                self._answer_stale(pdu, out)
            return
        handler = active.handler
        if pdu is not None:
            if pdu.transaction_seq_num.value != active.record.transfer_id:
                self._answer_stale(pdu, out)
                return
            active.last_activity = now
            if (
                handler.step == SourceStep.WAITING_FOR_EOF_ACK
                and directive_of(pdu) == DirectiveType.FINISHED_PDU
            ):
                # Lost EOF-ACK: a Finished PDU proves the receiver got the EOF.
                self._feed(active, synthetic_eof_ack(handler), out)
                self.stats.eof_acks_synthesised += 1
            self._feed(active, pdu, out)
        else:
            # Progressive file data: one PDU per call; a burst per step keeps the loop fed.
            # In resume mode the first pass is dropped unsent and does not count.
            sent = 0
            for calls in range(1_000_000):
                share_gil(calls)
                if handler.state == CfdpState.IDLE:
                    break
                before = len(out.pdus)
                self._feed(active, None, out)
                sent += len(out.pdus) - before
                if handler.step != SourceStep.SENDING_FILE_DATA or sent >= self.config.burst:
                    break
            out.more_to_send = handler.step == SourceStep.SENDING_FILE_DATA
            if (
                handler.state != CfdpState.IDLE
                and handler.step in (SourceStep.WAITING_FOR_EOF_ACK, SourceStep.WAITING_FOR_FINISHED)
                and now - active.last_activity > self.config.inactivity_s
            ):
                handler.reset()
                active.recorder.faults.append(ConditionCode.INACTIVITY_DETECTED)
        if handler.state == CfdpState.IDLE:
            self._finish(active, now, out)

    def _feed(self, active: _Outgoing, pdu: GenericPduPacket | None, out: StepOutput) -> None:
        active.handler.state_machine(pdu)  # type: ignore[arg-type]
        retransmitting = active.handler.step == SourceStep.RETRANSMITTING
        before = len(out.pdus)
        drain(active.handler, out, drop_file_data=active.resume and not retransmitting,
              fault_location=self.mib.fault_location)
        active.record.file_bytes_sent += sum(n for _, n in out.pdus[before:])

    def _finish(self, active: _Outgoing, now: float, out: StepOutput) -> None:
        self.active = None
        record = active.record
        finished = active.recorder.finished
        success = (
            finished is not None
            and finished.condition_code == ConditionCode.NO_ERROR
            and finished.delivery_code == DeliveryCode.DATA_COMPLETE
        )
        if success:
            record.state, record.condition = "done", "NO_ERROR"
            self._completed[record.transfer_id] = None
            while len(self._completed) > 64:
                self._completed.popitem(last=False)
        else:
            cond = finished.condition_code if finished is not None else None
            if cond is None and active.recorder.faults:
                cond = active.recorder.faults[-1]
            record.condition = ConditionCode(cond).name if cond is not None else "ABANDONED"
            record.state = "queued"
            self._not_before[record.transfer_id] = now + self.config.retry_backoff_s
        self.journal.save()
        out.outcomes.append(
            TransferOutcome(record.transfer_id, success, record.condition, final=success)
        )

    def _answer_stale(self, pdu: GenericPduPacket, out: StepOutput) -> None:
        """A Finished PDU of a transfer we already closed: acknowledge so the peer can close.

        The ACK is ours (we were the transaction's source): our own entity-id and sequence-number
        widths, whatever widths the peer's Finished used.
        """
        if directive_of(pdu) == DirectiveType.FINISHED_PDU:
            conf = self.mib.pdu_conf(pdu.transaction_seq_num.value)
            status = (
                TransactionStatus.TERMINATED
                if pdu.transaction_seq_num.value in self._completed
                else TransactionStatus.UNRECOGNIZED
            )
            out.emit(AckPdu(conf, DirectiveType.FINISHED_PDU,
                            pdu.condition_code, status))  # type: ignore[union-attr]
            return
        raise FileTransferError(
            "StrayPdu", f"no active transfer {pdu.transaction_seq_num.value} for this PDU"
        )
