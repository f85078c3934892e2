"""AX.25 UI frames (the link layer of the amateur UHF downlink and uplink).

Why: amateur rules require every frame to identify the station, and every amateur ground station
(direwolf, SatNOGS, gr-satellites) can receive AX.25 UI frames. Only unnumbered-information frames
are used: the link is connectionless, reliability lives above it. The FCS is added by the TNC /
transceiver, so frames here are the bytes KISS carries (addresses, control, PID, info).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UI_CONTROL = 0x03
PID_NO_LAYER3 = 0xF0
ADDRESS_LEN = 7
HEADER_LEN = 2 * ADDRESS_LEN + 2  # destination, source, control, PID
MAX_DIGIPEATERS = 8

_CALLSIGN_RE = re.compile(r"[A-Z0-9]{1,6}")


class Ax25Error(ValueError):
    """A frame that is not a well-formed AX.25 UI frame, or an invalid address."""


@dataclass(frozen=True)
class Address:
    """A station address: callsign (1-6 upper-case letters/digits) and SSID (0-15)."""

    callsign: str
    ssid: int = 0

    def __post_init__(self) -> None:
        if not _CALLSIGN_RE.fullmatch(self.callsign):  # match() would let "CALL\n" through ($)
            raise Ax25Error(
                f"callsign {self.callsign!r} must be 1-6 upper-case letters or digits"
            )
        if not 0 <= self.ssid <= 15:
            raise Ax25Error(f"SSID of {self.callsign} must be 0..15, got {self.ssid}")

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``"CALL"`` or ``"CALL-7"``."""
        call, _, ssid = text.strip().upper().partition("-")
        try:
            return cls(call, int(ssid) if ssid else 0)
        except ValueError as exc:
            raise Ax25Error(f"bad station address {text!r}: {exc}") from None

    def encode(self, *, last: bool, command_bit: bool) -> bytes:
        """Seven address bytes: callsign shifted left one bit, then the SSID byte."""
        call = self.callsign.ljust(6).encode("ascii")
        ssid_byte = 0x60 | (self.ssid << 1) | (0x80 if command_bit else 0) | (1 if last else 0)
        return bytes(c << 1 for c in call) + bytes([ssid_byte])

    def __str__(self) -> str:
        return f"{self.callsign}-{self.ssid}" if self.ssid else self.callsign


@dataclass(frozen=True)
class UiFrame:
    """An AX.25 UI frame with its information field."""

    destination: Address
    source: Address
    info: bytes
    pid: int = PID_NO_LAYER3

    def encode(self) -> bytes:
        """Frame bytes as carried by KISS (no flags, no FCS). Marked as an AX.25 v2 command."""
        return (
            self.destination.encode(last=False, command_bit=True)
            + self.source.encode(last=True, command_bit=False)
            + bytes([UI_CONTROL, self.pid])
            + bytes(self.info)
        )


def header(destination: Address, source: Address) -> bytes:
    """The exact 16 header bytes of a UI frame from ``source`` to ``destination`` (no digipeaters,
    AX.25 v2 command, P/F clear, PID 0xF0): what a receiver that checks every header bit expects."""
    return UiFrame(destination, source, b"").encode()


def _decode_address(raw: bytes) -> Address:
    chars = []
    for b in raw[:6]:
        if b & 0x01:
            raise Ax25Error("address character has the extension bit set")
        chars.append(b >> 1)
    try:
        call = bytes(chars).decode("ascii").rstrip(" ")
    except UnicodeDecodeError:
        raise Ax25Error("address is not ASCII") from None
    return Address(call, (raw[6] >> 1) & 0x0F)


def decode(frame: bytes) -> UiFrame:
    """Parse a UI frame; digipeater addresses are skipped. Raises Ax25Error on anything else."""
    frame = bytes(frame)
    if len(frame) < HEADER_LEN:
        raise Ax25Error(f"frame of {len(frame)} bytes is shorter than an AX.25 header")
    destination = _decode_address(frame[0:7])
    source = _decode_address(frame[7:14])
    offset = 14
    last = frame[13] & 0x01
    digipeaters = 0
    while not last:
        digipeaters += 1
        if digipeaters > MAX_DIGIPEATERS or len(frame) < offset + ADDRESS_LEN + 2:
            raise Ax25Error("address field is not terminated")
        _decode_address(frame[offset : offset + 7])
        last = frame[offset + 6] & 0x01
        offset += 7
    control = frame[offset]
    if control & ~0x10 != UI_CONTROL:
        raise Ax25Error(f"control byte 0x{control:02x} is not a UI frame")
    pid = frame[offset + 1]
    return UiFrame(destination, source, frame[offset + 2 :], pid)
