"""Simulated UHF transceiver on the far end of a pseudo-terminal, with a KISS TCP ground side.

Why: the flight software must be tested through the code path that flies. The flight side opens
the pseudo-terminal with the real serial driver and speaks KISS to it exactly as to the real
transceiver; the ground station connects to the TCP port exactly as to direwolf or a hardware TNC.
In between sits a channel model: bit rate (frames are serialised one after another in each
direction), propagation delay, frame loss, bit errors (a receiving TNC drops frames whose FCS
fails, so corrupted frames are dropped unless ``pass_corrupted`` asks to deliver them), and a
contact gate (always on for now; the orbit simulator will drive it).

Each direction holds at most ``queue_frames`` frames waiting for or on the air (a half-duplex
radio's transmit buffer); a frame offered beyond that is dropped and counted
(``frames_dropped_busy``), so a flood in simulation costs what it costs in orbit (lost frames)
instead of minutes of queued airtime ahead of everyone else. The ground side is a one-port TNC:
KISS data frames for any port but 0 are dropped and counted (``frames_wrong_port``).

Key-up: the transmitter pays TXDELAY (and TX tail) once per transmission, not per frame. Frames
offered together (within ``BUNDLE_WINDOW`` of the previous frame of the transmission while it is
still keyed) go in the same transmission, as direwolf bundles them (``xmit_ax25_frames`` keys
up, sends TXDELAY flags, then every frame already in its queue, then TX tail): it looks at its
queue while it generates the audio, far ahead of the air, so a frame that arrives while the
previous one is on the air but after its audio was generated waits for a new key-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import math
import os
import random
import struct
import termios
import tty
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import SupportsIndex

from hal import kiss

log = logging.getLogger(__name__)

DEFAULT_KISS_PORT = 8001
DEFAULT_QUEUE_FRAMES = 8  # frames one direction holds waiting for/on the air
TNC_PORT = 0  # the one radio port of the simulated TNC
MAX_PTY_BACKLOG = 256 * 1024  # bytes waiting for the flight side; beyond that frames are dropped
MAX_CLIENT_BACKLOG = 1024 * 1024
# Frames offered within this time of the previous frame of a transmission join it (direwolf's
# transmit thread sleeps 10 ms after key-up for more frames and generates audio far ahead of the air).
BUNDLE_WINDOW = 0.010
# A pty's input buffer in raw mode (Linux n_tty: 4096 - 1): once that much is readable, the rest
# stays in the kernel until the reader makes room, so nothing more can arrive before it reads.
PTY_INPUT_CAPACITY = 4095


def readable_bytes(fd: int) -> int:
    """Bytes the kernel holds readable on `fd` now (FIONREAD); 0 for a closed descriptor.

    Why: a virtual-time run must know when bytes written at one end have become readable at the
    other (see ``VirtualTimeLoop.add_io_arrival_check``); counters alone cannot tell "still in
    the kernel's queue" from "readable, its reader will run next".
    """
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return 0


class CountingStreamReader(asyncio.StreamReader):
    """A StreamReader that counts the bytes its transport took out of the kernel.

    The application's own count (what `read()` returned) lags behind while data waits in the
    reader's buffer; this one tells what left the socket.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bytes_received = 0

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        chunk = bytes(data)  # the transport hands bytes: no copy
        self.bytes_received += len(chunk)
        super().feed_data(chunk)


def socket_fd(writer: asyncio.StreamWriter) -> int:
    """The socket descriptor under a stream (-1 once closed)."""
    sock = writer.get_extra_info("socket")
    return int(sock.fileno()) if sock is not None else -1


def bytes_sent_to_kernel(writer: asyncio.StreamWriter, written: int) -> int:
    """Of `written` bytes handed to a stream, those already in the kernel (not in its buffer)."""
    return written - writer.transport.get_write_buffer_size()


@dataclass
class ChannelModel:
    """Radio channel between satellite and ground (both directions)."""

    bit_rate: float = 9600.0
    propagation_delay: float = 0.005  # s; ~1500 km slant range
    frame_loss: float = 0.0  # probability a frame is lost
    bit_error_rate: float = 0.0
    pass_corrupted: bool = False
    uplink_blackout: bool = False  # a scenario fault: the satellite's receiver hears nothing
    contact: Callable[[], bool] = field(default=lambda: True)
    seed: int | None = None
    queue_frames: int = DEFAULT_QUEUE_FRAMES

    def __post_init__(self) -> None:
        if not 1 <= self.queue_frames <= 10_000:
            raise ValueError(f"queue_frames must be within 1..10000, got {self.queue_frames}")
        if self.bit_rate <= 0:
            raise ValueError(f"bit rate must be positive, got {self.bit_rate}")
        for name in ("frame_loss", "bit_error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if self.propagation_delay < 0:
            raise ValueError("propagation delay cannot be negative")


@dataclass
class DirectionStats:
    frames_in: int = 0
    frames_delivered: int = 0
    frames_lost: int = 0
    frames_corrupted: int = 0
    frames_out_of_contact: int = 0
    frames_dropped_backlog: int = 0
    frames_dropped_busy: int = 0  # offered while the transmit queue was full
    frames_wrong_port: int = 0  # KISS data for a TNC port other than 0 (ground side)
    frames_blacked_out: int = 0  # offered while the direction was blacked out (uplink_blackout)
    first_frame_at: float | None = None  # loop time the first frame was offered (RF silence checks)


class _Direction:
    """One direction of the channel: serialises frames at the bit rate, then loses/corrupts."""

    def __init__(self, channel: ChannelModel, rng: random.Random,
                 deliver: Callable[[bytes], None], tx_delay: Callable[[], float],
                 blacked_out: Callable[[], bool] = lambda: False,
                 tx_tail: Callable[[], float] = lambda: 0.0) -> None:
        self.channel = channel
        self.blacked_out = blacked_out
        self.rng = rng
        self.deliver = deliver
        self.tx_delay = tx_delay  # paid once per key-up, before the first frame
        self.tx_tail = tx_tail  # paid once per key-up, after the last frame
        self.busy_until = 0.0  # end of the current transmission, TX tail included
        self._last_offer = -math.inf  # loop time the last frame of the current transmission was offered
        self.key_ups = 0  # transmissions (each pays TXDELAY and TX tail once)
        self._ends: deque[float] = deque()  # end of airtime of each frame waiting or on the air
        self.stats = DirectionStats()
        self.on_submit: Callable[[float], None] | None = None  # told the loop time of every frame offered
        # every frame offered to the channel, with its (virtual) time: two runs that agree on this
        # agree frame by frame, not only in counts
        self.digest = hashlib.sha256()

    def submit(self, frame: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.stats.frames_in += 1
        if self.stats.first_frame_at is None:
            self.stats.first_frame_at = loop.time()
        if self.on_submit is not None:
            self.on_submit(loop.time())
        self.digest.update(struct.pack("<dI", loop.time(), len(frame)) + frame)
        if not self.channel.contact():
            self.stats.frames_out_of_contact += 1
            return
        if self.blacked_out():
            self.stats.frames_blacked_out += 1
            return
        now = loop.time()
        while self._ends and self._ends[0] <= now:
            self._ends.popleft()
        if len(self._ends) >= self.channel.queue_frames:
            self.stats.frames_dropped_busy += 1
            return
        frame_time = (len(frame) + 4) * 8 / self.channel.bit_rate
        tail = self.tx_tail()
        if now < self.busy_until and now - self._last_offer <= BUNDLE_WINDOW:
            end = self.busy_until - tail + frame_time  # same transmission: before its TX tail
        else:  # a new key-up, after the transmission on the air (if any) has ended
            self.key_ups += 1
            end = max(now, self.busy_until) + self.tx_delay() + frame_time
        self._last_offer = now
        self.busy_until = end + tail
        self._ends.append(self.busy_until)
        loop.call_at(end + self.channel.propagation_delay, self._arrive, frame)

    def queued_airtime(self) -> float:
        """Seconds of airtime queued ahead of a frame offered now."""
        return max(0.0, self.busy_until - asyncio.get_running_loop().time())

    def _corrupt(self, frame: bytes) -> tuple[bytes, int]:
        ber = self.channel.bit_error_rate
        if ber <= 0.0:
            return frame, 0
        data = bytearray(frame)
        bits = len(data) * 8
        flips = 0
        position = -1
        while True:  # geometric skipping: cost proportional to the number of errors
            u = self.rng.random()
            # log1p keeps log(1 - ber) non-zero for tiny BERs (log(1.0 - 1e-17) == 0.0)
            position += 1 + (int(math.log1p(-u) / math.log1p(-ber)) if ber < 1.0 else 0)
            if position >= bits:
                break
            data[position // 8] ^= 1 << (position % 8)
            flips += 1
        return bytes(data), flips

    def _arrive(self, frame: bytes) -> None:
        if self.rng.random() < self.channel.frame_loss:
            self.stats.frames_lost += 1
            return
        frame, flips = self._corrupt(frame)
        if flips:
            self.stats.frames_corrupted += 1
            if not self.channel.pass_corrupted:
                return
        self.stats.frames_delivered += 1
        self.deliver(frame)


class SimTransceiver:
    """The simulated radio: pseudo-terminal for the flight computer, KISS TCP for the ground."""

    def __init__(self, channel: ChannelModel | None = None, *, link_path: str | os.PathLike[str] | None = None,
                 host: str = "127.0.0.1", port: int = DEFAULT_KISS_PORT, max_frame: int = 2048) -> None:
        self.channel = channel or ChannelModel()
        self.link_path = Path(link_path) if link_path else None
        self.host = host
        self.port = port
        self.max_frame = max_frame
        self._rng = random.Random(self.channel.seed)
        self._master: int | None = None
        #: False: the flight computer's serial device is missing (the `uart_missing` link fault)
        self.uart_present = True
        self._started = False
        self._slave: int | None = None
        self._slave_name = ""
        self._pty_backlog = bytearray()
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.StreamWriter, CountingStreamReader] = {}
        self._client_bytes_written: dict[asyncio.StreamWriter, int] = {}
        self._client_tasks: set[asyncio.Task[None]] = set()
        self._decoder = kiss.KissDecoder(max_frame=max_frame)
        self.tnc_parameters: dict[str, int] = {}
        # byte counters at each kernel boundary, so a virtual-time run can tell bytes in flight
        self.pty_bytes_read = 0  # from the flight side
        self.pty_bytes_written = 0  # to the flight side
        self.ground_bytes_read = 0  # from KISS TCP clients
        self.ground_bytes_written = 0  # to KISS TCP clients (counted once per client)
        self._gone_clients_received = 0  # bytes taken out of the kernel from clients that left
        self._gone_clients_sent = 0  # bytes sent into the kernel to clients that left
        self.downlink = _Direction(self.channel, self._rng, self._to_ground, self._tx_delay,
                                   tx_tail=self._tx_tail)
        self.uplink = _Direction(self.channel, self._rng, self._to_flight, lambda: 0.0,
                                 lambda: self.channel.uplink_blackout)

    def frames_digest(self) -> str:
        """SHA-256 over every frame offered to the channel in both directions, with its time."""
        return hashlib.sha256(self.downlink.digest.digest() + self.uplink.digest.digest()).hexdigest()

    def _tx_delay(self) -> float:
        """TXDELAY of each key-up (this simulated TNC's own value is 0 until the flight computer sets it)."""
        return self.tnc_parameters.get("TX_DELAY", 0) / 100.0

    def _tx_tail(self) -> float:
        """TX tail of each key-up, after its last frame (0 until the flight computer sets it)."""
        return self.tnc_parameters.get("TX_TAIL", 0) / 100.0

    @property
    def device(self) -> str:
        """The path the flight side opens (the stable link if configured, else the pty name)."""
        return str(self.link_path) if self.link_path else self._slave_name

    @property
    def listening(self) -> bool:
        """The KISS TCP server is up (bound_port is known)."""
        return self._server is not None and bool(self._server.sockets)

    @property
    def bound_port(self) -> int:
        """The TCP port actually bound (useful with port=0 in tests)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._started = True
        if self.uart_present:
            self._open_pty()
        loop = asyncio.get_running_loop()

        def connection() -> asyncio.StreamReaderProtocol:
            return asyncio.StreamReaderProtocol(CountingStreamReader(), self._serve_client)

        self._server = await loop.create_server(connection, self.host, self.port)
        log.info("sim transceiver: flight side %s, ground KISS TCP %s:%d",
                 self.device, self.host, self.bound_port)

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._slave_name = os.ttyname(slave)
        self._decoder = kiss.KissDecoder(max_frame=self.max_frame)
        if self.link_path:
            tmp = self.link_path.with_name(self.link_path.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self._slave_name, tmp)
            os.replace(tmp, self.link_path)
        asyncio.get_running_loop().add_reader(master, self._on_pty_readable)

    def _close_pty(self) -> None:
        loop = asyncio.get_running_loop()
        if self._master is not None:
            loop.remove_reader(self._master)
            loop.remove_writer(self._master)
            os.close(self._master)
        if self._slave is not None:
            os.close(self._slave)
        self._master = self._slave = None
        self._pty_backlog.clear()

    async def unplug(self) -> None:
        """Make the device disappear (like a USB adapter pulled out)."""
        self._close_pty()
        if self.link_path:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    def set_uart_present(self, present: bool) -> None:
        """The `uart_missing` fault: the device node vanishes (a USB-serial adapter that did not
        enumerate, a udev link not made) or comes back under the same path."""
        self.uart_present = present
        if not self._started:
            return  # start() honours it
        if not present:
            self._close_pty()
            if self.link_path:
                with contextlib.suppress(FileNotFoundError):
                    self.link_path.unlink()
        elif self._master is None:
            self._open_pty()

    async def replug(self) -> None:
        """Bring the device back under the same link path."""
        if self._master is None:
            self._open_pty()

    async def stop(self) -> None:
        self._close_pty()
        if self.link_path:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            if self._client_tasks:
                await asyncio.wait(self._client_tasks, timeout=2.0)
            await self._server.wait_closed()
            self._server = None

    # -- bytes inside the kernel (for virtual-time runs) ------------------------------------------
    def from_flight_readable(self) -> int:
        """Bytes the flight side wrote into the pty that this side can read now."""
        return readable_bytes(self._master) if self._master is not None else 0

    def to_flight_readable(self) -> int:
        """Bytes this side wrote into the pty that the flight side can read now."""
        return readable_bytes(self._slave) if self._slave is not None else 0

    def to_ground_sent(self) -> int:
        """Bytes sent into the kernel towards KISS TCP clients (all clients, ever)."""
        return self._gone_clients_sent + sum(bytes_sent_to_kernel(writer, written)
                                            for writer, written in self._client_bytes_written.items())

    def from_ground_arrived(self) -> int:
        """Bytes from KISS TCP clients taken out of the kernel or readable there now."""
        return self._gone_clients_received + sum(reader.bytes_received + readable_bytes(socket_fd(writer))
                                                 for writer, reader in self._clients.items())

    # -- flight side ----------------------------------------------------------------------------
    def _on_pty_readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 65536)
        except BlockingIOError:
            return
        except OSError:
            return  # EIO while no slave is open: nothing to read
        self.pty_bytes_read += len(data)
        for frame in self._decoder.feed(data):
            if frame.command == kiss.KissCommand.DATA:
                self.downlink.submit(frame.payload)
            elif frame.command != kiss.KissCommand.RETURN and frame.payload:
                self.tnc_parameters[kiss.KissCommand(frame.command).name] = frame.payload[0]

    def _to_flight(self, frame: bytes) -> None:
        if self._master is None:
            self.uplink.stats.frames_dropped_backlog += 1
            return
        encoded = kiss.encode(frame)
        if len(self._pty_backlog) + len(encoded) > MAX_PTY_BACKLOG:
            self.uplink.stats.frames_dropped_backlog += 1
            return
        self._pty_backlog += encoded
        self._flush_pty()

    def _flush_pty(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._master is not None
        while self._pty_backlog:
            try:
                written = os.write(self._master, self._pty_backlog)
            except BlockingIOError:
                loop.add_writer(self._master, self._on_pty_writable)
                return
            except OSError:
                self._pty_backlog.clear()
                return
            del self._pty_backlog[:written]
            self.pty_bytes_written += written
        loop.remove_writer(self._master)

    def _on_pty_writable(self) -> None:
        if self._master is not None:
            self._flush_pty()

    # -- ground side ----------------------------------------------------------------------------
    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert isinstance(reader, CountingStreamReader)
        self._clients[writer] = reader
        self._client_bytes_written[writer] = 0
        task = asyncio.current_task()
        if task is not None:
            self._client_tasks.add(task)
            task.add_done_callback(self._client_tasks.discard)
        decoder = kiss.KissDecoder(max_frame=self.max_frame)
        try:
            while chunk := await reader.read(4096):
                self.ground_bytes_read += len(chunk)
                for frame in decoder.feed(chunk):
                    if frame.command != kiss.KissCommand.DATA:
                        continue
                    if frame.port != TNC_PORT:
                        self.uplink.stats.frames_wrong_port += 1
                        continue
                    self.uplink.submit(frame.payload)
        except ConnectionError:
            pass
        finally:
            self._clients.pop(writer, None)
            self._gone_clients_received += reader.bytes_received
            self._gone_clients_sent += bytes_sent_to_kernel(writer, self._client_bytes_written.pop(writer, 0))
            writer.close()

    def _to_ground(self, frame: bytes) -> None:
        encoded = kiss.encode(frame)
        for writer in list(self._clients):
            if writer.transport.get_write_buffer_size() > MAX_CLIENT_BACKLOG:
                self.downlink.stats.frames_dropped_backlog += 1
                continue
            writer.write(encoded)
            self.ground_bytes_written += len(encoded)
            self._client_bytes_written[writer] += len(encoded)
