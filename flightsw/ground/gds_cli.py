"""`flightsw ground --gds HOST:PORT`: the ground station without its live view, bridged to an F Prime GDS.

Its own module so the ground command imports the bridge only when asked for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from flightsw.cli import default_sim_config, load_config_or_exit
from flightsw.ground.connect import close_station, open_station
from flightsw.ground.files_cli import optional_files
from flightsw.ground.fprime_dict import FprimeDictionary, FprimeDictionaryError
from flightsw.ground.gds import GdsBridge

log = logging.getLogger("flightsw.ground.gds")


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT, or SystemExit with one line naming the problem."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SystemExit(f"flightsw ground: --gds {text!r} must be HOST:PORT")
    return host, int(port)


async def _flight_json(args: argparse.Namespace) -> str:
    if args.dictionary:
        return await asyncio.to_thread(Path(args.dictionary).read_text)
    from flightsw.cli_run import dictionary_text

    config = load_config_or_exit(args.config or default_sim_config(), check=False)
    return await asyncio.to_thread(dictionary_text, config, "json")


async def run_gds(args: argparse.Namespace) -> int:
    """Receive, archive and bridge until interrupted (or the TNC connection ends: exit 1)."""
    host, port = parse_address(args.gds)
    try:
        fdict = FprimeDictionary(json.loads(await _flight_json(args)))
    except (OSError, ValueError, FprimeDictionaryError) as exc:
        print(f"flightsw ground: dictionary: {exc}", file=sys.stderr)
        return 2
    station = await open_station(args)
    files = optional_files(args, station)
    bridge = GdsBridge(station, fdict, host, port)
    if files is not None:
        bridge.attach_files(files)
    tasks = [asyncio.create_task(station.run(), name="station"), asyncio.create_task(bridge.run(), name="gds")]
    if files is not None:
        tasks.append(asyncio.create_task(files.run(), name="files"))
    print(f"flightsw ground: bridging to the F Prime GDS at {host}:{port} (dictionary {fdict.hash[:16]})", flush=True)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if error is not None:
                print(f"flightsw ground: {task.get_name()} stopped: {error}", file=sys.stderr)
        return 1
    finally:
        await close_station(station, tasks, files)
