"""Mission configuration: a TOML file validated in full at start-up.

Every key is checked (type, range, allowed values) and unknown keys are errors, because a typo
in a flight config must not silently fall back to a default. The first problem found is reported
as one message naming the key path, e.g. ``devices[2].address: expected an integer, got 'x40'``.
"""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal


class ConfigError(ValueError):
    """An invalid configuration; the message names the file, the key and the problem."""


def _check(value: Any, tp: Any, path: str, meta: dict[str, Any]) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check(value, option, path, meta)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        (inner,) = typing.get_args(tp)
        return [_check(v, inner, f"{path}[{i}]", {}) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__}")
        _, inner = typing.get_args(tp)
        return {k: _check(v, inner, f"{path}.{k}", {}) for k, v in value.items()}
    if is_dataclass(tp):
        return build(tp, value, path)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        if "pattern" in meta:
            import re

            if not re.fullmatch(meta["pattern"], value):
                raise ConfigError(f"{path}: {value!r} does not match {meta['pattern']}")
        return value
    if "range" in meta:
        lo, hi = meta["range"]
        if not (lo <= value <= hi):
            raise ConfigError(f"{path}: {value} outside [{lo}, {hi}]")
    return value


def build(cls: Any, raw: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from a TOML table, checking every key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'config'}: expected a table, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    extra_field = next((f for f in fields(cls) if f.metadata.get("extra")), None)
    kwargs: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in raw.items():
        f = known.get(key)
        if f is None or f.metadata.get("extra"):
            if extra_field is not None:
                extras[key] = value
                continue
            allowed = ", ".join(sorted(known))
            raise ConfigError(f"{path + '.' if path else ''}{key}: unknown key (allowed: {allowed})")
        kwargs[key] = _check(value, hints[key], f"{path + '.' if path else ''}{key}", dict(f.metadata))
    for f in fields(cls):
        if f.metadata.get("extra"):
            kwargs[f.name] = extras
        elif f.name not in kwargs and f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{path + '.' if path else ''}{f.name}: required key missing")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(path)
    return obj


def _range(lo: float, hi: float, **kw: Any) -> Any:
    return field(metadata={"range": (lo, hi)}, **kw)


@dataclass
class MissionSection:
    name: str = "FSW-1"
    spacecraft_id: int = _range(0, 1023, default=42)


@dataclass
class StorageSection:
    data_dir: str = "var/flightsw"
    records_max_bytes: int = _range(64 * 1024, 1 << 34, default=64 << 20)
    records_segment_bytes: int = _range(4096, 1 << 30, default=1 << 20)
    records_sync_seconds: float = _range(0.1, 3600.0, default=10.0)
    fsync: bool = True

    def validate(self, path: str) -> None:
        if self.records_segment_bytes > self.records_max_bytes:
            raise ConfigError(f"{path}.records_segment_bytes: larger than records_max_bytes")


@dataclass
class SchedulerSection:
    rate_groups: dict[str, float] = field(default_factory=lambda: {"fast": 10.0, "slow": 1.0, "background": 0.1})

    def validate(self, path: str) -> None:
        for name, hz in self.rate_groups.items():
            if not 0.0001 <= hz <= 100.0:
                raise ConfigError(f"{path}.rate_groups.{name}: {hz} Hz outside [0.0001, 100]")
        for required in ("fast", "slow", "background"):
            if required not in self.rate_groups:
                raise ConfigError(f"{path}.rate_groups: missing the {required!r} group")


@dataclass
class WatchdogSection:
    backend: Literal["none", "sim", "systemd", "device", "systemd+device"] = "none"
    device: str = "/dev/watchdog"
    check_period: float = _range(0.1, 60.0, default=1.0)


@dataclass
class TimeSection:
    utc_source: Literal["ground", "system"] = "ground"


@dataclass
class PacketSection:
    name: str = field(metadata={"pattern": r"[A-Za-z_][A-Za-z0-9_]*"})
    rate_hz: float = _range(0.0001, 10.0)
    channels: list[str] = field(default_factory=list)


@dataclass
class TelemetrySection:
    packets: list[PacketSection] = field(default_factory=list)


@dataclass
class DeviceConfig:
    """One hardware device; keys other than these are the device kind's own options."""

    name: str = field(metadata={"pattern": r"[a-z_][a-z0-9_]*"})
    kind: str
    backend: Literal["real", "sim"] = "sim"
    options: dict[str, Any] = field(default_factory=dict, metadata={"extra": True})


# Top-level tables owned and validated by subsystems outside the core.
SUBSYSTEM_SECTIONS = {"link", "radio", "beacon", "imaging", "filetransfer", "sim", "environment",
                      "housekeeping", "modes", "fdir", "update", "ground"}


@dataclass
class MissionConfig:
    mission: MissionSection = field(default_factory=MissionSection)
    storage: StorageSection = field(default_factory=StorageSection)
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)
    watchdog: WatchdogSection = field(default_factory=WatchdogSection)
    time: TimeSection = field(default_factory=TimeSection)
    telemetry: TelemetrySection = field(default_factory=TelemetrySection)
    devices: list[DeviceConfig] = field(default_factory=list)
    # Sections owned by other subsystems (link, imaging, sim...) are kept as raw tables and
    # validated by their owners at build time.
    sections: dict[str, Any] = field(default_factory=dict, metadata={"extra": True})
    source: str = "<defaults>"

    def validate(self, path: str) -> None:
        for key in self.sections:
            if key not in SUBSYSTEM_SECTIONS:
                allowed = ", ".join(sorted({f.name for f in fields(self)} - {"sections", "source"} | SUBSYSTEM_SECTIONS))
                raise ConfigError(f"{key}: unknown section (allowed: {allowed})")
        seen: set[str] = set()
        for i, dev in enumerate(self.devices):
            if dev.name in seen:
                raise ConfigError(f"devices[{i}].name: duplicate device name {dev.name!r}")
            seen.add(dev.name)

    @property
    def data_dir(self) -> Path:
        """Where state, parameters and records live (a relative path is relative to the CWD)."""
        return Path(self.storage.data_dir)

    def section(self, name: str) -> dict[str, Any]:
        value = self.sections.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.source}: [{name}] must be a table")
        return value


def section_number(section: dict[str, Any], key: str, default: float, lo: float, hi: float, where: str,
                   integer: bool = False) -> float:
    """A number from a subsystem's raw section, checked, or a ConfigError naming ``where.key``."""
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ConfigError(f"{where}.{key}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    if not lo <= value <= hi:  # NaN fails this too
        raise ConfigError(f"{where}.{key}: {value} outside [{lo:g}, {hi:g}]")
    return value


def loads(text: str, source: str = "<string>") -> MissionConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        cfg: MissionConfig = build(MissionConfig, raw)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    cfg.source = source
    return cfg


def load(path: str | Path) -> MissionConfig:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror or exc}") from exc
    return loads(text, str(p))
