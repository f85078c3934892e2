"""Builds the link for a satellite from its config (the ``link`` entry point of ``flightsw.subsystems``).

Why separate from the component: choosing real or simulated hardware is composition, not link
logic. With ``backend = "sim"`` the simulated transceiver is started on a pseudo-terminal whose
stable path is the configured device, and the flight side opens it with the real serial driver.

Ports: the link uses ``COMMANDS`` (the dispatcher) and provides ``FILE_DOWNLINK`` when
``[filetransfer]`` is configured; the simulated transceiver is offered to test and simulation
harnesses on ``SIM_TRANSCEIVER``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from flightsw.app import Subsystem
from flightsw.config import ConfigError
from flightsw.core.ports import COMMANDS, FILE_DOWNLINK, LINK_DEFAULTS, PortKey
from flightsw.link.auth import KeyFileError, KeyRing
from flightsw.link.component import LinkComponent
from flightsw.link.settings import find_radio, load_link_settings
from hal.radio import KissParameters, KissRadio
from hal.serial_port import AsyncSerialPort

if TYPE_CHECKING:
    from flightsw.app import Satellite
    from sim.transceiver import SimTransceiver

log = logging.getLogger("flightsw.link")

#: the simulated radio board (backend "sim"), for harnesses that drive its channel; not a flight port
SIM_TRANSCEIVER: PortKey[SimTransceiver] = PortKey("sim_transceiver", "the simulated UHF transceiver")


def load_keys(path: object, generate: bool) -> KeyRing:
    from pathlib import Path

    key_path = Path(str(path))
    if not key_path.exists() and generate:
        KeyRing.generate(key_path)
        log.warning("generated a new uplink key file %s (simulation only)", key_path)
    try:
        return KeyRing.load(key_path)
    except KeyFileError as exc:
        raise ConfigError(f"link.key_file: {exc}") from None


def build_link(sat: Satellite) -> None:
    """Add the link component (and the simulated radio) when the config has a ``uhf_radio``."""
    radio_dev = find_radio(sat.config)
    if radio_dev is None:
        return
    settings = load_link_settings(sat.config)
    # A satellite built only to export its dictionary needs no real key (none is sent or logged).
    keys = load_keys(settings.key_file, settings.generate_key or sat.offline)
    if radio_dev.backend == "sim":
        from sim.transceiver import (
            DEFAULT_KISS_PORT,
            DEFAULT_QUEUE_FRAMES,
            ChannelModel,
            SimTransceiver,
        )

        opts = radio_dev.sim
        channel = ChannelModel(bit_rate=settings.bit_rate,
                               propagation_delay=float(opts.get("propagation_delay", 0.005)),
                               frame_loss=float(opts.get("frame_loss", 0.0)),
                               bit_error_rate=float(opts.get("bit_error_rate", 0.0)),
                               seed=opts.get("seed"),
                               queue_frames=int(opts.get("queue_frames", DEFAULT_QUEUE_FRAMES)))
        transceiver = SimTransceiver(channel, link_path=radio_dev.device,
                                     port=int(opts.get("kiss_tcp_port", DEFAULT_KISS_PORT)))
        sat.ports.provide(SIM_TRANSCEIVER, transceiver, by="link")

        async def run_transceiver() -> None:
            await transceiver.start()
            try:
                await asyncio.Event().wait()
            finally:
                await transceiver.stop()

        sat.supervisor.add_service("sim.transceiver", run_transceiver, critical=False)
    port = AsyncSerialPort(radio_dev.device, radio_dev.baud)
    radio = KissRadio(port, kiss_port=radio_dev.kiss_port, max_frame=settings.max_frame,
                      parameters=KissParameters(tx_delay=settings.tx_delay, persistence=settings.persistence,
                                                slot_time=settings.slot_time))
    link = sat.add(LinkComponent(settings, radio, keys))
    sat.ports.connect(COMMANDS, link.use_commands, required=True, by=link.name)
    sat.ports.provide(LINK_DEFAULTS, link, by=link.name)
    _add_file_link(sat, link)


def _add_file_link(sat: Satellite, link: LinkComponent) -> None:
    """With ``[filetransfer]``, CFDP rides the link; imaging (built later) queues files on it."""
    from flightsw.filetransfer.settings import entity_config_from
    from flightsw.link.file_link import FileLink

    entity_config = entity_config_from(sat.config)
    if entity_config is None:
        return
    try:
        files = FileLink(link, entity_config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    sat.add(files)
    sat.ports.provide(FILE_DOWNLINK, files, by=files.name)


SUBSYSTEM = Subsystem("link", build_link, order=10)
