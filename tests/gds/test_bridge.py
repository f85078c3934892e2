"""The bridge on its own, against a stand-in GDS (an asyncio TCP server): it connects when the GDS
comes up and again after the GDS drops it, sends what the station decodes as F Prime packets, and
answers an uplinked packet it cannot use with a ground.command_refused event."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from flightsw.config import load
from flightsw.config_check import offline_dictionary
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.fprime_dict import FprimeDictionary
from flightsw.ground.gds import Deframer, GdsBridge, LinkState, PacketType, frame
from flightsw.ground.gds_cli import parse_address
from flightsw.ground.station import GroundStation
from flightsw.link import ax25, beacon
from flightsw.link.packets import PacketBuilder, TimeStamp

ROOT = Path(__file__).resolve().parents[2]
SAT = ax25.Address("UN0SAT", 1)
GND = ax25.Address("UN0GND")


@pytest.fixture(scope="module")
def dictionaries() -> Iterator[tuple[GroundDictionary, FprimeDictionary]]:
    with offline_dictionary(load(ROOT / "deploy" / "sim.toml")) as d:
        text = d.to_json()
    yield GroundDictionary.from_json(text), FprimeDictionary(json.loads(text))


class _NoTnc:
    async def read(self) -> bytes:
        await asyncio.Event().wait()
        return b""

    async def write(self, data: bytes) -> None:
        pass

    async def close(self) -> None:
        pass


class FakeGds:
    """Accepts the bridge like fprime-gds's comm process does and collects the packets it sends."""

    def __init__(self) -> None:
        self.packets: asyncio.Queue[bytes] = asyncio.Queue()
        self.writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        writer.write(b"sitting well")  # the GDS's keep-alive
        deframer = Deframer()
        while data := await reader.read(4096):
            for packet in deframer.feed(data):
                self.packets.put_nowait(packet)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_bridge_reconnects_and_forwards(dictionaries: tuple[GroundDictionary, FprimeDictionary],
                                              tmp_path: Path) -> None:
    ground_dict, fdict = dictionaries
    archive = await asyncio.to_thread(Archive, tmp_path / "g.sqlite3")
    station = GroundStation(ground_dict, keys=None, key_id=0, ground=GND, satellite=SAT,  # type: ignore[arg-type]
                            archive=archive, transport=_NoTnc())
    port = _free_port()
    bridge = GdsBridge(station, fdict, "127.0.0.1", port, reconnect_delay=0.05)
    task = asyncio.create_task(bridge.run())
    gds = FakeGds()
    try:
        await asyncio.sleep(0.1)  # the bridge tries while nothing listens
        assert bridge.state is LinkState.CONNECTING
        server = await asyncio.start_server(gds.handle, "127.0.0.1", port)
        async with asyncio.timeout(5):
            await bridge.connected.wait()
        packet = beacon.build_packet(PacketBuilder(240), "UN0SAT", TimeStamp(1, 50.0),
                                     {"battery_voltage": 7.25, "mode": 2, "uplink_counter": 0})
        await station.handle_frame(ax25.UiFrame(GND, SAT, packet).encode())
        voltage_id = fdict.channels["beacon.battery_voltage"].id
        async with asyncio.timeout(5):
            while True:
                sent = await gds.packets.get()
                kind, cid = struct.unpack_from(">HI", sent)
                if kind == PacketType.TELEM and cid == voltage_id:
                    break
        assert struct.unpack_from(">f", sent, 6 + 11)[0] == pytest.approx(7.25)
        # a packet the bridge cannot use: refused, and the GDS hears why
        gds.writers[-1].write(frame(struct.pack(">HI", PacketType.COMMAND, 0xFFFFFFF0)))
        refused_id = fdict.events["ground.command_refused"].id
        async with asyncio.timeout(5):
            while True:
                sent = await gds.packets.get()
                if struct.unpack_from(">HI", sent) == (PacketType.LOG, refused_id):
                    break
        assert b"not in the dictionary" in sent and bridge.stats.commands_refused == 1
        # the GDS drops the connection: the bridge connects again
        gds.writers[-1].close()
        async with asyncio.timeout(5):
            while gds.connections < 2 or not bridge.connected.is_set():
                await asyncio.sleep(0.02)
        server.close()
        await server.wait_closed()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(archive.close)
    assert bridge.state is LinkState.CLOSED


@pytest.mark.parametrize("text", ["x", "host:", ":50000", "h:0", "h:99999", "h:port"])
def test_a_bad_gds_address_is_one_line(text: str) -> None:
    with pytest.raises(SystemExit, match=r"^flightsw ground: --gds '.*' must be HOST:PORT$"):
        parse_address(text)
    assert parse_address("127.0.0.1:50000") == ("127.0.0.1", 50000)
