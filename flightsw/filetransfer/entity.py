"""A CFDP class 2 entity for asyncio, built on cfdp-py 0.7 with its known defects worked around.

Why a wrapper and not cfdp-py directly:

* cfdp-py handlers are synchronous polled state machines that read files and compute whole-file
  checksums inside ``state_machine()``; every handler call therefore runs on one worker thread
  (``run_io``), never on the event loop;
* their timers read the wall clock: ``clock.ClockedCountdown`` replaces them and every step runs
  at the loop's (monotonic or virtual) time;
* their exceptions share no base: each handler call is guarded, errors become
  ``FileTransferError`` counted per kind, the service never crashes;
* a lost EOF-ACK stalls a class 2 transfer (the sender ignores the Finished PDU while waiting for
  the ACK, the receiver never re-acknowledges a repeated EOF): the entity acknowledges every
  repeated EOF itself and turns a Finished PDU into an implicit EOF-ACK at the sender;
* EOF condition codes are decoded with the nibble fix of ``pdu.decode_pdu``;
* cfdp-py has no suspend/resume: a transfer cut by the end of a pass or a reboot is restarted
  with the *same* transaction id in "resume" mode (the sender skips the first pass of file data
  and lets the receiver NAK what it lacks); the receiver keeps a journal of what it wrote and
  replays it into a fresh handler, so nothing that arrived is sent again;
* received files land in a quarantine directory after a CRC (CFDP) and SHA-256 check, under a
  name that never replaces an existing file.

One outgoing transaction runs at a time (highest priority first); several incoming ones may run
side by side, one cfdp-py destination handler each.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import logging
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

from cfdppy import (
    CfdpState,
    IndicationConfig,
    LocalEntityConfig,
    PutRequest,
    RemoteEntityConfig,
    RemoteEntityConfigTable,
)
from cfdppy.filestore import NativeFilestore
from cfdppy.handler import DestHandler, SourceHandler
from cfdppy.handler.dest import TransactionStep as DestStep
from cfdppy.handler.source import TransactionStep as SourceStep
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
    PduType,
    TransactionId,
    TransmissionMode,
)
from spacepackets.cfdp.pdu import (
    AckPdu,
    DeliveryCode,
    DirectiveType,
    EofPdu,
    FileDataPdu,
    FinishedPdu,
    MetadataPdu,
    TransactionStatus,
)
from spacepackets.cfdp.pdu.file_data import FileDataParams
from spacepackets.cfdp.pdu.finished import FileStatus, FinishedParams
from spacepackets.seqcount import ProvidesSeqCount
from spacepackets.util import UnsignedByteField

from flightsw.filetransfer.clock import ClockedCheckTimerProvider, handler_time
from flightsw.filetransfer.errors import ErrorCounters, FileTransferError
from flightsw.filetransfer.journal import (
    IncomingRecord,
    OutgoingJournal,
    OutgoingRecord,
    atomic_write_json,
    read_json,
)
from flightsw.filetransfer.pdu import PduDecodeError, decode_pdu

_LOG = logging.getLogger(__name__)
T = TypeVar("T")

RunIo = Callable[[Callable[[], T]], Awaitable[T]]


class PduSink(Protocol):
    """Where the entity hands PDUs for transmission; the radio link implements this.

    ``send_pdu`` may wait while the link is busy (that is the flow control) and may lose the PDU
    (CFDP class 2 recovers). The link delivers received PDUs with ``CfdpEntity.receive_pdu``.
    """

    async def send_pdu(self, pdu: bytes) -> None: ...


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


class _FixedSeqCount(ProvidesSeqCount):
    """Hands cfdp-py the sequence number chosen by the journal (same id when resuming)."""

    def __init__(self, value: int) -> None:
        self.value = value

    @property
    def max_bit_width(self) -> int:
        return 32

    @max_bit_width.setter
    def max_bit_width(self, width: int) -> None:
        raise ValueError("fixed at 32 bits")

    def get_and_increment(self) -> int:
        return self.value


class _NamedSourceFilestore(NativeFilestore):
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


class _Recorder(CfdpUserBase, DefaultFaultHandlerBase):
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


def _share_gil(iteration: int) -> None:
    """Long worker loops release the GIL now and then so the event loop thread is never starved."""
    if iteration % 16 == 15:
        time.sleep(0)


def _checksum_failure_params() -> FinishedParams:
    return FinishedParams(
        condition_code=ConditionCode.FILE_CHECKSUM_FAILURE,
        delivery_code=DeliveryCode.DATA_INCOMPLETE,
        file_status=FileStatus.DISCARDED_DELIBERATELY,
    )


def safe_file_name(name: str) -> str:
    """Reduce an uplinked name to a plain file name: no directories, no traversal, no oddities."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    if not cleaned:
        raise ValueError(f"unusable file name {name!r}")
    return cleaned[:100]


@dataclass
class _Incoming:
    handler: DestHandler
    recorder: _Recorder
    record: IncomingRecord
    staging: Path
    eof_seen: bool = False
    eof_checksum: bytes | None = None
    eof_size: int | None = None
    verified: bool | None = None  # our own CRC check of the complete file
    unflushed: int = 0
    last_activity: float = 0.0
    done: bool = False


@dataclass
class _Outgoing:
    handler: SourceHandler
    recorder: _Recorder
    record: OutgoingRecord
    resume: bool
    last_activity: float


@dataclass
class _StepOutput:
    pdus: list[tuple[bytes, int]] = field(default_factory=list)  # (raw, file-data bytes)
    received: list[ReceivedFile] = field(default_factory=list)
    outcomes: list[TransferOutcome] = field(default_factory=list)
    more_to_send: bool = False
    snapshot: list[OutgoingRecord] = field(default_factory=list)
    # When the handlers next need a step without a wake-up: None while a transaction is open
    # (its timers advance only when stepped), else the earliest retry of a queued transfer
    # (math.inf when there is none).
    idle_until: float | None = None


class CfdpEntity:
    """Sends queued files and receives files over a ``PduSink``, driven by ``run()``."""

    def __init__(
        self,
        config: EntityConfig,
        sink: PduSink,
        *,
        run_io: RunIo[Any] | None = None,
        clock: Callable[[], float] | None = None,
        on_file_received: Callable[[ReceivedFile], None] | None = None,
        on_transfer_done: Callable[[TransferOutcome], None] | None = None,
    ) -> None:
        self.config = config
        self._sink = sink
        self._executor: ThreadPoolExecutor | None = None
        self._run_io: RunIo[Any] = run_io or self._default_run_io
        self._clock = clock
        self.on_file_received = on_file_received
        self.on_transfer_done = on_transfer_done
        self.stats = EntityStats()
        self._inbound: asyncio.Queue[bytes] = asyncio.Queue(maxsize=config.inbound_queue)
        self._wake = asyncio.Event()
        self._id_bytes = config.entity_id_bytes
        self._local = UnsignedByteField(config.local_id, self._id_bytes)
        self._remote_table = RemoteEntityConfigTable(
            [
                RemoteEntityConfig(
                    entity_id=UnsignedByteField(config.remote_id, self._id_bytes),
                    max_file_segment_len=None,
                    max_packet_len=config.max_pdu_len,
                    closure_requested=True,
                    crc_on_transmission=False,
                    default_transmission_mode=TransmissionMode.ACKNOWLEDGED,
                    crc_type=ChecksumType.CRC_32,
                    positive_ack_timer_interval_seconds=config.ack_interval_s,
                    positive_ack_timer_expiration_limit=config.ack_limit,
                    nak_timer_interval_seconds=config.nak_interval_s,
                    nak_timer_expiration_limit=config.nak_limit,
                    check_limit=config.nak_limit,
                )
            ]
        )
        self._check_timers = ClockedCheckTimerProvider(config.nak_interval_s)
        # Loaded on the worker at first use: no file I/O on the loop, not even at start-up.
        self._journal = OutgoingJournal(config.journal_dir / "outgoing.json")
        self._loaded = False
        self._not_before: dict[int, float] = {}
        self._active_out: _Outgoing | None = None
        self._incoming: dict[tuple[int, int], _Incoming] = {}
        # Completed incoming transactions: the Finished PDU to repeat if the sender asks again.
        self._completed_in: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._completed_out: OrderedDict[int, None] = OrderedDict()
        self._stopped = False
        self._snapshot: list[OutgoingRecord] = []

    # ------------------------------------------------------------------ public API

    @property
    def _incoming_journal_dir(self) -> Path:
        return self.config.journal_dir / "incoming"

    def receive_pdu(self, pdu: bytes) -> None:
        """Called by the link (on the loop) for every received PDU; never blocks."""
        try:
            self._inbound.put_nowait(bytes(pdu))
        except asyncio.QueueFull:
            self.stats.pdus_dropped_queue_full += 1
            return
        self._wake.set()

    async def put(self, source: Path, dest_name: str, priority: int = 5) -> int:
        """Queue ``source`` for transfer as ``dest_name``; returns the transfer id.

        Lower ``priority`` goes first (thumbnails before full images). The queue is persisted
        before this returns, so the request survives a reboot.
        """
        if not 0 <= priority <= 9:
            raise ValueError(f"priority must be 0..9, not {priority}")
        name = safe_file_name(dest_name)
        source = Path(source)

        def queue() -> int:
            self._ensure_loaded()
            if not source.is_file():
                raise FileNotFoundError(f"cannot send {source}: no such file")
            record = OutgoingRecord(
                transfer_id=self._journal.allocate_id(),
                source=str(source.resolve()),
                dest_name=name,
                priority=priority,
                size=source.stat().st_size,
            )
            self._journal.records[record.transfer_id] = record
            self._journal.save()
            return record.transfer_id

        transfer_id: int = await self._run_io(queue)
        self._snapshot = await self._run_io(self._copy_records)
        self._wake.set()
        return transfer_id

    def transfers(self) -> list[OutgoingRecord]:
        """Snapshot of the outgoing queue (queued, active and recently finished).

        Taken by the worker at the end of each step, so the loop never iterates the live
        journal while the worker changes it.
        """
        return list(self._snapshot)

    def progress(self, transfer_id: int) -> tuple[int, int] | None:
        """(bytes acknowledged-or-sent, size) of an outgoing transfer, for progress display."""
        record = self._journal.records.get(transfer_id)
        if record is None:
            return None
        active = self._active_out
        if active is not None and active.record.transfer_id == transfer_id:
            return (active.handler.progress, record.size)
        return (record.size if record.state == "done" else 0, record.size)

    async def run(self) -> None:
        """The service coroutine: drive handlers on every PDU and wake-up.

        While a transaction is open (in or out) the handlers are stepped at least every
        ``tick_s``: that is how their ACK, NAK and inactivity timers advance. With nothing open,
        stepping them would do nothing, so the entity sleeps until a PDU arrives, a file is
        queued, a backed-off transfer may retry, or at the latest ``idle_tick_s``.
        """
        more = True
        idle_until: float | None = None
        try:
            while not self._stopped:
                if not more and self._inbound.empty():
                    timeout = self.config.tick_s
                    if idle_until is not None:
                        timeout = min(self.config.idle_tick_s, max(self.config.tick_s, idle_until - self._now()))
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout)
                    except TimeoutError:
                        pass
                # Cleared before the step, not before the wait: a file queued while the step
                # runs (after it looked at the queue) must not sleep a whole idle_tick_s.
                self._wake.clear()
                batch: list[bytes] = []
                while not self._inbound.empty() and len(batch) < 256:
                    batch.append(self._inbound.get_nowait())
                now = self._now()
                output: _StepOutput = await self._run_io(functools.partial(self._step, batch, now))
                self.stats.steps += 1
                for raw, file_bytes in output.pdus:
                    await self._sink.send_pdu(raw)
                    self.stats.pdus_sent += 1
                    self.stats.file_bytes_sent += file_bytes
                self._publish(output)
                more = output.more_to_send
                idle_until = output.idle_until
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    # ------------------------------------------------------------------ loop side helpers

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    async def _default_run_io(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cfdp")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _publish(self, output: _StepOutput) -> None:
        self._snapshot = output.snapshot
        for received in output.received:
            self.stats.files_received += 1
            if self.on_file_received is not None:
                self.on_file_received(received)
        for outcome in output.outcomes:
            if outcome.success:
                self.stats.files_sent += 1
            if self.on_transfer_done is not None:
                self.on_transfer_done(outcome)

    # ------------------------------------------------------------------ worker thread side

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        config = self.config
        for folder in (config.staging_dir, config.quarantine_dir, self._incoming_journal_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._journal = OutgoingJournal.load(config.journal_dir / "outgoing.json")
        self._loaded = True

    def _step(self, inbound: list[bytes], now: float) -> _StepOutput:
        self._ensure_loaded()
        out = _StepOutput()
        with handler_time(now):
            for raw in inbound:
                self.stats.pdus_received += 1
                self._guard(functools.partial(self._route, raw, now, out), None)
            for key in list(self._incoming):
                self._guard(functools.partial(self._drive_incoming, key, None, now, out), key)
            self._guard(lambda: self._drive_outgoing(None, now, out), "source")
            self._guard(lambda: self._start_next_outgoing(now, out), "source")
        out.snapshot = self._copy_records()
        out.idle_until = self._idle_until()
        return out

    def _idle_until(self) -> float | None:
        """None while a transaction is open, else when a queued transfer may next start."""
        if self._active_out is not None or self._incoming:
            return None
        return min((self._not_before.get(r.transfer_id, 0.0)
                    for r in self._journal.records.values() if r.state == "queued"),
                   default=math.inf)

    def _copy_records(self) -> list[OutgoingRecord]:
        return [OutgoingRecord(**vars(r)) for r in self._journal.records.values()]

    def _guard(self, action: Callable[[], None], where: object) -> None:
        try:
            action()
        except Exception as exc:  # cfdp-py exceptions share no base class
            error = FileTransferError.wrap(exc, None if where is None else str(where))
            self.stats.errors.record(error)
            _LOG.info("file transfer: %s", error)

    def _route(self, raw: bytes, now: float, out: _StepOutput) -> None:
        try:
            pdu = decode_pdu(raw)
        except PduDecodeError as exc:
            raise FileTransferError("PduDecodeError", str(exc)) from exc
        if pdu.source_entity_id.value == self.config.local_id and self._is_for_sender(pdu):
            self._drive_outgoing(pdu, now, out)
            return
        if pdu.dest_entity_id.value != self.config.local_id:
            raise FileTransferError("WrongEntity", f"PDU for entity {pdu.dest_entity_id.value}")
        key = (pdu.source_entity_id.value, pdu.transaction_seq_num.value)
        self._drive_incoming(key, pdu, now, out)

    @staticmethod
    def _is_for_sender(pdu: GenericPduPacket) -> bool:
        if pdu.pdu_type == PduType.FILE_DATA:
            return False
        directive = pdu.directive_type  # type: ignore[union-attr]
        if directive in (DirectiveType.FINISHED_PDU, DirectiveType.NAK_PDU,
                         DirectiveType.KEEP_ALIVE_PDU):
            return True
        if directive == DirectiveType.ACK_PDU:
            return pdu.directive_code_of_acked_pdu == DirectiveType.EOF_PDU  # type: ignore
        return False

    def _emit(self, out: _StepOutput, pdu: GenericPduPacket, file_bytes: int = 0) -> None:
        out.pdus.append((bytes(pdu.pack()), file_bytes))

    def _drain(self, handler: SourceHandler | DestHandler, out: _StepOutput,
               drop_file_data: bool = False) -> None:
        for count in itertools.count():
            _share_gil(count)
            holder = handler.get_next_packet()
            if holder is None:
                return
            pdu = holder.pdu
            if pdu is None:
                continue
            if pdu.pdu_type == PduType.FILE_DATA:
                if drop_file_data:
                    continue
                self._emit(out, pdu, len(pdu.file_data))  # type: ignore[union-attr]
            else:
                self._emit(out, pdu)

    # ---- sending side

    def _start_next_outgoing(self, now: float, out: _StepOutput) -> None:
        if self._active_out is not None:
            return
        candidates = [
            r for r in self._journal.records.values()
            if r.state == "queued" and self._not_before.get(r.transfer_id, 0.0) <= now
        ]
        if not candidates:
            return
        record = min(candidates, key=lambda r: (r.priority, r.transfer_id))
        source = Path(record.source)
        if not source.is_file():
            record.state, record.condition = "failed", "source file missing"
            self._journal.save()
            out.outcomes.append(TransferOutcome(record.transfer_id, False, record.condition, True))
            return
        sent_name = Path(record.dest_name)
        recorder = _Recorder(_NamedSourceFilestore(sent_name, source))
        handler = SourceHandler(
            cfg=self._local_cfg(recorder),
            user=recorder,
            remote_cfg_table=self._remote_table,
            check_timer_provider=self._check_timers,
            seq_num_provider=_FixedSeqCount(record.transfer_id),
        )
        handler.put_request(
            PutRequest(
                destination_id=UnsignedByteField(self.config.remote_id, self._id_bytes),
                source_file=sent_name,
                dest_file=sent_name,
                trans_mode=TransmissionMode.ACKNOWLEDGED,
                closure_requested=True,
            )
        )
        resume = record.attempts > 0
        record.attempts += 1
        record.state = "active"
        self._journal.save()
        self._active_out = _Outgoing(handler, recorder, record, resume, now)
        self._drive_outgoing(None, now, out)

    def _local_cfg(self, recorder: _Recorder) -> LocalEntityConfig:
        return LocalEntityConfig(
            local_entity_id=self._local,
            indication_cfg=IndicationConfig(file_segment_recvd_indication_required=False),
            default_fault_handlers=recorder,
        )

    def _drive_outgoing(self, pdu: GenericPduPacket | None, now: float, out: _StepOutput) -> None:
        active = self._active_out
        if active is None:
            if pdu is not None:
                self._answer_stale_sender_pdu(pdu, out)
            return
        handler = active.handler
        if pdu is not None:
            if pdu.transaction_seq_num.value != active.record.transfer_id:
                self._answer_stale_sender_pdu(pdu, out)
                return
            active.last_activity = now
            if (
                handler.step == SourceStep.WAITING_FOR_EOF_ACK
                and getattr(pdu, "directive_type", None) == DirectiveType.FINISHED_PDU
            ):
                # Lost EOF-ACK: a Finished PDU proves the receiver got the EOF.
                self._feed_source(active, self._synthetic_eof_ack(handler), out)
                self.stats.eof_acks_synthesised += 1
            self._feed_source(active, pdu, out)
        else:
            # Progressive file data: one PDU per call; a burst per step keeps the loop fed.
            # In resume mode the first pass is dropped unsent and does not count.
            sent = 0
            for calls in range(1_000_000):
                _share_gil(calls)
                if handler.state == CfdpState.IDLE:
                    break
                before = len(out.pdus)
                self._feed_source(active, None, out)
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
            self._finish_outgoing(active, now, out)

    def _feed_source(self, active: _Outgoing, pdu: GenericPduPacket | None,
                     out: _StepOutput) -> None:
        active.handler.state_machine(pdu)  # type: ignore[arg-type]
        retransmitting = active.handler.step == SourceStep.RETRANSMITTING
        before = len(out.pdus)
        self._drain(active.handler, out, drop_file_data=active.resume and not retransmitting)
        active.record.file_bytes_sent += sum(n for _, n in out.pdus[before:])

    def _synthetic_eof_ack(self, handler: SourceHandler) -> AckPdu:
        ack = AckPdu(handler.pdu_conf, DirectiveType.EOF_PDU, ConditionCode.NO_ERROR,
                     TransactionStatus.ACTIVE)  # AckPdu copies the config and sets the direction
        return AckPdu.unpack(ack.pack())

    def _finish_outgoing(self, active: _Outgoing, now: float, out: _StepOutput) -> None:
        self._active_out = None
        record = active.record
        finished = active.recorder.finished
        success = (
            finished is not None
            and finished.condition_code == ConditionCode.NO_ERROR
            and finished.delivery_code == DeliveryCode.DATA_COMPLETE
        )
        if success:
            record.state, record.condition = "done", "NO_ERROR"
            self._completed_out[record.transfer_id] = None
            while len(self._completed_out) > 64:
                self._completed_out.popitem(last=False)
        else:
            cond = finished.condition_code if finished is not None else None
            if cond is None and active.recorder.faults:
                cond = active.recorder.faults[-1]
            record.condition = ConditionCode(cond).name if cond is not None else "ABANDONED"
            record.state = "queued"
            self._not_before[record.transfer_id] = now + self.config.retry_backoff_s
        self._journal.save()
        out.outcomes.append(
            TransferOutcome(record.transfer_id, success, record.condition, final=success)
        )

    def _answer_stale_sender_pdu(self, pdu: GenericPduPacket, out: _StepOutput) -> None:
        """A Finished PDU of a transfer we already closed: acknowledge so the peer can close."""
        if getattr(pdu, "directive_type", None) == DirectiveType.FINISHED_PDU:
            conf = pdu.pdu_header.pdu_conf
            status = (
                TransactionStatus.TERMINATED
                if pdu.transaction_seq_num.value in self._completed_out
                else TransactionStatus.UNRECOGNIZED
            )
            self._emit(out, AckPdu(conf, DirectiveType.FINISHED_PDU,
                                   pdu.condition_code, status))  # type: ignore[union-attr]
            return
        raise FileTransferError(
            "StrayPdu", f"no active transfer {pdu.transaction_seq_num.value} for this PDU"
        )

    # ---- receiving side

    def _drive_incoming(self, key: tuple[int, int], pdu: GenericPduPacket | None, now: float,
                        out: _StepOutput) -> None:
        incoming = self._incoming.get(key)
        if incoming is None:
            if pdu is None:
                return
            if key in self._completed_in:
                self._answer_completed(key, pdu, out)
                return
            incoming = self._open_incoming(key, pdu, now, out)
            if incoming is None:
                return
            if getattr(pdu, "directive_type", None) == DirectiveType.METADATA_PDU \
                    and incoming.record.metadata_pdu:
                pdu = None  # already fed (fresh or replayed)
        if pdu is not None:
            incoming.last_activity = now
            directive = getattr(pdu, "directive_type", None)
            if directive == DirectiveType.EOF_PDU and incoming.eof_seen:
                # Repeated EOF: its ACK was lost. cfdp-py would not answer it again.
                self._emit(out, self._eof_ack_for(pdu))  # type: ignore[arg-type]
                self.stats.eof_acks_synthesised += 1
                pdu = None
            elif directive == DirectiveType.METADATA_PDU:
                if not incoming.record.metadata_pdu:  # it was lost and NAKed, now it is here
                    incoming.record.metadata_pdu = bytes(pdu.pack())
                    incoming.record.dest_name = safe_file_name(
                        pdu.dest_file_name or "unnamed")  # type: ignore[union-attr]
                pdu = self._with_staging_name(pdu, incoming.staging)  # type: ignore[arg-type]
        elif (
            incoming.handler.step in (DestStep.RECEIVING_FILE_DATA, DestStep.WAITING_FOR_METADATA)
            and now - incoming.last_activity > self.config.inactivity_s
        ):
            # cfdp-py has no inactivity timer: the sender went away (end of pass, reboot).
            # Keep what arrived on disk for a resume and free the handler.
            self._save_incoming(incoming)
            del self._incoming[key]
            self._prune_partials()
            return
        if pdu is not None or incoming.handler.state != CfdpState.IDLE:
            self._feed_dest(incoming, pdu, out)
        if incoming.handler.state == CfdpState.IDLE:
            self._close_incoming(key, incoming, out)

    def _open_incoming(self, key: tuple[int, int], pdu: GenericPduPacket, now: float,
                       out: _StepOutput) -> _Incoming | None:
        if len(self._incoming) >= self.config.max_incoming:
            raise FileTransferError("TooManyIncoming", f"transaction {key} refused")
        recorder = _Recorder()
        handler = DestHandler(
            cfg=self._local_cfg(recorder),
            user=recorder,
            remote_cfg_table=self._remote_table,
            check_timer_provider=self._check_timers,
        )
        staging = self.config.staging_dir / f"{key[0]}-{key[1]}.part"
        journal_path = self._incoming_journal_dir / f"{key[0]}-{key[1]}.json"
        saved = read_json(journal_path)
        is_metadata = getattr(pdu, "directive_type", None) == DirectiveType.METADATA_PDU
        if saved is not None:
            record = IncomingRecord.from_json(saved)
        elif is_metadata:
            record = IncomingRecord(key[0], key[1], bytes(pdu.pack()),
                                    safe_file_name(pdu.dest_file_name or "unnamed"))  # type: ignore
        else:
            record = IncomingRecord(key[0], key[1], b"", "")
        incoming = _Incoming(handler, recorder, record, staging, last_activity=now)
        self._incoming[key] = incoming
        self._prune_partials()
        if saved is not None:
            self._replay(incoming, out)
        elif is_metadata:
            self._feed_dest(incoming, self._with_staging_name(pdu, staging), out)  # type: ignore
            self._save_incoming(incoming)
        return incoming

    def _prune_partials(self) -> None:
        """Keep at most ``max_partial`` resumable incoming transfers on disk (oldest go first)."""
        active = {f"{k[0]}-{k[1]}" for k in self._incoming}
        journals = sorted(
            (p for p in self._incoming_journal_dir.glob("*.json") if p.stem not in active),
            key=lambda p: p.stat().st_mtime_ns,
        )
        for journal in journals[: max(0, len(journals) - self.config.max_partial)]:
            for leftover in (journal, self.config.staging_dir / f"{journal.stem}.part",
                             self.config.staging_dir / f"{journal.stem}.resume"):
                leftover.unlink(missing_ok=True)
            self.stats.partials_dropped += 1

    def _replay(self, incoming: _Incoming, out: _StepOutput) -> None:
        """Feed a fresh handler what an interrupted transaction already wrote to disk."""
        resume_source = incoming.staging.with_suffix(".resume")
        if incoming.staging.exists() and not resume_source.exists():
            os.replace(incoming.staging, resume_source)
        metadata = decode_pdu(incoming.record.metadata_pdu)
        self._feed_dest(incoming, self._with_staging_name(metadata, incoming.staging), out)
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
                        self._feed_dest(incoming, fd, out)
                        _share_gil(offset // segment)
                        offset += len(chunk)
            resume_source.unlink()

    def _with_staging_name(self, metadata: MetadataPdu, staging: Path) -> MetadataPdu:
        metadata.dest_file_name = str(staging)
        return metadata

    def _feed_dest(self, incoming: _Incoming, pdu: GenericPduPacket | None,
                   out: _StepOutput) -> None:
        try:
            incoming.handler.state_machine(pdu)
            if pdu is not None and getattr(pdu, "directive_type", None) == DirectiveType.EOF_PDU:
                incoming.eof_checksum = bytes(pdu.file_checksum)  # type: ignore[union-attr]
                incoming.eof_size = pdu.file_size  # type: ignore[union-attr]
            if incoming.recorder.finished is not None and not incoming.done:
                incoming.done = True
                self._on_incoming_finished(incoming, out)
        finally:
            self._drain_dest(incoming, out)
        if pdu is None:
            return
        writes_data = (
            incoming.record.metadata_pdu
            and incoming.handler.state != CfdpState.IDLE
            and incoming.handler.step != DestStep.WAITING_FOR_METADATA
        )
        if pdu.pdu_type == PduType.FILE_DATA and writes_data:
            length = len(pdu.file_data)  # type: ignore[union-attr]
            incoming.record.received.add(pdu.offset, pdu.offset + length)  # type: ignore
            incoming.unflushed += length
            if incoming.unflushed >= self.config.journal_flush_bytes:
                self._save_incoming(incoming)
        elif getattr(pdu, "directive_type", None) == DirectiveType.EOF_PDU:
            incoming.eof_seen = True
            self._save_incoming(incoming)

    def _drain_dest(self, incoming: _Incoming, out: _StepOutput) -> None:
        """Send what the handler produced; a Finished PDU reports our own CRC verdict."""
        while True:
            holder = incoming.handler.get_next_packet()
            if holder is None or holder.pdu is None:
                if holder is None:
                    return
                continue
            pdu = holder.pdu
            if (
                getattr(pdu, "directive_type", None) == DirectiveType.FINISHED_PDU
                and incoming.verified is False
            ):
                pdu = FinishedPdu(pdu.pdu_header.pdu_conf, _checksum_failure_params())
            self._emit(out, pdu)

    def _save_incoming(self, incoming: _Incoming) -> None:
        if not incoming.record.metadata_pdu:
            return  # nothing useful to resume from until the Metadata PDU arrives
        if incoming.staging.exists():
            fd = os.open(incoming.staging, os.O_RDONLY)
            try:
                os.fsync(fd)  # the journal must never claim bytes that are not on disk
            finally:
                os.close(fd)
        atomic_write_json(self._incoming_journal_dir / f"{incoming.record.key}.json",
                          incoming.record.to_json())
        incoming.unflushed = 0

    def _on_incoming_finished(self, incoming: _Incoming, out: _StepOutput) -> None:
        finished = incoming.recorder.finished
        assert finished is not None
        journal_path = self._incoming_journal_dir / f"{incoming.record.key}.json"
        ok = bool(
            finished.condition_code == ConditionCode.NO_ERROR
            and finished.delivery_code == DeliveryCode.DATA_COMPLETE
            and incoming.record.metadata_pdu
        )
        if ok:
            # cfdp-py skips the checksum in class 2 when no segment was lost: check it here.
            incoming.verified = self._crc_matches(incoming)
            if not incoming.verified:
                self.stats.errors.record(FileTransferError(
                    "FileChecksumFailure", "received file does not match the sender's CRC",
                    incoming.record.key))
                finished.condition_code = ConditionCode.FILE_CHECKSUM_FAILURE
                finished.delivery_code = DeliveryCode.DATA_INCOMPLETE
                ok = False
        if ok:
            out.received.append(self._quarantine(incoming))
            journal_path.unlink(missing_ok=True)
        elif finished.condition_code == ConditionCode.FILE_CHECKSUM_FAILURE:
            incoming.staging.unlink(missing_ok=True)  # corrupt data: resuming would not help
            journal_path.unlink(missing_ok=True)
        else:
            self._save_incoming(incoming)  # cut short: keep what arrived for a resume
            self._prune_partials()

    def _crc_matches(self, incoming: _Incoming) -> bool:
        if incoming.eof_checksum is None or incoming.eof_size is None:
            return False
        if not incoming.staging.exists() or incoming.staging.stat().st_size != incoming.eof_size:
            return False
        crc = NativeFilestore().calculate_checksum(
            ChecksumType.CRC_32, incoming.staging, incoming.eof_size, 1 << 16)
        return crc == incoming.eof_checksum

    def _quarantine(self, incoming: _Incoming) -> ReceivedFile:
        """Move a verified file into quarantine without ever replacing an existing file."""
        digest = hashlib.sha256()
        with open(incoming.staging, "rb") as data:
            for block in iter(lambda: data.read(1 << 16), b""):
                digest.update(block)
        name = incoming.record.dest_name or f"file-{incoming.record.key}"
        target = self.config.quarantine_dir / name
        if target.exists() or target.with_name(target.name + ".meta.json").exists():
            target = target.with_name(f"{target.stem}.{incoming.record.key}{target.suffix}")
        os.link(incoming.staging, target)  # fails rather than overwrite
        incoming.staging.unlink()
        size = target.stat().st_size
        received = ReceivedFile(target, name, size, digest.hexdigest(),
                                incoming.record.source_id, incoming.record.seq)
        atomic_write_json(
            target.with_name(target.name + ".meta.json"),
            {"name": name, "size": size, "sha256": received.sha256,
             "source_id": received.source_id, "seq": received.seq},
        )
        return received

    def _close_incoming(self, key: tuple[int, int], incoming: _Incoming, out: _StepOutput) -> None:
        del self._incoming[key]
        finished = incoming.recorder.finished
        if finished is not None and incoming.done and finished.condition_code == ConditionCode.NO_ERROR:
            conf = decode_pdu(incoming.record.metadata_pdu).pdu_header.pdu_conf
            conf.direction = Direction.TOWARDS_SENDER
            self._completed_in[key] = bytes(FinishedPdu(conf, finished).pack())
            while len(self._completed_in) > 64:
                self._completed_in.popitem(last=False)

    def _answer_completed(self, key: tuple[int, int], pdu: GenericPduPacket,
                          out: _StepOutput) -> None:
        """The sender repeats PDUs of a transaction we finished: re-ACK its EOF, repeat Finished."""
        if getattr(pdu, "directive_type", None) == DirectiveType.EOF_PDU:
            self._emit(out, self._eof_ack_for(pdu, TransactionStatus.TERMINATED))  # type: ignore
            out.pdus.append((self._completed_in[key], 0))

    @staticmethod
    def _eof_ack_for(eof: EofPdu, status: TransactionStatus = TransactionStatus.ACTIVE) -> AckPdu:
        return AckPdu(eof.pdu_header.pdu_conf, DirectiveType.EOF_PDU, eof.condition_code, status)
