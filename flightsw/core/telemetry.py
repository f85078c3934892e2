"""Telemetry: the latest value of every channel, and housekeeping packets built from them.

Channels hold their latest value and the spacecraft time it was written. A housekeeping packet is a
named, ordered set of channels sampled at a rate; its body is msgpack
``[packet_id, boot, seconds, utc, [values...]]`` in the order the dictionary publishes, so the ground
decodes by position without per-value ids (flightsw.ground.decoder). Packets go to every sink (record log, downlink).
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import msgpack

from flightsw.core.clock import SpacecraftClock, Stamp

log = logging.getLogger("flightsw.telemetry")


@dataclass(frozen=True)
class Sample:
    value: Any
    stamp: Stamp


@dataclass(frozen=True)
class PacketDef:
    name: str
    id: int
    rate_hz: float
    channel_ids: tuple[int, ...]
    channel_names: tuple[str, ...]
    # Which channels are declared F32: their floats go on the wire as msgpack float32 (5 bytes)
    # instead of float64 (9), the precision their type declares. Empty: every float as float64.
    single_floats: tuple[bool, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id, "rate_hz": self.rate_hz, "channels": list(self.channel_names)}


def packet_id(name: str) -> int:
    return zlib.crc32(f"packet:{name}".encode()) & 0xFFFF


PacketSink = Callable[[PacketDef, bytes], None]

_FLOAT32 = struct.Struct(">Bf")


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    return b"\xdc" + n.to_bytes(2, "big") if n < 0x10000 else b"\xdd" + n.to_bytes(4, "big")


def _pack_single(value: float) -> bytes:
    """A float as msgpack float32 (0xca); one beyond float32's range stays a float64."""
    try:
        return _FLOAT32.pack(0xCA, value)
    except OverflowError:
        return cast(bytes, msgpack.packb(value))


class TelemetryDB:
    def __init__(self, clock: SpacecraftClock) -> None:
        self._clock = clock
        self._latest: dict[int, tuple[Any, float]] = {}  # value, monotonic time written
        self._known: set[int] = set()
        self._sinks: list[PacketSink] = []
        self.packets_built = 0
        self.packet_divisor = 1  # emit every Nth cycle of each packet (contact-aware downlink)
        self.packets_skipped = 0
        self._cycles: dict[int, int] = {}
        self._last_size: dict[int, int] = {}  # packet id -> bytes of its last body
        self._skip_sinks: list[Callable[[PacketDef, int], None]] = []

    def declare(self, channel_id: int) -> None:
        self._known.add(channel_id)

    def write(self, channel_id: int, value: Any) -> None:
        if channel_id not in self._known:
            raise KeyError(f"undeclared telemetry channel 0x{channel_id:08x}")
        # The hot path stores the value and a float; the full stamp is built when someone reads it.
        self._latest[channel_id] = (value, self._clock.monotonic())

    def write_on_change(self, channel_id: int, value: Any) -> None:
        """Write unless the channel already holds this value (of the same type)."""
        entry = self._latest.get(channel_id)
        if entry is not None and entry[0] == value and type(entry[0]) is type(value):
            return
        self.write(channel_id, value)

    def latest(self, channel_id: int) -> Sample | None:
        entry = self._latest.get(channel_id)
        if entry is None:
            return None
        return Sample(entry[0], self._clock.stamp_at(entry[1]))

    def add_packet_sink(self, sink: PacketSink) -> None:
        self._sinks.append(sink)

    def build_packet(self, packet: PacketDef) -> bytes:
        stamp = self._clock.now()
        latest = self._latest
        values = [None if (e := latest.get(cid)) is None else e[0] for cid in packet.channel_ids]
        if not any(packet.single_floats):
            # msgpack ships no type hints; packb always returns bytes.
            body = cast(bytes, msgpack.packb([packet.id, *stamp.to_wire(), values], use_bin_type=True))
        else:
            # The same msgpack array, with the values of F32 channels as msgpack float32.
            head = cast(bytes, msgpack.packb([packet.id, *stamp.to_wire(), None], use_bin_type=True))
            body = head[:-1] + _array_header(len(values)) + b"".join(
                _pack_single(v) if single and type(v) is float else cast(bytes, msgpack.packb(v, use_bin_type=True))
                for v, single in zip(values, packet.single_floats, strict=True))
        self.packets_built += 1
        return body

    def set_packet_divisor(self, divisor: int) -> None:
        """Emit housekeeping packets on every ``divisor``-th cycle of their rate only (1: all).

        Why: out of contact nothing is listening live, so the recorded rate can drop to what the
        passes can play back; the next emission of each packet is the first of the new rate."""
        if divisor < 1:
            raise ValueError(f"packet divisor must be >= 1, got {divisor}")
        self.packet_divisor = int(divisor)
        self._cycles.clear()

    def add_skip_sink(self, sink: Callable[[PacketDef, int], None]) -> None:
        """Told of each packet a divisor skipped, with the size of its last body (what was saved)."""
        self._skip_sinks.append(sink)

    def emit_packet(self, packet: PacketDef) -> bytes | None:
        """Build a packet and hand it to every sink (None: this cycle is skipped by the divisor)."""
        if self.packet_divisor > 1:
            cycle = self._cycles.get(packet.id, 0)
            self._cycles[packet.id] = (cycle + 1) % self.packet_divisor
            if cycle:
                self.packets_skipped += 1
                size = self._last_size.get(packet.id)
                if size is not None:
                    for skip_sink in self._skip_sinks:
                        skip_sink(packet, size)
                return None
        body = self.build_packet(packet)
        self._last_size[packet.id] = len(body)
        for sink in self._sinks:
            try:
                sink(packet, body)
            except Exception:  # one failing sink must not starve the others
                log.exception("packet sink %r failed", sink)
        return body
