"""The `flightsw` command line: run, sim, dict, and the subcommands subsystems register.

Each subcommand lives in its own module with ``register(subparsers)``; the modules are listed in
COMMAND_MODULES so a newcomer finds every command here.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

from flightsw.app import StartupError
from flightsw.config import ConfigError, MissionConfig, load
from flightsw.core.ports import PortError
from flightsw.logs import setup_logging

COMMAND_MODULES: list[str] = [
    "flightsw.cli_run",
    "flightsw.check_hardware",
    "flightsw.ground.cli",
    "flightsw.update",
]


def default_sim_config() -> Path:
    """deploy/sim.toml of the source tree, or of the current directory."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base / "deploy" / "sim.toml"
        if candidate.exists():
            return candidate
    raise ConfigError("no deploy/sim.toml found here or in the source tree; pass --config FILE")


def load_config_or_exit(path: str | Path, check: bool = True) -> MissionConfig:
    """The validated config, or one line on stderr and exit status 2 (nothing written anywhere).

    ``check``: also the checks that need the built components (channel names in telemetry
    packets, beacon, FDIR; the uplink key file), done offline before anything counts a boot.
    """
    try:
        config = load(path)
        if check:
            from flightsw.config_check import check_config

            check_config(config)
        return config
    except ConfigError as exc:
        print(f"flightsw: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flightsw", description="CubeSat flight software framework")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        result = args.func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except ConfigError as exc:
        print(f"flightsw: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except (StartupError, PortError) as exc:
        print(f"flightsw: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
