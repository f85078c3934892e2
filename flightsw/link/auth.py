"""Authenticated uplink: key ring, truncated HMAC-SHA256 and the monotonic command counter.

Why: amateur rules allow authentication but not encryption, so telecommands travel in the clear
with a counter and a MAC. The MAC (HMAC-SHA256 truncated to 16 bytes = 128 bits) covers the
primary header, the key id, the counter and the command body, so nothing in the packet can be
changed, and the strictly increasing counter makes every captured packet useless a second time.

Keys live in a key file (``<id> <hex key>`` per line) that is read, never logged or sent. Rotation
selects another key of the ring by an authenticated command; a new key is never sent over the air.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from spacepackets.ccsds.spacepacket import PacketType

from flightsw.core.atomic import atomic_write
from flightsw.link.packets import (
    CRC_LEN,
    PRIMARY_HEADER_LEN,
    Apid,
    Packet,
    PacketError,
    build,
)

TAG_LEN = 16  # 128-bit truncated HMAC-SHA256
MIN_KEY_LEN = 16
MAX_COUNTER = 0xFFFFFFFF
COUNTER_RESERVE = 1024  # the last counters of a key: link.SELECT_KEY only (see reserved_counter)


class KeyFileError(ValueError):
    """The key file is missing, malformed or holds a key that is too short."""


class AuthError(Exception):
    """An uplinked packet that must not be executed. The subclass is the reason; ``reason`` is
    its short stable code for events and counters."""

    reason = "auth"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class NotACommand(AuthError):
    """Not a telecommand on the expected APID: malformed input rather than an attack."""

    reason = "not_command"


class Truncated(AuthError):
    reason = "truncated"


class UnknownKey(AuthError):
    reason = "unknown_key"


class WrongKey(AuthError):
    reason = "wrong_key"


class BadMac(AuthError):
    reason = "bad_mac"


class CounterJump(AuthError):
    """A MAC-valid counter that jumps beyond the configured window above the last accepted one."""

    reason = "counter_jump"


class CounterReserved(AuthError):
    """A counter in the key's last reserve, which only link.SELECT_KEY may use."""

    reason = "counter_reserved"


class Replay(AuthError):
    """A counter not above the last accepted one: a replay, or a resend of an executed command."""

    reason = "replay"


class KeyRing:
    """Numbered HMAC keys. ``repr`` never shows key material."""

    def __init__(self, keys: dict[int, bytes]) -> None:
        if not keys:
            raise KeyFileError("key ring is empty")
        for key_id, key in keys.items():
            if not 0 <= key_id <= 255:
                raise KeyFileError(f"key id {key_id} outside 0..255")
            if len(key) < MIN_KEY_LEN:
                raise KeyFileError(f"key {key_id} is {len(key)} bytes, at least {MIN_KEY_LEN} needed")
        self._keys = dict(keys)

    def __repr__(self) -> str:
        return f"KeyRing(ids={sorted(self._keys)})"

    @property
    def ids(self) -> list[int]:
        return sorted(self._keys)

    def key(self, key_id: int) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKey(f"key id {key_id} is not in the key ring") from None

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Read a key file; errors name the line but never echo key material."""
        path = Path(path)
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise KeyFileError(f"key file {path} does not exist") from None
        except OSError as exc:  # a directory, not readable by the service's user...
            raise KeyFileError(f"key file {path} cannot be read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise KeyFileError(f"key file {path} is not ASCII text") from None
        keys: dict[int, bytes] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise KeyFileError(f"{path}:{number}: expected '<id> <hex key>'")
            try:
                key_id = int(parts[0])
                key = bytes.fromhex(parts[1])
            except ValueError:
                raise KeyFileError(f"{path}:{number}: key id or hex key is malformed") from None
            if key_id in keys:
                raise KeyFileError(f"{path}:{number}: key id {key_id} appears twice")
            keys[key_id] = key
        return cls(keys)

    @staticmethod
    def generate(path: str | os.PathLike[str], count: int = 4, key_len: int = 32) -> None:
        """Write a fresh random key file (mode 0600) atomically; used for the simulator."""
        keys = [f"{i} {secrets.token_hex(key_len)}" for i in range(count)]
        KeyRing.write(path, "Secret: never commit or log.", keys)

    @staticmethod
    def write(path: str | os.PathLike[str], note: str, keys: list[str], fsync: bool = True) -> None:
        """Write a key file of ``<id> <hex>`` lines, readable by its owner only, atomically."""
        text = "\n".join([f"# flightsw uplink HMAC keys: <id> <hex>. {note}", *keys]) + "\n"
        atomic_write(Path(path), text.encode("ascii"), fsync=fsync, mode=0o600)


def mac(key: bytes, signed_bytes: bytes) -> bytes:
    return hmac.new(key, signed_bytes, hashlib.sha256).digest()[:TAG_LEN]


def build_command(key: bytes, key_id: int, counter: int, body: bytes, seq_count: int = 0,
                  apid: int = Apid.COMMAND) -> bytes:
    """Ground side: a complete authenticated telecommand packet (MAC and CRC included)."""
    if not 1 <= counter <= MAX_COUNTER:
        raise ValueError(f"command counter must be 1..{MAX_COUNTER}, got {counter}")
    secondary = struct.pack(">BI", key_id, counter)
    # Build once with a placeholder tag to obtain the final primary header (its length field
    # is covered by the MAC), then sign and rebuild.
    draft = build(PacketType.TC, apid, seq_count, secondary, body + bytes(TAG_LEN))
    signed = draft[: PRIMARY_HEADER_LEN + len(secondary) + len(body)]
    return build(PacketType.TC, apid, seq_count, secondary, body + mac(key, signed))


@dataclass(frozen=True)
class VerifiedCommand:
    key_id: int
    counter: int
    body: bytes
    tag: bytes


def verify_command(packet: Packet, keys: KeyRing, active_key_id: int, last_counter: int,
                   apid: int = Apid.COMMAND, window: int | None = None) -> VerifiedCommand:
    """Flight side: check a decoded TC packet. Raises AuthError; never returns an unchecked body.

    The MAC is checked before the counter so that an attacker cannot learn the counter state, and
    so that "replay" is only reported for packets that really came from the key holder.
    """
    if packet.packet_type != PacketType.TC or packet.apid != apid:
        raise NotACommand(f"APID 0x{packet.apid:03x} is not the expected APID 0x{apid:03x}")
    if len(packet.user_data) < TAG_LEN + 1:
        raise Truncated(f"command of {len(packet.user_data)} bytes has no room for a MAC")
    key_id, counter = struct.unpack(">BI", packet.secondary_header)
    if key_id not in keys:
        raise UnknownKey(f"key id {key_id} is not in the key ring")
    if key_id != active_key_id:
        raise WrongKey(f"key id {key_id} is not the active key {active_key_id}")
    body, tag = packet.user_data[:-TAG_LEN], packet.user_data[-TAG_LEN:]
    signed = packet.raw[: len(packet.raw) - CRC_LEN - TAG_LEN]
    if not hmac.compare_digest(mac(keys.key(key_id), signed), tag):
        raise BadMac("MAC does not match")
    if counter <= last_counter:
        raise Replay(f"counter {counter} is not above {last_counter}")
    if window is not None and counter - last_counter > window:
        raise CounterJump(f"counter {counter} jumps more than {window} above {last_counter}")
    return VerifiedCommand(key_id, counter, body, tag)


def reserved_counter(counter: int) -> bool:
    """Counters at the end of a key's space are kept for ``link.SELECT_KEY`` alone, so a key whose
    counter ran far is never left without a way to switch to a fresh key (and a fresh counter)."""
    return counter > MAX_COUNTER - COUNTER_RESERVE


__all__ = [
    "AuthError",
    "COUNTER_RESERVE",
    "reserved_counter",
    "KeyFileError",
    "KeyRing",
    "PacketError",
    "TAG_LEN",
    "VerifiedCommand",
    "build_command",
    "verify_command",
]
