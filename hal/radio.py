"""KISS transceiver driver: the flight computer's side of a UHF modem/TNC on a UART.

Why: most CubeSat UHF transceivers and every software TNC take KISS frames; the driver turns
AX.25 frames into KISS data frames on one TNC port, configures the TNC's channel-access
parameters (TXDELAY, persistence, slot time, TX tail, duplex) whenever the device (re)appears,
and refuses frames longer than the radio accepts instead of letting the radio truncate them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from hal import kiss
from hal.serial_port import AsyncSerialPort


class FrameTooLong(ValueError):
    """A frame longer than the transceiver's maximum frame size."""


@dataclass(frozen=True)
class KissParameters:
    """TNC channel-access parameters. Times in seconds; persistence as probability 0..1.

    ``tx_tail`` and ``full_duplex`` of None are not sent: the TNC keeps its own values (a TX tail
    of 0 sent to direwolf made it hold the last frame of each transmission for seconds).
    """

    tx_delay: float = 0.05
    persistence: float = 0.25
    slot_time: float = 0.1
    tx_tail: float | None = None
    full_duplex: bool | None = None

    def frames(self, port: int) -> list[bytes]:
        """The KISS parameter frames that set these values (times in 10 ms units)."""
        def ten_ms(value: float, name: str) -> int:
            units = round(value * 100)
            if not 0 <= units <= 255:
                raise ValueError(f"{name} of {value} s is outside 0..2.55 s")
            return units

        if not 0.0 <= self.persistence <= 1.0:
            raise ValueError(f"persistence {self.persistence} must be within 0..1")
        frames = [
            kiss.encode_parameter(kiss.KissCommand.TX_DELAY, ten_ms(self.tx_delay, "TXDELAY"), port),
            kiss.encode_parameter(kiss.KissCommand.PERSISTENCE,
                                  min(255, round(self.persistence * 256) - 1) if self.persistence else 0,
                                  port),
            kiss.encode_parameter(kiss.KissCommand.SLOT_TIME, ten_ms(self.slot_time, "slot time"), port),
        ]
        if self.tx_tail is not None:
            frames.append(kiss.encode_parameter(kiss.KissCommand.TX_TAIL, ten_ms(self.tx_tail, "TX tail"), port))
        if self.full_duplex is not None:
            frames.append(kiss.encode_parameter(kiss.KissCommand.FULL_DUPLEX, int(self.full_duplex), port))
        return frames


class KissRadio:
    """Send and receive AX.25 frames through a KISS transceiver on an async serial port."""

    def __init__(self, port: AsyncSerialPort, *, kiss_port: int = 0, max_frame: int = 256,
                 parameters: KissParameters | None = None) -> None:
        if not 0 <= kiss_port <= 15:
            raise ValueError(f"KISS port must be 0..15, got {kiss_port}")
        if max_frame < 17:
            raise ValueError(f"maximum frame of {max_frame} bytes cannot hold an AX.25 header")
        self.serial = port
        self.kiss_port = kiss_port
        self.max_frame = max_frame
        self.parameters = parameters or KissParameters()
        self._parameter_frames = self.parameters.frames(kiss_port)  # validate early
        self._decoder = kiss.KissDecoder(max_frame=max_frame)
        self._configured_open = -1
        self.frames_sent = 0
        self.frames_received = 0
        self.frames_ignored = 0

    @property
    def frames_oversize(self) -> int:
        """Received frames longer than ``max_frame``, dropped by the KISS decoder."""
        return self._decoder.oversize_frames

    async def _configure_if_new(self) -> None:
        """Send the parameters once per (re)open of the device: a reconnected TNC has lost them."""
        if self.serial.opens != self._configured_open and self.serial.connected:
            self._configured_open = self.serial.opens
            await self.serial.write(b"".join(self._parameter_frames))

    async def open(self) -> None:
        await self.serial.open()
        await self._configure_if_new()

    async def send(self, frame: bytes) -> None:
        if len(frame) > self.max_frame:
            raise FrameTooLong(f"frame of {len(frame)} bytes exceeds the radio's {self.max_frame}")
        await self._configure_if_new()
        await self.serial.write(kiss.encode(frame, port=self.kiss_port))
        self.frames_sent += 1

    async def frames(self) -> AsyncIterator[bytes]:
        """Received data frames of our KISS port, forever."""
        while True:
            chunk = await self.serial.read()
            if self.serial.opens != self._configured_open:
                await self._configure_if_new()
            for frame in self._decoder.feed(chunk):
                if frame.command != kiss.KissCommand.DATA or frame.port != self.kiss_port:
                    self.frames_ignored += 1
                    continue
                self.frames_received += 1
                yield frame.payload

    async def close(self) -> None:
        await self.serial.close()
