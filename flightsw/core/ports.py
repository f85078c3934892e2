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
    from collections.abc import Sequence

    from flightsw.core.clock import StepListener, TimeCorrelation
    from flightsw.core.commands import CommandResponse, Verdict
    from flightsw.core.component import CounterSet
    from flightsw.core.enums import (
        AdcsMode,
        LatePolicy,
        ResetReason,
        SlewStatus,
        TimeQuality,
        TxInhibit,
    )

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
#: an orderly restart of the flight software with the reset reason the next boot reads, and why
RebootRequest = Callable[["ResetReason", str], None]
#: called as ``listener(old, new, reason)`` on every mode change ("BOOT" as the boot's first old mode)
ModeListener = Callable[[str, str, str], None]


class CommandPort(Protocol):
    """The command dispatcher as the link sees it: packed commands in, verdicts and responses out."""

    def submit_packed(self, body: bytes, source: str = "ground", seq: int | None = None) -> Verdict: ...

    def encode(self, name: str, args: list[Any]) -> bytes:
        """Pack a command by dictionary name, arguments checked (ValueError naming the problem)."""
        ...

    def add_listener(self, listener: ResponseListener) -> None: ...

    @property
    def stats(self) -> CounterSet:
        """Counters since boot: at least "succeeded" and "rejected_total" (the beacon reports them)."""
        ...

    @property
    def dictionary_hash(self) -> int | None:
        """First 32 bits of the dictionary's SHA-256 (the beacon carries it), None before it is built."""
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


class SwitchInput(Protocol):
    """One GPIO input with its logical level (``hal.gpio.InputLine``): a deployment switch."""

    def read(self) -> bool: ...


class InputBank(Protocol):
    """The configured GPIO inputs by name (``hal.gpio.GpioBank``); ``open`` is idempotent."""

    @property
    def inputs(self) -> Mapping[str, SwitchInput]: ...

    def open(self) -> None: ...


class FileDownlink(Protocol):
    """Queues a file for the ground: imaging says which file, under which name, how urgent."""

    async def put(self, source: Path, dest_name: str, priority: int = 5) -> int:
        """Queue ``source`` for the ground as ``dest_name``; lower priority goes first.

        Returns a transfer id. Must copy or otherwise tolerate ``source`` disappearing later
        (an image can be evicted while queued); raise ``FileNotFoundError`` if it is gone now.
        """
        ...


class TransmitPermission(Protocol):
    """The one owner of transmit permission (transmitter control): asked before any frame keys
    the transmitter; listeners are called (no arguments) whenever the answer may have changed."""

    def inhibits(self) -> frozenset[TxInhibit]:
        """The reasons the transmitter must stay off now; empty when it may transmit."""
        ...

    def add_listener(self, listener: Callable[[], None]) -> None: ...


class SilenceSource(Protocol):
    """The deployment sequence's RF silence, measured on the clock that survives reboots."""

    def silence_active(self) -> bool: ...

    def silence_remaining_s(self) -> float: ...


class StoredItem(Protocol):
    """One stored command as its users see it (``flightsw.components.schedule.StoredCommand``)."""

    @property
    def id(self) -> int: ...

    @property
    def due(self) -> float: ...

    @property
    def command(self) -> str: ...

    @property
    def args(self) -> tuple[Any, ...]: ...


class StoredCommands(Protocol):
    """The sequencer as a component that schedules its own commands sees it (imaging's captures).

    Times are UTC here whatever time base the sequencer tags items in; it converts."""

    def now_utc(self) -> float | None:
        """Onboard UTC as the sequencer uses it, or None when unknown."""
        ...

    async def store_at_utc(self, command: str, args: list[Any], utc: float, policy: LatePolicy,
                           late_s: float, source: str) -> StoredItem:
        """Store ``command(args)`` to run at ``utc``; raises ValueError naming why not (full,
        unknown command, bad arguments)."""
        ...

    def pending_items(self, command: str | None = None) -> Sequence[StoredItem]:
        """Stored commands (of one command name), in execution order."""
        ...

    def due_utc(self, item: StoredItem) -> float | None:
        """The UTC an item is due at (None when UTC is unknown)."""
        ...

    async def delete_command(self, command: str) -> int:
        """Delete every stored ``command``; returns how many."""
        ...

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Called after items are stored, deleted, or taken for execution."""
        ...


class OverflightPredictor(Protocol):
    """When the satellite next passes over a place (the imaging planner, from the uplinked TLE)."""

    async def next_overflight(self, lat: float, lon: float, radius_km: float,
                              after_utc: float) -> float | None:
        """UTC of the next closest approach within ``radius_km`` after ``after_utc``, None when
        there is none within the planner's horizon; ValueError when it cannot predict (no TLE)."""
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


class LinkDefaults(Protocol):
    """Put the link back to its launch configuration (the link): the default uplink key and
    the link parameters' defaults. Returns what changed, for the event."""

    async def restore_defaults(self) -> str: ...


class SceneSource(Protocol):
    """What a simulated camera looks at now (lat/lon/sun elevation), given by an orbit simulator."""

    def __call__(self) -> Any: ...


class TleSource(Protocol):
    """The TLE uplinked for onboard propagation, and news of a new one (one upload serves all)."""

    def tle(self) -> tuple[str, str] | None: ...

    def add_tle_listener(self, listener: Callable[[tuple[str, str]], None]) -> None: ...


class AttitudeState(Protocol):
    """One reading of the ADCS unit (``hal.drivers.adcs.AdcsStatus``)."""

    @property
    def mode(self) -> AdcsMode: ...

    @property
    def slew(self) -> SlewStatus: ...

    @property
    def error_deg(self) -> float:
        """Angle between the held and the commanded attitude."""
        ...

    @property
    def off_nadir_deg(self) -> float:
        """Angle between the camera boresight and the local vertical."""
        ...

    @property
    def target(self) -> tuple[float, float]:
        """The ground point (lat, lon) the unit tracks in TARGET_TRACKING."""
        ...


class AttitudeControl(Protocol):
    """The ADCS as imaging sees it (``flightsw.components.adcs``): bus I/O on the bus's worker."""

    async def set_mode(self, mode: AdcsMode, lat_deg: float = 0.0, lon_deg: float = 0.0) -> None:
        """Command a mode (lat/lon: the ground point of TARGET_TRACKING); OSError on bus failure."""
        ...

    async def status(self) -> AttitudeState:
        """Read the unit now (also published as telemetry); OSError on bus failure."""
        ...


class PointingSource(Protocol):
    """The simulated ADCS's camera boresight now (Earth-fixed unit vector), for the sim camera."""

    def __call__(self) -> tuple[float, float, float] | None: ...


# --- the framework's ports ------------------------------------------------------------------------

COMMANDS: PortKey[CommandPort] = PortKey("commands", "the command dispatcher (provided by the satellite)")
MODES: PortKey[ModeSource] = PortKey("modes", "the operating mode and its changes (mode manager)")
PAYLOAD_GATE: PortKey[PayloadGate] = PortKey("payload_gate", "may the payload run now (mode manager)")
OUTPUTS: PortKey[OutputBank] = PortKey("outputs", "the configured GPIO outputs (hardware subsystem)")
INPUTS: PortKey[InputBank] = PortKey("inputs", "the configured GPIO inputs (hardware subsystem)")
FILE_DOWNLINK: PortKey[FileDownlink] = PortKey("file_downlink", "files to the ground (CFDP on the link)")
TX_INHIBIT: PortKey[TransmitPermission] = PortKey("tx_inhibit", "may the transmitter key up now (transmitter control)")
RF_SILENCE: PortKey[SilenceSource] = PortKey("rf_silence", "RF silence after separation (deployment sequence)")
STORED_COMMANDS: PortKey[StoredCommands] = PortKey(
    "stored_commands", "time-tagged commands run through the dispatcher (sequencer)")
OVERFLIGHTS: PortKey[OverflightPredictor] = PortKey(
    "overflights", "next overflight of a target, for event-relative stored commands (imaging)")
LINK_DEFAULTS: PortKey[LinkDefaults] = PortKey("link_defaults", "the link's safe defaults (link)")
CAMERA_SCENE: PortKey[SceneSource] = PortKey("camera_scene", "the simulated camera's scene (simulator)")
REBOOT: PortKey[RebootRequest] = PortKey("reboot", "orderly restart with a reset reason (provided by the satellite)")
ORBIT_TLE: PortKey[TleSource] = PortKey("orbit_tle", "the uplinked TLE (imaging.SET_TLE)")
ADCS: PortKey[AttitudeControl] = PortKey("adcs", "attitude control: modes, target tracking, slew status (adcs)")
CAMERA_POINTING: PortKey[PointingSource] = PortKey("camera_pointing", "the simulated ADCS's boresight (adcs, sim)")
