"""`flightsw check-hardware --config FILE`: probe every configured device and print a table.

The first thing a bench team runs: for each I2C sensor, which bus/address it was looked for at,
the identity it answered with, one reading in SI units, and a status; then the GPIO lines.
Exit status 0 when every sensor was found and read, 1 otherwise, so scripts can gate on it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import TextIO

from flightsw.components.hardware import HardwareSet, SensorDevice, build_hardware_set
from flightsw.core.enums import DeviceStatus
from hal.drivers.base import DeviceNotFound

PROBE_BUDGET_S = 5.0  # per device: probe + configure + one reading
SELF_TEST_BUDGET_S = 30.0  # ST procedures average tens of samples with and without stimulus


@dataclass
class CheckRow:
    device: str
    kind: str
    backend: str
    where: str
    identity: str
    sample: str
    status: DeviceStatus | None = None  # None until probed
    detail: str = ""  # what went wrong, for the statuses that are not simply FOUND

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status.ok

    @property
    def status_text(self) -> str:
        text = "" if self.status is None else self.status.value
        return f"{text}: {self.detail}" if self.detail else text


def _format_sample(sensor: SensorDevice, values: dict[str, float]) -> str:
    units = sensor.driver.units
    return ", ".join(f"{k}={v:.4g} {units.get(k, '')}".rstrip() for k, v in values.items())


async def check_sensor(sensor: SensorDevice, self_test: bool = False) -> CheckRow:
    row = CheckRow(sensor.name, sensor.kind, sensor.backend, sensor.where, "-", "-")
    driver = sensor.driver
    try:
        async with asyncio.timeout(SELF_TEST_BUDGET_S if self_test else PROBE_BUDGET_S):
            row.identity = await driver.probe()
            await driver.configure()
            reading = await driver.read()
            row.sample = _format_sample(sensor, dict(reading.values))
            if reading.valid:
                row.status = DeviceStatus.FOUND
            else:
                row.status, row.detail = DeviceStatus.READING_INVALID, reading.reason
            if self_test and driver.has_self_test:
                result = await driver.self_test()
                if result.passed:
                    row.status, row.detail = DeviceStatus.SELF_TEST_PASSED, ""
                else:
                    row.status, row.detail = DeviceStatus.SELF_TEST_FAILED, result.detail
    except DeviceNotFound as exc:
        row.status, row.detail = DeviceStatus.NOT_FOUND, str(exc)
    except TimeoutError:
        row.status, row.detail = DeviceStatus.TIMEOUT, ""
    except OSError as exc:
        row.status, row.detail = DeviceStatus.ERROR, str(exc)
    return row


async def check_all(hardware: HardwareSet, self_test: bool = False) -> list[CheckRow]:
    hardware.bind_loop(asyncio.get_running_loop().time)
    # Sensors on one bus are serialised by the bus thread anyway; buses run in parallel.
    return list(await asyncio.gather(*(check_sensor(s, self_test) for s in hardware.sensors)))


def render(rows: list[CheckRow], hardware: HardwareSet, out: TextIO) -> None:
    headers = ("device", "kind", "backend", "bus/address", "identity", "sample reading", "status")
    table = [headers] + [(r.device, r.kind, r.backend, r.where, r.identity, r.sample,
                          r.status_text + (" (no answer within the probe budget)"
                                           if r.status is DeviceStatus.TIMEOUT else ""))
                         for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for index, row in enumerate(table):
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                  .rstrip() + "\n")
        if index == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    lines = [(o.name, "out", o.line, "on" if o.is_on else "off")
             for o in hardware.gpio.outputs.values()]
    lines += [(i.name, "in", i.line, "active" if i.read() else "inactive")
              for i in hardware.gpio.inputs.values()]
    if lines:
        out.write("\nGPIO lines:\n")
        for name, direction, line, state in lines:
            out.write(f"  {name:<22} {direction:<4} line {line:<3} {state}\n")
    found = sum(r.ok for r in rows)
    out.write(f"\n{found}/{len(rows)} sensors found\n")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-hardware", help="probe every configured device and print a table")
    p.add_argument("--config", required=True, help="mission config (TOML)")
    p.add_argument("--self-test", action="store_true", help="also run built-in self-tests")
    p.set_defaults(func=cmd_check_hardware)


def cmd_check_hardware(args: argparse.Namespace) -> int:
    from flightsw.cli import load_config_or_exit

    config = load_config_or_exit(args.config)
    hardware = build_hardware_set(config)

    async def main() -> list[CheckRow]:
        try:
            rows = await check_all(hardware, args.self_test)
            render(rows, hardware, sys.stdout)  # reads GPIO inputs: before the lines are released
            return rows
        finally:
            await hardware.close()

    rows = asyncio.run(main())
    return 0 if all(r.ok for r in rows) else 1
