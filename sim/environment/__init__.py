"""Space environment models for the laptop simulator: orbit, sun, field, attitude, power, thermal, contacts.

`World` steps them all on one simulated clock; the other modules can be used on their own.
"""

from .contacts import ALMATY, ContactWindow, GroundStation, LinkBudget, StationView, contact_windows
from .orbit import Orbit, OrbitError, default_tle, sso_satrec, sso_tle
from .world import World, WorldConfig, WorldEvent, WorldState

__all__ = [
    "ALMATY", "ContactWindow", "GroundStation", "LinkBudget", "Orbit", "OrbitError", "StationView",
    "World", "WorldConfig", "WorldEvent", "WorldState", "contact_windows", "default_tle", "sso_satrec",
    "sso_tle",
]
