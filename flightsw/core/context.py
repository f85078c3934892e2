"""What a component can reach once attached: the satellite's shared services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flightsw.config import MissionConfig
    from flightsw.core.clock import SpacecraftClock
    from flightsw.core.component import Component
    from flightsw.core.events import EventLog
    from flightsw.core.health import HealthMonitor
    from flightsw.core.params import ParameterStore
    from flightsw.core.records import RecordLog
    from flightsw.core.scheduler import RateGroup
    from flightsw.core.state import StateStore
    from flightsw.core.supervisor import Supervisor
    from flightsw.core.tables import TableRegistry
    from flightsw.core.telemetry import TelemetryDB
    from flightsw.core.workers import Workers


@dataclass
class ComponentContext:
    config: MissionConfig
    clock: SpacecraftClock
    telemetry: TelemetryDB
    events: EventLog
    params: ParameterStore
    state: StateStore
    records: RecordLog
    workers: Workers
    supervisor: Supervisor
    health: HealthMonitor
    rate_groups: dict[str, RateGroup]
    components: Callable[[], list[Component]]
    tables: TableRegistry

    def find_channel(self, name: str) -> tuple[Component, int] | None:
        """The component owning a channel named as in the mission config ("component.channel")
        and the channel's id, or None when there is no such telemetry channel; resolved once at
        setup by the components that read a channel named in their config section."""
        from flightsw.core.component import Channel  # runtime import: component imports this module

        owner, _, channel = name.partition(".")
        comp = next((c for c in self.components() if c.name == owner), None)
        decl = comp.declarations.get(channel) if comp is not None else None
        if comp is None or not isinstance(decl, Channel):
            return None
        return comp, comp.item_id(decl)

    def rate_group(self, name: str) -> RateGroup:
        try:
            return self.rate_groups[name]
        except KeyError:
            raise KeyError(f"no rate group {name!r} (configured: {', '.join(self.rate_groups)})") from None
