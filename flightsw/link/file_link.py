"""File transfer over the radio link: CFDP PDUs in space packets on their own APID (0x016).

Why a component of its own: the CFDP entity (``flightsw.filetransfer``) knows nothing about
radios, and the link component knows nothing about files. This joins them and owns the policy:

* **downlink**: every PDU the entity emits becomes a TM packet on ``Apid.FILE`` queued at the
  scheduler's FILE priority (the lowest), so files only use what verdicts, beacon, housekeeping,
  events and stored telemetry leave free. ``send_pdu`` waits while the transmitter is off or
  inhibited, and while more than ``FILE_QUEUE_DEPTH`` file packets are already queued: the
  scheduler paces frames to the bit rate, so the entity is throttled to the link, never faster,
  and the scheduler's file queue never overflows (which would drop PDUs for nothing);
* **uplink**: a file PDU travels as a TC packet on ``Apid.FILE`` authenticated exactly like a
  telecommand (key id, counter, truncated HMAC-SHA256, same key ring and active key) but with a
  counter of its own (``link.file_counter``, persisted before the PDU is used), so interleaving
  with commands cannot make either one look like a replay. A PDU failing any check is counted and
  dropped before the entity sees it: an unauthenticated PDU can never create a file on board;
* **files queued by imaging** are hard-linked into an outbox first, so an image evicted while its
  transfer waits does not break the transfer (the ``FileDownlink`` contract); outbox links are
  removed when their transfer is final.
"""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from spacepackets.ccsds.spacepacket import PacketType

from flightsw.core.component import Channel, Component, Counter, CounterSet, Event
from flightsw.core.events import Severity
from flightsw.core.types import U8, U16, U32
from flightsw.filetransfer import (
    CfdpEntity,
    EntityConfig,
    ReceivedFile,
    TransferOutcome,
    safe_file_name,
)
from flightsw.filetransfer.journal import OutgoingJournal
from flightsw.link.auth import TAG_LEN, AuthError, NotACommand, verify_command
from flightsw.link.packets import (
    CRC_LEN,
    PRIMARY_HEADER_LEN,
    TC_SECONDARY_LEN,
    TM_SECONDARY_LEN,
    Apid,
    Packet,
)
from flightsw.link.scheduler import Priority

if TYPE_CHECKING:
    from collections.abc import Callable

    from flightsw.link.component import LinkComponent

log = logging.getLogger("flightsw.link.files")
T = TypeVar("T")

STATE_FILE_COUNTER = "link.file_counter"
FILE_QUEUE_DEPTH = 8  # file packets waiting in the scheduler: a burst's worth (scheduler.BURST_FRAMES)
WORKER = "cfdp"
UPLINK_OVERHEAD = PRIMARY_HEADER_LEN + TC_SECONDARY_LEN + TAG_LEN + CRC_LEN
DOWNLINK_OVERHEAD = PRIMARY_HEADER_LEN + TM_SECONDARY_LEN + CRC_LEN


def check_pdu_fits(max_pdu_len: int, max_info: int) -> None:
    """A PDU must fit one frame in both directions (the uplink carries a MAC as well)."""
    limit = max_info - max(UPLINK_OVERHEAD, DOWNLINK_OVERHEAD)
    if max_pdu_len > limit:
        raise ValueError(f"filetransfer.max_pdu_len = {max_pdu_len} does not fit a {max_info}-byte "
                         f"frame information field with packet headers and MAC; use at most {limit}")


class FileLink(Component):
    """CFDP file transfer (class 2) over the radio link: down- and uplink, authenticated uplink."""

    pdus_down = Counter("File PDUs queued for downlink")
    pdus_up = Counter("Authenticated file PDUs received and handed to CFDP")
    pdus_rejected = Counter("Uplinked file PDUs dropped (MAC, key, replay, malformed)")
    files_sent = Channel(U32, doc="Files delivered to the ground (Finished received)", update="on_change")
    files_received = Channel(U32, doc="Files received and verified into quarantine", update="on_change")
    transfers_queued = Channel(U16, doc="Outgoing transfers not yet done", update="on_change")
    uplink_counter = Channel(U32, doc="Last accepted file-PDU uplink counter (persisted)", update="on_change")
    active_progress = Channel(U8, unit="%", doc="Progress of the outgoing transfer now running", update="on_change")

    file_received = Event(Severity.INFO, "File {name} received ({size} B, sha256 {sha256}) in quarantine",
                          throttle=None)
    transfer_done = Event(Severity.INFO, "Transfer {transfer_id} ended: {condition}{retry}", throttle=(10, 60.0))
    # ``last`` tells a ground that lost its counter (fresh install, new computer) where to go on.
    pdu_rejected = Event(Severity.WARNING, "Uplinked file PDU dropped: {reason} ({detail}); last counter {last}",
                         throttle=(5, 60.0))

    def __init__(self, link: LinkComponent, config: EntityConfig, name: str = "files",
                 base_id: int = 0x0090) -> None:
        super().__init__(name, base_id)
        check_pdu_fits(config.max_pdu_len, link.settings.max_file_info)
        self.link = link
        self.entity_config = config
        self.outbox = config.work_dir / "outbox"
        self.entity = CfdpEntity(config, self, run_io=self._run_io,
                                 on_file_received=self._on_file_received,
                                 on_transfer_done=self._on_transfer_done)
        self.stats = CounterSet(self)
        self._outbox_links: dict[int, Path] = {}
        self._pending_links: set[Path] = set()  # linked by put(), not yet in the journal
        self._finished_links: list[Path] = []
        self._outbox_seq = itertools.count()
        self.received: list[ReceivedFile] = []

    # -- wiring -------------------------------------------------------------------------------
    def setup(self) -> None:
        self.link.packet_handlers[Apid.FILE] = self.handle_uplink_packet
        self.ctx.supervisor.add_service(f"{self.name}.cfdp", self._run_entity, critical=False)
        self.ctx.rate_group("slow").add(f"{self.name}.telemetry", self.publish)
        self.ctx.rate_group("slow").add(f"{self.name}.outbox_cleanup", self._remove_finished_links)

    async def _run_io(self, fn: Callable[[], T]) -> T:
        return await self.ctx.workers.run_io(WORKER, fn)

    async def _run_entity(self) -> None:
        await self._startup_sweep()
        await self.entity.run()

    async def _startup_sweep(self) -> None:
        # The links put() holds right now are spared: a put() may run before this start-up sweep,
        # and its link is not in the journal until the entity has queued it.
        spared = frozenset(self._pending_links | set(self._outbox_links.values()))
        await self._run_io(lambda: self._sweep_outbox(spared))

    def _sweep_outbox(self, spared: frozenset[Path] = frozenset()) -> None:
        """Remove outbox links whose transfer is finished or unknown (after a reboot)."""
        self.outbox.mkdir(parents=True, exist_ok=True)
        journal = OutgoingJournal.load(self.entity_config.journal_dir / "outgoing.json")
        live = {Path(r.source).resolve() for r in journal.records.values() if r.state != "done"}
        live |= {path.resolve() for path in spared}
        for path in self.outbox.iterdir():
            if path.resolve() not in live:
                path.unlink(missing_ok=True)

    # -- FileDownlink (what imaging and others call) ----------------------------------------------
    async def put(self, source: Path, dest_name: str, priority: int = 5) -> int:
        """Queue a file for the ground; the file is hard-linked first so it may vanish meanwhile."""
        name = safe_file_name(dest_name)
        link_path = self.outbox / f"{next(self._outbox_seq)}-{os.getpid()}-{name}"

        def link() -> None:
            self.outbox.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, link_path)
            except FileExistsError:
                link_path.unlink()
                os.link(source, link_path)

        self._pending_links.add(link_path)
        try:
            await self._run_io(link)  # FileNotFoundError if the source is gone: the caller reports it
            try:
                transfer_id = await self.entity.put(link_path, name, priority)
            except BaseException:
                await self._run_io(lambda: link_path.unlink(missing_ok=True))
                raise
            self._outbox_links[transfer_id] = link_path
        finally:
            self._pending_links.discard(link_path)
        return transfer_id

    # -- PduSink: entity -> radio -----------------------------------------------------------------
    async def send_pdu(self, pdu: bytes) -> None:
        """Queue one PDU at FILE priority; wait while the link may not send or is already full."""
        scheduler = self.link.scheduler
        while not scheduler.transmit_allowed or scheduler.depth(Priority.FILE) >= FILE_QUEUE_DEPTH:
            await scheduler.wait_progress()
        if self.link.downlink(Priority.FILE, Apid.FILE, pdu):
            self.stats.inc("pdus_down")

    # -- uplink: radio -> entity ------------------------------------------------------------------
    async def handle_uplink_packet(self, packet: Packet) -> None:
        """Authenticate one uplinked file packet; only then does the entity see its PDU."""
        last = int(self.ctx.state.get(STATE_FILE_COUNTER, 0))
        try:
            if packet.packet_type != PacketType.TC:
                raise NotACommand("file PDUs are uplinked as TC packets")
            verified = verify_command(packet, self.link.keys, self.link._active_key, last, apid=Apid.FILE,
                                      window=self.link.settings.counter_window)
        except AuthError as exc:
            self.stats.inc("pdus_rejected")
            self.pdu_rejected.emit(reason=exc.reason, detail=exc.detail[:80], last=last)
            return
        # Persisted before use, as for commands: a reboot never re-opens a used counter.
        self.ctx.state.set(STATE_FILE_COUNTER, verified.counter)
        await self.ctx.state.save()
        self.stats.inc("pdus_up")
        self.entity.receive_pdu(verified.body)

    async def _remove_finished_links(self) -> None:
        """Rate-group member: unlink the outbox links of finished transfers on the file worker."""
        if self._finished_links:
            paths, self._finished_links = self._finished_links, []
            def unlink_all() -> None:
                for path in paths:
                    path.unlink(missing_ok=True)

            await self._run_io(unlink_all)

    # -- entity callbacks ---------------------------------------------------------------------------
    def _on_file_received(self, received: ReceivedFile) -> None:
        self.received.append(received)
        del self.received[:-32]
        self.file_received.emit(name=received.name, size=received.size, sha256=received.sha256[:16])

    def _on_transfer_done(self, outcome: TransferOutcome) -> None:
        self.transfer_done.emit(transfer_id=outcome.transfer_id, condition=outcome.condition,
                                retry="" if outcome.final else " (will resume)")
        if outcome.final:
            path = self._outbox_links.pop(outcome.transfer_id, None)
            if path is not None:
                self._finished_links.append(path)  # removed off the loop by _remove_finished_links

    # -- telemetry ----------------------------------------------------------------------------
    def publish(self) -> None:
        self.stats.publish()
        self.files_sent.set(self.entity.stats.files_sent & 0xFFFFFFFF)
        self.files_received.set(self.entity.stats.files_received & 0xFFFFFFFF)
        self.uplink_counter.set(int(self.ctx.state.get(STATE_FILE_COUNTER, 0)))
        records = self.entity.transfers()
        self.transfers_queued.set(min(sum(1 for r in records if r.state != "done"), 0xFFFF))
        percent = 0
        for record in records:
            if record.state == "active":
                done = self.entity.progress(record.transfer_id)
                if done is not None and done[1]:
                    percent = min(100, int(100 * done[0] / done[1]))
        self.active_progress.set(percent)


__all__ = ["FileLink", "STATE_FILE_COUNTER", "check_pdu_fits"]
