"""Shared fixtures for link tests: a satellite with the simulated radio and a probe component."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from flightsw.app import Satellite
from flightsw.core.component import Arg, Channel, Component, command
from flightsw.core.types import U16, U32
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.station import GroundStation, TcpKiss
from flightsw.link import ax25
from flightsw.link.auth import KeyRing
from flightsw.link.component import LinkComponent
from flightsw.link.subsystem import SIM_TRANSCEIVER, build_link
from flightsw.testing import mission_config

LINK_TOML = """
[[devices]]
name = "radio"
kind = "uhf_radio"
backend = "sim"
kiss_tcp_port = 0
frame_loss = {loss}
seed = 7
propagation_delay = 0.002

[link]
callsign = "UN0SAT-1"
ground_callsign = "UN0GND"
bit_rate = 9600
max_frame = 256
tx_delay = 0.01
generate_key = true

[[telemetry.packets]]
name = "hk_probe"
rate_hz = 4.0
channels = ["probe.target", "probe.executions", "link.commands_executed"]
"""


class Probe(Component):
    """Test component: a command that changes telemetry and counts its executions."""

    target = Channel(U16, unit="degC", doc="set point")
    executions = Channel(U32, doc="times SET_TARGET ran")

    def __init__(self) -> None:
        super().__init__("probe", 0x0700)
        self.count = 0

    def setup(self) -> None:
        self.ctx.rate_group("fast").add("probe.publish", self.publish)

    def publish(self) -> None:
        self.executions.set(self.count)

    @command(args=[Arg("value", U16, range=(0, 500))], doc="set the target")
    def set_target(self, value: int) -> None:
        self.count += 1
        self.target.set(value)


def build_satellite(data_dir: Path, loss: float = 0.0) -> tuple[Satellite, Probe]:
    config = mission_config(data_dir, LINK_TOML.format(loss=loss))
    probe = Probe()
    sat = Satellite(config, subsystems=[build_link, lambda s: s.add(probe)])
    return sat, probe


def link_of(sat: Satellite) -> LinkComponent:
    comp = sat.component("link")
    assert isinstance(comp, LinkComponent)
    return comp


@contextlib.asynccontextmanager
async def ground_pass(data_dir: Path, loss: float = 0.0) -> AsyncIterator[tuple[Satellite, Probe, GroundStation]]:
    """A running satellite with its simulated radio and a ground station connected over TCP;
    everything is stopped on the way out, whether the test body passed or failed."""
    # Building a satellite does start-up file I/O (boot count, keys): off the loop, as in flight.
    sat, probe = await asyncio.to_thread(build_satellite, data_dir, loss)
    runner = asyncio.create_task(sat.run())
    archive = None
    station_task = None
    transport = None
    try:
        transceiver = sat.ports.require(SIM_TRANSCEIVER)
        while transceiver._server is None:  # started by its service
            if runner.done():
                runner.result()
            await asyncio.sleep(0.01)
        assert sat.dictionary is not None
        # Exporting and parsing the whole dictionary is ground-side CPU work: off the loop.
        dictionary = await asyncio.to_thread(lambda: GroundDictionary.from_json(sat.dictionary.to_json()))
        transport = TcpKiss("127.0.0.1", transceiver.bound_port)
        await transport.connect()
        archive = await asyncio.to_thread(Archive, data_dir / "ground.sqlite3")
        settings = link_of(sat).settings
        station = GroundStation(dictionary, KeyRing.load(settings.key_file), 0,
                                ground=ax25.Address.parse("UN0GND"), satellite=settings.callsign,
                                archive=archive, transport=transport)
        station_task = asyncio.create_task(station.run())
        yield sat, probe, station
    finally:
        if station_task is not None:
            station_task.cancel()
        if transport is not None:
            await transport.close()
        sat.stop_event.set()
        await runner
        if archive is not None:
            await asyncio.to_thread(archive.close)


async def run_pass(data_dir: Path, body: Callable[[Satellite, Probe, GroundStation], Awaitable[Any]],
                   loss: float = 0.0) -> Any:
    """``body(sat, probe, station)`` during a ``ground_pass``."""
    async with ground_pass(data_dir, loss) as (sat, probe, station):
        return await body(sat, probe, station)
