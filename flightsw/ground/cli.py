"""`flightsw ground`: live view (default), `send NAME ARG=VALUE ...`, `export --since ...
[--what values|events|commands|all] [--csv|--json]`, `gaps`, and the file (`files_cli`) and
sequence (`sequence_cli`) commands. The station options (``--kiss``, ``--db``, ...) go before or
after the subcommand."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from flightsw.components.seqfile import parse_utc
from flightsw.ground.files_cli import register as register_files
from flightsw.ground.records_cli import register as register_records
from flightsw.ground.sequence_cli import register as register_sequence

# The ground stack (station, archive, decoder, CFDP) is imported by the commands that use it:
# `flightsw run` builds this parser too, and must not pay for those imports at start-up.
if TYPE_CHECKING:
    from flightsw.ground.satnogs import ParsedExport

EXPORT_TABLES = ("values", "events", "commands")  # flightsw.ground.export.TABLES (tests check they agree)

DEFAULT_DB = "ground.sqlite3"


def _station_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The options every ground command shares. On the subcommands they have no defaults
    (argparse.SUPPRESS), so a value given before the subcommand is kept and one given after it
    wins: `ground --kiss H:P send X` and `ground send X --kiss H:P` mean the same."""
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--config", default=default(None), help="mission config (default: deploy/sim.toml)")
    parser.add_argument("--dictionary", default=default(None), help="dictionary JSON from `flightsw dict` "
                        "(default: built from the config)")
    link = parser.add_mutually_exclusive_group()
    link.add_argument("--kiss", default=default("127.0.0.1:8001"), metavar="HOST:PORT", help="KISS TNC over TCP")
    link.add_argument("--serial", default=default(None), metavar="DEV", help="KISS TNC on a serial port")
    parser.add_argument("--baud", type=int, default=default(9600), help="serial TNC baud rate")
    parser.add_argument("--db", default=default(DEFAULT_DB), help="SQLite archive (default: ./ground.sqlite3)")
    parser.add_argument("--key-file", default=default(None),
                        help="uplink key file (default: the config's link.key_file; give it on a ground computer)")
    parser.add_argument("--key-id", type=int, default=default(0), help="active uplink key id")
    parser.add_argument("--callsign", default=default(None), help="ground callsign (default: link.ground_callsign)")
    parser.add_argument("--site", default=default(None),
                        help="this station's name in the archive, when several stations share it (default: the callsign)")


def register(sub: argparse._SubParsersAction) -> None:
    ground = sub.add_parser("ground", help="ground station: live view, commanding, archive export")
    _station_options(ground, defaults=True)
    ground.add_argument("--gds", default=None, metavar="HOST:PORT",
                        help="no live view: bridge to an F Prime GDS started with --no-app --communication-selection "
                             "ip --framing-selection fprime (docs/gds.md)")
    ground.set_defaults(func=cmd_live)
    actions = ground.add_subparsers(dest="ground_command")
    send = actions.add_parser("send", help="send one authenticated command and wait for its result")
    send.add_argument("name", help="command name, e.g. tx.TX_OFF")
    send.add_argument("assignments", nargs="*", metavar="ARG=VALUE")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per attempt")
    send.add_argument("--retries", type=int, default=2, help="re-sends of the same packet")
    send.set_defaults(func=cmd_send)
    export = actions.add_parser("export", help="export archived values, events or the command history")
    export.add_argument("--since", required=True, help="ISO time (UTC if no zone) or seconds ago, e.g. 3600")
    export.add_argument("--what", choices=[*EXPORT_TABLES, "all"], default="values",
                        help="values (default), events, commands (sent, with verdict and completion), "
                             "or all (JSON only)")
    fmt = export.add_mutually_exclusive_group()
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv", help="CSV on stdout (default)")
    fmt.add_argument("--json", dest="format", action="store_const", const="json", help="JSON on stdout")
    export.set_defaults(func=cmd_export, format="csv")
    satnogs = actions.add_parser("import-satnogs", help="archive the frames of a SatNOGS DB telemetry export "
                                 "(JSON, or timestamp|hexframe lines), tagged with the SatNOGS observer")
    satnogs.add_argument("file", help="the export (JSON list / page with 'results', or timestamp|hexframe lines)")
    satnogs.set_defaults(func=cmd_import_satnogs)
    passes = actions.add_parser("passes", help="the next passes over one or more stations (AOS, TCA, LOS, max elevation)")
    passes.add_argument("--tle", required=True, help="TLE file (two element lines, optionally a name line)")
    passes.add_argument("--station", action="append", required=True, metavar="NAME[=LAT,LON[,ALT_M[,MASK_DEG]]]",
                        help="a station of the station file, or one defined inline (repeat for several)")
    passes.add_argument("--stations", default=None, metavar="FILE",
                        help="station file ([[stations]] name, lat_deg, lon_deg, alt_m, min_elevation_deg; "
                             "default: the packaged flightsw/ground/stations.toml)")
    passes.add_argument("--days", type=float, default=1.0, help="how far ahead (default 1, at most 30)")
    passes.add_argument("--start", default=None, help="ISO time (UTC if no zone) to start from (default: now)")
    passes.set_defaults(func=cmd_passes)
    sat_yaml = actions.add_parser("satyaml", help="the SatYAML file for gr-satellites (name, bit rate, framing "
                                  "from the mission config) on stdout")
    sat_yaml.add_argument("--norad", type=int, default=None, help="NORAD catalogue number (default: placeholder 99999)")
    sat_yaml.add_argument("--frequency", type=float, default=None, help="downlink frequency in Hz (default: placeholder 437e6)")
    sat_yaml.set_defaults(func=cmd_satyaml)
    register_files(actions)
    register_sequence(actions)
    register_records(actions)
    for action in actions.choices.values():
        _station_options(action, defaults=False)


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
    from flightsw.ground.connect import close_station, open_station
    from flightsw.ground.files_cli import optional_files
    from flightsw.ground.live import run_live

    station = await open_station(args)
    files = optional_files(args, station)
    files_task = asyncio.create_task(files.run()) if files is not None else None
    try:
        await run_live(station)
    finally:
        await close_station(station, [files_task] if files_task is not None else [], files)
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    if args.gds is not None:
        from flightsw.ground.gds_cli import run_gds

        return asyncio.run(run_gds(args))
    return asyncio.run(_live(args))


async def _send(args: argparse.Namespace) -> int:
    from flightsw.ground.connect import close_station, open_station
    from flightsw.ground.dictionary import CommandArgumentError
    from flightsw.ground.live import parse_assignments
    from flightsw.ground.station import CounterExhausted

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
        await close_station(station, [receiver])
    if response is None:
        print(f"{args.name}: no response after {args.retries + 1} attempts", file=sys.stderr)
        return 1
    outcome = response.reason.name if response.completion is None else response.completion.name
    print(f"{response.name} #{response.seq}: {outcome} {response.detail}".rstrip())
    return 0 if outcome == "SUCCESS" else 1


def cmd_send(args: argparse.Namespace) -> int:
    return asyncio.run(_send(args))


def cmd_export(args: argparse.Namespace) -> int:
    from flightsw.ground.archive import Archive
    from flightsw.ground.export import export

    if not Path(args.db).exists():
        print(f"flightsw ground export: no archive {args.db}", file=sys.stderr)
        return 2
    since = _since(args.since)
    archive = Archive(args.db)
    try:
        text = export(archive, args.what, since, args.format)
    except ValueError as exc:
        print(f"flightsw ground export: {exc}", file=sys.stderr)
        return 2
    finally:
        archive.close()
    sys.stdout.write(text)
    return 0


MAX_PROBLEMS_SHOWN = 20
IMPORT = "flightsw ground import-satnogs"


def _read_satnogs(path: Path) -> ParsedExport | str:
    """The export's frames and problems, or the one line saying why the file is unusable."""
    from flightsw.ground.satnogs import MAX_FILE_BYTES, SatnogsFormatError, parse_export

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB; split it"
        return parse_export(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except SatnogsFormatError as exc:
        return f"{path}: {exc}"


async def _import_satnogs(args: argparse.Namespace, path: Path, parsed: ParsedExport) -> int:
    from flightsw.ground.connect import open_archive_station

    station = await open_archive_station(args)
    stats = station.stats
    new = 0
    try:
        for frame in parsed.frames:
            new += await station.handle_frame(frame.raw, rx_time=frame.utc, site=frame.site)
        await station.archive.call(lambda: None)  # the record ingest's queued writes
    finally:
        await asyncio.to_thread(station.archive.close)
    print(f"{path}: {len(parsed.frames)} frames read, {new} new in the archive, {stats.frames_duplicate} "
          f"already there; {stats.frames_foreign} from other stations, {stats.frames_bad} not AX.25, "
          f"{stats.packets_bad} packets that do not decode; {len(parsed.problems)} malformed entries")
    for problem in parsed.problems[:MAX_PROBLEMS_SHOWN]:
        print(f"{IMPORT}: {path}: {problem}", file=sys.stderr)
    if len(parsed.problems) > MAX_PROBLEMS_SHOWN:
        print(f"{IMPORT}: {path}: ... and {len(parsed.problems) - MAX_PROBLEMS_SHOWN} more", file=sys.stderr)
    return 1 if parsed.problems else 0


def cmd_import_satnogs(args: argparse.Namespace) -> int:
    """Exit 0: every entry archived (or already there); 1: some entries malformed (named on
    stderr; the others archived); 2: the file is unusable."""
    path = Path(args.file)
    parsed = _read_satnogs(path)
    if isinstance(parsed, str):
        print(f"{IMPORT}: {parsed}", file=sys.stderr)
        return 2
    return asyncio.run(_import_satnogs(args, path, parsed))


def cmd_passes(args: argparse.Namespace) -> int:
    from flightsw.ground import passes

    try:
        known = passes.load_stations(Path(args.stations) if args.stations else None)
        stations = [passes.resolve_station(spec, known) for spec in args.station]
        try:
            tle = passes.read_tle(Path(args.tle).read_text(errors="replace"))
        except OSError as exc:
            raise passes.PassInputError(f"cannot read TLE {args.tle}: {exc.strerror or exc}") from None
        try:
            start = dt.datetime.now(dt.UTC).timestamp() if args.start is None else parse_utc(args.start)
        except ValueError:
            raise passes.PassInputError(f"--start {args.start!r} is not an ISO time") from None
        found = passes.predict(tle, stations, start, args.days)
    except passes.PassInputError as exc:
        print(f"flightsw ground passes: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(passes.render(found, stations, args.days))
    return 0


def cmd_satyaml(args: argparse.Namespace) -> int:
    from flightsw.cli import default_sim_config, load_config_or_exit
    from flightsw.ground import satyaml

    config = load_config_or_exit(args.config or default_sim_config(), check=False)
    try:
        text = satyaml.satyaml(config, args.norad if args.norad is not None else satyaml.PLACEHOLDER_NORAD,
                               args.frequency if args.frequency is not None else satyaml.PLACEHOLDER_FREQUENCY_HZ)
    except ValueError as exc:
        print(f"flightsw ground satyaml: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
