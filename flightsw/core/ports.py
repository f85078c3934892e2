"""Typed ports: the only way components reach one another.

Why: components used to find each other by scanning the satellite for an attribute
(``hasattr(comp, "set_payload_gate")``) or by attributes bolted onto the satellite object. A typo
or a renamed method then silently unwired a safety function (the payload gate, the SAFE-mode
outputs). Here every connection between components is a :class:`PortKey` naming a Protocol; a
subsystem *provides* a port or *connects* a consumer to it, and the satellite joins providers to
consumers once, in :meth:`Ports.wire`, before any component's ``setup`` runs. A required port
with no provider is an error naming the port and the consumer, at start-up.

This module is the catalogue: every port of the framework is declared below with the Protocol
its provider satisfies (checked by mypy where the provider is registered). A mission's own
subsystem may declare further keys in its own module the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from flightsw.core.clock import StepListener, TimeCorrelation
    from flightsw.core.commands import CommandResponse, Verdict
    from flightsw.core.component import CounterSet
    from flightsw.core.enums import ResetReason, TimeQuality

T = TypeVar("T")


class PortError(RuntimeError):
    """The wiring is incomplete or ambiguous (a second provider, a missing required port)."""


class PortKey(Generic[T]):
    """Names one port and, through its type parameter, the interface its provider offers."""

    __slots__ = ("name", "doc")

    def __init__(self, name: str, doc: str = "") -> None:
        self.name = name
        self.doc = doc

    def __repr__(self) -> str:
        return f"PortKey({self.name!r})"


@dataclass
class _Port:
    provider: Any = None
    provided_by: str = ""
    provided: bool = False
    consumers: list[tuple[Callable[[Any], None], bool, str]] = field(default_factory=list)


class Ports:
    """The satellite's topology: one provider per port, any number of consumers."""

    def __init__(self) -> None:
        self._ports: dict[str, _Port] = {}
        self._keys: dict[str, PortKey[Any]] = {}
        self._wired = False

    def _port(self, key: PortKey[Any]) -> _Port:
        known = self._keys.setdefault(key.name, key)
        if known is not key:
            raise PortError(f"two different port keys are named {key.name!r}")
        return self._ports.setdefault(key.name, _Port())

    def provide(self, key: PortKey[T], provider: T, by: str = "") -> None:
        """Offer ``provider`` on ``key``; a port has exactly one provider."""
        port = self._port(key)
        if port.provided:
            raise PortError(f"port {key.name!r} already provided by {port.provided_by or 'another part'}"
                            f"{'; ' + by + ' also provides it' if by else ''}")
        port.provider, port.provided_by, port.provided = provider, by, True
        if self._wired:  # late provider (a harness after start-up): deliver now
            for consumer, _required, _who in port.consumers:
                consumer(provider)

    def connect(self, key: PortKey[T], consumer: Callable[[T], None], *, required: bool = False,
                by: str = "") -> None:
        """Hand the port's provider to ``consumer`` when the satellite is wired (at most once)."""
        port = self._port(key)
        port.consumers.append((consumer, required, by))
        if self._wired and port.provided:
            consumer(port.provider)

    def get(self, key: PortKey[T]) -> T | None:
        """The provider offered so far, or None (for building-time choices)."""
        port = self._ports.get(key.name)
        return port.provider if port is not None and port.provided else None

    def require(self, key: PortKey[T], by: str = "") -> T:
        port = self._ports.get(key.name)
        if port is None or not port.provided:
            raise PortError(f"port {key.name!r} has no provider{' (needed by ' + by + ')' if by else ''}")
        provider: T = port.provider
        return provider

    def wire(self) -> None:
        """Join every consumer to its provider; missing required ports are reported together."""
        if self._wired:
            return
        missing = [f"{name} (needed by {who or 'a consumer'})"
                   for name, port in self._ports.items() if not port.provided
                   for _consumer, required, who in port.consumers if required]
        if missing:
            raise PortError("unwired port(s): " + ", ".join(missing))
        self._wired = True
        for port in self._ports.values():
            if port.provided:
                for consumer, _required, _who in port.consumers:
                    consumer(port.provider)

    def topology(self) -> list[tuple[str, str, list[str]]]:
        """(port, provider, consumers) for every port, for logs and docs."""
        return [(name, port.provided_by if port.provided else "", [who for _c, _r, who in port.consumers])
                for name, port in sorted(self._ports.items())]


# --- the framework's interfaces -------------------------------------------------------------------

ResponseListener = Callable[["CommandResponse"], None]
#: why the payload may not run now, or None when it may
PayloadGate = Callable[[], "str | None"]
#: called as ``listener(old, new, reason)`` on every mode change ("BOOT" as the boot's first old mode)
ModeListener = Callable[[str, str, str], None]


class CommandPort(Protocol):
    """The command dispatcher as the link sees it: packed commands in, verdicts and responses out."""

    def submit_packed(self, body: bytes, source: str = "ground", seq: int | None = None) -> Verdict: ...

    def add_listener(self, listener: ResponseListener) -> None: ...

    @property
    def stats(self) -> CounterSet:
        """Counters since boot: at least "succeeded" and "rejected_total" (the beacon reports them)."""
        ...


class ModeSource(Protocol):
    """The operating mode and its changes (the mode manager)."""

    @property
    def current(self) -> str: ...

    def add_listener(self, listener: ModeListener) -> None: ...


class SwitchedOutput(Protocol):
    """One GPIO output with logical on/off (``hal.gpio.OutputLine``)."""

    initial: bool

    def set(self, on: bool) -> None: ...


class OutputBank(Protocol):
    """The configured GPIO outputs by name (``hal.gpio.GpioBank``); ``open`` is idempotent."""

    @property
    def outputs(self) -> Mapping[str, SwitchedOutput]: ...

    def open(self) -> None: ...


class FileDownlink(Protocol):
    """Queues a file for the ground: imaging says which file, under which name, how urgent."""

    async def put(self, source: Path, dest_name: str, priority: int = 5) -> int:
        """Queue ``source`` for the ground as ``dest_name``; lower priority goes first.

        Returns a transfer id. Must copy or otherwise tolerate ``source`` disappearing later
        (an image can be evicted while queued); raise ``FileNotFoundError`` if it is gone now.
        """
        ...


class TimeService(Protocol):
    """Spacecraft time as a consumer sees it (``SpacecraftClock``, reached through ``ctx.clock``).

    Order and key stored work by ``met()`` (never steps, counts across boots); convert to UTC only
    to compare with a UTC time tag, and re-plan UTC-timed work when a step listener is called
    (a ground or GPS correction can move UTC forward or backward by any amount)."""

    def met(self) -> float: ...

    def utc(self) -> float | None: ...

    @property
    def quality(self) -> TimeQuality: ...

    def seconds_since_boot(self) -> float: ...

    def add_step_listener(self, listener: StepListener) -> None: ...

    def set_utc(self, utc: float, quality: TimeQuality = ...) -> TimeCorrelation: ...


class SystemReset(Protocol):
    """Stop the flight software cleanly with a reason the next boot reads (the satellite)."""

    def request_reset(self, reason: ResetReason, delay: float = 0.0) -> None: ...


class LinkDefaults(Protocol):
    """Put the link back to its launch configuration (the link): the default uplink key and
    the link parameters' defaults. Returns what changed, for the event."""

    async def restore_defaults(self) -> str: ...


class SceneSource(Protocol):
    """What a simulated camera looks at now (lat/lon/sun elevation), given by an orbit simulator."""

    def __call__(self) -> Any: ...


# --- the framework's ports ------------------------------------------------------------------------

COMMANDS: PortKey[CommandPort] = PortKey("commands", "the command dispatcher (provided by the satellite)")
MODES: PortKey[ModeSource] = PortKey("modes", "the operating mode and its changes (mode manager)")
PAYLOAD_GATE: PortKey[PayloadGate] = PortKey("payload_gate", "may the payload run now (mode manager)")
OUTPUTS: PortKey[OutputBank] = PortKey("outputs", "the configured GPIO outputs (hardware subsystem)")
FILE_DOWNLINK: PortKey[FileDownlink] = PortKey("file_downlink", "files to the ground (CFDP on the link)")
SYSTEM_RESET: PortKey[SystemReset] = PortKey("system_reset", "stop and restart the flight software (satellite)")
LINK_DEFAULTS: PortKey[LinkDefaults] = PortKey("link_defaults", "the link's safe defaults (link)")
CAMERA_SCENE: PortKey[SceneSource] = PortKey("camera_scene", "the simulated camera's scene (simulator)")
