"""`flightsw ground catalog | request IMAGE_ID [--product] | upload FILE [--dest NAME]`.

Why separate from ``cli.py``: these commands need the ground file entity running beside the
station for the whole exchange (command, then the file transfer it causes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from flightsw.cli import default_sim_config, load_config_or_exit

if TYPE_CHECKING:  # imported where used: `flightsw run` builds this parser without the ground stack
    from flightsw.ground.files import GroundFiles
    from flightsw.ground.station import GroundStation

PRODUCT_CODES = {"thumb": 0, "preview": 1, "full": 2}
PRODUCT_NAMES = {"thumb": "thumbnail", "preview": "preview", "full": "full"}


def register(actions: argparse._SubParsersAction) -> None:
    for name, helptext, func in (
        ("catalog", "downlink and list the onboard image catalog", cmd_catalog),
        ("request", "request an image product and wait for it", cmd_request),
        ("upload", "upload a file to the satellite's quarantine", cmd_upload),
    ):
        parser = actions.add_parser(name, help=helptext)
        parser.add_argument("--downloads", default="downloads", help="download directory (default: ./downloads)")
        parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the file")
        if name == "request":
            parser.add_argument("image_id", type=int)
            parser.add_argument("--product", choices=sorted(PRODUCT_CODES), default="full")
        if name == "upload":
            parser.add_argument("file", type=Path)
            parser.add_argument("--dest", default=None, help="name on board (default: the file's name)")
        parser.set_defaults(func=func)


def _files_for(args: argparse.Namespace, station: GroundStation) -> GroundFiles:
    from flightsw.filetransfer.settings import entity_config_from
    from flightsw.ground.files import GroundFiles
    from flightsw.link.settings import load_link_settings

    config = load_config_or_exit(args.config or default_sim_config())
    flight = entity_config_from(config)
    if flight is None:
        raise SystemExit("flightsw ground: the mission config has no [filetransfer] table")
    settings = load_link_settings(config)
    return GroundFiles(station, flight, Path(args.downloads), bit_rate=settings.bit_rate,
                       tx_delay=settings.tx_delay)


def optional_files(args: argparse.Namespace, station: GroundStation) -> GroundFiles | None:
    """The live view receives files too when the mission has ``[filetransfer]``."""
    from flightsw.filetransfer.settings import entity_config_from

    config = load_config_or_exit(args.config or default_sim_config())
    if entity_config_from(config) is None:
        return None
    args.downloads = getattr(args, "downloads", "downloads")
    return _files_for(args, station)


async def _with_files(args: argparse.Namespace,
                      action: Callable[[GroundStation, GroundFiles], Awaitable[int]]) -> int:
    from flightsw.ground.connect import close_station, open_station

    station = await open_station(args)
    files = _files_for(args, station)
    tasks = [asyncio.create_task(station.run()), asyncio.create_task(files.run())]
    try:
        return await action(station, files)
    finally:
        await close_station(station, tasks, files)


async def _command_ok(station: GroundStation, name: str, assignments: dict[str, str]) -> bool:
    response = await station.command(name, assignments, timeout=10.0, retries=2)
    if response is None:
        print(f"{name}: no response", file=sys.stderr)
        return False
    outcome = response.reason.name if response.completion is None else response.completion.name
    if outcome != "SUCCESS":
        print(f"{name}: {outcome} {response.detail}".rstrip(), file=sys.stderr)
        return False
    return True


def cmd_catalog(args: argparse.Namespace) -> int:
    async def action(station: GroundStation, files: GroundFiles) -> int:
        if not await _command_ok(station, "imaging.DOWNLINK_CATALOG", {}):
            return 1
        download = await files.wait_download("catalog.json", args.timeout)
        if download is None:
            print("catalog.json did not arrive", file=sys.stderr)
            return 1
        from flightsw.ground.files import load_catalog

        images = await asyncio.to_thread(load_catalog, download.path)
        print(f"{'id':>6} {'utc':>12} {'lat':>7} {'lon':>8} {'full B':>8} pinned")
        for image in images:
            print(f"{image.get('id', '?'):>6} {str(image.get('utc', ''))[:12]:>12} "
                  f"{str(image.get('lat', ''))[:7]:>7} {str(image.get('lon', ''))[:8]:>8} "
                  f"{str(image.get('full_bytes', ''))[:8]:>8} {image.get('pinned', '')}")
        print(f"{len(images)} images; catalog saved as {download.path}")
        return 0

    return asyncio.run(_with_files(args, action))


def cmd_request(args: argparse.Namespace) -> int:
    async def action(station: GroundStation, files: GroundFiles) -> int:
        assignments = {"image_id": str(args.image_id), "product": str(PRODUCT_CODES[args.product])}
        if not await _command_ok(station, "imaging.DOWNLINK_IMAGE", assignments):
            return 1
        name = f"img{args.image_id:06d}_{PRODUCT_NAMES[args.product]}.jpg"
        download = await files.wait_download(name, args.timeout)
        if download is None:
            print(f"{name} did not arrive within {args.timeout:.0f} s (it resumes next time)", file=sys.stderr)
            return 1
        print(f"{download.path} ({download.size} B, sha256 {download.sha256})")
        if download.png is not None:
            print(download.halfblock if sys.stdout.isatty() else download.ascii_art)
        return 0

    return asyncio.run(_with_files(args, action))


def cmd_upload(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"flightsw ground upload: no such file {args.file}", file=sys.stderr)
        return 2

    async def action(station: GroundStation, files: GroundFiles) -> int:
        transfer = await files.upload(args.file, args.dest)
        outcome = await files.wait_upload(transfer, args.timeout)
        if outcome is None or not outcome.success:
            why = outcome.condition if outcome is not None else "timed out (it resumes next time)"
            print(f"upload of {args.file}: {why}", file=sys.stderr)
            return 1
        print(f"uploaded {args.file} as {args.dest or args.file.name} (transfer {transfer}); "
              "it waits in the onboard quarantine")
        return 0

    return asyncio.run(_with_files(args, action))
