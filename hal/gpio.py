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
    """libgpiod, imported on first use (so a laptop can build a flight config's dictionary).

    Supports the v2 bindings (`gpiod` on PyPI) and the v1 bindings Raspberry Pi OS Bookworm
    ships as python3-libgpiod.
    """

    def __init__(self, chip: str = "/dev/gpiochip0", consumer: str = "flightsw") -> None:
        self.chip = chip
        self.consumer = consumer
        self._gpiod: Any = None
        self._v1_chip: Any = None
        self._requests: dict[int, Any] = {}

    def _lib(self) -> Any:
        if self._gpiod is None:
            try:
                import gpiod
            except ImportError as exc:
                raise GpioError("the real GPIO backend needs libgpiod "
                                "(apt install python3-libgpiod, or pip install gpiod)") from exc
            self._gpiod = gpiod
            if not hasattr(gpiod, "request_lines"):  # v1 API
                self._v1_chip = gpiod.Chip(self.chip)
        return self._gpiod

    def _request(self, line: int, output: bool, initial: bool = False, pull: Pull = "none") -> None:
        if line in self._requests:
            raise GpioError(f"GPIO line {line} on {self.chip} configured twice")
        gpiod = self._lib()
        try:
            if self._v1_chip is not None:
                handle = self._v1_chip.get_line(line)
                if output:
                    handle.request(consumer=self.consumer, type=gpiod.LINE_REQ_DIR_OUT,
                                   default_vals=[int(initial)])
                else:
                    flags = {"none": 0, "up": getattr(gpiod, "LINE_REQ_FLAG_BIAS_PULL_UP", 0),
                             "down": getattr(gpiod, "LINE_REQ_FLAG_BIAS_PULL_DOWN", 0)}[pull]
                    handle.request(consumer=self.consumer, type=gpiod.LINE_REQ_DIR_IN, flags=flags)
                self._requests[line] = handle
                return
            from gpiod.line import Bias, Direction, Value

            if output:
                settings = gpiod.LineSettings(direction=Direction.OUTPUT,
                                              output_value=Value.ACTIVE if initial else Value.INACTIVE)
            else:
                bias = {"none": Bias.DISABLED, "up": Bias.PULL_UP, "down": Bias.PULL_DOWN}[pull]
                settings = gpiod.LineSettings(direction=Direction.INPUT, bias=bias)
            self._requests[line] = gpiod.request_lines(self.chip, consumer=self.consumer,
                                                       config={line: settings})
        except OSError as exc:
            raise GpioError(f"cannot request GPIO line {line} on {self.chip}: {exc}") from exc

    def setup_output(self, line: int, initial: bool) -> None:
        self._request(line, True, initial=initial)

    def setup_input(self, line: int, pull: Pull) -> None:
        self._request(line, False, pull=pull)

    def write(self, line: int, level: bool) -> None:
        if self._v1_chip is not None:
            self._requests[line].set_value(int(level))
            return
        from gpiod.line import Value

        self._requests[line].set_value(line, Value.ACTIVE if level else Value.INACTIVE)

    def read(self, line: int) -> bool:
        if self._v1_chip is not None:
            return bool(self._requests[line].get_value())
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
        self.opened = False

    def open(self) -> None:
        """Request every line from its backend (idempotent). Deferred from `add` so building a
        satellite for its dictionary touches no hardware."""
        if self.opened:
            return
        lines: list[OutputLine | InputLine] = [*self.outputs.values(), *self.inputs.values()]
        for line in lines:
            line.setup()
        self.opened = True

    def add(self, line: OutputLine | InputLine) -> None:
        if line.name in self.outputs or line.name in self.inputs:
            raise GpioError(f"GPIO name {line.name!r} defined twice")
        if self.opened:
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
