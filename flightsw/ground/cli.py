"""`flightsw ground`: live view (default), `send NAME ARG=VALUE ...`, `export --since ... --csv`,
`gaps`, and the file (`files_cli`) and sequence (`sequence_cli`) commands."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path

from flightsw.components.seqfile import parse_utc
from flightsw.ground.archive import Archive
from flightsw.ground.connect import open_station
from flightsw.ground.dictionary import CommandArgumentError
from flightsw.ground.files_cli import optional_files
from flightsw.ground.files_cli import register as register_files
from flightsw.ground.live import parse_assignments, run_live
from flightsw.ground.records_cli import register as register_records
from flightsw.ground.sequence_cli import register as register_sequence
from flightsw.ground.station import CounterExhausted

DEFAULT_DB = "ground.sqlite3"


def register(sub: argparse._SubParsersAction) -> None:
    ground = sub.add_parser("ground", help="ground station: live view, commanding, archive export")
    ground.add_argument("--config", default=None, help="mission config (default: deploy/sim.toml)")
    ground.add_argument("--dictionary", default=None, help="dictionary JSON from `flightsw dict` "
                        "(default: built from the config)")
    link = ground.add_mutually_exclusive_group()
    link.add_argument("--kiss", default="127.0.0.1:8001", metavar="HOST:PORT", help="KISS TNC over TCP")
    link.add_argument("--serial", default=None, metavar="DEV", help="KISS TNC on a serial port")
    ground.add_argument("--baud", type=int, default=9600, help="serial TNC baud rate")
    ground.add_argument("--db", default=DEFAULT_DB, help="SQLite archive (default: ./ground.sqlite3)")
    ground.add_argument("--key-file", default=None, help="uplink key file (default: the config's)")
    ground.add_argument("--key-id", type=int, default=0, help="active uplink key id")
    ground.add_argument("--callsign", default=None, help="ground callsign (default: link.ground_callsign)")
    ground.set_defaults(func=cmd_live)
    actions = ground.add_subparsers(dest="ground_command")
    send = actions.add_parser("send", help="send one authenticated command and wait for its result")
    send.add_argument("name", help="command name, e.g. tx.TX_OFF")
    send.add_argument("assignments", nargs="*", metavar="ARG=VALUE")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per attempt")
    send.add_argument("--retries", type=int, default=2, help="re-sends of the same packet")
    send.set_defaults(func=cmd_send)
    export = actions.add_parser("export", help="export archived values")
    export.add_argument("--since", required=True, help="ISO time (UTC if no zone) or seconds ago, e.g. 3600")
    export.add_argument("--csv", action="store_true", required=True, help="CSV on stdout")
    export.set_defaults(func=cmd_export)
    register_files(actions)
    register_sequence(actions)
    register_records(actions)


def _since(text: str) -> float:
    try:
        return dt.datetime.now(dt.UTC).timestamp() - float(text)
    except ValueError:
        pass
    try:
        return parse_utc(text)
    except ValueError:
        raise SystemExit(f"flightsw ground export: --since {text!r} is neither ISO time nor seconds") from None


async def _live(args: argparse.Namespace) -> int:
    station = await open_station(args)
    files = optional_files(args, station)
    files_task = asyncio.create_task(files.run()) if files is not None else None
    try:
        await run_live(station)
    finally:
        if files is not None and files_task is not None:
            files.stop()
            files_task.cancel()
        await station.transport.close()
        await asyncio.to_thread(station.archive.close)
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    return asyncio.run(_live(args))


async def _send(args: argparse.Namespace) -> int:
    try:
        assignments = parse_assignments(args.assignments)
    except ValueError as exc:
        print(f"flightsw ground send: {exc}", file=sys.stderr)
        return 2
    station = await open_station(args)
    receiver = asyncio.create_task(station.run())
    try:
        response = await station.command(args.name, assignments, timeout=args.timeout, retries=args.retries)
    except (CommandArgumentError, CounterExhausted) as exc:
        print(f"flightsw ground send: {exc}", file=sys.stderr)
        return 2
    finally:
        receiver.cancel()
        await station.transport.close()
        await asyncio.to_thread(station.archive.close)
    if response is None:
        print(f"{args.name}: no response after {args.retries + 1} attempts", file=sys.stderr)
        return 1
    outcome = response.reason.name if response.completion is None else response.completion.name
    print(f"{response.name} #{response.seq}: {outcome} {response.detail}".rstrip())
    return 0 if outcome == "SUCCESS" else 1


def cmd_send(args: argparse.Namespace) -> int:
    return asyncio.run(_send(args))


def cmd_export(args: argparse.Namespace) -> int:
    if not Path(args.db).exists():
        print(f"flightsw ground export: no archive {args.db}", file=sys.stderr)
        return 2
    archive = Archive(args.db)
    try:
        sys.stdout.write(archive.call_blocking(archive.export_csv, _since(args.since)))
    finally:
        archive.close()
    return 0
