"""Simulated GPIO backend: levels in memory, listeners so a power switch can power a sim part.

Why listeners: the housekeeping component power-cycles a failed sensor through its switch; in
simulation the switch must actually cut the simulated part's supply (and thereby clear a
latched-up part), or the recovery path would be tested against nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hal.gpio import GpioError, Pull


class SimGpioBackend:
    def __init__(self) -> None:
        self.levels: dict[int, bool] = {}
        self.directions: dict[int, str] = {}
        self.writes: list[tuple[int, bool]] = []
        self._listeners: dict[int, list[Callable[[bool], None]]] = {}
        self._read_hooks: dict[int, list[Callable[[], None]]] = {}
        self._lock = threading.Lock()

    def setup_output(self, line: int, initial: bool) -> None:
        self._claim(line, "out")
        self.levels[line] = initial
        self._notify(line, initial)

    def setup_input(self, line: int, pull: Pull) -> None:
        self._claim(line, "in")
        self.levels.setdefault(line, pull == "up")

    def write(self, line: int, level: bool) -> None:
        if self.directions.get(line) != "out":
            raise GpioError(f"sim GPIO line {line} is not an output")
        with self._lock:
            self.levels[line] = level
            self.writes.append((line, level))
            del self.writes[:-1000]  # bounded history
        self._notify(line, level)

    def read(self, line: int) -> bool:
        if line not in self.directions:
            raise GpioError(f"sim GPIO line {line} was not set up")
        for hook in self._read_hooks.get(line, []):
            hook()  # the outside world catches up to now (a burn wire parting)
        return self.levels[line]

    def close(self) -> None:
        self.directions.clear()

    # -- simulator side ---------------------------------------------------------------------
    def drive_input(self, line: int, level: bool) -> None:
        """What the outside world does to an input (a deployment switch opening)."""
        if self.directions.get(line) != "in":
            raise GpioError(f"sim GPIO line {line} is not an input")
        self.levels[line] = level

    def on_change(self, line: int, listener: Callable[[bool], None]) -> None:
        self._listeners.setdefault(line, []).append(listener)
        if line in self.levels:
            listener(self.levels[line])

    def on_read(self, line: int, hook: Callable[[], None]) -> None:
        """Call ``hook()`` before each read of ``line``: a model that changes an input with time."""
        self._read_hooks.setdefault(line, []).append(hook)

    def _claim(self, line: int, direction: str) -> None:
        if line in self.directions:
            raise GpioError(f"sim GPIO line {line} configured twice")
        self.directions[line] = direction

    def _notify(self, line: int, level: bool) -> None:
        for listener in self._listeners.get(line, []):
            listener(level)
