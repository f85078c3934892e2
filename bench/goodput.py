"""`python -m bench.goodput`: file downlink goodput over the simulated 9600 bit/s link.

A satellite with the link and CFDP (the flight config's link and file-transfer settings: 256-byte
frames for everything but file data, 1024-byte frames of file PDUs only with 979-byte PDUs, 50 ms
TX delay paid once per burst of up to ``burst_s`` (6 s) of airtime) downlinks a file of random bytes to
a ground station with its CFDP entity, through the simulated transceiver (pty on the flight side,
KISS over TCP on the ground), on the virtual clock: the transceiver serialises every frame at the
bit rate and keys up once per transmission (TXDELAY, then the frames handed to it together), so
virtual seconds are airtime seconds, and loses frames at random in both directions at the given
rate. Goodput is the file's size, arrived byte-identical at the ground, over the virtual time from
the request to the ground's Finished; the target is 0.85 x (1 - loss) x link rate. The settings
flown before (256-byte frames and 200-byte PDUs, a key-up per frame) are measured in the same run
as the ``alt_`` figures.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import child_parser, progress, write_result
from flightsw.app import Satellite
from flightsw.filetransfer.settings import entity_config_from
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.files import GroundFiles
from flightsw.ground.station import GroundStation, TcpKiss
from flightsw.link import ax25
from flightsw.link.auth import KeyRing
from flightsw.link.component import LinkComponent
from flightsw.link.file_link import FileLink
from flightsw.link.subsystem import SIM_TRANSCEIVER, build_link
from flightsw.sim_runner.io_accounting import bytes_not_yet_readable
from flightsw.testing import mission_config
from sim.transceiver import CountingStreamReader, bytes_sent_to_kernel, readable_bytes, socket_fd
from sim.virtual_time import VirtualTimeLoop

BIT_RATE = 9600
LOSSES = (0.0, 0.05, 0.10, 0.20)

TOML = """
[[devices]]
name = "radio"
kind = "uhf_radio"
backend = "sim"
kiss_tcp_port = 0
frame_loss = {loss}
seed = 11
propagation_delay = 0.002

[link]
callsign = "UN0SAT-1"
ground_callsign = "UN0GND"
bit_rate = {bit_rate}
max_frame = 256
max_file_frame = {max_file_frame}
burst_s = {burst_s}
tx_delay = {tx_delay}
generate_key = true

[filetransfer]
local_id = 2
remote_id = 1
max_pdu_len = {max_pdu_len}
"""


class CountedTcpKiss(TcpKiss):
    """The ground's KISS TCP connection with the byte counts a virtual-time loop needs to hold its
    clock while frames are still inside the kernel (``bytes_not_yet_readable``): without them,
    under CPU load the clock jumps while a burst or a NAK is in flight, and the figures fall."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.bytes_read = 0
        self.bytes_written = 0
        self._counting: CountingStreamReader | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        reader = CountingStreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.create_connection(lambda: protocol, self.host, self.port)
        self._counting, self._reader = reader, reader
        self._writer = asyncio.StreamWriter(transport, protocol, reader, loop)

    async def read(self) -> bytes:
        data = await super().read()
        self.bytes_read += len(data)
        return data

    async def write(self, data: bytes) -> None:
        self.bytes_written += len(data)
        await super().write(data)

    def bytes_sent_to_kernel(self) -> int:
        return bytes_sent_to_kernel(self._writer, self.bytes_written) if self._writer is not None else 0

    def bytes_arrived(self) -> int:
        if self._counting is None or self._writer is None:
            return 0
        return self._counting.bytes_received + readable_bytes(socket_fd(self._writer))


async def one_transfer(data_dir: Path, loss: float, size: int, setup: Setup, timeout_s: float) -> dict[str, float]:
    config = mission_config(data_dir / "sat", TOML.format(loss=loss, bit_rate=BIT_RATE, max_file_frame=setup.max_file_frame,
                                                          burst_s=setup.burst_s, max_pdu_len=setup.max_pdu_len,
                                                          tx_delay=setup.tx_delay))
    sat = await asyncio.to_thread(Satellite, config, subsystems=[build_link])
    runner = asyncio.create_task(sat.run())
    transceiver = sat.ports.require(SIM_TRANSCEIVER)
    while transceiver._server is None:
        if runner.done():
            runner.result()
        await asyncio.sleep(0.01)
    link = sat.component("link")
    files = sat.component("files")
    assert isinstance(link, LinkComponent) and isinstance(files, FileLink)
    assert sat.dictionary is not None
    dictionary = await asyncio.to_thread(lambda: GroundDictionary.from_json(sat.dictionary.to_json()))
    ground_dir = data_dir / "ground"
    ground_dir.mkdir(parents=True, exist_ok=True)
    transport = CountedTcpKiss("127.0.0.1", transceiver.bound_port)
    await transport.connect()
    serial = link.radio.serial
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)

    def in_flight() -> int:
        return bytes_not_yet_readable(serial.bytes_written, serial.bytes_read, transceiver, transport)

    loop.add_io_arrival_check(in_flight)
    archive = await asyncio.to_thread(Archive, ground_dir / "ground.sqlite3")
    settings = link.settings
    station = GroundStation(dictionary, KeyRing.load(settings.key_file), 0, ground=ax25.Address.parse("UN0GND"),
                            satellite=settings.callsign, archive=archive, transport=transport)
    flight = entity_config_from(sat.config)
    assert flight is not None
    ground = GroundFiles(station, flight, ground_dir / "downloads", bit_rate=settings.bit_rate,
                         tx_delay=settings.tx_delay)
    tasks = [asyncio.create_task(station.run()), asyncio.create_task(ground.run())]
    try:
        await asyncio.sleep(5.0)  # start-up traffic (first housekeeping, beacon) out of the way
        source = data_dir / "sat" / "payload.bin"
        payload = os.urandom(size)
        await asyncio.to_thread(source.write_bytes, payload)
        downlink = transceiver.downlink.stats
        frames0, lost0, keys0 = downlink.frames_in, downlink.frames_lost, transceiver.downlink.key_ups
        began, real_began = loop.time(), time.perf_counter()
        await files.put(source, "payload.bin")
        download = await ground.wait_download("payload.bin", timeout_s)
        elapsed = loop.time() - began
        if download is None:
            raise RuntimeError(f"loss {loss:g}: the file did not arrive within {timeout_s:g} s of airtime")
        arrived = await asyncio.to_thread(download.path.read_bytes)
        if hashlib.sha256(arrived).digest() != hashlib.sha256(payload).digest():
            raise RuntimeError(f"loss {loss:g}: the file arrived different")
        rate = BIT_RATE / 8.0
        figures = {
            "goodput_Bps": size / elapsed,
            "efficiency": size / elapsed / rate,
            "efficiency_over_target": size / elapsed / rate / (0.85 * (1.0 - loss)),
            "airtime_s": elapsed,
            "frames_down": float(downlink.frames_in - frames0),
            "frames_lost": float(downlink.frames_lost - lost0),
            "key_ups": float(transceiver.downlink.key_ups - keys0),
            "real_s": time.perf_counter() - real_began,
        }
        return figures
    finally:
        ground.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        loop.remove_io_arrival_check(in_flight)
        await transport.close()
        await asyncio.to_thread(archive.close)
        sat.stop_event.set()
        await runner


@dataclass(frozen=True)
class Setup:
    """Link and file-transfer settings of one series of transfers."""

    prefix: str
    max_file_frame: int  # 0: file PDUs in the 256-byte frames
    max_pdu_len: int
    tx_delay: float
    burst_s: float

    def describe(self) -> str:
        frame = self.max_file_frame or 256
        return (f"file frame {frame}, PDU {self.max_pdu_len}, TX delay {self.tx_delay:g} s, "
                f"burst {self.burst_s:g} s")


FLIGHT = Setup("", 1024, 979, 0.05, 6.0)  # deploy/flight.toml
BEFORE = Setup("alt_", 0, 200, 0.05, 0.0)  # flown before issue 15: 256-byte frames, a key-up per frame


def main(argv: list[str] | None = None) -> int:
    parser = child_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="file size, bytes (default 1 MB, quick 100 kB)")
    parser.add_argument("--max-file-frame", type=int, default=FLIGHT.max_file_frame)
    parser.add_argument("--max-pdu-len", type=int, default=FLIGHT.max_pdu_len)
    parser.add_argument("--tx-delay", type=float, default=FLIGHT.tx_delay, help="the link's TX delay, s")
    parser.add_argument("--burst-s", type=float, default=FLIGHT.burst_s, help="airtime per key-up, s")
    parser.add_argument("--no-alternative", action="store_true", help="only the flight settings")
    parser.add_argument("--losses", default=None, help="comma-separated frame loss rates")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("flightsw").setLevel(logging.ERROR)
    size = args.size or (100_000 if args.quick else 1_000_000)
    losses = tuple(float(x) for x in args.losses.split(",")) if args.losses else LOSSES
    figures: dict[str, float] = {}
    samples: dict[str, dict[str, float]] = {}
    flight = Setup("", args.max_file_frame, args.max_pdu_len, args.tx_delay, args.burst_s)
    setups = [flight] if args.no_alternative else [flight, BEFORE]
    for setup in setups:
        prefix = setup.prefix
        for loss in losses:
            with tempfile.TemporaryDirectory() as d:
                timeout = 20.0 * size / (BIT_RATE / 8.0) + 600.0
                with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(0.0, None), debug=False) as runner:
                    result = runner.run(one_transfer(Path(d), loss, size, setup, timeout))
            pct = round(100 * loss)
            samples[f"{prefix}{pct}"] = result
            figures[f"{prefix}goodput_{pct}_Bps"] = result["goodput_Bps"]
            figures[f"{prefix}efficiency_{pct}"] = result["efficiency"]
            figures[f"{prefix}over_target_{pct}"] = result["efficiency_over_target"]
            progress(f"{prefix or 'flight '}{setup.describe()}, loss {pct} %: "
                     f"{result['goodput_Bps']:.0f} B/s = {result['efficiency']:.3f} of the link "
                     f"({result['efficiency_over_target']:.3f} of the target), {result['frames_down']:.0f} frames "
                     f"in {result['key_ups']:.0f} key-ups, {result['airtime_s']:.0f} s airtime in "
                     f"{result['real_s']:.1f} s real")
    figures["link_rate_Bps"] = BIT_RATE / 8.0
    write_result(args.json, figures, {"by_loss": samples},
                 [f"{size} B file, {BIT_RATE} bit/s, virtual time; flight: {flight.describe()}; "
                  f"alt_ (before): {BEFORE.describe()}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
