"""The simulated transceiver: a bounded transmit queue per direction and a one-port KISS TNC."""

from __future__ import annotations

import asyncio
import os

import pytest

from hal import kiss
from sim.transceiver import ChannelModel, SimTransceiver

FRAME = bytes(range(100))


@pytest.mark.virtual_time(start=100.0)
async def test_flood_leaves_queued_airtime_bounded_and_a_later_command_gets_through() -> None:
    """A KISS client floods the uplink at 100 frames/s (9x what 9600 bit/s carries) for 60 s:
    the queue ahead of a frame never exceeds the configured frames' airtime, the excess is
    dropped and counted, and a command offered a second after the flood goes straight on the air
    (without the bound, it would wait behind ~50 s of queued flood)."""
    xcvr = SimTransceiver(ChannelModel(bit_rate=9600, propagation_delay=0.005))
    arrivals: list[tuple[float, bytes]] = []
    per_frame = (len(FRAME) + 4) * 8 / 9600

    loop = asyncio.get_running_loop()
    xcvr.uplink.deliver = lambda frame: arrivals.append((loop.time(), frame))
    worst = 0.0
    start = loop.time()
    while loop.time() - start < 60.0:
        xcvr.uplink.submit(FRAME)
        worst = max(worst, xcvr.uplink.busy_until - loop.time())
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)  # the ground station's retry after the flood: the queue has drained
    sent_at = loop.time()
    xcvr.uplink.submit(b"command")
    await asyncio.sleep(5.0)
    arrived = next((t for t, frame in arrivals if frame == b"command"), float("inf"))

    limit = xcvr.channel.queue_frames * per_frame
    assert worst <= limit + 1e-9, f"{worst:.1f} s of airtime queued"
    assert arrived - sent_at <= 0.1, f"command arrived {arrived - sent_at:.1f} s after it was sent"
    stats = xcvr.uplink.stats
    assert stats.frames_dropped_busy > 4000
    assert stats.frames_delivered + stats.frames_dropped_busy == stats.frames_in


async def test_ground_side_takes_kiss_data_on_port_0_only() -> None:
    """Every single-bit flip of the KISS type byte: port flips are dropped and counted, command
    flips are not data; the unflipped frame behind them reaches the flight side unchanged."""

    xcvr = SimTransceiver(ChannelModel(bit_rate=1_000_000, propagation_delay=0.0), port=0)
    await xcvr.start()
    loop = asyncio.get_running_loop()
    assert xcvr._slave is not None
    slave = xcvr._slave
    os.set_blocking(slave, False)
    decoder = kiss.KissDecoder()
    received: asyncio.Queue[kiss.KissFrame] = asyncio.Queue()

    def readable() -> None:
        for frame in decoder.feed(os.read(slave, 4096)):
            received.put_nowait(frame)

    loop.add_reader(slave, readable)
    reader, writer = await asyncio.open_connection("127.0.0.1", xcvr.bound_port)
    try:
        for bit in range(8):
            type_byte = 0x00 ^ (1 << bit)
            writer.write(bytes([kiss.FEND]) + kiss.escape(bytes([type_byte]) + FRAME) + bytes([kiss.FEND]))
        writer.write(kiss.encode(FRAME, port=0))
        await writer.drain()
        frame = await asyncio.wait_for(received.get(), 5.0)
        assert frame.port == 0 and frame.payload == FRAME
        assert received.empty()
        assert xcvr.uplink.stats.frames_wrong_port == 4
        assert xcvr.uplink.stats.frames_in == 1
    finally:
        loop.remove_reader(slave)
        writer.close()
        await xcvr.stop()


@pytest.mark.virtual_time(start=100.0)
async def test_frames_offered_together_share_one_key_up_and_arrive_byte_exact() -> None:
    """TXDELAY is paid once per transmission: three frames offered together go out in one key-up
    (arrivals one frame time apart), unchanged; a frame offered while that transmission is on the
    air but after its frames were taken (direwolf has generated the audio by then) keys up again
    once it has ended, paying TXDELAY a second time."""
    xcvr = SimTransceiver(ChannelModel(bit_rate=9600, propagation_delay=0.0))
    xcvr.tnc_parameters["TX_DELAY"] = 30  # 0.3 s, as the flight computer's KISS command sets it
    loop = asyncio.get_running_loop()
    arrivals: list[tuple[float, bytes]] = []
    xcvr.downlink.deliver = lambda frame: arrivals.append((loop.time(), frame))
    frames = [bytes([n]) * 96 for n in range(3)]
    per_frame = 100 * 8 / 9600
    start = loop.time()
    for frame in frames:
        xcvr.downlink.submit(frame)
    await asyncio.sleep(0.1)
    xcvr.downlink.submit(b"late" * 24)  # during the TXDELAY of the first transmission
    await asyncio.sleep(5.0)
    assert [frame for _, frame in arrivals] == [*frames, b"late" * 24]
    times = [t - start for t, _ in arrivals]
    assert times[:3] == pytest.approx([0.3 + per_frame, 0.3 + 2 * per_frame, 0.3 + 3 * per_frame])
    assert times[3] == pytest.approx(times[2] + 0.3 + per_frame)  # its own key-up, after the first
    assert xcvr.downlink.key_ups == 2
