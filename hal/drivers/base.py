"""What every I2C driver offers: probe, configure, read in SI units, self-test, validity.

Why one base: the housekeeping component, the `check-hardware` tool and the tests handle every
part the same way, so adding a sensor means writing its register map and its conversions only.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hal.i2c import I2CBus
from hal.regmap import RegisterMap


class DeviceNotFound(RuntimeError):
    """The part did not answer, or answered with the wrong identity."""


class ConfigError(ValueError):
    """A device option (shunt value, range, channel list...) the part cannot honour."""


@dataclass(frozen=True)
class Reading:
    """One sample in SI units. `valid` is False when the part flagged the data as unusable
    (overflow, saturation, conversion not finished, lost configuration); `reason` says why."""

    values: Mapping[str, float]
    valid: bool = True
    reason: str = ""


@dataclass(frozen=True)
class SelfTestResult:
    passed: bool
    detail: str
    measured: Mapping[str, float] = field(default_factory=dict)


class RegisterDevice:
    """Register-level access to one part through an I2CBus using its RegisterMap."""

    def __init__(self, bus: I2CBus, address: int, regmap: RegisterMap) -> None:
        if address not in regmap.addresses:
            raise ConfigError(
                f"{regmap.part}: address {address:#04x} is not one of "
                f"{', '.join(f'{a:#04x}' for a in regmap.addresses)}"
            )
        self.bus = bus
        self.address = address
        self.regmap = regmap

    async def read(self, name: str) -> int:
        reg = self.regmap[name]
        if reg.size == 1:
            return await self.bus.read_byte_data(self.address, reg.address)
        return reg.decode(await self.bus.read_block(self.address, reg.address, reg.size))

    async def read_signed(self, name: str) -> int:
        return self.regmap[name].to_signed(await self.read(name))

    async def write(self, name: str, value: int) -> None:
        reg = self.regmap[name]
        if reg.access == "r":
            raise ConfigError(f"{self.regmap.part}: register {name} is read-only")
        if reg.size == 1:
            await self.bus.write_byte_data(self.address, reg.address, value)
        else:
            await self.bus.write_block(self.address, reg.address, reg.encode(value))

    async def read_field(self, reg_name: str, field_name: str) -> int:
        return self.regmap[reg_name].field(field_name).get(await self.read(reg_name))

    async def update(self, reg_name: str, **fields: int) -> int:
        """Read-modify-write named fields; returns the value written."""
        reg = self.regmap[reg_name]
        raw = await self.read(reg_name)
        for fname, value in fields.items():
            raw = reg.field(fname).put(raw, value)
        await self.write(reg_name, raw)
        return raw

    async def read_burst(self, first: str, length: int) -> bytes:
        """Consecutive registers in one transaction (parts with address auto-increment)."""
        return await self.bus.read_block(self.address, self.regmap[first].address, length)


class I2CDriver(ABC):
    """Base for a register-level driver of one I2C part."""

    kind: ClassVar[str]
    regmap: ClassVar[RegisterMap]
    #: channel name -> SI unit, for every value `read()` returns
    units: ClassVar[dict[str, str]]
    has_self_test: ClassVar[bool] = False

    def __init__(self, bus: I2CBus, address: int | None = None, **options: Any) -> None:
        self.dev = RegisterDevice(bus, self.regmap.addresses[0] if address is None else address,
                                  self.regmap)
        self.options = options

    @property
    def address(self) -> int:
        return self.dev.address

    @property
    def bus(self) -> I2CBus:
        return self.dev.bus

    @abstractmethod
    async def probe(self) -> str:
        """Check the part is there and is what we think; return an identity string.
        Raises DeviceNotFound."""

    @abstractmethod
    async def configure(self) -> None:
        """Put the part in its operating configuration (safe to call again after a reset)."""

    @abstractmethod
    async def read(self) -> Reading:
        """One sample in SI units with a validity flag."""

    async def self_test(self) -> SelfTestResult:
        return SelfTestResult(True, f"{self.kind} has no built-in self-test")

    async def _expect_identity(self, register: str, expected: int, label: str) -> str:
        try:
            found = await self.dev.read(register)
        except OSError as exc:
            raise DeviceNotFound(f"{self.kind} at {self.address:#04x}: no answer ({exc})") from exc
        if found != expected:
            raise DeviceNotFound(
                f"{self.kind} at {self.address:#04x}: {register}={found:#x}, expected {expected:#x}"
            )
        return f"{label}={found:#x}"


async def settle(seconds: float) -> None:
    """Wait for a part's conversion/boot time without blocking the loop."""
    await asyncio.sleep(seconds)
