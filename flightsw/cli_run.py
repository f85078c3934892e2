"""`flightsw run`, `flightsw sim` and `flightsw dict`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from flightsw.app import Satellite
from hal.watchdog import NullWatchdog
from flightsw.cli import default_sim_config, load_config_or_exit

log = logging.getLogger("flightsw.cli")


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the flight software (on the board, under systemd)")
    run.add_argument("--config", required=True, help="mission config (TOML)")
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    run.set_defaults(func=cmd_run)

    sim = sub.add_parser("sim", help="run the satellite on simulated hardware")
    sim.add_argument("--config", default=None, help="mission config (default: deploy/sim.toml)")
    sim.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    sim.add_argument("--data-dir", default=None, help="override storage.data_dir")
    sim.set_defaults(func=cmd_sim)

    dct = sub.add_parser("dict", help="print the command/telemetry dictionary")
    dct.add_argument("--config", default=None, help="mission config (default: deploy/sim.toml)")
    dct.add_argument("--format", choices=["json", "ksy"], default="json", help="ksy: the beacon layout (Kaitai Struct)")
    dct.add_argument("--output", "-o", default=None, help="write to this file instead of stdout")
    dct.set_defaults(func=cmd_dict)


def _log_packets(sat: Satellite) -> None:
    def sink(packet, body: bytes) -> None:  # type: ignore[no-untyped-def]
        log.info("housekeeping packet %s (%d bytes)", packet.name, len(body))

    sat.telemetry.add_packet_sink(sink)


async def _run(sat: Satellite, duration: float | None) -> int:
    reason = await sat.run(duration=duration, install_signals=True)
    log.info("flight software stopped (%s)", reason)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config)
    sat = Satellite(config)
    _log_packets(sat)
    return asyncio.run(_run(sat, args.duration))


def cmd_sim(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config or default_sim_config())
    if args.data_dir:
        config.storage.data_dir = args.data_dir
    sat = Satellite(config)
    _log_packets(sat)
    return asyncio.run(_run(sat, args.duration))


def cmd_dict(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config or default_sim_config())
    text = dictionary_text(config, args.format)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


def dictionary_text(config, fmt: str) -> str:  # type: ignore[no-untyped-def]
    """Build the satellite without running it (stores in a scratch directory) and export."""
    if fmt == "ksy":
        from flightsw.link.beacon import ksy

        return ksy()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        config.storage.data_dir = tmp
        sat = Satellite(config, watchdog=NullWatchdog(), offline=True)
        d = sat.finalize()
        sat.workers.shutdown()
        return d.to_json()
