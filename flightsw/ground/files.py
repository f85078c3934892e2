"""Ground side of file transfer: a CFDP entity on the station's link, downloads, uploads, thumbnails.

Why here and not in the station: the station decodes telemetry; files are a protocol of their
own (CFDP class 2 on APID 0x016) with state on disk (journals, so a ground restart resumes a
transfer instead of starting over). The station hands this module every file packet and lends it
its transmitter; this module does the rest:

* downlinked PDUs go to a ``CfdpEntity`` whose work directory lives inside the download directory
  (``<downloads>/.cfdp``); a verified file is then moved to ``<downloads>/<name>`` (never over an
  existing file: a suffix is added);
* per-transfer progress (bytes received of the announced size) is tracked from the PDUs as they
  arrive, for the live view and the CLI;
* uplinked PDUs are signed like telecommands (key id, counter, HMAC) with the file-PDU counter
  kept in the station's archive (shared by every ground process using it, whatever its
  downloads folder), never below the last counter the satellite reports, and paced to the bit
  rate;
* downloaded images get a GeoJSON footprint and a world file beside them once the catalog
  locates them (flightsw.ground.georef);
* image thumbnails are saved as PNG next to the JPEG and rendered as half-block text (colour)
  and ASCII (fallback) for terminals. Decoding runs on a thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

from spacepackets.ccsds.spacepacket import PacketType
from spacepackets.cfdp.pdu import DirectiveType, FileDataPdu, MetadataPdu

from flightsw.core.atomic import atomic_write
from flightsw.filetransfer import CfdpEntity, EntityConfig, ReceivedFile, TransferOutcome
from flightsw.filetransfer.journal import RangeSet, read_json
from flightsw.filetransfer.pdu import PduDecodeError, decode_pdu
from flightsw.ground.georef import CATALOG_NAME, PRODUCT_RE, georeference
from flightsw.ground.station import GroundStation, wait_on_changes
from flightsw.ground.uplink import CounterKind
from flightsw.link import ax25
from flightsw.link.auth import build_command
from flightsw.link.packets import Apid, Packet
from flightsw.link.scheduler import stuffed_bits

GROUND_JOURNAL_FLUSH = 4096
THUMBNAIL_RE = re.compile(r"_thumbnail\.jpe?g$")
ASCII_RAMP = " .:-=+*#%@"


@dataclass
class IncomingProgress:
    """What is known about one downlink transfer: name, size, bytes received so far."""

    source_id: int
    seq: int
    name: str = ""
    size: int | None = None
    ranges: RangeSet = field(default_factory=RangeSet)
    data_bytes: int = 0  # file data received, repeats included: what the link carried
    done: bool = False

    @property
    def received(self) -> int:
        return sum(end - start for start, end in self.ranges.ranges)

    def describe(self) -> str:
        size = f"{self.size}" if self.size is not None else "?"
        pct = f"{100 * self.received / self.size:5.1f}%" if self.size else "  ?  "
        state = "done" if self.done else "receiving"
        return f"#{self.seq:<5} {self.name[:32]:32} {self.received:>8}/{size:<8} {pct} {state}"


@dataclass(frozen=True)
class Download:
    """A file that arrived on the ground, verified, in the download directory."""

    path: Path
    name: str
    size: int
    sha256: str
    png: Path | None = None
    halfblock: str = ""
    ascii_art: str = ""
    georeferenced: tuple[Path, ...] = ()  # GeoJSON and world files written on this arrival


def ground_entity_config(flight: EntityConfig, download_dir: Path) -> EntityConfig:
    """The ground's entity: the satellite's ids swapped, same PDU size and timers."""
    # The ground journals received ranges often (a PC, not an SD card): a ground restart then
    # asks again only for the last few KB.
    return flight.for_peer(download_dir / ".cfdp", journal_flush_bytes=GROUND_JOURNAL_FLUSH)


def render_thumbnail(jpeg: Path, width: int = 48) -> tuple[Path, str, str]:
    """Save ``jpeg`` as PNG beside it; return (png path, half-block colour text, ASCII text)."""
    from PIL import Image

    with Image.open(jpeg) as image:
        rgb = image.convert("RGB")
    png = jpeg.with_suffix(".png")
    atomic_write(png, lambda handle: rgb.save(handle, format="PNG"))
    cols = max(8, min(width, rgb.width))
    rows = max(2, round(rgb.height * cols / rgb.width / 2) * 2)  # two pixels per character cell
    small = rgb.resize((cols, rows))
    pixels = small.load()
    assert pixels is not None
    blocks = []
    for y in range(0, rows, 2):
        line = []
        for x in range(cols):
            top = cast(tuple[int, int, int], pixels[x, y])
            bottom = cast(tuple[int, int, int], pixels[x, y + 1])
            line.append(f"\x1b[38;2;{top[0]};{top[1]};{top[2]}m\x1b[48;2;{bottom[0]};{bottom[1]};{bottom[2]}m▀")
        blocks.append("".join(line) + "\x1b[0m")
    gray = small.convert("L").resize((cols, rows // 2))
    gpix = gray.load()
    assert gpix is not None
    ascii_lines = ["".join(ASCII_RAMP[int(cast(int, gpix[x, y])) * (len(ASCII_RAMP) - 1) // 255] for x in range(cols))
                   for y in range(rows // 2)]
    return png, "\n".join(blocks), "\n".join(ascii_lines)


def _deliver(received: ReceivedFile, download_dir: Path) -> Download:
    """Move a verified file from the entity's quarantine into the download directory (no overwrite)."""
    download_dir.mkdir(parents=True, exist_ok=True)
    target = download_dir / received.name
    stem, suffix = target.stem, target.suffix
    n = 1
    while True:
        try:
            os.link(received.path, target)
            break
        except FileExistsError:
            target = download_dir / f"{stem}.{n}{suffix}"
            n += 1
    received.path.unlink()
    received.path.with_name(received.path.name + ".meta.json").unlink(missing_ok=True)
    download = Download(target, received.name, received.size, received.sha256)
    if received.name == CATALOG_NAME or PRODUCT_RE.match(received.name):
        download = replace(download, georeferenced=tuple(georeference(download_dir)))
    if THUMBNAIL_RE.search(received.name):
        try:
            png, halfblock, art = render_thumbnail(target)
        except (OSError, ValueError) as exc:  # a broken JPEG stays as it came
            return replace(download, ascii_art=f"(thumbnail not renderable: {exc})")
        download = replace(download, png=png, halfblock=halfblock, ascii_art=art)
    return download


class GroundFiles:
    """The ground's CFDP entity on a ``GroundStation``: receive into ``download_dir``, upload."""

    def __init__(self, station: GroundStation, flight_config: EntityConfig, download_dir: Path, *,
                 bit_rate: float, tx_delay: float = 0.0) -> None:
        self.station = station
        self.download_dir = Path(download_dir)
        self.config = ground_entity_config(flight_config, self.download_dir)
        self.bit_rate = float(bit_rate)
        self.tx_delay = float(tx_delay)
        self.entity = CfdpEntity(self.config, self, on_file_received=self._on_file_received,
                                 on_transfer_done=self._on_transfer_done)
        # Floor of the file-PDU counter: what this folder used before counters moved into the
        # archive (the station learns the satellite's own from its telemetry and refusals).
        legacy = read_json(self.config.work_dir / "uplink_counter.json")
        if legacy:
            station.uplink.learn(CounterKind.FILE, int(legacy["reserved"]))
        self.last_counter = 0
        self.incoming: dict[tuple[int, int], IncomingProgress] = {}
        self.downloads: list[Download] = []
        self.outcomes: dict[int, TransferOutcome] = {}
        self.pdus_received = 0
        self.pdus_bad = 0
        self._changed = asyncio.Event()
        self._deliveries: asyncio.Queue[ReceivedFile] = asyncio.Queue()
        self._tx_lock = asyncio.Lock()
        # Told of each verified file as it lands in download_dir, on the loop (the F Prime GDS bridge).
        self.download_listeners: list[Callable[[Download], None]] = []
        station.files = self  # gets the file PDUs; the live view shows the transfers

    # -- receiving ----------------------------------------------------------------------------
    def on_packet(self, packet: Packet) -> None:
        """Called by the station for every downlinked file packet (on the loop, cheap)."""
        if packet.packet_type != PacketType.TM:
            raise ValueError("file packet from the satellite is not telemetry")
        self.pdus_received += 1
        raw = packet.user_data
        try:
            pdu = decode_pdu(raw)
        except PduDecodeError:
            self.pdus_bad += 1
            raise
        tid = pdu.transaction_seq_num
        key = (int(pdu.source_entity_id.value), int(tid.value))
        progress = self.incoming.get(key)
        if progress is None:
            progress = self.incoming[key] = IncomingProgress(*key)
        if isinstance(pdu, MetadataPdu):
            progress.name = str(pdu.dest_file_name or "")
            progress.size = int(pdu.file_size)
        elif isinstance(pdu, FileDataPdu):
            progress.ranges.add(int(pdu.offset), int(pdu.offset) + len(pdu.file_data))
            progress.data_bytes += len(pdu.file_data)
        elif getattr(pdu, "directive_type", None) == DirectiveType.EOF_PDU and progress.size is None:
            progress.size = int(pdu.file_size)  # type: ignore[attr-defined]
        self.entity.receive_pdu(raw)

    def _on_file_received(self, received: ReceivedFile) -> None:
        progress = self.incoming.get((received.source_id, received.seq))
        if progress is not None:
            progress.done = True
            progress.size = received.size
            progress.name = progress.name or received.name  # Metadata may predate a ground restart
        self._deliveries.put_nowait(received)  # delivered off the loop by run()

    async def _deliver(self, received: ReceivedFile) -> None:
        download = await asyncio.to_thread(_deliver, received, self.download_dir)
        self.downloads.append(download)
        del self.downloads[:-64]
        self._changed.set()
        for listener in self.download_listeners:
            listener(download)

    def _on_transfer_done(self, outcome: TransferOutcome) -> None:
        self.outcomes[outcome.transfer_id] = outcome
        self._changed.set()

    async def wait_for(self, predicate: object, timeout: float) -> bool:
        """Wait until ``predicate()`` is true (re-checked on each change), or the timeout."""
        assert callable(predicate)
        return await wait_on_changes(self._changed, predicate, timeout, recheck=1.0)

    async def wait_download(self, name: str, timeout: float) -> Download | None:
        """The first download of ``name`` (the sender's name) arriving within ``timeout``."""
        def found() -> Download | None:
            return next((d for d in self.downloads if d.name == name), None)

        await self.wait_for(lambda: found() is not None, timeout)
        return found()

    # -- sending --------------------------------------------------------------------------------
    async def send_pdu(self, pdu: bytes) -> None:
        """Sign one PDU like a telecommand, send it, and wait its air time (the uplink's pace)."""
        station = self.station
        async with self._tx_lock:
            async with station.uplink.reserve(CounterKind.FILE) as counter:
                self.last_counter = counter
                packet = build_command(station.keys.key(station.key_id), station.key_id, counter, pdu,
                                       seq_count=counter, apid=Apid.FILE)
                frame = ax25.UiFrame(station.satellite, station.ground, packet).encode()
                await station._transmit(frame, f"file PDU #{counter}")
            await asyncio.sleep(self.tx_delay + stuffed_bits(frame) / self.bit_rate)

    async def upload(self, path: Path, dest_name: str | None = None, priority: int = 5) -> int:
        """Queue a local file for the satellite; returns the transfer id (see ``outcomes``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"cannot upload {path}: no such file")
        return await self.entity.put(path, dest_name or path.name, priority)

    async def wait_upload(self, transfer_id: int, timeout: float) -> TransferOutcome | None:
        """The final outcome of an upload (retried attempts are skipped), or None on timeout."""
        def final() -> bool:
            outcome = self.outcomes.get(transfer_id)
            return outcome is not None and outcome.final

        await self.wait_for(final, timeout)
        return self.outcomes.get(transfer_id) if final() else None

    async def run(self) -> None:
        """The transfer entity and the delivery of received files, in one task group."""
        async with asyncio.TaskGroup() as group:
            deliverer = group.create_task(self._deliver_loop())
            try:
                await self.entity.run()
            finally:
                deliverer.cancel()
        while not self._deliveries.empty():  # files that arrived as the entity stopped
            await self._deliver(self._deliveries.get_nowait())

    async def _deliver_loop(self) -> None:
        while True:
            await self._deliver(await self._deliveries.get())

    def stop(self) -> None:
        self.entity.stop()

    # -- views --------------------------------------------------------------------------------
    def render_lines(self, colour: bool = True, max_transfers: int = 6) -> list[str]:
        """Transfer progress and the latest thumbnail, for the live view."""
        lines = [f"files: {self.pdus_received} PDUs in, {len(self.downloads)} downloads in {self.download_dir}"]
        for progress in list(self.incoming.values())[-max_transfers:]:
            lines.append("  " + progress.describe())
        for record in self.entity.transfers()[-3:]:
            lines.append(f"  upload #{record.transfer_id} {record.dest_name[:32]} {record.state} "
                         f"{record.condition}".rstrip())
        thumb = next((d for d in reversed(self.downloads) if d.png is not None), None)
        if thumb is not None:
            lines.append(f"latest thumbnail: {thumb.png} ({thumb.size} B jpeg)")
            lines.extend((thumb.halfblock if colour else thumb.ascii_art).splitlines())
        return lines


def load_catalog(path: Path) -> list[dict[str, object]]:
    """The images of a downlinked ``catalog.json``; a clear error if it is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable catalog: {exc}") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise ValueError(f"{path} has no 'images' list")
    return [i for i in images if isinstance(i, dict)]
