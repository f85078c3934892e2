"""The ground station a `flightsw ground` command line asks for, connected to its TNC.

Its own module so that the ground commands (`cli`, `files_cli`) share it without importing
each other.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from flightsw.cli import default_sim_config, load_config_or_exit
from flightsw.config import ConfigError
from flightsw.ground.archive import Archive
from flightsw.ground.dictionary import GroundDictionary
from flightsw.ground.records import RecordIngest
from flightsw.ground.station import GroundStation, SerialKiss, TcpKiss
from flightsw.link import ax25
from flightsw.link.auth import KeyFileError, KeyRing
from flightsw.link.settings import load_link_settings

if TYPE_CHECKING:
    from flightsw.ground.files import GroundFiles


async def _dictionary(args: argparse.Namespace, config: object) -> GroundDictionary:
    if args.dictionary:
        return GroundDictionary.load(args.dictionary)
    from flightsw.cli_run import dictionary_text

    return GroundDictionary.from_json(await asyncio.to_thread(dictionary_text, config, "json"))


class _NoTnc:
    """The transport of a station that only archives frames received elsewhere (an import)."""

    async def read(self) -> bytes:
        raise ConnectionError("no TNC: this station only imports")

    async def write(self, data: bytes) -> None:
        raise ConnectionError("no TNC: this station only imports")

    async def close(self) -> None:
        pass


async def open_archive_station(args: argparse.Namespace) -> GroundStation:
    """A station without TNC nor uplink keys: decodes frames heard by others into the archive
    with the one decoder (``import-satnogs``). It cannot command."""
    config = load_config_or_exit(args.config or default_sim_config(), check=False)
    settings = load_link_settings(config)
    dictionary = await _dictionary(args, config)
    archive = await asyncio.to_thread(Archive, args.db)
    ground = ax25.Address.parse(args.callsign) if args.callsign else settings.ground
    station = GroundStation(dictionary, keys=None, key_id=args.key_id, ground=ground,  # type: ignore[arg-type]
                            satellite=settings.callsign, archive=archive, transport=_NoTnc(),
                            site=getattr(args, "site", None))
    RecordIngest(archive, station.wall_clock).attach(station)
    return station


async def open_station(args: argparse.Namespace) -> GroundStation:
    """The ground station the command line describes: config, dictionary, keys, TNC, archive."""
    config = load_config_or_exit(args.config or default_sim_config(), check=False)
    settings = load_link_settings(config)
    dictionary = await _dictionary(args, config)
    key_path = Path(args.key_file) if args.key_file else settings.key_file
    try:
        keys = KeyRing.load(key_path)
    except KeyFileError as exc:
        raise ConfigError(f"ground key file: {exc}") from None
    if args.serial:
        transport: TcpKiss | SerialKiss = SerialKiss(args.serial, args.baud)
    else:
        host, _, port = args.kiss.rpartition(":")
        if not host or not port.isdigit():
            raise SystemExit(f"flightsw ground: --kiss {args.kiss!r} must be HOST:PORT")
        transport = TcpKiss(host, int(port))
    try:
        await transport.connect()
    except OSError as exc:
        raise SystemExit(f"flightsw ground: cannot reach the TNC: {exc}") from None
    archive = await asyncio.to_thread(Archive, args.db)
    ground = ax25.Address.parse(args.callsign) if args.callsign else settings.ground
    station = GroundStation(dictionary, keys, args.key_id, ground=ground, satellite=settings.callsign,
                            archive=archive, transport=transport, site=getattr(args, "site", None))
    # The flight dictionary's hash from the last beacon archived: a `send` right after start-up
    # is checked before any beacon of this session arrives (a newer beacon replaces it).
    last = await archive.call(archive.latest_value, "beacon.dictionary_hash")
    if last is not None and isinstance(last[1], int):
        station.note_flight_dictionary(int(last[1]), last[0])
    RecordIngest(archive, station.wall_clock).attach(station)  # live and played-back records merged
    return station


async def close_station(station: GroundStation, tasks: Iterable[asyncio.Task[object]] = (),
                        files: GroundFiles | None = None) -> None:
    """End a ground command's session: its file side stopped, its tasks cancelled and awaited (none
    left running), the transport closed and the archive closed off the loop (its last writes land)."""
    if files is not None:
        files.stop()
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await station.transport.close()
    await asyncio.to_thread(station.archive.close)
