"""Builds the link for a satellite from its config (the ``link`` entry point of ``flightsw.subsystems``).

Why separate from the component: choosing real or simulated hardware is composition, not link
logic. With ``backend = "sim"`` the simulated transceiver is started on a pseudo-terminal whose
stable path is the configured device, and the flight side opens it with the real serial driver.

Ports: the link uses ``COMMANDS`` (the dispatcher) and ``TX_INHIBIT`` (transmitter control, built
here too: it uses ``RF_SILENCE`` and ``MODES`` when they exist) and provides ``FILE_DOWNLINK`` when
``[filetransfer]`` is configured; the simulated transceiver is offered to test and simulation
harnesses on ``SIM_TRANSCEIVER``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from msgspec import UnsetType

from flightsw.app import Subsystem
from flightsw.config import ConfigError
from flightsw.core.ports import (
    COMMANDS,
    FILE_DOWNLINK,
    LINK_DEFAULTS,
    MODES,
    ORBIT_TLE,
    RF_SILENCE,
    TX_INHIBIT,
    PortKey,
)
from flightsw.link.auth import KeyFileError, KeyRing
from flightsw.link.component import LinkComponent
from flightsw.link.settings import find_radio, load_link_settings
from flightsw.link.tx_control import TransmitterControl
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
            ChannelModel,
            SimTransceiver,
        )

        opts = radio_dev.options  # the schema's RadioOptions: its defaults are the channel's
        channel = ChannelModel(bit_rate=settings.bit_rate, propagation_delay=opts.propagation_delay,
                               frame_loss=opts.frame_loss, bit_error_rate=opts.bit_error_rate,
                               seed=opts.seed, queue_frames=opts.queue_frames)
        transceiver = SimTransceiver(channel, link_path=radio_dev.device,
                                     port=DEFAULT_KISS_PORT if isinstance(opts.kiss_tcp_port, UnsetType)
                                     else opts.kiss_tcp_port)
        sat.ports.provide(SIM_TRANSCEIVER, transceiver, by="link")

        async def run_transceiver() -> None:
            await transceiver.start()
            try:
                await asyncio.Event().wait()
            finally:
                await transceiver.stop()

        sat.supervisor.add_service("sim.transceiver", run_transceiver, critical=False)
    port = AsyncSerialPort(radio_dev.device, radio_dev.baud)
    radio = KissRadio(port, kiss_port=radio_dev.kiss_port, max_frame=settings.largest_frame,
                      parameters=KissParameters(tx_delay=settings.tx_delay, persistence=settings.persistence,
                                                slot_time=settings.slot_time, tx_tail=settings.tx_tail,
                                                full_duplex=settings.full_duplex))
    link = sat.add(LinkComponent(settings, radio, keys))
    sat.ports.connect(COMMANDS, link.use_commands, required=True, by=link.name)
    # the one owner of transmit permission: silence, TX_OFF, low power, modes
    tx = sat.add(TransmitterControl(sat.config.transmitter))
    sat.ports.provide(TX_INHIBIT, tx, by=tx.name)
    sat.ports.connect(TX_INHIBIT, link.use_permission, required=True, by=link.name)
    sat.ports.connect(RF_SILENCE, tx.use_silence, by=tx.name)
    sat.ports.connect(MODES, tx.use_modes, by=tx.name)
    link.use_contact_silence(tx.set_out_of_contact)
    sat.ports.provide(LINK_DEFAULTS, link, by=link.name)
    _add_file_link(sat, link)
    _add_playback_and_contact(sat, link)


def _add_playback_and_contact(sat: Satellite, link: LinkComponent) -> None:
    """Playback of the record log rides every link; with ``[contact]`` the downlink follows the
    predicted passes (sgp4 is imported only then: the minimal install has none)."""
    from flightsw.link.playback import Playback

    playback = sat.add(Playback(link, lambda: sat.packets))
    if sat.config.contact is None:
        return
    try:
        from flightsw.link.contact import ContactManager
    except ImportError as exc:
        from flightsw.app import StartupError

        raise StartupError(f"[contact] needs the payload extra (sgp4): pip install 'flightsw[payload]' ({exc})") from exc
    if not sat.config.contact.stations:
        raise ConfigError("contact.stations: at least one ground station is needed to predict passes")
    contact = sat.add(ContactManager(sat.config.contact, link, playback))
    sat.ports.connect(ORBIT_TLE, contact.use_tle_source, required=False, by=contact.name)


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
