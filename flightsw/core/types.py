"""Wire data types shared by telemetry, events, command arguments and parameters.

One small closed set, so the dictionary can be exported to any ground tool (JSON, F Prime, Kaitai)
and every value can be validated before it is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class WrongType(ValueError):
    """A value of the wrong kind for its declared type (a string for a number, NaN, too long)."""


class OutOfRange(ValueError):
    """A value of the right kind outside what its type or declared range allows."""


@dataclass(frozen=True)
class DataType:
    """A scalar wire type: name as exported, struct code for fixed layouts, numeric bounds."""

    name: str
    struct_code: str
    kind: str  # "int", "float", "bool", "str"
    min: float | None = None
    max: float | None = None
    max_length: int = 0  # strings only

    def validate(self, value: Any) -> Any:
        """Return the value coerced to this type, or raise WrongType / OutOfRange naming the problem."""
        # Fast paths for what telemetry writes ~100 times a second: an in-range int, a float
        # that is not NaN. Anything else takes the full checks below.
        kind = self.kind
        if kind == "float":
            if type(value) is float and value == value:
                return value
        elif kind == "int":
            if type(value) is int and self.min <= value <= self.max:  # type: ignore[operator]
                return value
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise WrongType(f"expected a boolean, got {type(value).__name__}")
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise WrongType(f"expected an integer ({self.name}), got {type(value).__name__}")
            if not (self.min <= value <= self.max):  # type: ignore[operator]
                raise OutOfRange(f"{value} does not fit {self.name}")
            return value
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise WrongType(f"expected a number ({self.name}), got {type(value).__name__}")
            value = float(value)
            if math.isnan(value):
                raise WrongType("NaN is not a valid value")
            return value
        if self.kind == "str":
            if not isinstance(value, str):
                raise WrongType(f"expected a string, got {type(value).__name__}")
            if len(value.encode()) > self.max_length:
                raise WrongType(f"string longer than {self.max_length} bytes")
            return value
        raise AssertionError(self.kind)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "str":
            out["max_length"] = self.max_length
        return out


def _int(name: str, code: str, bits: int, signed: bool) -> DataType:
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    return DataType(name, code, "int", lo, hi)


U8 = _int("U8", "B", 8, False)
U16 = _int("U16", "H", 16, False)
U32 = _int("U32", "I", 32, False)
U64 = _int("U64", "Q", 64, False)
I8 = _int("I8", "b", 8, True)
I16 = _int("I16", "h", 16, True)
I32 = _int("I32", "i", 32, True)
I64 = _int("I64", "q", 64, True)
F32 = DataType("F32", "f", "float")
F64 = DataType("F64", "d", "float")
BOOL = DataType("BOOL", "?", "bool")


def STRING(max_length: int = 40) -> DataType:  # noqa: N802 - reads like the other type names
    """A UTF-8 string of at most ``max_length`` bytes."""
    return DataType(f"STRING{max_length}", "", "str", max_length=max_length)


BY_NAME: dict[str, DataType] = {t.name: t for t in (U8, U16, U32, U64, I8, I16, I32, I64, F32, F64, BOOL)}


def type_from_name(name: str) -> DataType:
    """Inverse of ``DataType.name`` (used by the ground when it loads an exported dictionary)."""
    if name.startswith("STRING"):
        return STRING(int(name[6:] or 40))
    return BY_NAME[name]
