"""Simulated burn wire: a GPIO output heating a nylon line that holds the antennas, and the
deployment switch that opens when the line parts.

Why at GPIO level: the flight code drives a real ``OutputLine`` and reads a real ``InputLine``
on the simulated backend, so the deployment sequence is tested against the lines it uses in
flight. A burn *attempt* is one rising edge of the output. An attempt releases after
``release_after_s`` of heating, with ``release_probability`` (seeded), except the first
``fail_first`` attempts, which never do (a scripted knot that holds). While powered the wire
draws ``current_a`` from the battery: the simulated INA219 on that rail sees it, and the run's
power budget books it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from hal.gpio import InputLine, OutputLine
from sim.gpio import SimGpioBackend
from sim.parts.environment import EnvironmentSource, Vector3


class SimBurnWire:
    def __init__(self, gpio: SimGpioBackend, output: OutputLine, switch: InputLine, *,
                 clock: Callable[[], float], release_probability: float = 1.0, fail_first: int = 0,
                 release_after_s: float = 3.0, current_a: float = 1.5, seed: int = 0) -> None:
        if not 0.0 <= release_probability <= 1.0:
            raise ValueError(f"release_probability {release_probability} must be within 0..1")
        self.gpio = gpio
        self.output = output
        self.switch = switch
        self.clock = clock
        self.release_probability = release_probability
        self.fail_first = fail_first
        self.release_after_s = release_after_s
        self.current_a = current_a
        self._rng = random.Random(seed)
        self.attempts = 0
        self.released = False
        self.released_on_attempt: int | None = None
        self.heated_s = 0.0  # total powered time
        self._on_since: float | None = None
        self._will_release = False
        self.listeners: list[Callable[[], None]] = []  # told when the wire starts or stops drawing
        gpio.levels[switch.line] = switch.active_low  # stowed (kept when the input is set up)
        gpio.on_change(output.line, self._on_level)
        gpio.on_read(switch.line, self.update)

    @property
    def burning(self) -> bool:
        return self._on_since is not None

    def current(self) -> float:
        """Amps drawn from the battery now."""
        return self.current_a if self.burning else 0.0

    def carry_over(self, before: SimBurnWire) -> None:
        """The same wire after the computer rebooted: the hardware keeps what happened to it."""
        self.attempts, self.heated_s = before.attempts, before.heated_s
        self.released, self.released_on_attempt = before.released, before.released_on_attempt
        self._rng.setstate(before._rng.getstate())
        if self.released:  # one switch may sit behind several wires: only a release moves it
            self.gpio.levels[self.switch.line] = not self.switch.active_low

    def _on_level(self, level: bool) -> None:
        on = level != self.output.active_low
        now = self.clock()
        if on and self._on_since is None:
            self._on_since = now
            self.attempts += 1
            draw = self._rng.random()  # drawn on every attempt: the sequence repeats with the seed
            self._will_release = (self.attempts > self.fail_first and draw < self.release_probability)
        elif not on and self._on_since is not None:
            self.update()
            self.heated_s += now - self._on_since
            self._on_since = None
        else:
            return
        for listener in self.listeners:
            listener()

    def update(self) -> None:
        """Part the line when it has been heated long enough on an attempt that releases."""
        if self.released or self._on_since is None or not self._will_release:
            return
        if self.clock() - self._on_since >= self.release_after_s:
            self.released = True
            self.released_on_attempt = self.attempts
            self.gpio.levels[self.switch.line] = not self.switch.active_low


class BurnLoadEnvironment:
    """An EnvironmentSource whose battery rail also carries the burn wires' current."""

    def __init__(self, base: EnvironmentSource, wires: list[SimBurnWire], rail: str = "battery") -> None:
        self.base = base
        self.wires = wires
        self.rail_name = rail

    def rail(self, name: str) -> tuple[float, float]:
        volts, amps = self.base.rail(name)
        if name == self.rail_name:
            amps += sum(w.current() for w in self.wires)
        return volts, amps

    def magnetic_field(self) -> Vector3:
        return self.base.magnetic_field()

    def angular_rate(self) -> Vector3:
        return self.base.angular_rate()

    def acceleration(self) -> Vector3:
        return self.base.acceleration()

    def temperature(self, location: str) -> float:
        return self.base.temperature(location)

    def light(self, channel: str) -> float:
        return self.base.light(channel)
