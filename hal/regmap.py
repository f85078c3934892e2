"""Register maps declared once as data, shared by a driver and its simulated twin.

Why: the driver and the simulated part must agree bit for bit on addresses, widths, byte order
and field positions. Declaring them once (in the spirit of adafruit_register) means a typo shows
up as a failing driver-vs-sim test instead of a part that only works in simulation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

ByteOrder = Literal["big", "little"]
Access = Literal["r", "w", "rw"]


class RegisterMapError(ValueError):
    """A register or field name/value that the map does not allow."""


@dataclass(frozen=True)
class Field:
    """A bit field inside a register: `width` bits starting at bit `shift` (LSB = 0)."""

    name: str
    shift: int
    width: int = 1
    doc: str = ""
    # derived once: drivers and simulated parts use fields on every transaction
    mask: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", ((1 << self.width) - 1) << self.shift)

    def get(self, raw: int) -> int:
        return (raw & self.mask) >> self.shift

    def put(self, raw: int, value: int) -> int:
        if not 0 <= value < (1 << self.width):
            raise RegisterMapError(
                f"value {value} does not fit field {self.name} ({self.width} bits)"
            )
        return (raw & ~self.mask) | (value << self.shift)


@dataclass(frozen=True)
class Register:
    """One register: address, size in bytes, byte order on the wire, reset value, fields."""

    name: str
    address: int
    size: int = 1
    byteorder: ByteOrder = "big"
    access: Access = "rw"
    reset: int = 0
    signed: bool = False
    fields: tuple[Field, ...] = ()
    doc: str = ""
    _by_name: dict[str, Field] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.size not in (1, 2):
            raise RegisterMapError(f"register {self.name}: size must be 1 or 2 bytes")
        if not 0 <= self.address <= 0xFF:
            raise RegisterMapError(f"register {self.name}: address {self.address:#x} out of range")
        for f in self.fields:
            if f.name in self._by_name:
                raise RegisterMapError(f"register {self.name}: duplicate field {f.name!r}")
            self._by_name[f.name] = f

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise RegisterMapError(f"register {self.name} has no field {name!r}") from None

    def encode(self, value: int) -> bytes:
        """Unsigned register value -> bytes as they travel on the bus."""
        if not 0 <= value < (1 << (8 * self.size)):
            raise RegisterMapError(f"value {value:#x} does not fit register {self.name}")
        return value.to_bytes(self.size, self.byteorder)

    def decode(self, data: bytes | list[int]) -> int:
        """Bytes from the bus -> unsigned register value."""
        raw = bytes(data)
        if len(raw) != self.size:
            raise RegisterMapError(f"register {self.name}: expected {self.size} bytes, got {len(raw)}")
        return int.from_bytes(raw, self.byteorder)

    def to_signed(self, value: int) -> int:
        bits = 8 * self.size
        return value - (1 << bits) if value & (1 << (bits - 1)) else value


@dataclass(frozen=True)
class RegisterMap:
    """All registers of one part, plus its identity facts and I2C addresses."""

    part: str
    addresses: tuple[int, ...]
    registers: tuple[Register, ...]
    auto_increment: bool = True
    doc: str = ""
    _by_name: dict[str, Register] = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_address: dict[int, Register] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for reg in self.registers:
            if reg.address in self._by_address:
                raise RegisterMapError(f"{self.part}: duplicate register address {reg.address:#x}")
            self._by_address[reg.address] = reg
            self._by_name[reg.name] = reg

    def __getitem__(self, name: str) -> Register:
        try:
            return self._by_name[name]
        except KeyError:
            raise RegisterMapError(f"{self.part} has no register {name!r}") from None

    def at(self, address: int) -> Register | None:
        return self._by_address.get(address)

    def names(self) -> Iterable[str]:
        return self._by_name.keys()


def fields_value(reg: Register, **values: int) -> int:
    """Compose a register value from named field values (unnamed bits zero)."""
    raw = 0
    for name, value in values.items():
        raw = reg.field(name).put(raw, value)
    return raw
