"""KISS and AX.25 codecs, including decoding with SatNOGS' independent AX.25 decoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from satnogsdecoders.decoder.ax25frames import Ax25frames

from flightsw.link import ax25
from hal import kiss


def test_kiss_escapes_fend_and_fesc_and_round_trips() -> None:
    payload = bytes([0xC0, 0xDB, 0x01, 0xDC, 0xDD, 0xC0])
    encoded = kiss.encode(payload, port=3)
    assert encoded[0] == kiss.FEND and encoded[-1] == kiss.FEND
    assert kiss.FEND not in encoded[1:-1]
    assert encoded[1] == 0x30
    frames = kiss.KissDecoder().feed(encoded)
    assert frames == [kiss.KissFrame(3, kiss.KissCommand.DATA, payload)]


def test_kiss_decoder_reassembles_frames_split_across_chunks() -> None:
    stream = kiss.encode(b"first") + kiss.encode(b"sec\xc0ond") + kiss.encode_parameter(kiss.KissCommand.TX_DELAY, 30)
    decoder = kiss.KissDecoder()
    frames = [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert [f.payload for f in frames] == [b"first", b"sec\xc0ond", bytes([30])]
    assert frames[2].command == kiss.KissCommand.TX_DELAY


def test_kiss_decoder_drops_oversize_frames_and_recovers() -> None:
    decoder = kiss.KissDecoder(max_frame=10)
    frames = decoder.feed(kiss.encode(b"x" * 50) + kiss.encode(b"ok"))
    assert [f.payload for f in frames] == [b"ok"]
    assert decoder.oversize_frames == 1


def test_kiss_rejects_bad_port_and_parameter() -> None:
    with pytest.raises(kiss.KissError, match="port"):
        kiss.encode(b"x", port=16)
    with pytest.raises(kiss.KissError, match="0..255"):
        kiss.encode_parameter(kiss.KissCommand.PERSISTENCE, 300)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=5), st.integers(0, 15))
def test_kiss_round_trip_property(payloads: list[bytes], port: int) -> None:
    stream = b"".join(kiss.encode(p, port=port) for p in payloads)
    frames = kiss.KissDecoder().feed(stream)
    # Empty payloads still carry the type byte, so every frame comes back.
    assert [f.payload for f in frames] == payloads


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_kiss_decoder_never_crashes_on_garbage(garbage: bytes) -> None:
    decoder = kiss.KissDecoder(max_frame=256)
    for frame in decoder.feed(garbage):
        assert len(frame.payload) <= 256


def _frame(info: bytes = b"hello") -> ax25.UiFrame:
    return ax25.UiFrame(ax25.Address("CQ", 0), ax25.Address.parse("UN0SAT-7"), info)


def test_ax25_round_trip_and_identification() -> None:
    raw = _frame().encode()
    decoded = ax25.decode(raw)
    assert decoded.source == ax25.Address("UN0SAT", 7)
    assert decoded.destination == ax25.Address("CQ", 0)
    assert decoded.info == b"hello"
    assert str(decoded.source) == "UN0SAT-7"


def test_ax25_independent_decoder_reads_our_frames() -> None:
    """SatNOGS' Kaitai-generated AX.25 decoder is an implementation we did not write."""
    raw = _frame(b"\x08\x12payload").encode()
    parsed = Ax25frames.from_bytes(raw)
    header = parsed.ax25_frame.ax25_header
    assert header.src_callsign_raw.callsign_ror.callsign == "UN0SAT"
    assert header.src_ssid_raw.ssid == 7
    assert header.dest_callsign_raw.callsign_ror.callsign.rstrip() == "CQ"
    assert header.ctl == 0x03
    assert parsed.ax25_frame.payload.pid == 0xF0
    assert parsed.ax25_frame.payload.ax25_info == b"\x08\x12payload"


@pytest.mark.parametrize("text", ["", "TOOLONG1", "ab-1x", "UN0SAT-16", "UN 0"])
def test_ax25_rejects_bad_addresses(text: str) -> None:
    with pytest.raises(ax25.Ax25Error):
        ax25.Address.parse(text)


def test_ax25_rejects_non_ui_and_short_frames() -> None:
    raw = bytearray(_frame().encode())
    raw[14] = 0x00  # I frame control
    with pytest.raises(ax25.Ax25Error, match="not a UI frame"):
        ax25.decode(bytes(raw))
    with pytest.raises(ax25.Ax25Error, match="shorter"):
        ax25.decode(raw[:10])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_ax25_decoder_only_raises_its_own_error(garbage: bytes) -> None:
    try:
        ax25.decode(garbage)
    except ax25.Ax25Error:
        pass


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True), st.integers(0, 15), st.binary(max_size=200))
def test_ax25_round_trip_property(call: str, ssid: int, info: bytes) -> None:
    frame = ax25.UiFrame(ax25.Address("GROUND", 1), ax25.Address(call, ssid), info)
    assert ax25.decode(frame.encode()) == frame
