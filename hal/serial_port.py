"""Asynchronous serial port over pyserial, for the radio UART (and the ground station's TNC).

Why: the receive loop must never block the event loop and must never spin. pyserial opens the
device non-blocking and configures termios; the file descriptor is then watched with the event
loop's reader/writer callbacks, so the loop sleeps until bytes arrive. A USB-serial adapter that
is unplugged, or a pseudo-terminal whose far side restarts, makes reads fail: the port closes,
counts the loss and reopens the same path periodically until the device is back; the reader just
sees a pause.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os

import serial

log = logging.getLogger(__name__)


class SerialPortUnavailable(ConnectionError):
    """The device is not present (write attempted while it is gone)."""


class AsyncSerialPort:
    """One serial device, read and written from the event loop without blocking it."""

    def __init__(self, device: str, baud: int, *, reopen_interval: float = 0.5,
                 read_size: int = 4096) -> None:
        if baud <= 0:
            raise ValueError(f"baud rate must be positive, got {baud}")
        self.device = device
        self.baud = baud
        self.reopen_interval = reopen_interval
        self.read_size = read_size
        self._serial: serial.Serial | None = None
        self._open_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._closed = False
        self.opens = 0
        self.losses = 0
        self.bytes_read = 0
        self.bytes_written = 0

    @property
    def connected(self) -> bool:
        return self._serial is not None

    def _open_blocking(self) -> serial.Serial:
        # timeout=0 keeps pyserial's fd non-blocking (it opens with O_NONBLOCK).
        return serial.Serial(self.device, self.baud, timeout=0, write_timeout=0)

    async def open(self) -> None:
        """Open the device now; raises SerialPortUnavailable if it is absent."""
        async with self._open_lock:
            if self._serial is not None:
                return
            if self._closed:
                raise SerialPortUnavailable(f"{self.device} was closed")
            loop = asyncio.get_running_loop()
            try:
                self._serial = await loop.run_in_executor(None, self._open_blocking)
            except (serial.SerialException, OSError) as exc:
                raise SerialPortUnavailable(f"cannot open {self.device}: {exc}") from None
            self.opens += 1
            log.info("serial %s open at %d baud", self.device, self.baud)

    async def _ensure_open(self) -> serial.Serial:
        while self._serial is None:
            try:
                await self.open()
            except SerialPortUnavailable:
                if self._closed:
                    raise
                await asyncio.sleep(self.reopen_interval)
        return self._serial

    def _lost(self, reason: str) -> None:
        if self._serial is None:
            return
        self.losses += 1
        log.warning("serial %s lost (%s); will reopen", self.device, reason)
        try:
            self._serial.close()
        except (OSError, serial.SerialException):
            pass
        self._serial = None

    async def _wait_fd(self, fd: int, for_write: bool) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        if for_write:
            loop.add_writer(fd, wake)
        else:
            loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            if for_write:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)

    async def read(self) -> bytes:
        """Wait for and return the next bytes (at least one). Survives device loss."""
        while True:
            port = await self._ensure_open()
            fd = port.fileno()
            await self._wait_fd(fd, for_write=False)
            if self._serial is not port:
                continue  # lost and reopened meanwhile
            try:
                data = os.read(fd, self.read_size)
            except BlockingIOError:
                continue
            except OSError as exc:
                self._lost(os.strerror(exc.errno) if exc.errno else str(exc))
                await asyncio.sleep(self.reopen_interval)
                continue
            if not data:
                self._lost("end of file")
                await asyncio.sleep(self.reopen_interval)
                continue
            self.bytes_read += len(data)
            return data

    async def write(self, data: bytes) -> None:
        """Write all bytes, waiting for the driver's buffer without blocking the loop."""
        if self._closed:
            raise SerialPortUnavailable(f"{self.device} was closed")
        async with self._write_lock:
            port = self._serial
            if port is None:
                try:
                    await self.open()
                except SerialPortUnavailable:
                    raise
                port = self._serial
                assert port is not None
            view = memoryview(bytes(data))
            fd = port.fileno()
            while view:
                try:
                    written = os.write(fd, view)
                except BlockingIOError:
                    await self._wait_fd(fd, for_write=True)
                    if self._serial is not port:
                        raise SerialPortUnavailable(f"{self.device} lost during write") from None
                    continue
                except OSError as exc:
                    if exc.errno == errno.EINTR:
                        continue
                    self._lost(str(exc))
                    raise SerialPortUnavailable(f"{self.device} lost: {exc}") from None
                self.bytes_written += written
                view = view[written:]

    async def close(self) -> None:
        self._closed = True
        if self._serial is not None:
            port, self._serial = self._serial, None
            port.close()
