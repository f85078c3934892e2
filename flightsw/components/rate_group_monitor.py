"""Telemetry of the rate groups: cycles, overruns, slips and worst cycle time per group.

The channel set depends on which groups the mission configures, so the component class is made
per configuration by :func:`rate_group_monitor` (the declarations stay plain data).
"""

from __future__ import annotations

from typing import Any

from flightsw.core.component import Channel, Component, Limits
from flightsw.core.scheduler import RateGroup
from flightsw.core.types import F32, U32


def rate_group_monitor(groups: dict[str, RateGroup], name: str = "sched", base_id: int = 0x0003) -> Component:
    attrs: dict[str, Any] = {"__doc__": "Rate-group timing telemetry (overruns, slips, cycle times)."}
    for g in groups:
        attrs[f"{g}_cycles"] = Channel(U32, doc=f"Cycles run by rate group {g}")
        attrs[f"{g}_overruns"] = Channel(U32, limits=Limits(yellow_high=0), doc=f"Cycles of {g} that ended after the next deadline", update="on_change")
        attrs[f"{g}_slips"] = Channel(U32, limits=Limits(yellow_high=0), doc=f"Deadlines of {g} skipped", update="on_change")
        attrs[f"{g}_max_cycle_ms"] = Channel(F32, unit="ms", doc=f"Longest cycle of {g}", update="on_change")

    cls = type("RateGroupMonitor", (RateGroupMonitor,), attrs)
    return cls(name, base_id, groups)


class RateGroupMonitor(Component):
    """Publishes each configured group's counters on the channels its per-config subclass declares."""

    def __init__(self, name: str, base_id: int, groups: dict[str, RateGroup]) -> None:
        super().__init__(name, base_id)
        self.groups = groups

    def setup(self) -> None:
        self.ctx.rate_group("slow").add(f"{self.name}.telemetry", self.publish)

    def publish(self) -> None:
        for g, group in self.groups.items():
            stats = group.stats
            self.channel(f"{g}_cycles").set(stats.cycles & 0xFFFFFFFF)
            self.channel(f"{g}_overruns").set(stats.overruns & 0xFFFFFFFF)
            self.channel(f"{g}_slips").set(stats.slips & 0xFFFFFFFF)
            self.channel(f"{g}_max_cycle_ms").set(stats.max_cycle_time * 1000.0)
