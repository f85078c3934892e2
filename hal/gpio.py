"""Named GPIO lines: outputs (payload/radio power switches, burn wires) and inputs
(deployment switches), over a backend that is the Raspberry Pi's character device or a simulator.

Why names: flight logic says `power.set("payload_power", False)`, the mission config maps the name
to a line number, so a board revision changes the TOML, not the code. A GPIO write is a single
non-blocking ioctl (microseconds), so lines are driven directly from the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Pull = Literal["none", "up", "down"]


class GpioBackend(Protocol):
    def setup_output(self, line: int, initial: bool) -> None: ...
    def setup_input(self, line: int, pull: Pull) -> None: ...
    def write(self, line: int, level: bool) -> None: ...
    def read(self, line: int) -> bool: ...
    def close(self) -> None: ...


class GpioError(RuntimeError):
    """A line that cannot be used as asked (unknown name, wrong direction, busy line)."""


@dataclass
class OutputLine:
    """An output with logical on/off; `active_low` hides inverted switch wiring."""

    name: str
    backend: GpioBackend
    line: int
    active_low: bool = False
    initial: bool = False
    _state: bool = False

    def setup(self) -> None:
        self.backend.setup_output(self.line, self.initial != self.active_low)
        self._state = self.initial

    def set(self, on: bool) -> None:
        self.backend.write(self.line, on != self.active_low)
        self._state = on

    @property
    def is_on(self) -> bool:
        return self._state


@dataclass
class InputLine:
    name: str
    backend: GpioBackend
    line: int
    active_low: bool = False
    pull: Pull = "none"

    def setup(self) -> None:
        self.backend.setup_input(self.line, self.pull)

    def read(self) -> bool:
        return self.backend.read(self.line) != self.active_low


class GpiodBackend:
    """libgpiod v2 (python3-libgpiod / `gpiod` on PyPI), imported only when used on the board."""

    def __init__(self, chip: str = "/dev/gpiochip0", consumer: str = "flightsw") -> None:
        try:
            import gpiod
        except ImportError as exc:  # pragma: no cover - only on a board without libgpiod
            raise GpioError("the real GPIO backend needs libgpiod v2 (pip install gpiod)") from exc
        self._gpiod = gpiod
        self.chip = chip
        self.consumer = consumer
        self._requests: dict[int, Any] = {}

    def _request(self, line: int, settings: Any) -> None:
        if line in self._requests:
            raise GpioError(f"GPIO line {line} on {self.chip} configured twice")
        try:
            self._requests[line] = self._gpiod.request_lines(
                self.chip, consumer=self.consumer, config={line: settings})
        except OSError as exc:
            raise GpioError(f"cannot request GPIO line {line} on {self.chip}: {exc}") from exc

    def setup_output(self, line: int, initial: bool) -> None:
        from gpiod.line import Direction, Value

        self._request(line, self._gpiod.LineSettings(
            direction=Direction.OUTPUT, output_value=Value.ACTIVE if initial else Value.INACTIVE))

    def setup_input(self, line: int, pull: Pull) -> None:
        from gpiod.line import Bias, Direction

        bias = {"none": Bias.DISABLED, "up": Bias.PULL_UP, "down": Bias.PULL_DOWN}[pull]
        self._request(line, self._gpiod.LineSettings(direction=Direction.INPUT, bias=bias))

    def write(self, line: int, level: bool) -> None:
        from gpiod.line import Value

        self._requests[line].set_value(line, Value.ACTIVE if level else Value.INACTIVE)

    def read(self, line: int) -> bool:
        from gpiod.line import Value

        return bool(self._requests[line].get_value(line) == Value.ACTIVE)

    def close(self) -> None:
        for request in self._requests.values():
            request.release()
        self._requests.clear()


class GpioBank:
    """All named lines of the satellite, whatever backend each one uses."""

    def __init__(self) -> None:
        self.outputs: dict[str, OutputLine] = {}
        self.inputs: dict[str, InputLine] = {}

    def add(self, line: OutputLine | InputLine) -> None:
        if line.name in self.outputs or line.name in self.inputs:
            raise GpioError(f"GPIO name {line.name!r} defined twice")
        line.setup()
        if isinstance(line, OutputLine):
            self.outputs[line.name] = line
        else:
            self.inputs[line.name] = line

    def output(self, name: str) -> OutputLine:
        try:
            return self.outputs[name]
        except KeyError:
            raise GpioError(f"no GPIO output named {name!r} (have: {sorted(self.outputs)})") from None

    def input(self, name: str) -> InputLine:
        try:
            return self.inputs[name]
        except KeyError:
            raise GpioError(f"no GPIO input named {name!r} (have: {sorted(self.inputs)})") from None
