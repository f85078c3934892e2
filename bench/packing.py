"""Housekeeping packing and beacon size, from the frames a satellite actually sent.

``bytes on the air`` is the HDLC frame as the scheduler prices it (flightsw.link.scheduler.
stuffed_bits: AX.25 header, information field, FCS, bit stuffing, flags), shared among the packets
a frame carries in proportion to their length. The ``raw binary size`` of a housekeeping packet is
the sum of its channels' fixed wire sizes (F32 4 bytes, U16 2, ...): the values alone, with no
time stamp, id or framing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import msgpack

from flightsw.app import Satellite
from flightsw.core.component import Channel
from flightsw.link import ax25
from flightsw.link.packets import Apid, split_packets
from flightsw.link.scheduler import stuffed_bits


def raw_sizes(sat: Satellite) -> dict[int, int]:
    """Packet id -> bytes of its values in their declared fixed-size types."""
    assert sat.dictionary is not None
    sizes = {}
    for packet in sat.packets:
        total = 0
        for name in packet.channel_names:
            decl = sat.dictionary.channel(name).decl_as(Channel)
            code = decl.type.struct_code
            total += struct.calcsize(">" + code) if code else decl.type.max_length
        sizes[packet.id] = total
    return sizes


def analyse(sat: Satellite, frames: Iterable[bytes]) -> tuple[dict[str, float], dict[str, Any]]:
    """Figures from AX.25 frames (KISS payloads): packing ratio and beacon size."""
    sizes = raw_sizes(sat)
    names = {p.id: p.name for p in sat.packets}
    air: dict[str, float] = {}
    raw: dict[str, int] = {}
    count: dict[str, int] = {}
    # where the bytes of the housekeeping packets go: frame (AX.25 header, FCS, flags, stuffing,
    # shared), space packet (primary + secondary header, CRC), body header (msgpack [id, boot,
    # seconds, utc]), values (msgpack)
    parts = {"frame": 0.0, "space_packet": 0.0, "body_header": 0.0, "values": 0.0}
    beacon_frames: list[bytes] = []
    for frame in frames:
        info = ax25.decode(frame).info
        packets, _errors = split_packets(info)
        on_air = stuffed_bits(frame) / 8.0
        for packet in packets:
            share = on_air * len(packet.raw) / len(info)
            if packet.apid == Apid.BEACON:
                beacon_frames.append(frame)
            if packet.apid != Apid.HOUSEKEEPING:
                continue
            body = msgpack.unpackb(packet.user_data)
            packet_id = body[0]
            name = names.get(packet_id)
            if name is None:
                continue
            # The values array is the body's last element, as sent (F32 values are float32 on the
            # wire: re-encoding the decoded floats would count them as float64).
            values_len = len(packet.user_data) - len(msgpack.packb(body[:-1], use_bin_type=True))
            parts["frame"] += share - len(packet.raw)
            parts["space_packet"] += len(packet.raw) - len(packet.user_data)
            parts["body_header"] += len(packet.user_data) - values_len
            parts["values"] += values_len
            air[name] = air.get(name, 0.0) + share
            raw[name] = raw.get(name, 0) + sizes[packet_id]
            count[name] = count.get(name, 0) + 1
    figures: dict[str, float] = {}
    if raw:
        total_raw = sum(raw.values())
        figures["hk_packing_ratio"] = sum(air.values()) / total_raw
        for part, value in parts.items():
            figures[f"hk_{part}_per_raw"] = value / total_raw
        packets = sum(count.values())
        figures["hk_overhead_bytes_per_packet"] = (sum(parts.values()) - parts["values"]) / packets
        figures["hk_raw_bytes_per_packet"] = total_raw / packets
    if beacon_frames:
        figures["beacon_frame_bytes"] = float(max(len(f) + 2 for f in beacon_frames))  # + FCS
        figures["beacon_on_air_bytes"] = max(stuffed_bits(f) for f in beacon_frames) / 8.0
    per_packet = {name: {"packets": count[name], "air_bytes": round(air[name] / count[name], 1),
                         "raw_bytes": raw[name] // count[name], "ratio": round(air[name] / raw[name], 2)}
                  for name in sorted(air)}
    return figures, per_packet
