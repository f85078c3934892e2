"""Declarative components: what a component offers is declared once, as class attributes.

A component declares telemetry channels, events, commands and parameters; the framework collects
the declarations of every component into one dictionary with stable numeric ids (see
``flightsw.core.dictionary``), so flight and ground are generated from the same source.
Every component inherits a no-op command, a counter-reset command and command counters (cFS/F Prime
convention), so an operator can always check that a component is alive and commandable.
"""

from __future__ import annotations

import inspect
import string
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from flightsw.core.types import U32, DataType, OutOfRange

if TYPE_CHECKING:
    from flightsw.core.context import ComponentContext
    from flightsw.core.events import Severity


class CommandFailure(Exception):
    """Raised by a command handler: the command was accepted but could not be completed."""


class CommandRejected(Exception):
    """Raised by a command handler before it acts: the command is not allowed now (mode, power...)."""


def local_id(kind: str, name: str) -> int:
    """Stable 16-bit local id from the item's kind and name: independent of declaration order."""
    return zlib.crc32(f"{kind}:{name}".encode()) & 0xFFFF


@dataclass(frozen=True)
class Limits:
    """Yellow/red limits of a channel; any bound may be None."""

    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None

    def state(self, value: Any) -> str:
        """'red', 'yellow' or 'ok' for a numeric value (non-numeric values are always 'ok')."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "ok"
        if (self.red_low is not None and value < self.red_low) or (
            self.red_high is not None and value > self.red_high
        ):
            return "red"
        if (self.yellow_low is not None and value < self.yellow_low) or (
            self.yellow_high is not None and value > self.yellow_high
        ):
            return "yellow"
        return "ok"

    def to_json(self) -> dict[str, float]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Arg:
    """A typed command argument with an optional inclusive range."""

    name: str
    type: DataType
    range: tuple[float, float] | None = None
    doc: str = ""

    def validate(self, value: Any) -> Any:
        value = self.type.validate(value)
        if self.range is not None and not (self.range[0] <= value <= self.range[1]):
            raise OutOfRange(f"{self.name}={value} outside [{self.range[0]}, {self.range[1]}]")
        return value

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type.name, "doc": self.doc}
        if self.range is not None:
            out["range"] = list(self.range)
        return out


def check_arguments(specs: Sequence[Arg], args: Sequence[Any]) -> None:
    """A command's arguments against its declaration: count, types and ranges (ValueError naming
    the argument); the one check the dispatcher, the sequencer and the ground's sequence files share."""
    if len(args) != len(specs):
        raise ValueError(f"{len(args)} argument(s), expected {len(specs)}"
                         f" ({', '.join(a.name for a in specs) or 'none'})")
    for spec, value in zip(specs, args, strict=True):
        try:
            spec.validate(value)
        except ValueError as exc:
            named = str(exc).startswith(f"{spec.name}=")  # a range error names it already
            raise ValueError(str(exc) if named else f"{spec.name}: {exc}") from None


class _Declaration:
    """Base of the class-level declarations; learns its attribute name from the class body."""

    kind: ClassVar[str] = ""

    def __init__(self, doc: str = "", id: int | None = None) -> None:  # noqa: A002
        self.doc = doc
        self.explicit_id = id
        self.attr = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    @property
    def item_name(self) -> str:
        return self.attr

    def local_id(self) -> int:
        return self.explicit_id if self.explicit_id is not None else local_id(self.kind, self.item_name)

    def __get__(self, instance: Component | None, owner: type) -> Any:
        if instance is None:
            return self
        return instance._bound(self)


CHANNEL_UPDATES = ("always", "on_change")
COMMAND_COUNTERS = "commands"  # the group of the command counters every component has


class Channel(_Declaration):
    """A telemetry channel: latest value and time, with unit and limits.

    ``update="on_change"`` (F Prime's ``update on change``): a write of the value the channel
    already holds is dropped, so the stamp says when the value last changed. Meant for counters
    and flags published every cycle; readings keep ``"always"`` so their stamp shows freshness.
    ``utc=True``: the value is a UTC time in Unix seconds (0 = unknown), shown by ground tools as
    an ISO time.
    """

    kind = "channel"

    def __init__(
        self,
        type: DataType,  # noqa: A002
        unit: str = "",
        limits: Limits | None = None,
        doc: str = "",
        id: int | None = None,  # noqa: A002
        update: str = "always",
        utc: bool = False,
    ) -> None:
        super().__init__(doc, id)
        if utc and type.kind != "float":
            raise ValueError("a UTC channel holds Unix seconds: give it a float type")
        self.utc = utc
        if update not in CHANNEL_UPDATES:
            raise ValueError(f"channel update must be one of {CHANNEL_UPDATES}, got {update!r}")
        self.type = type
        self.unit = unit
        self.limits = limits or Limits()
        self.update = update


class Counter(Channel):
    """A counter: a U32 channel published on change, counted through its component's CounterSet.

    Why: declaring a channel and keeping its number in a hand-written dict, with a hand-written
    ``publish()`` copying one into the other, let the two drift apart (a counter never published,
    a channel never set). The declaration *is* the counter; :class:`CounterSet` holds the values.
    """

    def __init__(self, doc: str, unit: str = "", limits: Limits | None = None,
                 id: int | None = None, group: str = "stats") -> None:  # noqa: A002
        super().__init__(U32, unit=unit, limits=limits, doc=doc, id=id, update="on_change")
        self.group = group


class Event(_Declaration):
    """An event: severity, a format string whose fields are the event's arguments, a throttle."""

    kind = "event"

    def __init__(
        self,
        severity: Severity,
        format: str,  # noqa: A002
        throttle: tuple[int, float] | None = (10, 60.0),
        doc: str = "",
        id: int | None = None,  # noqa: A002
    ) -> None:
        super().__init__(doc, id)
        self.severity = severity
        self.format = format
        self.throttle = throttle
        self.arg_names = tuple(
            f for _, f, _, _ in string.Formatter().parse(format) if f is not None and f != ""
        )


class Parameter(_Declaration):
    """A persisted, commandable setting: validated, then activated, then stored atomically."""

    kind = "parameter"

    def __init__(
        self,
        type: DataType,  # noqa: A002
        default: Any,
        range: tuple[float, float] | None = None,  # noqa: A002
        doc: str = "",
        id: int | None = None,  # noqa: A002
    ) -> None:
        super().__init__(doc, id)
        self.type = type
        self.range = range
        self.default = self.arg().validate(default)

    def arg(self) -> Arg:
        return Arg("value", self.type, self.range, self.doc)


class CommandDecl(_Declaration):
    """A command: an opcode, typed arguments, a handler method, a completion timeout."""

    kind = "command"

    def __init__(
        self,
        handler: Callable[..., Any] | None,
        args: Sequence[Arg],
        doc: str,
        timeout: float,
        id: int | None = None,  # noqa: A002
        name: str | None = None,
    ) -> None:
        super().__init__(doc, id)
        self.handler = handler
        self.args = tuple(args)
        self.timeout = timeout
        self.explicit_name = name

    @property
    def item_name(self) -> str:
        return self.explicit_name or self.attr.upper()


def command(
    args: Sequence[Arg] = (),
    doc: str = "",
    timeout: float = 10.0,
    id: int | None = None,  # noqa: A002
    name: str | None = None,
) -> Callable[[Callable[..., Any]], CommandDecl]:
    """Declare a method as a command. The command's name is the method name in upper case."""

    def wrap(fn: Callable[..., Any]) -> CommandDecl:
        sig = inspect.signature(fn)
        expected = [p for p in sig.parameters if p != "self"]
        if expected != [a.name for a in args]:
            raise TypeError(f"{fn.__qualname__}: parameters {expected} != declared args {[a.name for a in args]}")
        return CommandDecl(fn, args, doc or (inspect.getdoc(fn) or ""), timeout, id, name)

    return wrap


def _parameter_set_command(attr: str, param: Parameter) -> CommandDecl:
    """The SET_<PARAM> command generated for every parameter (validated, activated, persisted)."""

    async def handler(self: Component, value: Any) -> None:
        await self.ctx.params.set(self.item_id(param), value)

    decl = CommandDecl(handler, [param.arg()], f"Set parameter {attr}: {param.doc}", 5.0)
    decl.attr = f"set_{attr}"
    return decl


# --- bound handles: what ``self.<declaration>`` returns on an attached component -------------


@dataclass
class BoundChannel:
    component: Component
    decl: Channel
    id: int
    _write: Callable[[int, Any], None] | None = field(default=None, init=False, repr=False)
    _write_ctx: Any = field(default=None, init=False, repr=False)
    _validate: Callable[[Any], Any] = field(init=False, repr=False)

    def set(self, value: Any) -> None:
        """Publish a new value, stamped with spacecraft time."""
        # the hot path of every component: the writer is looked up again only when the
        # component's context changed (a handle kept elsewhere outlives a re-attach)
        ctx = self.component._ctx
        write = self._write
        if write is None or ctx is not self._write_ctx:
            telemetry = self.component.ctx.telemetry  # a clear error when not attached
            write = telemetry.write_on_change if self.decl.update == "on_change" else telemetry.write
            self._write, self._write_ctx = write, ctx
        write(self.id, self._validate(value))

    def __post_init__(self) -> None:
        self._validate = self.decl.type.validate

    @property
    def value(self) -> Any:
        sample = self.component.ctx.telemetry.latest(self.id)
        return None if sample is None else sample.value


@dataclass
class BoundEvent:
    component: Component
    decl: Event
    id: int

    def emit(self, **args: Any) -> bool:
        """Report the event; returns False when the throttle suppressed it."""
        missing = set(self.decl.arg_names) - set(args)
        if missing:
            raise TypeError(f"event {self.component.name}.{self.decl.item_name} needs {sorted(missing)}")
        return self.component.ctx.events.emit(self.id, args)


@dataclass
class BoundParameter:
    component: Component
    decl: Parameter
    id: int

    @property
    def value(self) -> Any:
        return self.component.ctx.params.get(self.id)


# --- the component ---------------------------------------------------------------------------


U32_WRAP = 0xFFFFFFFF  # a counter's channel is 32 bits: it wraps, as counters on the ground expect


class CounterSet:
    """The values of one component's :class:`Counter` declarations of one group, bound to their
    channels: counted with :meth:`inc`, zeroed by :meth:`reset`, written by :meth:`publish`.

        frames_received = Counter("Uplink frames received")      # class body: the declaration
        self.stats = CounterSet(self)                            # every Counter of group "stats"
        self.stats.inc("frames_received"); self.stats.publish()  # count; publish on a rate group
    """

    def __init__(self, component: Component, group: str = "stats") -> None:
        names = [attr for attr, decl in type(component).declarations.items()
                 if isinstance(decl, Counter) and decl.group == group]
        if not names:
            raise TypeError(f"{type(component).__name__} declares no counters of group {group!r}")
        self.component = component
        self._values: dict[str, int] = dict.fromkeys(names, 0)

    def inc(self, name: str, amount: int = 1) -> None:
        """Count ``amount`` more; an undeclared name is a KeyError (a typo must not count silently)."""
        self._values[name] += amount

    def __getitem__(self, name: str) -> int:
        return self._values[name]

    def as_dict(self) -> dict[str, int]:
        return dict(self._values)

    def reset(self) -> None:
        """Zero every counter of the set (the counter-reset commands) and publish the zeros."""
        self._values = dict.fromkeys(self._values, 0)
        self.publish()

    def publish(self) -> None:
        """Write every counter to its channel (each written only when it changed)."""
        component = self.component
        for name, value in self._values.items():
            getattr(component, name).set(value & U32_WRAP)


class Component:
    """Base class of every flight component.

    Subclasses declare channels, events, parameters and commands as class attributes, and put
    start-up wiring (rate-group members, services, heartbeats) in :meth:`setup`.
    """

    declarations: ClassVar[dict[str, _Declaration]] = {}

    # Built-in telemetry, events and commands every component has.
    cmds_accepted = Counter("Commands accepted by this component", id=0xFF01, group=COMMAND_COUNTERS)
    cmds_rejected = Counter("Commands rejected before execution", id=0xFF02, group=COMMAND_COUNTERS)
    cmd_errors = Counter("Accepted commands that failed or timed out", id=0xFF03, group=COMMAND_COUNTERS)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        merged: dict[str, _Declaration] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, _Declaration):
                    merged[attr] = value
        for attr, value in list(merged.items()):
            if isinstance(value, Parameter) and f"set_{attr}" not in merged:
                merged[f"set_{attr}"] = _parameter_set_command(attr, value)
        cls.declarations = merged

    def __init__(self, name: str, base_id: int) -> None:
        if not name.isidentifier():
            raise ValueError(f"component name {name!r} must be an identifier")
        if not 0 < base_id <= 0xFFFF:
            raise ValueError(f"component {name}: base_id must be in 1..0xFFFF")
        self.name = name
        self.base_id = base_id
        self.counters = CounterSet(self, COMMAND_COUNTERS)
        self._ctx: ComponentContext | None = None
        self._bound_names: set[str] = set()  # declarations whose handle sits in __dict__

    # -- identity ---------------------------------------------------------------------------
    def item_id(self, decl: _Declaration) -> int:
        return (self.base_id << 16) | decl.local_id()

    @property
    def ctx(self) -> ComponentContext:
        if self._ctx is None:
            raise RuntimeError(f"component {self.name} is not attached to a satellite")
        return self._ctx

    def attach(self, ctx: ComponentContext) -> None:
        self._ctx = ctx
        for attr in self._bound_names:  # bound handles may hold the previous context's sinks
            self.__dict__.pop(attr, None)
        self._bound_names.clear()

    def _bound(self, decl: _Declaration) -> Any:
        """The handle ``self.<decl>`` returns; built on first use (see below)."""
        if isinstance(decl, Channel):
            bound: Any = BoundChannel(self, decl, self.item_id(decl))
        elif isinstance(decl, Event):
            bound = BoundEvent(self, decl, self.item_id(decl))
        elif isinstance(decl, Parameter):
            bound = BoundParameter(self, decl, self.item_id(decl))
        elif isinstance(decl, CommandDecl):
            assert decl.handler is not None
            bound = decl.handler.__get__(self, type(self))
        else:  # pragma: no cover - no other declaration kinds exist
            raise TypeError(decl)
        self._bound_names.add(decl.attr)
        # Declarations are non-data descriptors: from now on ``self.<name>`` finds the handle in
        # the instance dictionary without a Python call (channels are written ~150 times a second).
        self.__dict__[decl.attr] = bound
        return bound

    def channel(self, name: str) -> BoundChannel:
        """The channel declared as ``name``: for channel sets named at run time (one per
        configured rate group, one per value a sensor driver reads), where ``self.<name>``
        cannot be written out."""
        decl = type(self).declarations.get(name)
        if not isinstance(decl, Channel):
            raise KeyError(f"component {self.name} declares no channel {name!r}")
        bound: BoundChannel = self.__dict__.get(decl.attr) or self._bound(decl)
        return bound

    # -- lifecycle hooks --------------------------------------------------------------------
    def setup(self) -> None:
        """Register rate-group members, services and heartbeats. Called once after attach."""

    def check_command(self, name: str, args: list[Any]) -> str | None:
        """Refuse a valid command before it runs (mode, power...): return the reason, or None."""
        return None

    def on_parameter(self, name: str, value: Any) -> None:
        """Activate a new parameter value; raise ValueError to refuse it (it is then not stored)."""

    async def shutdown(self) -> None:
        """Flush what must survive a clean stop (called on SIGTERM before stores are saved)."""

    # -- built-in commands ------------------------------------------------------------------
    @command(doc="Do nothing; proves the component is alive and commandable.", id=0xFF00)
    def no_op(self) -> None:
        pass

    @command(doc="Zero this component's command counters.", id=0xFF0F)
    def reset_counters(self) -> None:
        self.counters.reset()


_D = TypeVar("_D", bound=_Declaration)


@dataclass
class DeclaredItem:
    """One dictionary entry: a declaration bound to a component instance and its numeric id."""

    component: Component
    decl: _Declaration
    id: int
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"{self.component.name}.{self.decl.item_name}"

    def decl_as(self, cls: type[_D]) -> _D:
        """The declaration as the kind its dictionary table holds (Dictionary files items by kind)."""
        decl = self.decl
        if not isinstance(decl, cls):
            raise TypeError(f"{self.name} is declared as a {decl.kind}, not a {cls.kind}")
        return decl
