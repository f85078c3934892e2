"""KISS framing (the serial protocol of TNCs, direwolf and many UHF modems).

Why: the transceiver speaks KISS over its UART, and the ground station speaks KISS to its TNC over
TCP. One codec serves both ends. Frames are delimited by FEND; FEND/FESC inside a frame are escaped.
The first byte of every frame is the type byte: high nibble the TNC port, low nibble the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

FEND = 0xC0
FESC = 0xDB
TFEND = 0xDC
TFESC = 0xDD


class KissCommand(IntEnum):
    """Low nibble of the KISS type byte (KA9Q/K3MC KISS specification)."""

    DATA = 0x00
    TX_DELAY = 0x01
    PERSISTENCE = 0x02
    SLOT_TIME = 0x03
    TX_TAIL = 0x04
    FULL_DUPLEX = 0x05
    SET_HARDWARE = 0x06
    RETURN = 0x0F  # full byte 0xFF: leave KISS mode


class KissError(ValueError):
    """A KISS frame or parameter that cannot be encoded."""


@dataclass(frozen=True)
class KissFrame:
    """One decoded KISS frame: port (0-15), command and payload (unescaped)."""

    port: int
    command: int
    payload: bytes


def escape(data: bytes) -> bytes:
    """Escape FEND and FESC so the payload can sit between two FENDs."""
    return data.replace(bytes([FESC]), bytes([FESC, TFESC])).replace(
        bytes([FEND]), bytes([FESC, TFEND])
    )


def unescape(data: bytes) -> bytes:
    """Undo :func:`escape`. A FESC followed by anything else is kept literally (lenient, like direwolf)."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == FESC and i + 1 < n:
            nxt = data[i + 1]
            if nxt == TFEND:
                out.append(FEND)
                i += 2
                continue
            if nxt == TFESC:
                out.append(FESC)
                i += 2
                continue
        out.append(b)
        i += 1
    return bytes(out)


def encode(payload: bytes, port: int = 0, command: int = KissCommand.DATA) -> bytes:
    """Build one KISS frame: FEND, type byte, escaped payload, FEND."""
    if not 0 <= port <= 15:
        raise KissError(f"KISS port must be 0..15, got {port}")
    if not 0 <= command <= 15:
        raise KissError(f"KISS command must be 0..15, got {command}")
    type_byte = 0xFF if command == KissCommand.RETURN else (port << 4) | command
    # The type byte is escaped too: port 12 data (0xC0) would otherwise read as FEND.
    return bytes([FEND]) + escape(bytes([type_byte]) + bytes(payload)) + bytes([FEND])


def encode_parameter(command: KissCommand, value: int, port: int = 0) -> bytes:
    """Build a TNC parameter frame (TXDELAY, persistence, slot time, TX tail, full duplex)."""
    if command in (KissCommand.DATA, KissCommand.RETURN):
        raise KissError(f"{command.name} is not a parameter command")
    if not 0 <= value <= 255:
        raise KissError(f"KISS parameter {command.name} must be 0..255, got {value}")
    return encode(bytes([value]), port=port, command=command)


class KissDecoder:
    """Incremental decoder: feed arbitrary chunks of a byte stream, get complete frames back.

    Bytes outside a frame are ignored; an over-long frame is discarded (and counted) up to the
    next FEND so a noisy line cannot grow memory without bound.
    """

    def __init__(self, max_frame: int = 4096) -> None:
        if max_frame < 1:
            raise KissError(f"max_frame must be positive, got {max_frame}")
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._overflow = False
        self.oversize_frames = 0

    def feed(self, chunk: bytes) -> list[KissFrame]:
        """Consume a chunk of the stream and return every frame it completed."""
        frames: list[KissFrame] = []
        for part_index, part in enumerate(bytes(chunk).split(bytes([FEND]))):
            if part_index > 0:
                frame = self._finish()
                if frame is not None:
                    frames.append(frame)
            if not part:
                continue
            if self._overflow:
                continue
            # Escaped length is at most 2x the payload plus the type byte.
            if len(self._buffer) + len(part) > 2 * self.max_frame + 1:
                self._buffer.clear()
                self._overflow = True
                self.oversize_frames += 1
                continue
            self._buffer.extend(part)
        return frames

    def _finish(self) -> KissFrame | None:
        raw = unescape(bytes(self._buffer))
        self._buffer.clear()
        if self._overflow:
            self._overflow = False
            return None
        if not raw:
            return None  # back-to-back FENDs are idle fill
        type_byte = raw[0]
        payload = raw[1:]
        if len(payload) > self.max_frame:
            self.oversize_frames += 1
            return None
        if type_byte == 0xFF:
            return KissFrame(port=0, command=KissCommand.RETURN, payload=payload)
        return KissFrame(port=type_byte >> 4, command=type_byte & 0x0F, payload=payload)
