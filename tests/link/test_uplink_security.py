"""Replay, forgery, wrong key, truncation and garbage: none executed, all counted.
Plus property tests over the packet and command decoders."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flightsw.link import ax25
from flightsw.link.auth import AuthError, KeyRing, build_command, verify_command
from flightsw.link.packets import PacketBuilder, TimeStamp, crc16, split_packets
from flightsw.testing import wait_until

from .harness import build_satellite, link_of


def _frame(sat, info: bytes) -> bytes:  # type: ignore[no-untyped-def]
    s = link_of(sat).settings
    return ax25.UiFrame(s.callsign, s.ground, info).encode()


def _command(sat, counter: int, key_id: int = 0, key: bytes | None = None, value: int = 5) -> bytes:  # type: ignore[no-untyped-def]
    link = link_of(sat)
    assert sat.dictionary is not None
    opcode = sat.dictionary.by_name["probe.SET_TARGET"].id
    body = msgpack.packb([opcode, [value]])
    return build_command(key or link.keys.key(key_id), key_id, counter, body)


async def test_attacks_are_dropped_counted_and_never_executed(tmp_path: Path, sat_runner) -> None:
    sat, probe = await asyncio.to_thread(build_satellite, tmp_path)  # start-up file I/O: off the loop
    await sat_runner.start(sat)
    await wait_until(lambda: "link.rx" in sat.supervisor.services)
    link = link_of(sat)
    good = _command(sat, 10)
    await link.handle_frame(_frame(sat, good))
    await wait_until(lambda: probe.count == 1)

    # replay of the same packet (counter reused, different MAC cache entry is impossible)
    forged_counter = bytearray(_command(sat, 5))
    await link.handle_frame(_frame(sat, bytes(forged_counter)))  # reordered-old
    # forgery: body changed after signing, CRC recomputed by the attacker
    tampered = bytearray(_command(sat, 11))
    tampered[12] ^= 0x01
    tampered[-2:] = struct.pack(">H", crc16(bytes(tampered[:-2])))
    await link.handle_frame(_frame(sat, bytes(tampered)))
    # wrong key (valid id, attacker's key material)
    await link.handle_frame(_frame(sat, _command(sat, 12, key=b"k" * 32)))
    # non-active key of the ring
    await link.handle_frame(_frame(sat, _command(sat, 13, key_id=1)))
    # unknown key id
    await link.handle_frame(_frame(sat, _command(sat, 14, key_id=9, key=b"z" * 32)))
    # truncated packet (cut inside the MAC)
    await link.handle_frame(_frame(sat, _command(sat, 15)[:-6]))
    # random bytes, in a frame and as a bare frame
    await link.handle_frame(_frame(sat, bytes(range(40))))
    await link.handle_frame(b"\x00\x01garbage")

    # none of them reached the command dispatcher (nothing can be queued to run later)
    assert sat.commands.stats["received"] == 1
    assert probe.count == 1, "an attack executed a command"
    s = link.stats
    assert s["replays"] == 1
    assert s["auth_failures"] == 4  # tampered MAC, wrong key, inactive key, unknown key
    assert s["crc_failures"] + s["malformed"] == 3
    assert s["commands_executed"] == 1
    link.publish()
    assert link.auth_failures.value == 4
    # after rotation to key 1 the old key stops working and key 1 works
    assert sat.dictionary is not None
    await link.select_key(1)
    await link.handle_frame(_frame(sat, _command(sat, 20, key_id=0)))
    await link.handle_frame(_frame(sat, _command(sat, 21, key_id=1)))
    await wait_until(lambda: probe.count == 2)
    assert sat.commands.stats["received"] == 2
    assert s["auth_failures"] == 5


async def test_rotation_is_a_dictionary_command_and_refuses_unknown_keys(link_sat) -> None:  # type: ignore[no-untyped-def]
    sat, _ = link_sat
    d = await asyncio.to_thread(sat.finalize)  # parameters and state load: off the loop
    assert "link.SELECT_KEY" in {i.name for i in d.commands.values()}
    link = link_of(sat)
    from flightsw.core.component import CommandFailure

    with pytest.raises(CommandFailure, match="not in the key file"):
        await link.select_key(77)


def test_key_file_errors_do_not_leak_key_material(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("0 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n1 zz\n")
    with pytest.raises(ValueError) as info:
        KeyRing.load(path)
    assert "0011" not in str(info.value) and ":2:" in str(info.value)
    path.write_text("0 0011\n")
    with pytest.raises(ValueError, match="at least 16"):
        KeyRing.load(path)
    KeyRing.generate(path)
    ring = KeyRing.load(path)
    assert ring.ids == [0, 1, 2, 3] and "key" not in repr(ring).replace("KeyRing", "")
    assert path.stat().st_mode & 0o077 == 0


KEYS = KeyRing({0: b"s" * 32})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_packet_and_command_decoders_never_crash(data: bytes) -> None:
    packets, errors = split_packets(data)
    for packet in packets:
        try:
            verify_command(packet, KEYS, 0, 0)
        except AuthError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=120), st.integers(1, 2**32 - 1), st.data())
def test_any_bit_flip_in_a_command_is_rejected(body: bytes, counter: int, data: st.DataObject) -> None:
    packet = build_command(KEYS.key(0), 0, counter, body)
    (decoded,), _ = split_packets(packet)
    assert verify_command(decoded, KEYS, 0, 0).body == body
    bit = data.draw(st.integers(0, len(packet) * 8 - 1))
    flipped = bytearray(packet)
    flipped[bit // 8] ^= 1 << (bit % 8)
    packets, errors = split_packets(bytes(flipped))
    for p in packets:  # a flip that survives the CRC must still fail authentication
        with pytest.raises(AuthError):
            verify_command(p, KEYS, 0, 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=4))
def test_several_packets_share_a_frame(bodies: list[bytes]) -> None:
    builder = PacketBuilder(200)
    raw = b"".join(builder.telemetry(0x13, b, TimeStamp(1, 2.5)) for b in bodies)
    packets, errors = split_packets(raw)
    assert errors == [] and [p.user_data for p in packets] == bodies
    assert [p.seq_count for p in packets] == list(range(len(bodies)))


def test_packet_larger_than_a_frame_is_refused_at_the_sender() -> None:
    from flightsw.link.packets import PacketError

    with pytest.raises(PacketError, match="larger than the 100-byte frame"):
        PacketBuilder(100).telemetry(0x13, bytes(200), TimeStamp(1, 0.0))
