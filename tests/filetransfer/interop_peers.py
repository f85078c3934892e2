"""Other CFDP implementations as the ground entity, on the same in-memory link as our entity.

* ``CfdpPyPeer``: cfdp-py's own source and destination handlers, driven plainly (no journal, no
  resume, no work-arounds of ours), with its own entity-id and sequence-number widths, checksum
  type and transmission mode: what a ground built directly on cfdp-py (e.g. tmtccmd) sends.
* ``LibreCubePeer``: LibreCube's ``cfdp`` 0.2 (PyPI), an implementation written independently of
  cfdp-py and spacepackets. It runs its own threads and wall-clock timers, so tests using it run
  on the stock loop. Its PDUs use the narrowest widths their values need (1-octet ids and
  sequence numbers here) and it implements the modular and null checksums only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfdppy import CfdpState, PutRequest
from cfdppy.handler import DestHandler, SourceHandler
from cfdppy.handler.source import TransactionStep as SourceStep
from spacepackets.cfdp import ConditionCode, PduType, TransmissionMode
from spacepackets.cfdp.pdu import DirectiveType, MetadataPdu
from spacepackets.seqcount import SeqCountProvider

from flightsw.filetransfer.clock import handler_time
from flightsw.filetransfer.compat import Recorder
from flightsw.filetransfer.entity_config import EntityConfig
from flightsw.filetransfer.memory_link import MemoryLinkEnd
from flightsw.filetransfer.pdu import decode_pdu
from flightsw.filetransfer.quarantine import safe_file_name


def _is_for_source(pdu: Any) -> bool:
    if pdu.pdu_type == PduType.FILE_DATA:
        return False
    directive = pdu.directive_type
    if directive in (DirectiveType.FINISHED_PDU, DirectiveType.NAK_PDU, DirectiveType.KEEP_ALIVE_PDU):
        return True
    return bool(directive == DirectiveType.ACK_PDU
                and pdu.directive_code_of_acked_pdu == DirectiveType.EOF_PDU)


@dataclass
class PeerResult:
    """What the peer's user saw: files received and transactions finished (condition codes)."""

    received: list[Path] = field(default_factory=list)
    sent: list[ConditionCode] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class CfdpPyPeer:
    """cfdp-py 0.7's handlers as a plain ground entity (one transaction each way at a time)."""

    def __init__(self, config: EntityConfig, end: MemoryLinkEnd, root: Path, *,
                 seq_start: int = 0, mode: TransmissionMode = TransmissionMode.ACKNOWLEDGED) -> None:
        from flightsw.filetransfer.compat import CfdpMib  # the MIB objects only, nothing else

        self.config = config
        self.end = end
        self.root = root
        self.mode = mode
        root.mkdir(parents=True, exist_ok=True)
        self._mib = CfdpMib(config)
        self._seq = SeqCountProvider(8 * config.seq_num_bytes)
        self._seq.value = seq_start
        self._inbound: asyncio.Queue[bytes] = asyncio.Queue()
        self._dest_recorder = Recorder()
        self._dest: DestHandler = self._mib.dest_handler(self._dest_recorder)
        self._source: SourceHandler | None = None
        self._source_recorder: Recorder | None = None
        self._queue: list[tuple[Path, str]] = []
        self._stop = False
        self.result = PeerResult()

    def receive_pdu(self, raw: bytes) -> None:
        self._inbound.put_nowait(bytes(raw))

    def put(self, path: Path, dest_name: str) -> None:
        self._queue.append((path, dest_name))

    def stop(self) -> None:
        self._stop = True

    async def run(self, tick_s: float = 0.05) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop:
            out: list[bytes] = []
            with handler_time(loop.time()):
                while not self._inbound.empty():
                    self._route(self._inbound.get_nowait(), out)
                self._step(out)
            for raw in out:
                await self.end.send_pdu(raw)
            if not out:
                await asyncio.sleep(tick_s)

    def _guard(self, action: Any, *args: Any) -> None:
        try:
            action(*args)
        except Exception as exc:  # record, as a ground's log would
            self.result.errors.append(f"{type(exc).__name__}: {exc}")

    def _route(self, raw: bytes, out: list[bytes]) -> None:
        pdu = decode_pdu(raw)
        if _is_for_source(pdu):
            if self._source is not None:
                self._guard(self._feed, self._source, pdu, out)
            return
        if isinstance(pdu, MetadataPdu):
            pdu.dest_file_name = str(self.root / safe_file_name(pdu.dest_file_name or "unnamed"))
        self._guard(self._feed, self._dest, pdu, out)

    def _feed(self, handler: SourceHandler | DestHandler, pdu: Any, out: list[bytes]) -> None:
        handler.state_machine(pdu)
        while (holder := handler.get_next_packet()) is not None:
            if holder.pdu is not None:
                out.append(bytes(holder.pdu.pack()))

    def _step(self, out: list[bytes]) -> None:
        if self._dest.state != CfdpState.IDLE:
            self._guard(self._feed, self._dest, None, out)
        if self._dest.state == CfdpState.IDLE and self._dest_recorder.finished is not None:
            self._dest_done()
        if self._source is None and self._queue:
            path, name = self._queue.pop(0)
            self._source_recorder = Recorder()
            self._source = SourceHandler(
                cfg=self._mib.local_cfg(self._source_recorder), user=self._source_recorder,
                remote_cfg_table=self._mib.remote_table, check_timer_provider=self._mib.check_timers,
                seq_num_provider=self._seq)
            self._source.put_request(PutRequest(
                destination_id=self._mib.remote, source_file=path, dest_file=Path(name),
                trans_mode=self.mode, closure_requested=self.mode == TransmissionMode.ACKNOWLEDGED))
        if self._source is not None:
            for _ in range(64):  # a burst of file data per tick
                self._guard(self._feed, self._source, None, out)
                if self._source.step != SourceStep.SENDING_FILE_DATA:
                    break
            if self._source.state == CfdpState.IDLE:
                assert self._source_recorder is not None
                finished = self._source_recorder.finished
                self.result.sent.append(finished.condition_code if finished is not None
                                        else ConditionCode.NO_CONDITION_FIELD)
                self._source = None

    def _dest_done(self) -> None:
        finished = self._dest_recorder.finished
        if finished is not None and finished.condition_code == ConditionCode.NO_ERROR:
            self.result.received.extend(p for p in self.root.iterdir() if p not in self.result.received)
        self._dest_recorder.finished = None


LIBRECUBE_CHECKSUMS = {"modular": 0, "crc32": 3, "null": 15}


def _librecube_filestore(root: Path) -> Any:
    """LibreCube's native filestore with CRC-32 (checksum type 3) added.

    LibreCube cfdp 0.2 implements only the modular and null checksums (``calculate_checksum``
    raises NotImplementedError for the others): its one seam for a checksum is the filestore's
    file handle, so CRC-32 is supplied there, computed with ``zlib.crc32`` (not the satellite's
    crcmod code). Its PDU coding, state machines and timers are its own.
    """
    import zlib

    from cfdp.filestore import NativeFileStore
    from cfdp.filestore.native import NativeFileHandle, NativeTemporaryFileHandle

    def checksum_with_crc32(handle: Any, kind: int) -> int:
        if int(kind) != 3:
            return int(NativeFileHandle.calculate_checksum(handle, kind))
        handle.handle.seek(0)
        crc = 0
        while chunk := handle.handle.read(65536):
            crc = zlib.crc32(chunk, crc)
        return crc

    class Handle(NativeFileHandle):  # type: ignore[misc]
        calculate_checksum = checksum_with_crc32

    class TemporaryHandle(NativeTemporaryFileHandle):  # type: ignore[misc]
        calculate_checksum = checksum_with_crc32

    class Store(NativeFileStore):  # type: ignore[misc]
        def open(self, filepath: str, mode: str = "rb") -> Any:
            return Handle(self.get_native_path(filepath), mode)

        def open_tempfile(self) -> Any:
            return TemporaryHandle()

    return Store(str(root))


class LibreCubePeer:
    """LibreCube ``cfdp`` 0.2 as the ground entity, bridged to the in-memory link.

    Its PDUs are sent from its own event thread: they are handed to the loop thread with
    ``call_soon_threadsafe``. Received PDUs are handed to it on the loop thread (it queues them).
    """

    def __init__(self, local_id: int, remote_id: int, end: MemoryLinkEnd, root: Path,
                 loop: asyncio.AbstractEventLoop, *, timer_s: float = 0.5, inactivity_s: float = 20.0,
                 segment_len: int = 512, checksum: str = "modular") -> None:
        import cfdp
        from cfdp.transport.base import Transport

        peer = self
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.remote_id = remote_id
        self.result = PeerResult()
        self._cfdp = cfdp
        self._checksum = LIBRECUBE_CHECKSUMS[checksum]
        self._segment_len = segment_len

        class Bridge(Transport):
            def request(self, data: bytes) -> None:
                loop.call_soon_threadsafe(lambda: loop.create_task(end.send_pdu(bytes(data))))

        class Entity(cfdp.CfdpEntity):  # type: ignore[misc]
            def transaction_finished_indication(self, transaction_id: Any, condition_code: Any,
                                                file_status: Any, delivery_code: Any,
                                                *args: Any, **kwargs: Any) -> None:
                if transaction_id[0] == local_id:
                    peer.result.sent.append(ConditionCode(int(condition_code)))
                elif int(condition_code) == 0:
                    peer.result.received.extend(
                        p for p in root.iterdir() if p not in peer.result.received)
                else:
                    peer.result.errors.append(f"receive {transaction_id}: {condition_code}")

        self.transport = Bridge()
        # Two defects of LibreCube 0.2 with any checksum but the modular one, worked around here
        # (both are the ones issue 22 found in the satellite's own entity):
        # - its class-2 sender writes its Metadata without the checksum type (always 0, modular)
        #   while its EOF carries the checksum of the type put() asked for: the Metadata is given
        #   the type;
        # - its class-2 receiver verifies with the type of its own put() default (modular),
        #   not the one the Metadata names: the Metadata's type is copied to the transaction.
        import functools

        import cfdp.machines.receiver2 as receiver2
        import cfdp.machines.sender2 as sender2

        self._sender2, self._receiver2 = sender2, receiver2
        self._metadata_pdu = sender2.MetadataPdu
        self._process_options = receiver2.Receiver2.process_metadata_options
        if self._checksum != 0:
            sender2.MetadataPdu = functools.partial(self._metadata_pdu, checksum_type=self._checksum)
        process_options = self._process_options

        def process_metadata_options(machine: Any, pdu: Any) -> Any:
            machine.transaction.checksum_type = pdu.checksum_type
            return process_options(machine, pdu)

        receiver2.Receiver2.process_metadata_options = process_metadata_options
        self.entity = Entity(
            local_id, _librecube_filestore(root), self.transport,
            transaction_finished_indication_required=True, transaction_inactivity_limit=inactivity_s,
            positive_ack_timer_interval=timer_s, positive_ack_timer_expiration_limit=20,
            nak_timer_interval=timer_s, nak_timer_expiration_limit=20,
        )

    def receive_pdu(self, raw: bytes) -> None:
        self.transport.indication(bytes(raw))

    def put(self, path: Path, dest_name: str) -> Any:
        """Send ``path`` (inside the peer's root) to the remote entity, class 2, closure requested."""
        import functools

        import cfdp.core

        cfdp = self._cfdp
        transaction = cfdp.core.Transaction  # its segment length is not a put() parameter
        cfdp.core.Transaction = functools.partial(transaction, maximum_file_segment_length=self._segment_len)
        try:
            return self.entity.put(
                destination_id=self.remote_id, source_filename="/" + path.relative_to(self.root).as_posix(),
                destination_filename=dest_name, transmission_mode=cfdp.TransmissionMode.ACKNOWLEDGED,
                checksum_type=self._checksum)
        finally:
            cfdp.core.Transaction = transaction

    def stop(self) -> None:
        for machine in list(self.entity.machines.values()):
            for timer in ("inactivity_timer", "ack_timer", "nak_timer"):
                with contextlib.suppress(Exception):
                    getattr(machine, timer).shutdown()
        self.entity.shutdown()
        self._sender2.MetadataPdu = self._metadata_pdu
        self._receiver2.Receiver2.process_metadata_options = self._process_options
