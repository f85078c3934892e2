"""The persisted state store: boot count, reset reason, mode, flags, counters, time checkpoint.

Loaded once at boot (the boot count is incremented and saved before anything else runs), changed
by components through :meth:`set`, and written atomically (``AtomicStore``) off the event loop.
The reset reason of this boot is what the previous run recorded when it stopped cleanly, or
``UNEXPECTED`` (watchdog, power cut, crash) when it did not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flightsw.core.atomic_store import AtomicStore, LoadResult, SnapshotStore
from flightsw.core.enums import Mode, ResetReason

SCHEMA_VERSION = 1
DEFAULTS: dict[str, Any] = {
    "boot_count": 0,
    "reset_reason": ResetReason.FIRST_BOOT.value,
    "shutdown_reason": None,  # set on a clean stop; None while running
    "mode": Mode.SAFE.value,
    "flags": {},
    "counters": {},
    "time": None,  # the time checkpoint (flightsw.core.timekeeping): MET, UTC, quality
}


class StateStore(SnapshotStore):
    def __init__(self, path: Path, fsync: bool = True) -> None:
        super().__init__(AtomicStore(path, SCHEMA_VERSION, fsync=fsync))
        self.values: dict[str, Any] = dict(DEFAULTS)
        self.load_problems: list[str] = []
        self.loaded_from_defaults = False

    def snapshot(self) -> dict[str, Any]:
        return self.values

    def load(self) -> LoadResult:
        result = self.store.load()
        self.load_problems = result.problems
        if isinstance(result.value, dict):
            merged = dict(DEFAULTS)
            merged.update({k: v for k, v in result.value.items()})
            self.values = merged
        else:
            self.values = dict(DEFAULTS)
            self.loaded_from_defaults = True
        return result

    def boot(self) -> None:
        """Count this boot and derive its reset reason; persisted at once (blocking, at start-up)."""
        previous = self.values.get("shutdown_reason")
        if self.values["boot_count"] == 0 and self.loaded_from_defaults:
            reason = ResetReason.FIRST_BOOT if not self.load_problems else ResetReason.STATE_LOST
        else:
            # what the previous run recorded (a name this version may not know is kept as is)
            reason = ResetReason.parse(previous) or previous if previous else ResetReason.UNEXPECTED
        self.values["boot_count"] = int(self.values["boot_count"]) + 1
        self.values["reset_reason"] = str(reason)
        self.values["shutdown_reason"] = None
        self.save_blocking()

    @property
    def boot_count(self) -> int:
        return int(self.values["boot_count"])

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def flag(self, name: str, default: bool = False) -> bool:
        return bool(self.values["flags"].get(name, default))

    def set_flag(self, name: str, value: bool) -> None:
        self.values["flags"] = {**self.values["flags"], name: bool(value)}
