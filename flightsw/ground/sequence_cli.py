"""`flightsw ground sequence FILE [--start WHEN] [--check | --inline]`: check and uplink a
sequence file (the format of ``flightsw.components.seqfile``).

The file is checked on the ground with the same parser the satellite uses, against the flight
dictionary, so a bad line is found before anything is sent. Then either the whole text goes up
inline in one ``seq.STORE_SEQUENCE`` command (``--inline``, comments stripped, at most 200 bytes)
or the file is uploaded into the onboard quarantine (CFDP) and stored by ``seq.LOAD_SEQUENCE``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flightsw.cli import default_sim_config, load_config_or_exit
from flightsw.components.seqfile import SequenceError, parse_offset, parse_sequence, parse_utc
from flightsw.core.component import check_arguments

if TYPE_CHECKING:  # the ground stack is imported by the commands that use it: `flightsw run` builds
    # this parser too, and must not pay for the ground station's imports at start-up
    from flightsw.ground.dictionary import GroundDictionary
    from flightsw.ground.files import GroundFiles
    from flightsw.ground.station import GroundStation

INLINE_MAX = 200  # seq.STORE_SEQUENCE text argument


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser("sequence", help="check a sequence file and uplink it")
    parser.add_argument("file", type=Path)
    parser.add_argument("--start", default="now",
                        help="start of the relative (+OFFSET) steps: now, +SECONDS from now, "
                             "or ISO UTC (default: now, when the satellite stores it)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only check the file against the dictionary")
    mode.add_argument("--inline", action="store_true",
                      help="send the text in one STORE_SEQUENCE command instead of uploading the file")
    parser.add_argument("--downloads", default="downloads", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the upload")
    parser.set_defaults(func=cmd_sequence)


def dictionary_check(dictionary: GroundDictionary) -> Any:
    """The command check of the sequence parser, from the ground's dictionary."""

    def check(name: str, args: list[Any]) -> None:
        info = dictionary.commands.get(name)
        if info is None:
            raise ValueError(f"no command {name!r}")
        check_arguments(info.args, args)

    return check


def start_utc(text: str, now: float) -> int:
    """The ``start_utc`` argument: 0 (now, on board), now + offset, or an ISO time."""
    if text == "now":
        return 0
    if text.startswith("+"):
        return int(now + parse_offset(text))
    return int(parse_utc(text))


def compact(text: str) -> str:
    """The sequence without comments and blank lines (what goes up inline)."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _offline_dictionary(args: argparse.Namespace) -> GroundDictionary:
    from flightsw.ground.dictionary import GroundDictionary

    if args.dictionary:
        return GroundDictionary.load(args.dictionary)
    from flightsw.cli_run import dictionary_text

    config = load_config_or_exit(args.config or default_sim_config(), check=False)
    return GroundDictionary.from_json(dictionary_text(config, "json"))


def cmd_sequence(args: argparse.Namespace) -> int:
    import time

    where = f"flightsw ground sequence: {args.file}"
    try:
        text = args.file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return 2
    try:
        start = start_utc(args.start, time.time())
        sequence = parse_sequence(text, args.file.stem[:24], dictionary_check(_offline_dictionary(args)))
    except (SequenceError, ValueError) as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{sequence.name}: {len(sequence.steps)} step(s) OK")
        return 0
    body = compact(text)
    if args.inline and len(body.encode()) > INLINE_MAX:
        print(f"{where}: {len(body.encode())} bytes without comments, more than the {INLINE_MAX} of an "
              "inline sequence; upload it (without --inline)", file=sys.stderr)
        return 2
    return asyncio.run(_uplink(args, sequence.name, body, start))


async def _uplink(args: argparse.Namespace, name: str, body: str, start: int) -> int:
    from flightsw.ground.connect import close_station, open_station
    from flightsw.ground.files_cli import _command_ok, _with_files

    if args.inline:
        station = await open_station(args)
        receiver = asyncio.create_task(station.run())
        try:
            ok = await _command_ok(station, "seq.STORE_SEQUENCE", {"text": body, "start_utc": str(start)})
        finally:
            await close_station(station, [receiver])
        if ok:
            print(f"sequence {name} stored on board")
        return 0 if ok else 1

    import time

    # a name of its own: an existing name in the quarantine would get the transaction id added,
    # and LOAD_SEQUENCE would then find the older file under the name it was given
    dest = f"{name[:24]}_{time.time_ns():x}.seq"

    async def action(station: GroundStation, files: GroundFiles) -> int:
        transfer = await files.upload(args.file, dest)
        outcome = await files.wait_upload(transfer, args.timeout)
        if outcome is None or not outcome.success:
            why = outcome.condition if outcome is not None else "timed out (it resumes next time)"
            print(f"upload of {args.file}: {why}", file=sys.stderr)
            return 1
        if not await _command_ok(station, "seq.LOAD_SEQUENCE", {"file": dest, "start_utc": str(start)}):
            return 1
        print(f"sequence {name} uploaded as {dest} and stored on board")
        return 0

    return await _with_files(args, action)
