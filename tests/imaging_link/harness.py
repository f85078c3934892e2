"""A satellite with simulated radio, camera and CFDP, and a ground station with its file entity,
connected through the simulated transceiver (real pty on the flight side, real TCP on the ground)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from flightsw.app import Satellite
from flightsw.filetransfer.settings import entity_config_from
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.files import GroundFiles
from flightsw.ground.station import GroundStation, TcpKiss
from flightsw.imaging.subsystem import build_imaging
from flightsw.link import ax25
from flightsw.link.auth import KeyRing
from flightsw.link.component import LinkComponent
from flightsw.link.file_link import FileLink
from flightsw.link.subsystem import SIM_TRANSCEIVER, build_link
from flightsw.testing import mission_config

BIT_RATE = 120_000  # fast enough for whole images within a test's budget; same code as 9600

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
tx_delay = 0.0
generate_key = true

[[devices]]
name = "camera"
kind = "camera"
backend = "sim"
seed = 7

[imaging]
quota_mb = 16

[filetransfer]
local_id = 2
remote_id = 1
max_pdu_len = 200
ack_interval_s = 1.0
nak_interval_s = 1.0
ack_limit = 4
nak_limit = 8
inactivity_s = 3.0
retry_backoff_s = 1.0
"""


FILES_TOML = """
[files]
roots = { sequences = "uploads/sequences", configs = "uploads/configs", images = "images" }
destinations = ["sequences", "configs"]
"""


def build_satellite(data_dir: Path, loss: float = 0.0, file_manager: bool = False) -> Satellite:
    """The satellite; ``file_manager``: with ``[files]`` and the file manager subsystem too."""
    from flightsw.components.file_manager import SUBSYSTEM as FILES

    extra = FILES_TOML if file_manager else ""
    config = mission_config(data_dir, TOML.format(loss=loss, bit_rate=BIT_RATE) + extra)
    return Satellite(config, subsystems=[build_link, FILES, build_imaging])


def link_of(sat: Satellite) -> LinkComponent:
    comp = sat.component("link")
    assert isinstance(comp, LinkComponent)
    return comp


def files_of(sat: Satellite) -> FileLink:
    comp = sat.component("files")
    assert isinstance(comp, FileLink)
    return comp


class Ground:
    """Station + file entity, started and stopped together (a ground restart is a new Ground)."""

    def __init__(self, sat: Satellite, data_dir: Path, port: int, downloads: str = "downloads") -> None:
        self.sat = sat
        self.data_dir = data_dir
        self.downloads = downloads
        self.port = port
        self.tasks: list[asyncio.Task[Any]] = []
        self.stopped = False

    async def start(self) -> None:
        assert self.sat.dictionary is not None
        sat = self.sat  # exporting and parsing the whole dictionary is CPU work: off the loop
        dictionary = await asyncio.to_thread(lambda: GroundDictionary.from_json(sat.dictionary.to_json()))
        self.transport = TcpKiss("127.0.0.1", self.port)
        await self.transport.connect()
        self.archive = await asyncio.to_thread(Archive, self.data_dir / "ground.sqlite3")
        settings = link_of(self.sat).settings
        self.station = GroundStation(dictionary, KeyRing.load(settings.key_file), 0,
                                     ground=ax25.Address.parse("UN0GND"), satellite=settings.callsign,
                                     archive=self.archive, transport=self.transport)
        flight = entity_config_from(self.sat.config)
        assert flight is not None
        self.files = GroundFiles(self.station, flight, self.data_dir / self.downloads,
                                 bit_rate=settings.bit_rate, tx_delay=settings.tx_delay)
        self.tasks = [asyncio.create_task(self.station.run()), asyncio.create_task(self.files.run())]

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.files.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.transport.close()
        await asyncio.to_thread(self.archive.close)


@contextlib.asynccontextmanager
async def ground_pass(data_dir: Path, loss: float = 0.0,
                      file_manager: bool = False) -> AsyncIterator[tuple[Satellite, Ground]]:
    """A running satellite and a ground station with its file entity, connected through the
    simulated transceiver; both are stopped on the way out, whether the body passed or failed."""
    # Building a satellite does start-up file I/O (boot count, keys): off the loop, as in flight.
    sat = await asyncio.to_thread(build_satellite, data_dir / "sat", loss, file_manager)
    runner = asyncio.create_task(sat.run())
    ground: Ground | None = None
    try:
        transceiver = sat.ports.require(SIM_TRANSCEIVER)
        while transceiver._server is None:
            if runner.done():
                runner.result()
            await asyncio.sleep(0.01)
        ground = Ground(sat, data_dir / "ground", transceiver.bound_port)
        (data_dir / "ground").mkdir(parents=True, exist_ok=True)
        await ground.start()
        yield sat, ground
    finally:
        if ground is not None:
            await ground.stop()
        sat.stop_event.set()
        await runner


async def run_pass(data_dir: Path, body: Callable[[Satellite, Ground], Awaitable[Any]],
                   loss: float = 0.0) -> Any:
    """``body(sat, ground)`` during a ``ground_pass``."""
    async with ground_pass(data_dir, loss) as (sat, ground):
        return await body(sat, ground)
