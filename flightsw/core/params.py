"""The parameter store: declared parameters, validated, activated, then stored atomically.

Values are stored by qualified name (``component.parameter``). On load every stored value is
checked against its declaration again: a value that no longer fits (type, range, a removed
parameter) is dropped and the default used, and the problem is reported, never trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flightsw.core.atomic_store import AtomicStore, SnapshotStore
from flightsw.core.component import DeclaredItem, Parameter

SCHEMA_VERSION = 1


class ParameterError(ValueError):
    pass


class ParameterStore(SnapshotStore):
    def __init__(self, path: Path, fsync: bool = True) -> None:
        super().__init__(AtomicStore(path, SCHEMA_VERSION, fsync=fsync))
        self._items: dict[int, DeclaredItem] = {}
        self._values: dict[int, Any] = {}
        self.problems: list[str] = []
        self.sets = 0

    def declare(self, items: dict[int, DeclaredItem]) -> None:
        self._items = dict(items)
        self._values = {pid: item.decl_as(Parameter).default for pid, item in items.items()}

    def load(self) -> list[str]:
        """Load stored values over the defaults; returns (and keeps) the problems found."""
        result = self.store.load()
        problems = list(result.problems)
        stored = result.value if isinstance(result.value, dict) else {}
        by_name = {item.name: pid for pid, item in self._items.items()}
        for name, value in stored.items():
            pid = by_name.get(name)
            if pid is None:
                problems.append(f"{name}: no longer declared; dropped")
                continue
            decl = self._items[pid].decl_as(Parameter)
            try:
                self._values[pid] = decl.arg().validate(value)
            except ValueError as exc:
                problems.append(f"{name}: stored value rejected ({exc}); default used")
        self.problems = problems
        return problems

    def activate_all(self) -> list[str]:
        """Hand every value to its component once at start-up; refused values revert to defaults."""
        problems = []
        for pid, item in self._items.items():
            try:
                item.component.on_parameter(item.decl.attr, self._values[pid])
            except ValueError as exc:
                problems.append(f"{item.name}: {exc}; default used")
                self._values[pid] = item.decl_as(Parameter).default
                item.component.on_parameter(item.decl.attr, self._values[pid])
        return problems

    def get(self, pid: int) -> Any:
        return self._values[pid]

    def get_by_name(self, name: str) -> Any:
        for pid, item in self._items.items():
            if item.name == name:
                return self._values[pid]
        raise KeyError(name)

    def snapshot(self) -> dict[str, Any]:
        return {self._items[pid].name: v for pid, v in self._values.items()}

    async def set(self, pid: int, value: Any) -> None:
        """Validate, activate (the component may refuse), then persist; raises ParameterError."""
        item = self._items.get(pid)
        if item is None:
            raise ParameterError(f"unknown parameter 0x{pid:08x}")
        decl = item.decl_as(Parameter)
        try:
            value = decl.arg().validate(value)
            item.component.on_parameter(decl.attr, value)
        except ValueError as exc:
            raise ParameterError(f"{item.name}: {exc}") from exc
        self._values[pid] = value
        self.sets += 1
        await self.save()
