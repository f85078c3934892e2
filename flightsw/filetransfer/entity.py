"""The asyncio driver of a CFDP class 2 entity: queue, worker thread, PDU routing, timers.

Why a driver around cfdp-py and not cfdp-py directly: its handlers are synchronous polled state
machines that read files and compute whole-file checksums inside ``state_machine()``, and their
timers advance only when they are stepped. The driver therefore runs every handler call on one
worker thread (``run_io``), never on the event loop, steps open transactions every ``tick_s``
on the loop's (monotonic or virtual) clock, sleeps while nothing is open, and guards every step
so that no PDU can take the service down.

The pieces it drives: ``source`` (outgoing queue, one transfer at a time, resume by transaction
id), ``destination`` (incoming transactions with journals, own checksum verification, quarantine)
and ``compat`` (the cfdp-py work-arounds, listed in docs/file-transfer.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from flightsw.filetransfer.clock import handler_time
from flightsw.filetransfer.compat import CfdpMib
from flightsw.filetransfer.destination import DestinationSide
from flightsw.filetransfer.entity_config import EntityConfig
from flightsw.filetransfer.errors import FileTransferError
from flightsw.filetransfer.interface import (
    EntityStats,
    PduSink,
    ReceivedFile,
    TransferOutcome,
)
from flightsw.filetransfer.journal import OutgoingRecord
from flightsw.filetransfer.pdu import PduDecodeError, decode_pdu
from flightsw.filetransfer.quarantine import safe_file_name
from flightsw.filetransfer.source import SourceSide, is_for_sender
from flightsw.filetransfer.step import StepOutput

_LOG = logging.getLogger(__name__)
T = TypeVar("T")

RunIo = Callable[[Callable[[], T]], Awaitable[T]]


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
        mib = CfdpMib(config)
        self._source = SourceSide(config, mib, self.stats)
        self._dest = DestinationSide(config, mib, self.stats)
        self._loaded = False
        self._stopped = False
        self._snapshot: list[OutgoingRecord] = []

    # ------------------------------------------------------------------ public API

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
        path = Path(source)

        def queue() -> int:
            self._ensure_loaded()
            return self._source.queue(path, name, priority)

        transfer_id: int = await self._run_io(queue)
        self._snapshot = await self._run_io(self._source.copy_records)
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
        return self._source.progress(transfer_id)

    @property
    def incoming_count(self) -> int:
        """Incoming transactions holding a handler right now."""
        return len(self._dest.incoming)

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
                output: StepOutput = await self._run_io(functools.partial(self._step, batch, now))
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

    def _publish(self, output: StepOutput) -> None:
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
        for folder in (config.staging_dir, config.quarantine_dir, config.incoming_journal_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._source.load()
        self._loaded = True

    def _step(self, inbound: list[bytes], now: float) -> StepOutput:
        self._ensure_loaded()
        out = StepOutput()
        with handler_time(now):
            for raw in inbound:
                self.stats.pdus_received += 1
                self._guard(functools.partial(self._route, raw, now, out), None)
            for key in list(self._dest.incoming):
                self._guard(functools.partial(self._dest.drive, key, None, now, out), key)
            self._guard(lambda: self._source.drive(None, now, out), "source")
            self._guard(lambda: self._source.start_next(now, out), "source")
        out.snapshot = self._source.copy_records()
        out.idle_until = self._idle_until()
        return out

    def _idle_until(self) -> float | None:
        """None while a transaction is open, else when a queued transfer may next start."""
        if self._source.active is not None or self._dest.incoming:
            return None
        return self._source.idle_until()

    def _guard(self, action: Callable[[], None], where: object) -> None:
        try:
            action()
        except Exception as exc:  # cfdp-py exceptions share no base class
            error = FileTransferError.wrap(exc, None if where is None else str(where))
            self.stats.errors.record(error)
            _LOG.info("file transfer: %s", error)

    def _route(self, raw: bytes, now: float, out: StepOutput) -> None:
        try:
            pdu = decode_pdu(raw)
        except PduDecodeError as exc:
            raise FileTransferError("PduDecodeError", str(exc)) from exc
        if pdu.source_entity_id.value == self.config.local_id and is_for_sender(pdu):
            self._source.drive(pdu, now, out)
            return
        if pdu.dest_entity_id.value != self.config.local_id:
            raise FileTransferError("WrongEntity", f"PDU for entity {pdu.dest_entity_id.value}")
        key = (pdu.source_entity_id.value, pdu.transaction_seq_num.value)
        self._dest.drive(key, pdu, now, out)
